//! Proptests of the `Future` state machine against a plain reference model of Python's state
//! table (spec §1.4.2), plus cancel of a task started allowing it: random operation sequences,
//! on one thread and on several at once.
//!
//! With several threads the check is linearizability: the results each thread saw must be
//! explained by *some* interleaving of the threads' operations, run one at a time on the model,
//! that also ends in the state the real future ended in.
#![cfg(not(loom))]

use concurrent_futures_core::{DeferredCallbacks, Future, FutureError, State, TaskError};
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Cancel,
    SetRunningOrNotifyCancel,
    /// `set_running_allowing_cancel`, with a stop that counts its calls.
    SetRunningAllowingCancel,
    SetResult(u8),
    /// `complete_deferring_callbacks(Ok(v))`, then running the callbacks it hands back.
    SetResultDeferringCallbacks(u8),
    SetException,
    Cancelled,
    Running,
    Done,
    ResultPoll,
    AddDoneCallback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ret {
    Bool(bool),
    Started(Result<bool, ()>),
    Set(Result<(), ()>),
    Value(u8),
    Failed,
    Cancelled,
    Timeout,
    /// The callback ran during `add_done_callback`, in the adding thread.
    CallbackRanAtOnce(bool),
}

/// The reference model: Python's table, plus the one way we differ on purpose: a future
/// started with `set_running_allowing_cancel` accepts `cancel()` while running (and its stop
/// runs, once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Model {
    Pending,
    Running,
    /// Running, started allowing cancel.
    RunningStoppable,
    Cancelled,
    CancelledAndNotified,
    /// Cancelled while running: `CancelledAndNotified`, with its stop called.
    StoppedByCancel,
    Returned(u8),
    Raised,
}

impl Model {
    fn is_done(self) -> bool {
        !matches!(
            self,
            Model::Pending | Model::Running | Model::RunningStoppable
        )
    }

    fn apply(self, op: Op) -> (Model, Ret) {
        use Model::*;
        match op {
            Op::Cancel => match self {
                Pending => (Cancelled, Ret::Bool(true)),
                RunningStoppable => (StoppedByCancel, Ret::Bool(true)),
                Cancelled | CancelledAndNotified | StoppedByCancel => (self, Ret::Bool(true)),
                _ => (self, Ret::Bool(false)),
            },
            Op::SetRunningOrNotifyCancel => match self {
                Pending => (Running, Ret::Started(Ok(true))),
                Cancelled => (CancelledAndNotified, Ret::Started(Ok(false))),
                _ => (self, Ret::Started(Err(()))),
            },
            Op::SetRunningAllowingCancel => match self {
                Pending => (RunningStoppable, Ret::Started(Ok(true))),
                Cancelled => (CancelledAndNotified, Ret::Started(Ok(false))),
                _ => (self, Ret::Started(Err(()))),
            },
            Op::SetResult(v) | Op::SetResultDeferringCallbacks(v) => match self {
                Pending | Running | RunningStoppable => (Returned(v), Ret::Set(Ok(()))),
                _ => (self, Ret::Set(Err(()))),
            },
            Op::SetException => match self {
                Pending | Running | RunningStoppable => (Raised, Ret::Set(Ok(()))),
                _ => (self, Ret::Set(Err(()))),
            },
            Op::Cancelled => (
                self,
                Ret::Bool(matches!(
                    self,
                    Cancelled | CancelledAndNotified | StoppedByCancel
                )),
            ),
            Op::Running => (self, Ret::Bool(matches!(self, Running | RunningStoppable))),
            Op::Done => (self, Ret::Bool(self.is_done())),
            Op::ResultPoll => (
                self,
                match self {
                    Returned(v) => Ret::Value(v),
                    Raised => Ret::Failed,
                    Cancelled | CancelledAndNotified | StoppedByCancel => Ret::Cancelled,
                    Pending | Running | RunningStoppable => Ret::Timeout,
                },
            ),
            Op::AddDoneCallback => (self, Ret::CallbackRanAtOnce(self.is_done())),
        }
    }

    /// Whether the real future, and the stops its executor saw called, end where the model
    /// does.
    fn matches(self, f: &Future<u8>, stops: usize) -> bool {
        let state = match self {
            Model::Pending => State::Pending,
            Model::Running | Model::RunningStoppable => State::Running,
            Model::Cancelled => State::Cancelled,
            Model::CancelledAndNotified | Model::StoppedByCancel => State::CancelledAndNotified,
            Model::Returned(_) | Model::Raised => State::Finished,
        };
        state == f.state()
            && self.apply(Op::ResultPoll).1 == run(f, Op::ResultPoll, &Counter::default())
            && stops == usize::from(self == Model::StoppedByCancel)
    }
}

/// Counts callback runs, to check each callback runs exactly once when the future is done;
/// and calls of the stops given to `set_running_allowing_cancel`.
#[derive(Default, Clone)]
struct Counter(Arc<AtomicUsize>, Arc<AtomicUsize>);

thread_local! {
    static IN_ADD: Cell<bool> = const { Cell::new(false) };
    static RAN_IN_ADD: Cell<bool> = const { Cell::new(false) };
    static IN_DEFERRING: Cell<bool> = const { Cell::new(false) };
    static RAN_IN_DEFERRING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `op` on the real future.
fn run(f: &Future<u8>, op: Op, callbacks: &Counter) -> Ret {
    match op {
        Op::Cancel => Ret::Bool(f.cancel()),
        Op::SetRunningOrNotifyCancel => {
            Ret::Started(f.set_running_or_notify_cancel().map_err(drop))
        }
        Op::SetRunningAllowingCancel => {
            let stops = callbacks.1.clone();
            Ret::Started(
                f.set_running_allowing_cancel(move || {
                    stops.fetch_add(1, Ordering::SeqCst);
                })
                .map_err(drop),
            )
        }
        Op::SetResult(v) => Ret::Set(f.set_result(v).map_err(drop)),
        Op::SetResultDeferringCallbacks(v) => {
            IN_DEFERRING.with(|c| c.set(true));
            RAN_IN_DEFERRING.with(|c| c.set(false));
            let set = f.clone().complete_deferring_callbacks(Ok(v));
            IN_DEFERRING.with(|c| c.set(false));
            assert!(
                !RAN_IN_DEFERRING.with(Cell::get),
                "a callback ran inside complete_deferring_callbacks"
            );
            Ret::Set(set.map(DeferredCallbacks::run).map_err(drop))
        }
        Op::SetException => Ret::Set(f.set_exception(TaskError::panicked("model")).map_err(drop)),
        Op::Cancelled => Ret::Bool(f.cancelled()),
        Op::Running => Ret::Bool(f.running()),
        Op::Done => Ret::Bool(f.done()),
        Op::ResultPoll => match f.result(Duration::ZERO) {
            Ok(v) => Ret::Value(v),
            Err(FutureError::Failed(_)) => Ret::Failed,
            Err(FutureError::Cancelled(_)) => Ret::Cancelled,
            Err(FutureError::Timeout(_)) => Ret::Timeout,
            Err(e) => panic!("unexpected {e:?}"),
        },
        Op::AddDoneCallback => {
            let counter = callbacks.0.clone();
            IN_ADD.with(|c| c.set(true));
            RAN_IN_ADD.with(|c| c.set(false));
            f.add_done_callback(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                if IN_ADD.with(Cell::get) {
                    RAN_IN_ADD.with(|c| c.set(true));
                }
                if IN_DEFERRING.with(Cell::get) {
                    RAN_IN_DEFERRING.with(|c| c.set(true));
                }
            });
            IN_ADD.with(|c| c.set(false));
            Ret::CallbackRanAtOnce(RAN_IN_ADD.with(Cell::get))
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Cancel),
        Just(Op::SetRunningOrNotifyCancel),
        Just(Op::SetRunningAllowingCancel),
        (0u8..4).prop_map(Op::SetResult),
        (0u8..4).prop_map(Op::SetResultDeferringCallbacks),
        Just(Op::SetException),
        Just(Op::Cancelled),
        Just(Op::Running),
        Just(Op::Done),
        Just(Op::ResultPoll),
        Just(Op::AddDoneCallback),
    ]
}

/// Whether some interleaving of `histories` (each thread's ops in order) run on the model
/// reproduces every recorded result and ends in a state matching `f`.
fn linearizable(histories: &[Vec<(Op, Ret)>], f: &Future<u8>, stops: usize) -> bool {
    fn search(
        histories: &[Vec<(Op, Ret)>],
        positions: &mut Vec<usize>,
        model: Model,
        f: &Future<u8>,
        stops: usize,
        seen: &mut HashSet<(Vec<usize>, Model)>,
    ) -> bool {
        if !seen.insert((positions.clone(), model)) {
            return false;
        }
        if positions.iter().zip(histories).all(|(&p, h)| p == h.len()) {
            return model.matches(f, stops);
        }
        for t in 0..histories.len() {
            let Some(&(op, ret)) = histories[t].get(positions[t]) else {
                continue;
            };
            let (next, expected) = model.apply(op);
            if expected == ret {
                positions[t] += 1;
                let found = search(histories, positions, next, f, stops, seen);
                positions[t] -= 1;
                if found {
                    return true;
                }
            }
        }
        false
    }
    search(
        histories,
        &mut vec![0; histories.len()],
        Model::Pending,
        f,
        stops,
        &mut HashSet::new(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// On one thread every operation returns exactly what the model says.
    #[test]
    fn one_thread_follows_the_state_table(ops in prop::collection::vec(op(), 1..24)) {
        let f = Future::new();
        let callbacks = Counter::default();
        let mut model = Model::Pending;
        let mut added = 0;
        for op in ops {
            let (next, expected) = model.apply(op);
            prop_assert_eq!(run(&f, op, &callbacks), expected, "{:?} in {:?}", op, model);
            model = next;
            added += usize::from(op == Op::AddDoneCallback);
        }
        prop_assert!(model.matches(&f, callbacks.1.load(Ordering::SeqCst)));
        let ran = callbacks.0.load(Ordering::SeqCst);
        prop_assert_eq!(ran, if model.is_done() { added } else { 0 });
    }

    /// Several threads at once: the results are linearizable against the model, and every
    /// callback runs exactly once if the future ended done (never, if it did not).
    #[test]
    fn threads_racing_are_linearizable_against_the_state_table(
        programs in prop::collection::vec(prop::collection::vec(op(), 1..6), 2..4)
    ) {
        let f = Future::new();
        let callbacks = Counter::default();
        let barrier = Arc::new(std::sync::Barrier::new(programs.len()));
        let handles: Vec<_> = programs
            .iter()
            .cloned()
            .map(|program| {
                let (f, callbacks, barrier) = (f.clone(), callbacks.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    program.into_iter().map(|op| (op, run(&f, op, &callbacks))).collect::<Vec<_>>()
                })
            })
            .collect();
        let histories: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let stops = callbacks.1.load(Ordering::SeqCst);
        prop_assert!(
            linearizable(&histories, &f, stops),
            "no interleaving explains {:?} (stops called: {})", histories, stops
        );
        let added = programs.iter().flatten().filter(|&&op| op == Op::AddDoneCallback).count();
        let ran = callbacks.0.load(Ordering::SeqCst);
        prop_assert_eq!(ran, if f.done() { added } else { 0 });
    }
}
