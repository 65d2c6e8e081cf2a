//! The twin of CPython's `test_thread_pool.py` (`ThreadPoolExecutorTest`'s own 7 tests; the
//! generic 19 run from `executor_suite.rs`).
//!
//! Not ported: `test_hang_global_shutdown_lock` and `test_process_fork_from_a_threadpool` test
//! `os.fork()` from a threaded process; this pool never forks.
#![cfg(not(loom))]

use concurrent_futures_core::{FutureError, MapError, MapOptions};
use concurrent_futures_testkit::{Gate, Latch, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static RECORDED: AtomicUsize = AtomicUsize::new(0);

fn record_finished(_: u32) {
    RECORDED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn map_submits_without_iteration() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let it = pool.map(record_finished, 0..10).unwrap();
        pool.shutdown(true, false);
        assert_eq!(RECORDED.load(Ordering::SeqCst), 10);
        drop(it);
    });
}

#[test]
fn default_workers() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(ThreadPoolExecutor::new().max_workers(), (cpus + 4).min(32));
}

#[test]
fn saturation() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(4)
            .build()
            .unwrap();
        let gate = Gate::new();
        let futures: Vec<_> = (0..15 * 4)
            .map(|_| {
                let gate = gate.clone();
                pool.spawn(move || gate.wait()).unwrap()
            })
            .collect();
        assert_eq!(pool.worker_count(), 4);
        gate.open();
        pool.shutdown(true, false);
        assert!(futures.iter().all(|f| f.result(None).is_ok()));
    });
}

/// The stronger form of Python's three sequential submits: ten, on an 8-worker pool.
#[test]
fn idle_thread_reuse() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(8)
            .build()
            .unwrap();
        for i in 0..10 {
            assert_eq!(
                pool.spawn(move || i * 2).unwrap().result(None).unwrap(),
                i * 2
            );
        }
        assert_eq!(pool.worker_count(), 1);
    });
}

fn log_n_wait(ident: &'static str, log: &Arc<Mutex<Vec<String>>>, gate: &Gate) {
    log.lock().unwrap().push(format!("ident='{ident}' started"));
    gate.wait();
    log.lock().unwrap().push(format!("ident='{ident}' stopped"));
}

static MAP_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn log_only(ident: String) {
    MAP_LOG
        .lock()
        .unwrap()
        .push(format!("ident='{ident}' started"));
}

/// A map that times out cancels the future it waited on and, when dropped, the rest: neither
/// "second" nor "third" ever starts.
#[test]
fn executor_map_current_future_cancel() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let (log, gate) = (Arc::new(Mutex::new(Vec::new())), Gate::new());
        let (l, g) = (log.clone(), gate.clone());
        let started = Latch::new(1);
        let s = started.clone();
        let first = pool
            .spawn(move || {
                s.count_down();
                log_n_wait("first", &l, &g)
            })
            .unwrap();
        started.wait();
        let mut it = pool
            .map_with(
                log_only,
                ["second".to_owned(), "third".to_owned()],
                MapOptions::new().timeout(Duration::ZERO),
            )
            .unwrap();
        assert!(matches!(
            it.next(),
            Some(Err(MapError::Future(FutureError::Timeout(_))))
        ));
        drop(it);
        gate.open();
        first.result(None).unwrap();
        pool.shutdown(true, false);
        assert_eq!(
            *log.lock().unwrap(),
            ["ident='first' started", "ident='first' stopped"]
        );
        assert!(
            MAP_LOG.lock().unwrap().is_empty(),
            "{:?}",
            MAP_LOG.lock().unwrap()
        );
    });
}

#[test]
fn max_workers_negative() {
    let err = ThreadPoolExecutor::builder()
        .max_workers(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_workers must be greater than 0");
}

/// A panicking task fails only its future; the worker survives and serves the next task.
#[test]
fn panicking_task_fails_only_its_future() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let bad = pool.spawn(|| -> u8 { panic!("task exploded") }).unwrap();
        let err = bad.result(None).unwrap_err();
        assert!(err.to_string().contains("task exploded"), "{err}");
        assert_eq!(pool.spawn(|| 5).unwrap().result(None).unwrap(), 5);
        assert_eq!(pool.worker_count(), 1, "the same worker survived");
    });
}
