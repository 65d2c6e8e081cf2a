//! The twin of CPython's `test_init.py` for the thread pool (`ThreadPoolInitializerTest`,
//! `ThreadPoolFailingInitializerTest`), plus the fix of CPython's stranded-future bug.
//!
//! Python-only: `FailingInitializerResourcesTest` checks multiprocessing's resource tracker.
#![cfg(not(loom))]

use concurrent_futures_core::{BrokenKind, Future, FutureError, State, SubmitError, TaskError};
use concurrent_futures_testkit::{Gate, log_capture, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::cell::RefCell;

thread_local! {
    static INIT_STATUS: RefCell<&'static str> = const { RefCell::new("uninitialized") };
}

#[test]
fn initializer() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .initializer(|| INIT_STATUS.with(|s| *s.borrow_mut() = "initialized"))
            .build()
            .unwrap();
        for _ in 0..2 {
            let status = pool.spawn(|| INIT_STATUS.with(|s| *s.borrow())).unwrap();
            assert_eq!(status.result(None).unwrap(), "initialized");
        }
    });
}

fn assert_broken_thread_pool(err: &TaskError) {
    match err {
        TaskError::Broken(b) => {
            assert_eq!(b.kind(), BrokenKind::ThreadPool);
            assert!(
                b.reason()
                    .contains("A thread initializer failed, the thread pool is not usable anymore")
            );
            assert!(
                b.reason().contains("error in initializer"),
                "{}",
                b.reason()
            );
        }
        other => panic!("expected BrokenThreadPool, got {other:?}"),
    }
}

#[test]
fn failing_initializer() {
    watchdog(|| {
        log_capture::install();
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .try_initializer(|| Err("ValueError: error in initializer"))
            .build()
            .unwrap();
        // Either submit refuses, or its future fails, with BrokenThreadPool.
        match pool.spawn(|| 1) {
            Err(SubmitError::Broken(b)) => assert_eq!(b.kind(), BrokenKind::ThreadPool),
            Ok(f) => match f.result(None) {
                Err(FutureError::Failed(e)) => assert_broken_thread_pool(&e),
                other => panic!("expected a broken-pool failure, got {other:?}"),
            },
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(pool.broken().is_some());
        assert!(matches!(pool.spawn(|| 1), Err(SubmitError::Broken(_))));
        let logged = log_capture::records_containing("ValueError: error in initializer");
        assert!(
            logged
                .iter()
                .any(|r| r.message.starts_with("Exception in initializer")),
            "{logged:?}"
        );
    });
}

#[test]
fn panicking_initializer_breaks_the_pool_too() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .initializer(|| panic!("error in initializer (panic)"))
            .build()
            .unwrap();
        if let Ok(f) = pool.spawn(|| 1) {
            assert!(matches!(
                f.result(None),
                Err(FutureError::Failed(TaskError::Broken(_)))
            ));
        }
        assert!(
            pool.broken()
                .unwrap()
                .reason()
                .contains("panicked: error in initializer (panic)")
        );
    });
}

/// CPython's drain stops at a cancelled future (InvalidStateError in the worker) and leaves the
/// futures after it pending forever. Here every queued future ends: failed, or notified.
#[test]
fn failing_initializer_with_a_cancelled_future_in_the_queue_strands_nothing() {
    watchdog(|| {
        let gate = Gate::new();
        let g = gate.clone();
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .try_initializer(move || {
                g.wait();
                Err("ValueError: error in initializer")
            })
            .build()
            .unwrap();
        let fs: Vec<Future<i32>> = (0..3).map(|i| pool.spawn(move || i).unwrap()).collect();
        assert!(fs[1].cancel());
        gate.open();
        // The drain handles the queue in order, so once the last future has failed the
        // cancelled one before it has been notified.
        for i in [0, 2] {
            match fs[i].result(None) {
                Err(FutureError::Failed(e)) => assert_broken_thread_pool(&e),
                other => panic!("future {i}: {other:?}"),
            }
        }
        assert_eq!(fs[1].state(), State::CancelledAndNotified);
    });
}
