//! The twin of CPython's `test_shutdown.py`, thread parts (`ExecutorShutdownTest` and
//! `ThreadPoolShutdownTest`).
//!
//! Python-only: `test_interpreter_shutdown`, `test_submit_after_interpreter_shutdown`,
//! `test_hang_gh83386` and `test_cancel_futures_wait_false` run a child *interpreter* that exits
//! without shutting the pool down; Rust has no interpreter exit — dropping the pool is the exit
//! hook, and `del_shutdown` / `shutdown_no_wait` below test that queued work still completes.
#![cfg(not(loom))]

use concurrent_futures_core::{Executor, Future, State};
use concurrent_futures_testkit::fixtures::{abs, pow};
use concurrent_futures_testkit::{Gate, Latch, ThreadProbe, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use concurrent_futures_wait::{ReturnWhen, wait};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn blocked_tasks(pool: &ThreadPoolExecutor, n: usize, gate: &Gate) -> Vec<Future<()>> {
    (0..n)
        .map(|_| {
            let gate = gate.clone();
            pool.spawn(move || gate.wait()).unwrap()
        })
        .collect()
}

#[test]
fn run_after_shutdown() {
    let pool = ThreadPoolExecutor::new();
    pool.shutdown(true, false);
    let err = Executor::submit(&pool, pow, (2, 5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot schedule new futures after shutdown"
    );
}

#[test]
fn hang_issue12364() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let fs: Vec<_> = (0..50u64)
            .map(|i| pool.spawn(move || i * i).unwrap())
            .collect();
        pool.shutdown(true, false);
        for (i, f) in fs.iter().enumerate() {
            assert_eq!(f.result(None).unwrap(), (i * i) as u64);
        }
    });
}

/// Five tasks run (blocked), forty-five wait in the queue: shutdown cancels those, and — unlike
/// CPython (gh-87893) — notifies them, so `wait` reports every future done.
#[test]
fn cancel_futures() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let gate = Gate::new();
        let started = Latch::new(5);
        let fs: Vec<Future<()>> = (0..50)
            .map(|_| {
                let (gate, started) = (gate.clone(), started.clone());
                pool.spawn(move || {
                    started.count_down();
                    gate.wait()
                })
                .unwrap()
            })
            .collect();
        started.wait();
        pool.shutdown(false, true);
        let cancelled = fs.iter().filter(|f| f.cancelled()).count();
        assert!(cancelled > 20, "only {cancelled} cancelled");
        assert!(
            fs.iter()
                .filter(|f| f.cancelled())
                .all(|f| f.state() == State::CancelledAndNotified)
        );
        gate.open();
        let r = wait(&fs, None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 50, "cancelled futures are done for wait");
        let ran: Vec<_> = fs.iter().filter(|f| !f.cancelled()).collect();
        assert!(!ran.is_empty());
        assert!(
            ran.iter()
                .all(|f| f.done() && f.exception(None).unwrap().is_none())
        );
        pool.shutdown(true, false);
    });
}

#[test]
fn hang_gh94440() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        pool.spawn(|| 0).unwrap().result(None).unwrap();
        pool.spawn(|| 0).unwrap().cancel();
        pool.shutdown(true, false);
    });
}

/// Counts, from a thread-local's destructor, the pool threads that have fully exited: once a
/// thread is joined, its thread-locals have been destroyed.
fn count_exit_of_this_thread(exited: &Arc<AtomicUsize>) {
    struct OnExit(Option<Arc<AtomicUsize>>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            if let Some(exited) = &self.0 {
                exited.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    thread_local!(static ON_EXIT: std::cell::RefCell<OnExit> = const { std::cell::RefCell::new(OnExit(None)) });
    ON_EXIT.with(|cell| cell.borrow_mut().0 = Some(exited.clone()));
}

/// `shutdown(wait = true)` returns only once every worker thread has exited and been joined
/// (each thread's thread-locals are destroyed before its join returns), not merely once the
/// futures are done.
#[test]
fn threads_terminate() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let gate = Gate::new();
        let exited = Arc::new(AtomicUsize::new(0));
        let started = Latch::new(3);
        let fs: Vec<_> = (0..3)
            .map(|_| {
                let (gate, exited, started) = (gate.clone(), exited.clone(), started.clone());
                pool.spawn(move || {
                    count_exit_of_this_thread(&exited);
                    started.count_down();
                    gate.wait();
                })
                .unwrap()
            })
            .collect();
        // Each task holds its own thread.
        started.wait();
        assert_eq!(pool.worker_count(), 3);
        gate.open();
        pool.shutdown(true, false);
        assert!(fs.iter().all(Future::done));
        assert_eq!(exited.load(Ordering::SeqCst), 3, "workers not joined");
    });
}

#[test]
fn context_manager_shutdown() {
    watchdog(|| {
        let got: Vec<i64> = {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(5)
                .build()
                .unwrap();
            pool.map(abs, -5..5).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

/// Dropping the pool without `shutdown()` still runs the queued work, then joins the workers.
#[test]
fn del_shutdown() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let gate = Gate::new();
        let g = gate.clone();
        let first = pool.spawn(move || g.wait()).unwrap();
        let fs: Vec<_> = (-5..5i64)
            .map(|i| pool.spawn(move || i.abs()).unwrap())
            .collect();
        gate.open();
        drop(pool);
        assert!(first.done());
        let got: Vec<i64> = fs
            .iter()
            .map(|f| f.result(std::time::Duration::ZERO).unwrap())
            .collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

#[test]
fn shutdown_no_wait() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let fs: Vec<_> = (-5..5i64)
            .map(|i| pool.spawn(move || i.abs()).unwrap())
            .collect();
        pool.shutdown(false, false);
        let got: Vec<i64> = fs.iter().map(|f| f.result(None).unwrap()).collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    });
}

fn thread_names(pool: &ThreadPoolExecutor) -> Vec<String> {
    let gate = Gate::new();
    let started = Latch::new(5);
    let fs: Vec<_> = (0..5)
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            pool.spawn(move || {
                started.count_down();
                gate.wait();
                std::thread::current().name().unwrap().to_owned()
            })
            .unwrap()
        })
        .collect();
    started.wait();
    gate.open();
    let mut names: Vec<String> = fs.iter().map(|f| f.result(None).unwrap()).collect();
    names.sort();
    names
}

#[test]
fn thread_names_assigned() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .thread_name_prefix("SpecialPool")
            .build()
            .unwrap();
        assert_eq!(
            thread_names(&pool),
            [
                "SpecialPool_0",
                "SpecialPool_1",
                "SpecialPool_2",
                "SpecialPool_3",
                "SpecialPool_4"
            ]
        );
    });
}

#[test]
fn thread_names_default() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        for (k, name) in thread_names(&pool).iter().enumerate() {
            let rest = name
                .strip_prefix("ThreadPoolExecutor-")
                .unwrap_or_else(|| panic!("{name}"));
            let (n, suffix) = rest.split_once('_').unwrap();
            assert!(
                n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty(),
                "{name}"
            );
            assert_eq!(suffix, k.to_string());
        }
    });
}

/// `shutdown(wait)` from two threads at once: both return only after every worker is joined.
#[test]
fn concurrent_shutdowns_both_wait() {
    watchdog(|| {
        let pool = std::sync::Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(2)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let fs = blocked_tasks(&pool, 2, &gate);
        let p = pool.clone();
        let other = std::thread::spawn(move || p.shutdown(true, false));
        gate.open();
        pool.shutdown(true, false);
        assert!(fs.iter().all(Future::done));
        other.join().unwrap();
        assert!(fs.iter().all(Future::done));
    });
}

/// A task calls `shutdown(wait = true)` on its own pool while another thread is already inside
/// `shutdown(wait = true)`, joining that very worker. Both must return: the outside call must
/// not hold a lock across its joins that the worker's call needs, and the worker's call cannot
/// wait for its own thread (Python refuses a self-join). Hung before.
#[test]
fn shutdown_wait_from_a_task_while_another_thread_joins_that_worker_returns() {
    watchdog(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let started = Latch::new(1);
        let inner = {
            let (p, g, s) = (pool.clone(), gate.clone(), started.clone());
            pool.spawn(move || {
                s.count_down();
                g.wait();
                p.shutdown(true, false);
            })
            .unwrap()
        };
        started.wait();
        let (tx, rx) = std::sync::mpsc::channel();
        let outside = {
            let p = pool.clone();
            std::thread::spawn(move || {
                tx.send(ThreadProbe::current()).unwrap();
                p.shutdown(true, false);
            })
        };
        // The outside call is now blocked joining the worker.
        rx.recv().unwrap().wait_until_sleeping();
        gate.open();
        outside.join().unwrap();
        assert!(inner.done());
        inner.result(None).unwrap();
    });
}

/// Two outside threads in `shutdown(wait = true)` at once, while a task holds the only worker:
/// neither returns before the worker has exited.
#[test]
fn concurrent_shutdowns_both_return_only_after_the_workers_exit() {
    watchdog(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let exited = Arc::new(AtomicUsize::new(0));
        let started = Latch::new(1);
        {
            let (g, e, s) = (gate.clone(), exited.clone(), started.clone());
            pool.spawn(move || {
                count_exit_of_this_thread(&e);
                s.count_down();
                g.wait();
            })
            .unwrap();
        }
        started.wait();
        let (tx, rx) = std::sync::mpsc::channel();
        let shutdowns: Vec<_> = (0..2)
            .map(|_| {
                let (p, e, tx) = (pool.clone(), exited.clone(), tx.clone());
                std::thread::spawn(move || {
                    tx.send(ThreadProbe::current()).unwrap();
                    p.shutdown(true, false);
                    e.load(Ordering::SeqCst)
                })
            })
            .collect();
        for _ in 0..2 {
            rx.recv().unwrap().wait_until_sleeping();
        }
        gate.open();
        for t in shutdowns {
            assert_eq!(
                t.join().unwrap(),
                1,
                "a shutdown(wait) returned before the worker exited"
            );
        }
    });
}
