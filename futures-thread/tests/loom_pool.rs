//! Loom models of the pool's protocol (`shared.rs`): queue, idle accounting, shutdown.
//!
//! Run with `cargo xtask loom`. Worker threads are loom threads too (core's shim), so every
//! interleaving of submitter, workers and shutdown is explored.
#![cfg(loom)]

use concurrent_futures_core::{MapOptions, State, SubmitError};
use concurrent_futures_thread::ThreadPoolExecutor;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

fn pool(max_workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(max_workers)
        .thread_name_prefix("loom")
        .build()
        .unwrap()
}

/// A submit that races `shutdown(cancel_futures)` is either refused, or its task runs, or it is
/// cancelled *and notified* without running — never lost, never run after being cancelled.
#[test]
fn submit_racing_shutdown_loses_no_task_and_runs_none_it_cancelled() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        // A worker already exists (and may exit at shutdown before the racing submit lands).
        pool.spawn(|| ()).unwrap().result(None).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (p, r) = (pool.clone(), ran.clone());
        let submitter = thread::spawn(move || {
            p.spawn(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
        });
        pool.shutdown(false, true);
        let submitted = submitter.join().unwrap();
        pool.shutdown(true, false);
        match submitted {
            Ok(f) => match f.state() {
                State::Finished => assert_eq!(ran.load(Ordering::SeqCst), 1),
                State::CancelledAndNotified => assert_eq!(ran.load(Ordering::SeqCst), 0),
                other => panic!("a submitted task ended {other:?}"),
            },
            Err(e) => {
                assert_eq!(e, SubmitError::Shutdown);
                assert_eq!(ran.load(Ordering::SeqCst), 0);
            }
        }
    });
}

/// Sequential submit/result: the second task must reach the idle worker (a lost wake-up is a
/// deadlock loom reports), and no second thread starts while that worker is free.
#[test]
fn a_submit_never_waits_while_a_worker_idles_and_an_idle_worker_is_reused() {
    loom::model(|| {
        let pool = pool(2);
        assert_eq!(pool.spawn(|| 1).unwrap().result(None).unwrap(), 1);
        assert_eq!(pool.spawn(|| 2).unwrap().result(None).unwrap(), 2);
        assert_eq!(pool.worker_count(), 1, "{pool:?}");
        pool.shutdown(true, false);
    });
}

/// Shutdown must reach every worker — spinning, sleeping or busy — so the join returns.
#[test]
fn shutdown_wakes_every_worker_so_a_waited_shutdown_joins_them_all() {
    loom::model(|| {
        let pool = pool(2);
        let a = pool.spawn(|| 1).unwrap();
        let b = pool.spawn(|| 2).unwrap();
        pool.shutdown(true, false);
        assert_eq!(a.result(None).unwrap() + b.result(None).unwrap(), 3);
    });
}

/// `cancel_futures` racing the worker that takes the next task: each task either ran to the end
/// or was cancelled and notified without running.
#[test]
fn cancel_futures_at_shutdown_racing_a_worker_taking_the_next_task() {
    loom::model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let futures: Vec<_> = (0..2)
            .map(|_| {
                let r = ran.clone();
                pool.spawn(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
            })
            .collect();
        pool.shutdown(true, true);
        let finished = futures
            .iter()
            .filter(|f| f.state() == State::Finished)
            .count();
        let notified = futures
            .iter()
            .filter(|f| f.state() == State::CancelledAndNotified)
            .count();
        assert_eq!(finished + notified, 2, "every future ended");
        assert_eq!(
            ran.load(Ordering::SeqCst),
            finished,
            "no cancelled task ran"
        );
    });
}

/// The soundness of scoped tasks rests on this: `scope` returns only after every task it
/// accepted has run to the end — whether a worker took it, or the scope ran it itself.
#[test]
fn scope_returns_only_after_every_scoped_task_finished() {
    loom::model(|| {
        let pool = pool(1);
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            let ran = &ran;
            s.spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        pool.shutdown(true, false);
    });
}

/// A scope opened by a task on the pool's only worker: no worker is free to take its tasks, so
/// the scope must run them itself — otherwise it waits forever (loom reports the deadlock).
#[test]
fn scope_inside_the_pools_only_worker_runs_its_tasks_itself_instead_of_deadlocking() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || {
                let ran = AtomicUsize::new(0);
                inner.scope(|s| {
                    let ran = &ran;
                    s.spawn(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                });
                ran.load(Ordering::SeqCst)
            })
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 1);
        pool.shutdown(true, false);
    });
}

/// The same scope, whose task spawns another scoped task after the scope began waiting: the
/// scope must run that one too (nobody else can), and it must hear of it while it waits —
/// otherwise it waits forever (loom reports the deadlock).
#[test]
fn a_scoped_task_spawning_another_inside_the_pools_only_worker_never_deadlocks() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || {
                let ran = AtomicUsize::new(0);
                inner.scope(|s| {
                    let ran = &ran;
                    s.spawn(move || {
                        s.spawn(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    })
                    .unwrap();
                });
                ran.load(Ordering::SeqCst)
            })
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 1);
        pool.shutdown(true, false);
    });
}

/// A scope on one of two workers; the other worker runs its first task, which spawns a second
/// scoped task and waits for it. Only the scope's thread is free to run the second task, and
/// it is already waiting for the running one: `spawn` must wake it (a lost wake-up is a
/// deadlock loom reports). Compensation is off here: a spare thread for the waiting task would
/// run the second task too, hiding a lost wake-up (and a fourth thread makes the model too big
/// to explore); `tests/loom_blocking.rs` models the spares.
#[test]
fn a_scope_waiting_for_its_running_tasks_wakes_to_run_a_task_they_spawn() {
    loom::model(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(2)
                .max_spare_threads(0)
                .thread_name_prefix("loom")
                .build()
                .unwrap(),
        );
        let inner = pool.clone();
        let outer = pool
            .spawn(move || {
                inner.scope(|s| {
                    s.spawn(move || s.spawn(|| 7u8).unwrap().result(None).unwrap())
                        .unwrap()
                })
            })
            .unwrap();
        let first = outer.result(None).unwrap();
        assert_eq!(first.result(None).unwrap(), 7);
        pool.shutdown(true, false);
    });
}

/// A failing initializer breaks the pool while another thread submits: that submit is refused
/// with the broken-pool error, or its future fails with it — never left pending (a task
/// reserved before the break but pushed after it must still be failed; `result(None)` on a
/// stranded future is a deadlock loom reports).
#[test]
fn a_failed_initializer_racing_a_submit_fails_or_refuses_it_and_strands_nothing() {
    loom::model(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .try_initializer(|| Err("no database"))
                .build()
                .unwrap(),
        );
        let p = pool.clone();
        let submitter = thread::spawn(move || p.spawn(|| 2u8));
        let first = pool.spawn(|| 1u8);
        let second = submitter.join().unwrap();
        for submitted in [first, second] {
            match submitted {
                Ok(f) => {
                    let e = f.result(None).unwrap_err();
                    assert!(e.to_string().contains("no database"), "{e}");
                }
                Err(SubmitError::Broken(b)) => assert!(b.to_string().contains("no database")),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(pool.broken().is_some());
        pool.shutdown(true, false);
    });
}

/// A task calls `shutdown(wait = true)` on its own pool while another thread does the same:
/// both return. If the outside call held a lock across its join that the worker's call needs,
/// or the worker's call waited for the outside joiner, they would wait on each other forever
/// (loom reports the deadlock).
#[test]
fn shutdown_wait_from_a_task_and_from_outside_at_once_both_return() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let p = pool.clone();
        let inner = pool.spawn(move || p.shutdown(true, false)).unwrap();
        let p = pool.clone();
        let outside = thread::spawn(move || p.shutdown(true, false));
        outside.join().unwrap();
        inner.result(None).unwrap();
        pool.shutdown(true, false);
    });
}

/// A submit racing `shutdown(wait=False)` on a pool that has no thread yet is refused, or its
/// task runs (Python's submit holds the shutdown lock, so its task always runs): it is never
/// left queued with no thread to run it. Mutation seen to fail (deadlock): `start_worker`
/// refusing to start a thread once `SHUTDOWN` is set.
#[test]
fn a_submit_racing_shutdown_on_a_pool_with_no_thread_is_refused_or_runs() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let other = pool.clone();
        let shutdown = thread::spawn(move || other.shutdown(false, false));
        let submitted = pool.spawn(|| 5u8);
        shutdown.join().unwrap();
        pool.shutdown(true, false);
        if let Ok(future) = submitted {
            assert_eq!(future.result(None).unwrap(), 5);
        }
    });
}

/// A chunked `map` (one reservation per chunk of inputs, `Shared::submit_all`) racing
/// `shutdown(cancel_futures)`: the map is refused as a whole, or each of its tasks runs or is
/// cancelled and notified — none lost, none run after being cancelled.
#[test]
fn a_map_racing_shutdown_is_refused_or_every_item_ends_once() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        // A worker already exists, and may be asleep when the batch lands.
        pool.spawn(|| ()).unwrap().result(None).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (p, r) = (pool.clone(), ran.clone());
        let mapper = thread::spawn(move || {
            let r = r.clone();
            let add = move |x: usize| r.fetch_add(1, Ordering::SeqCst) + x;
            match p.map_with(add, 0..2, MapOptions::new().chunksize(2)) {
                Ok(items) => Some(items.filter(Result::is_ok).count()),
                Err(e) => {
                    assert_eq!(e, SubmitError::Shutdown);
                    None
                }
            }
        });
        pool.shutdown(false, true);
        let finished = mapper.join().unwrap();
        pool.shutdown(true, false);
        let ran = ran.load(Ordering::SeqCst);
        match finished {
            // Items come back in order and the first error ends the iteration, so the
            // finished ones are a prefix of those that ran.
            Some(ok) => assert!(ok <= ran && ran <= 2, "{ok} ok, {ran} ran"),
            None => assert_eq!(ran, 0),
        }
    });
}
