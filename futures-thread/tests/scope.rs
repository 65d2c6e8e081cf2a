//! Scoped tasks (beyond Python, row 14): borrowing closures on the pool's threads.
#![cfg(not(loom))]

use concurrent_futures_core::{Future, SubmitError};
use concurrent_futures_testkit::{Gate, Latch, ThreadProbe, block_on, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::panic::{AssertUnwindSafe, catch_unwind};
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
                    s.spawn(move || {
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
                s.spawn(move || {
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
                        .map(|v| s.spawn(move || v * 10).unwrap())
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
        assert_eq!(s.spawn(|| data.len()).unwrap_err(), SubmitError::Shutdown);
    });
}

/// A payload type of our own, to see that the scope resumes the task's original payload.
#[derive(Debug, PartialEq)]
struct RowError(u32);

/// A scoped task panics and nobody looks at its future: the scope resumes that panic, with its
/// original payload, and only after its other task (still running on the only worker when the
/// scope body returns) has finished. Before issue 9 the scope returned normally.
#[test]
fn a_task_panic_nobody_retrieved_is_resumed_after_every_task_finished() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let (gate, started) = (Gate::new(), Latch::new(1));
        let finished = AtomicBool::new(false);
        let joining = Arc::new(AtomicBool::new(false));
        let scope_thread = ThreadProbe::current();
        let opener = {
            let (gate, joining) = (gate.clone(), joining.clone());
            std::thread::spawn(move || {
                while !joining.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                // The scope thread sleeps only once it waits for the worker's task.
                scope_thread.wait_until_sleeping();
                gate.open();
            })
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let (gate, started, finished) = (&gate, &started, &finished);
                s.spawn(move || {
                    started.count_down();
                    gate.wait();
                    finished.store(true, Ordering::Release);
                })
                .unwrap();
                started.wait();
                // Queued behind the busy worker: the scope itself runs it, at its end.
                s.spawn(|| -> u8 { std::panic::panic_any(RowError(7)) })
                    .unwrap();
                joining.store(true, Ordering::Release);
            })
        }));
        let payload = outcome.expect_err("the unretrieved panic is resumed");
        assert_eq!(payload.downcast_ref::<RowError>(), Some(&RowError(7)));
        assert!(
            finished.load(Ordering::Acquire),
            "the scope unwound while a task still ran"
        );
        opener.join().unwrap();
    });
}

/// Each way of handing the error out retrieves it: the scope then returns normally.
#[test]
fn a_task_panic_retrieved_through_its_future_is_not_resumed() {
    type Retrieve = fn(Future<u8>) -> bool;
    let retrievals: [(&str, Retrieve); 6] = [
        ("result", |f| f.result(None).is_err()),
        ("result_ref", |f| f.result_ref(None).is_err()),
        ("exception", |f| f.exception(None).unwrap().is_some()),
        ("into_result", |f| f.into_result(None).is_err()),
        ("into_result_when_last", |f| {
            f.into_result_when_last(None).is_err()
        }),
        (".await", |f| block_on(async { f.await }).is_err()),
    ];
    watchdog(move || {
        let pool = ThreadPoolExecutor::new();
        for (name, retrieve) in retrievals {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    let f = s.spawn(|| -> u8 { panic!("retrieved") }).unwrap();
                    retrieve(f)
                })
            }));
            assert!(matches!(outcome, Ok(true)), "{name}: {outcome:?}");
        }
    });
}

/// Two tasks panic; the one whose error was retrieved is not resumed, the other is. A panic of
/// the scope's body comes before both.
#[test]
fn only_unretrieved_panics_are_resumed_and_the_bodys_own_panic_comes_first() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let seen = s.spawn(|| -> u8 { panic!("seen") }).unwrap();
                s.spawn(|| -> u8 { panic!("unseen") }).unwrap();
                assert!(seen.exception(None).unwrap().is_some());
            })
        }));
        let payload = outcome.expect_err("the unseen panic is resumed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"unseen"));

        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let f = s.spawn(|| -> u8 { panic!("task") }).unwrap();
                // Waits for the task without retrieving its error.
                block_on(f.completed());
                panic!("body");
            })
        }));
        let payload = outcome.expect_err("the body's panic is resumed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"body"));
    });
}

/// A scope opened by a task on the pool's only worker, whose task spawns another scoped task:
/// no worker is free, so the scope runs both itself. It used to take its task list once and
/// then wait forever for the second task.
#[test]
fn a_scoped_task_spawning_another_on_a_busy_pool_is_run_by_the_scope() {
    watchdog(|| {
        let pool = std::sync::Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap(),
        );
        let inner = pool.clone();
        let outer = pool
            .spawn(move || inner.scope(|s| s.spawn(move || s.spawn(|| 21u32).unwrap()).unwrap()))
            .unwrap();
        let second = outer.result(None).unwrap().result(None).unwrap();
        assert_eq!(second.result(None).unwrap(), 21);
    });
}
