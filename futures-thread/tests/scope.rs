//! Scoped tasks (beyond Python, row 14): borrowing closures on the pool's threads.
#![cfg(not(loom))]

use concurrent_futures_core::SubmitError;
use concurrent_futures_testkit::{Gate, Latch, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[test]
fn scoped_tasks_borrow_the_callers_stack_and_are_done_when_the_scope_returns() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(3)
            .build()
            .unwrap();
        let data: Vec<u64> = (1..=1000).collect();
        let counter = AtomicUsize::new(0);
        let sums = pool.scope(|s| {
            let futures: Vec<_> = data
                .chunks(100)
                .map(|chunk| {
                    let counter = &counter;
                    s.submit(move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                        chunk.iter().sum::<u64>()
                    })
                    .unwrap()
                })
                .collect();
            futures
        });
        assert_eq!(
            counter.load(Ordering::SeqCst),
            10,
            "every task ran before scope returned"
        );
        assert!(sums.iter().all(|f| f.done()));
        assert_eq!(
            sums.iter().map(|f| f.result(None).unwrap()).sum::<u64>(),
            500_500
        );
    });
}

#[test]
fn scope_waits_for_its_tasks_even_when_its_body_panics() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        let finished = AtomicBool::new(false);
        let (gate, started) = (Gate::new(), Latch::new(1));
        let opener = {
            let (gate, started) = (gate.clone(), started.clone());
            std::thread::spawn(move || {
                started.wait();
                gate.open();
            })
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                let (finished, gate, started) = (&finished, &gate, &started);
                s.submit(move || {
                    started.count_down();
                    gate.wait();
                    finished.store(true, Ordering::SeqCst);
                })
                .unwrap();
                panic!("scope body fails");
            })
        }));
        assert!(outcome.is_err(), "the body's panic is resumed");
        assert!(
            finished.load(Ordering::SeqCst),
            "the task finished before the panic left the scope"
        );
        opener.join().unwrap();
    });
}

/// A scope opened inside the pool's only worker: its tasks cannot be taken by a worker, so the
/// scope runs them itself instead of deadlocking.
#[test]
fn scope_inside_the_pools_only_worker_does_not_deadlock() {
    watchdog(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap(),
        );
        let inner = Arc::clone(&pool);
        let total = pool
            .spawn(move || {
                let values = [1, 2, 3];
                inner.scope(|s| {
                    let fs: Vec<_> = values
                        .iter()
                        .map(|v| s.submit(move || v * 10).unwrap())
                        .collect();
                    drop(fs);
                });
                values.iter().sum::<i32>()
            })
            .unwrap();
        assert_eq!(total.result(None).unwrap(), 6);
        // The task's clone of the pool was dropped when its closure returned, before its future
        // completed, so this is the last handle: dropping it here joins the worker.
        assert_eq!(Arc::strong_count(&pool), 1);
        drop(pool);
    });
}

#[test]
fn scope_on_a_shut_down_pool_refuses_tasks() {
    let pool = ThreadPoolExecutor::new();
    pool.shutdown(true, false);
    let data = [1, 2];
    pool.scope(|s| {
        assert_eq!(s.submit(|| data.len()).unwrap_err(), SubmitError::Shutdown);
    });
}
