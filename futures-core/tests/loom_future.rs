//! Loom models of the `Future` protocol: each test explores every interleaving (up to the
//! preemption bound) of the shipped code, whose locks and atomics come from the loom shim.
//!
//! Run with `cargo xtask loom`.
#![cfg(loom)]

use concurrent_futures_core::{Deadline, Future, FutureError, FutureTask, State, model_clock};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::time::Duration;

/// If `cancel` and `set_running_or_notify_cancel` could both win, a cancelled task would run
/// (or a started one would report cancelled).
#[test]
fn cancel_racing_set_running_or_notify_cancel_has_exactly_one_winner() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let worker = f.clone();
        let t = thread::spawn(move || worker.set_running_or_notify_cancel().unwrap());
        let cancelled = f.cancel();
        let running = t.join().unwrap();
        assert_ne!(cancelled, running, "exactly one side wins");
        let expected = if cancelled {
            State::CancelledAndNotified
        } else {
            State::Running
        };
        assert_eq!(f.state(), expected);
    });
}

/// An executor that can stop its tasks starts one with `set_running_allowing_cancel`: a
/// `cancel()` made as soon as `running()` says yes must succeed (and stop the task). With
/// `set_running_or_notify_cancel` then `allow_cancel_while_running`, loom finds the moment in
/// between, where it fails (a process pool's doctest hung on it under load).
#[test]
fn a_cancel_once_running_is_seen_always_stops_a_task_started_allowing_cancel() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let worker = f.clone();
        let stopped = Arc::new(AtomicUsize::new(0));
        let stops = Arc::clone(&stopped);
        let t = thread::spawn(move || {
            worker
                .set_running_allowing_cancel(move || {
                    stops.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
        });
        let was_running = f.running();
        let cancelled = f.cancel();
        if was_running {
            assert!(cancelled, "a running future that allows it is cancelled");
            assert_eq!(stopped.load(Ordering::SeqCst), 1, "and its task is stopped");
        }
        // Cancelled before it started, or while running: a cancel always succeeds here.
        assert!(cancelled);
        let started = t.join().unwrap();
        // Its stop ran exactly when the task had started (and was cancelled running).
        assert_eq!(stopped.load(Ordering::SeqCst), usize::from(started));
    });
}

/// A lost wake-up would leave `result()` blocked forever: loom reports the deadlock.
#[test]
fn set_result_racing_a_blocked_result_never_loses_the_wake_up() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(7).unwrap());
        assert_eq!(f.result(None).unwrap(), 7);
        t.join().unwrap();
    });
}

/// The callback must run exactly once whether it is added before (deferred, run by the
/// completing thread) or after (run at once by the adder) the future finishes.
#[test]
fn add_done_callback_racing_set_result_runs_the_callback_exactly_once() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(1).unwrap());
        let r = runs.clone();
        f.add_done_callback(move |f| {
            assert_eq!(
                f.result(None).unwrap(),
                1,
                "a callback sees the finished future"
            );
            r.fetch_add(1, Ordering::SeqCst);
        });
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(f.callback_count(), 0, "no callback left behind");
    });
}

/// A callback added while another thread finishes the future deferring its callbacks runs
/// exactly once: at once in the adding thread (the future was finished), or from the handed-back
/// callbacks; never inside the finishing call.
#[test]
fn add_done_callback_racing_complete_deferring_callbacks_runs_the_callback_once_never_inside() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        // Set by the finishing thread around its call: a callback that sees it ran inside.
        let finishing = Arc::new(AtomicUsize::new(0));
        let setter = f.clone();
        let in_call = finishing.clone();
        let t = thread::spawn(move || {
            in_call.store(1, Ordering::SeqCst);
            let callbacks = setter.complete_deferring_callbacks(Ok(1)).unwrap();
            in_call.store(0, Ordering::SeqCst);
            callbacks.run();
        });
        let r = runs.clone();
        let seen = finishing.clone();
        let adder = thread::current().id();
        f.add_done_callback(move |f| {
            assert_eq!(
                f.result(None).unwrap(),
                1,
                "a callback sees the finished future"
            );
            assert!(
                thread::current().id() == adder || seen.load(Ordering::SeqCst) == 0,
                "a callback ran inside complete_deferring_callbacks"
            );
            r.fetch_add(1, Ordering::SeqCst);
        });
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(f.callback_count(), 0, "no callback left behind");
    });
}

/// A value that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `complete_deferring_callbacks` releases the executor's handle when no callback is registered
/// and another handle is left, and hands it back with the callbacks otherwise. A taker waiting
/// to be the last handle (`into_result_when_last`) is never stranded, in either case and
/// whichever comes first; and the value is dropped exactly once, by the taker.
#[test]
fn complete_deferring_callbacks_racing_a_taker_never_strands_it_and_drops_the_value_once() {
    for with_callback in [false, true] {
        loom::model(move || taker_racing_complete_deferring_callbacks(with_callback));
    }
}

fn taker_racing_complete_deferring_callbacks(with_callback: bool) {
    {
        let drops = Arc::new(AtomicUsize::new(0));
        let f = Future::<Counted>::new();
        if with_callback {
            f.add_done_callback(|f| assert!(f.done()));
        }
        let executor = f.clone();
        let value = Counted(drops.clone());
        let t = thread::spawn(move || {
            let left = executor.complete_deferring_callbacks(Ok(value)).unwrap();
            // Run (here: nothing, or the drop of a handle) on another thread.
            thread::spawn(move || left.run()).join().unwrap();
        });
        let taken = f.into_result_when_last(None).unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 0, "the taker holds the value");
        drop(taken);
        t.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}

/// The last other handle dropped while the executor completes deferring: the value is dropped
/// exactly once, by the last counted handle. Once the executor's handle is released (nothing
/// handed back), the value is never dropped on the executor's thread, even when the other
/// handle goes first and the executor lets go of the future's block last.
#[test]
fn complete_deferring_callbacks_racing_the_last_other_drop_drops_the_value_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        // 1 once dropped on the executor's thread.
        let dropped_by_executor = Arc::new(AtomicUsize::new(0));
        let f = Future::<ThreadCounted>::new();
        let executor = f.clone();
        let value = ThreadCounted {
            drops: drops.clone(),
            by_other_thread: dropped_by_executor.clone(),
            owner: thread::current().id(),
        };
        let t = thread::spawn(move || {
            let left = executor.complete_deferring_callbacks(Ok(value)).unwrap();
            let released = left.is_empty();
            left.run();
            released
        });
        drop(f);
        let released = t.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        if released {
            assert_eq!(
                dropped_by_executor.load(Ordering::SeqCst),
                0,
                "a released handle dropped the value"
            );
        }
    });
}

/// A value that counts its drops, and those made on a thread other than `owner`'s.
struct ThreadCounted {
    drops: Arc<AtomicUsize>,
    by_other_thread: Arc<AtomicUsize>,
    owner: thread::ThreadId,
}

impl Drop for ThreadCounted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if thread::current().id() != self.owner {
            self.by_other_thread.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Cancel and set_result: one terminal state, and the loser learns it lost.
#[test]
fn cancel_racing_set_result_ends_in_exactly_one_terminal_state() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(3).is_ok());
        let cancelled = f.cancel();
        let set = t.join().unwrap();
        assert_ne!(cancelled, set);
        if cancelled {
            assert_eq!(f.state(), State::Cancelled);
            assert!(matches!(f.result(None), Err(FutureError::Cancelled(_))));
        } else {
            assert_eq!(f.state(), State::Finished);
            assert_eq!(f.result(None).unwrap(), 3);
        }
    });
}

/// A cancel must wake a thread blocked in `result()` too.
#[test]
fn cancel_wakes_a_blocked_result() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let canceller = f.clone();
        let t = thread::spawn(move || canceller.cancel());
        assert!(matches!(f.result(None), Err(FutureError::Cancelled(_))));
        assert!(t.join().unwrap());
    });
}

/// `result(timeout)` with a timer thread moving the model clock past the deadline: it returns
/// the value or times out, and it times out only once the deadline has passed.
#[test]
fn result_with_timeout_racing_set_result_and_the_clock_returns_or_times_out_after_the_deadline() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let setter = f.clone();
        let timeout = Duration::from_millis(10);
        let deadline = Deadline::after(Some(timeout));
        let t = thread::spawn(move || setter.set_result(9).unwrap());
        let timer = thread::spawn(move || model_clock::advance(timeout));
        match f.result(timeout) {
            Ok(v) => assert_eq!(v, 9),
            Err(FutureError::Timeout(_)) => assert!(deadline.is_past(), "timed out early"),
            Err(e) => panic!("unexpected {e:?}"),
        }
        t.join().unwrap();
        timer.join().unwrap();
        assert_eq!(f.result(Duration::ZERO).unwrap(), 9);
    });
}

/// With no timer thread the model clock never moves, so a timed wait must end with the value:
/// a timed wait never gives up before its deadline, and never misses the completion.
#[test]
fn result_with_timeout_never_times_out_before_the_deadline() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(4).unwrap());
        assert_eq!(f.result(Duration::from_secs(1)).unwrap(), 4);
        t.join().unwrap();
    });
}

/// `into_result_when_last` moves the value out only once it holds the last handle. If the
/// executor's drop of its handle could slip between the taker's check and its wait, the taker
/// would sleep forever (loom reports the deadlock); if the taker did not wait, loom's cell
/// tracking would report the executor's access racing the move.
#[test]
fn into_result_when_last_waits_for_the_executor_to_drop_its_handle_and_never_misses_that_drop() {
    loom::model(|| {
        let f = Future::<Box<u8>>::new();
        let worker = f.clone();
        let t = thread::spawn(move || {
            worker.set_result(Box::new(5)).unwrap();
            assert_eq!(**worker.result_ref(None).unwrap(), 5);
            drop(worker);
        });
        assert_eq!(*f.into_result_when_last(None).unwrap(), 5);
        t.join().unwrap();
    });
}

/// With a timeout and a timer thread: the value comes out, or the timeout passed first.
#[test]
fn into_result_when_last_with_timeout_racing_the_last_drop_returns_the_value_or_times_out_after_the_deadline()
 {
    loom::model(|| {
        let f = Future::<u8>::new();
        f.set_result(6).unwrap();
        let other = f.clone();
        let timeout = Duration::from_millis(3);
        let deadline = Deadline::after(Some(timeout));
        let t = thread::spawn(move || drop(other));
        let timer = thread::spawn(move || model_clock::advance(timeout));
        match f.into_result_when_last(timeout) {
            Ok(v) => assert_eq!(v, 6),
            Err(FutureError::Timeout(_)) => assert!(deadline.is_past(), "timed out early"),
            Err(e) => panic!("unexpected {e:?}"),
        }
        t.join().unwrap();
        timer.join().unwrap();
    });
}

/// `into_future_when_last` needs two wake-ups: the completion, then the executor dropping its
/// handle (so the value can be moved out). Missing either leaves the task pending forever (loom
/// reports it).
#[test]
fn await_when_last_racing_set_result_and_the_executors_drop_never_misses_a_wake_up() {
    loom::model(|| {
        let f = Future::<Box<u8>>::new();
        let worker = f.clone();
        let t = thread::spawn(move || {
            worker.set_result(Box::new(5)).unwrap();
            drop(worker);
        });
        let value = loom::future::block_on(f.into_future_when_last()).unwrap();
        assert_eq!(*value, 5);
        t.join().unwrap();
    });
}

/// `completed()` racing a cancel: the awaiting task is woken and the future is done.
#[test]
fn completed_racing_cancel_wakes_the_awaiting_task() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let canceller = f.clone();
        let t = thread::spawn(move || assert!(canceller.cancel()));
        loom::future::block_on(f.completed());
        assert!(f.cancelled());
        assert_eq!(f.awaiter_count(), 0);
        t.join().unwrap();
    });
}

/// Two last-handle takers of one finished future, `into_result_when_last(None)` and
/// `into_result_when_last(timeout)`: the timed
/// one gives up (the untimed one holds a handle, so neither can be the last), and its drop must
/// then wake the untimed one. With one shared "a taker waits" flag, the one that timed out
/// cleared it and its drop woke nobody: loom reports the deadlock.
#[test]
fn two_takers_one_timing_out_never_strands_the_other() {
    loom::model(|| {
        let f = Future::<Box<u8>>::new();
        f.set_result(Box::new(8)).unwrap();
        let other = f.clone();
        let timeout = Duration::from_millis(3);
        let untimed = thread::spawn(move || other.into_result_when_last(None).map(|v| *v));
        // The timed taker fixes its deadline when it starts, which may be after a tick: the
        // timer ticks until that taker has returned.
        let returned = Arc::new(AtomicUsize::new(0));
        let timer = {
            let returned = returned.clone();
            thread::spawn(move || {
                while returned.load(Ordering::Acquire) == 0 {
                    model_clock::advance(timeout);
                    thread::yield_now();
                }
            })
        };
        // The untimed taker holds its handle until it returns, so this one cannot take.
        let timed = f.into_result_when_last(timeout);
        returned.store(1, Ordering::Release);
        assert!(timed.unwrap_err().is_timeout());
        assert_eq!(untimed.join().unwrap().unwrap(), 8);
        timer.join().unwrap();
    });
}

/// An `into_future_when_last` taker dropped while an `into_result_when_last(None)` taker waits:
/// the drop of the awaiting handle must wake the other taker (the await must uncount itself
/// before its handle goes).
#[test]
fn an_await_when_last_dropped_while_into_result_when_last_waits_never_strands_it() {
    loom::model(|| {
        use std::future::Future as _;
        let f = Future::<Box<u8>>::new();
        let other = f.clone();
        let taker = thread::spawn(move || other.into_result_when_last(None).map(|v| *v));
        let setter = f.clone();
        let t = thread::spawn(move || {
            setter.set_result(Box::new(2)).unwrap();
        });
        let mut awaiting = f.into_future_when_last();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        // Pending (another handle lives) or, if the setter and the taker were quick, ready
        // with the value (then the taker ends with nothing to take: it cannot happen, since
        // the taker's own handle keeps this one from being the last).
        assert!(std::pin::Pin::new(&mut awaiting).poll(&mut cx).is_pending());
        drop(awaiting);
        t.join().unwrap();
        assert_eq!(taker.join().unwrap().unwrap(), 2);
    });
}

/// A timed `into_result_when_last` whose deadline the clock never reaches must be woken by the
/// last drop: the timed wait really sleeps in the model, so a lost wake-up is a deadlock loom
/// reports.
#[test]
fn into_result_when_last_with_a_timeout_is_woken_by_the_last_drop_before_its_deadline() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let worker = f.clone();
        let t = thread::spawn(move || {
            worker.set_result(1).unwrap();
            drop(worker);
        });
        assert_eq!(f.into_result_when_last(Duration::from_secs(1)).unwrap(), 1);
        t.join().unwrap();
    });
}

/// `into_result` waits for completion and nothing else: with a clone kept alive by this thread
/// (as in a collection), it returns the value, cloned. Were it to wait for the last handle, as it
/// did before, the clone could never drop and loom would report the deadlock.
#[test]
fn into_result_with_a_clone_kept_alive_returns_a_clone_without_waiting_for_it() {
    loom::model(|| {
        let f = Future::<Box<u8>>::new();
        let kept = f.clone();
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(Box::new(3)).unwrap());
        assert_eq!(*f.into_result(None).unwrap(), 3);
        assert_eq!(**kept.result_ref(None).unwrap(), 3, "the value stayed");
        t.join().unwrap();
    });
}

/// `into_result` moves the value out only when no other handle can reach it: here the
/// executor's handle reads the value (as a callback or `result_ref` may) and then drops,
/// racing the taker. The taker moves only after seeing the drop with `Acquire`; if it read the
/// handle count `Relaxed`, or moved while two handles lived, loom's cell tracking would report
/// the move racing the executor's read.
#[test]
fn into_result_racing_a_reading_handles_drop_moves_the_value_only_after_that_drop() {
    loom::model(|| {
        let f = Future::<Box<u8>>::new();
        let worker = f.clone();
        let t = thread::spawn(move || {
            worker.set_result(Box::new(5)).unwrap();
            assert_eq!(**worker.result_ref(None).unwrap(), 5);
            drop(worker);
        });
        assert_eq!(*f.into_result(None).unwrap(), 5);
        t.join().unwrap();
    });
}

/// `.await` waits for completion and nothing else: a clone alive in this thread does not keep
/// it pending. Were it to wait for the last handle, the task would stay pending forever (loom
/// reports the deadlock).
#[test]
fn await_with_a_clone_kept_alive_returns_a_clone_without_waiting_for_it() {
    loom::model(|| {
        let f = Future::<Box<u8>>::new();
        let kept = f.clone();
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(Box::new(4)).unwrap());
        let value = loom::future::block_on(async move { f.await }).unwrap();
        assert_eq!(*value, 4);
        assert_eq!(**kept.result_ref(None).unwrap(), 4, "the value stayed");
        t.join().unwrap();
    });
}

/// A task's worker uncounts its handle as it publishes the value: if that came after FINISHED,
/// a caller seeing FINISHED could take the value while the worker still counts as a reader
/// (or wait for a handle drop it then misses); if the closure in the block were reached by the
/// caller's drop of the block while the worker takes it, loom reports the race.
#[test]
fn a_task_run_racing_the_last_handle_taking_its_value_moves_it_out_once() {
    loom::model(|| {
        let (task, future) = FutureTask::new(|| String::from("value"));
        let t = thread::spawn(move || task.run(&|| {}));
        assert_eq!(future.into_result_when_last(None).unwrap(), "value");
        t.join().unwrap();
    });
}

/// A callback added while the task runs sees the value: the worker keeps its handle
/// counted when a callback is registered, so `into_result` clones instead of moving it away
/// under the callback's feet.
#[test]
fn a_task_run_racing_a_done_callback_and_into_result_never_moves_a_value_a_callback_reads() {
    loom::model(|| {
        let (task, future) = FutureTask::new(|| 5_u32);
        let seen = Arc::new(AtomicUsize::new(0));
        let in_callback = Arc::clone(&seen);
        let t = thread::spawn(move || task.run(&|| {}));
        future.add_done_callback(move |f| {
            let v = f.result(Duration::ZERO).unwrap();
            in_callback.store(v as usize, Ordering::SeqCst);
        });
        assert_eq!(future.into_result(None).unwrap(), 5);
        t.join().unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 5);
    });
}

/// Cancelling a queued task while the worker takes it: exactly one of "ran" and "cancelled".
#[test]
fn cancel_racing_a_task_run_either_runs_it_or_notifies_the_cancel() {
    loom::model(|| {
        let (task, future) = FutureTask::new(|| 1_u8);
        let t = thread::spawn(move || task.run(&|| {}));
        let cancelled = future.cancel();
        t.join().unwrap();
        if cancelled {
            assert_eq!(future.state(), State::CancelledAndNotified);
        } else {
            assert_eq!(future.result(None).unwrap(), 1);
        }
    });
}
