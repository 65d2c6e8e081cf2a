//! Panics that start outside a task's closure — in a `Drop`: the panic payload's, the result's,
//! the closure's captures' — never kill a worker, strand a queued task or a scope, or unwind a
//! `shutdown` halfway. (Hardening issue, defects 3 and 4: each test hung or unwound before.)
#![cfg(not(loom))]

use concurrent_futures_testkit::{Gate, Latch, ThreadProbe, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A value whose `Drop` panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop dropped");
    }
}

fn one_worker() -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

/// Blocks the pool's only worker until the returned gate opens.
fn occupy(pool: &ThreadPoolExecutor) -> Gate {
    let gate = Gate::new();
    let started = Latch::new(1);
    let (g, s) = (gate.clone(), started.clone());
    pool.spawn(move || {
        s.count_down();
        g.wait();
    })
    .unwrap();
    started.wait();
    gate
}

#[test]
fn a_panic_payload_whose_drop_panics_fails_its_future_and_the_worker_serves_on() {
    watchdog(|| {
        let pool = one_worker();
        let f = pool
            .spawn(|| -> u8 { std::panic::panic_any(PanicOnDrop) })
            .unwrap();
        assert!(f.result(None).unwrap_err().task_error().is_some());
        // The pool's only worker must still be alive to run this.
        assert_eq!(pool.spawn(|| 5).unwrap().result(None).unwrap(), 5);
        assert_eq!(pool.worker_count(), 1);
    });
}

#[test]
fn a_result_whose_drop_panics_in_the_worker_leaves_the_worker_serving() {
    watchdog(|| {
        let pool = one_worker();
        let gate = Gate::new();
        let g = gate.clone();
        let fire_and_forget = pool
            .spawn(move || {
                g.wait();
                PanicOnDrop
            })
            .unwrap();
        // Dropped first: the worker's handle is the last, so the worker drops the result.
        drop(fire_and_forget);
        gate.open();
        assert_eq!(pool.spawn(|| 6).unwrap().result(None).unwrap(), 6);
    });
}

#[test]
fn a_cancelled_tasks_closure_whose_drop_panics_leaves_the_worker_serving() {
    watchdog(|| {
        let pool = one_worker();
        let gate = occupy(&pool);
        let doomed = PanicOnDrop;
        let cancelled = pool
            .spawn(move || {
                let _keep = &doomed;
            })
            .unwrap();
        assert!(cancelled.cancel());
        let next = pool.spawn(|| 7).unwrap();
        gate.open();
        assert_eq!(next.result(None).unwrap(), 7);
        assert!(cancelled.cancelled());
    });
}

/// `shutdown(cancel_futures)` drops each cancelled task: one panicking `Drop` must not leave
/// the tasks after it pending, nor unwind out of `shutdown`.
#[test]
fn shutdown_cancelling_a_task_whose_drop_panics_cancels_the_rest_too() {
    watchdog(|| {
        let pool = one_worker();
        let gate = occupy(&pool);
        let doomed = PanicOnDrop;
        let first = pool
            .spawn(move || {
                let _keep = &doomed;
            })
            .unwrap();
        let second = pool.spawn(|| 8).unwrap();
        pool.shutdown(false, true);
        assert!(first.cancelled());
        assert!(second.cancelled(), "a task queued after the panicking one");
        gate.open();
        pool.shutdown(true, false);
    });
}

/// A scoped task run by the scope itself (the pool's only worker is busy with another scoped
/// task) has a result whose `Drop` panics. The scope must not unwind while the other task
/// still runs: it waits for it, then resumes the panic.
#[test]
fn a_scope_resumes_a_panicking_drop_only_after_every_task_finished() {
    watchdog(|| {
        let pool = one_worker();
        let gate = Gate::new();
        let finished = Arc::new(AtomicBool::new(false));
        let started = Latch::new(1);
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
                let (g, f, st) = (gate.clone(), finished.clone(), started.clone());
                s.spawn(move || {
                    st.count_down();
                    g.wait();
                    f.store(true, Ordering::Release);
                })
                .unwrap();
                started.wait();
                // Queued behind the busy worker, so the scope runs it; its future is dropped,
                // so the task's handle is the last and dropping the result panics there.
                drop(s.spawn(|| PanicOnDrop).unwrap());
                joining.store(true, Ordering::Release);
            })
        }));
        let message = concurrent_futures_core::panic_message(&*outcome.unwrap_err());
        assert!(
            finished.load(Ordering::Acquire),
            "the scope unwound while a task still ran"
        );
        assert!(message.contains("PanicOnDrop dropped"), "{message}");
        opener.join().unwrap();
    });
}
