//! Awaiting pool futures (beyond Python, row 13): with the testkit's minimal `block_on`, and in
//! tokio. Core has no runtime dependency: a waker is registered like a done-callback.
#![cfg(not(loom))]

use concurrent_futures_core::{FutureError, TaskError};
use concurrent_futures_testkit::{Gate, Latch, block_on, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn await_a_pool_future_with_a_minimal_block_on() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let f = pool.spawn(|| 6 * 7).unwrap();
        assert_eq!(block_on(async { f.await }).unwrap(), 42);
    });
}

#[test]
fn await_gives_a_panicking_task_its_typed_error() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let f = pool.spawn(|| -> u8 { panic!("awaited panic") }).unwrap();
        match block_on(async { f.await }) {
            Err(FutureError::Failed(TaskError::Panicked { message })) => {
                assert_eq!(&*message, "awaited panic")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn await_a_future_cancelled_at_shutdown_gives_cancelled() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let (gate, started) = (Gate::new(), Latch::new(1));
        let (g, s) = (gate.clone(), started.clone());
        let running = pool
            .spawn(move || {
                s.count_down();
                g.wait()
            })
            .unwrap();
        started.wait();
        let queued = pool.spawn(|| 1).unwrap();
        pool.shutdown(false, true);
        gate.open();
        let out = block_on(async { queued.await });
        assert!(matches!(out, Err(FutureError::Cancelled(_))), "{out:?}");
        assert!(block_on(async { running.await }).is_ok());
    });
}

#[test]
fn await_when_last_moves_out_a_result_that_is_neither_clone_nor_sync() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let f = pool
            .spawn(|| {
                let (tx, rx) = mpsc::channel();
                tx.send("through the pool").unwrap();
                rx
            })
            .unwrap();
        // The worker drops its handle right after completing the future.
        let rx: mpsc::Receiver<&str> = block_on(f.into_future_when_last()).unwrap();
        assert_eq!(rx.recv().unwrap(), "through the pool");
    });
}

#[test]
fn completed_awaits_a_shared_future_and_leaves_the_result_in_place() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let f = pool.spawn(|| String::from("shared")).unwrap();
        let other = f.clone();
        block_on(f.completed());
        assert_eq!(f.result(Duration::ZERO).unwrap(), "shared");
        assert_eq!(other.result(Duration::ZERO).unwrap(), "shared");
    });
}

#[test]
fn many_pool_futures_awaited_concurrently_in_tokio() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(4)
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let futures: Vec<_> = (0..200u64)
            .map(|i| pool.spawn(move || i * i).unwrap())
            .collect();
        let total = rt.block_on(async move {
            let handles: Vec<_> = futures
                .into_iter()
                .map(|f| tokio::spawn(async move { f.await.unwrap() }))
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            total
        });
        assert_eq!(total, (0..200u64).map(|i| i * i).sum::<u64>());
    });
}

/// An `.await` abandoned by a tokio timeout leaves no waker behind on the future.
#[test]
fn an_await_abandoned_by_a_tokio_timeout_leaves_no_waker_behind() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let gate = Gate::new();
        let g = gate.clone();
        let f = pool.spawn(move || g.wait()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let probe = f.clone();
        let timed_out = rt.block_on(async move {
            tokio::time::timeout(Duration::from_millis(20), probe.completed())
                .await
                .is_err()
        });
        assert!(timed_out);
        assert_eq!(f.awaiter_count(), 0);
        gate.open();
        block_on(f.completed());
        assert!(f.done());
    });
}
