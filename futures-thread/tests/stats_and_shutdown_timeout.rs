//! `stats()` (pending, running, finished, live workers) and `shutdown_timeout(limit)`.
#![cfg(not(loom))]

use concurrent_futures_core::{PoolStats, State, SubmitError};
use concurrent_futures_testkit::{Gate, Latch, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::time::{Duration, Instant};

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// `n` tasks that count `started` down, then wait for `gate`.
fn gated(
    pool: &ThreadPoolExecutor,
    n: usize,
    started: &Latch,
    gate: &Gate,
) -> Vec<concurrent_futures_core::Future<()>> {
    (0..n)
        .map(|_| {
            let (s, g) = (started.clone(), gate.clone());
            pool.spawn(move || {
                s.count_down();
                g.wait();
            })
            .unwrap()
        })
        .collect()
}

#[test]
fn stats_count_pending_running_finished_and_live_workers() {
    watchdog(|| {
        let pool = pool(2);
        assert_eq!(pool.stats(), PoolStats::default());
        let (started, gate) = (Latch::new(2), Gate::new());
        let futures = gated(&pool, 5, &started, &gate);
        started.wait();
        let stats = pool.stats();
        assert_eq!(
            (stats.pending, stats.running, stats.finished, stats.workers),
            (3, 2, 0, 2)
        );
        gate.open();
        futures.iter().for_each(|f| f.result(None).unwrap());
        pool.shutdown(true, false);
        let stats = pool.stats();
        assert_eq!(
            (stats.pending, stats.running, stats.finished, stats.workers),
            (0, 0, 5, 0)
        );
    });
}

#[test]
fn shutdown_timeout_joins_every_worker_when_they_finish_in_time() {
    watchdog(|| {
        let pool = pool(2);
        let futures: Vec<_> = (0..4u32).map(|n| pool.spawn(move || n).unwrap()).collect();
        let sum: u32 = futures.iter().map(|f| f.result(None).unwrap()).sum();
        assert_eq!(sum, 6);
        let report = pool.shutdown_timeout(Duration::from_secs(30));
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.cancelled, 0);
        assert!(report.still_running.is_empty());
        assert_eq!(pool.stats().workers, 0, "every worker exited");
        assert_eq!(pool.spawn(|| 1).unwrap_err(), SubmitError::Shutdown);
    });
}

#[test]
fn shutdown_timeout_cancels_what_has_not_started_and_reports_what_still_runs() {
    watchdog(|| {
        let pool = pool(1);
        let (started, gate) = (Latch::new(1), Gate::new());
        let stuck = gated(&pool, 1, &started, &gate).remove(0);
        let queued: Vec<_> = (0..2u8).map(|n| pool.spawn(move || n).unwrap()).collect();
        started.wait();
        let limit = Duration::from_millis(20);
        let begun = Instant::now();
        let report = pool.shutdown_timeout(limit);
        assert!(begun.elapsed() >= limit, "it waited up to the limit");
        assert_eq!(report.cancelled, 2);
        assert_eq!(report.still_running, [stuck.id()]);
        assert_eq!(report.threads_left, 1);
        assert!(!report.is_complete());
        for f in &queued {
            assert_eq!(f.state(), State::CancelledAndNotified);
        }
        // The stuck worker is detached: dropping the pool does not wait for it.
        drop(pool);
        assert!(!stuck.done());
        gate.open();
        stuck.result(None).unwrap();
    });
}

#[test]
fn shutdown_timeout_from_one_of_the_pools_own_tasks_does_not_wait_for_its_own_thread() {
    watchdog(|| {
        let pool = std::sync::Arc::new(pool(1));
        let p = pool.clone();
        let report = pool
            .spawn(move || p.shutdown_timeout(Duration::from_secs(3600)))
            .unwrap()
            .result(None)
            .unwrap();
        assert_eq!(report.threads_left, 1, "{report:?}");
        assert_eq!(report.still_running.len(), 1, "its own task");
    });
}

/// Counts, from a thread-local's destructor, the pool threads that have fully exited.
fn count_exit_of_this_thread(exited: &std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    struct OnExit(Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            if let Some(exited) = &self.0 {
                exited.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    thread_local!(static ON_EXIT: std::cell::RefCell<OnExit> = const { std::cell::RefCell::new(OnExit(None)) });
    ON_EXIT.with(|cell| cell.borrow_mut().0 = Some(exited.clone()));
}

/// `shutdown_timeout` from a task waits for nothing, so it must not detach the other workers
/// either: the owner's later `shutdown(wait)` still joins them. (It dropped every join handle
/// before, so that `shutdown(wait)` returned while another worker still ran its task.)
#[test]
fn shutdown_timeout_from_a_task_leaves_the_other_workers_to_the_owners_shutdown() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    watchdog(|| {
        let pool = std::sync::Arc::new(pool(2));
        let gate = Gate::new();
        let started = Latch::new(1);
        let exited = std::sync::Arc::new(AtomicUsize::new(0));
        let (g, s, e) = (gate.clone(), started.clone(), exited.clone());
        let other = pool
            .spawn(move || {
                count_exit_of_this_thread(&e);
                s.count_down();
                g.wait();
            })
            .unwrap();
        started.wait();
        let (p, e) = (pool.clone(), exited.clone());
        let report = pool
            .spawn(move || {
                count_exit_of_this_thread(&e);
                p.shutdown_timeout(Duration::from_secs(3600))
            })
            .unwrap()
            .result(None)
            .unwrap();
        assert_eq!(report.threads_left, 2, "{report:?}");
        gate.open();
        pool.shutdown(true, false);
        assert!(other.done());
        assert_eq!(exited.load(Ordering::SeqCst), 2, "a worker was not joined");
    });
}
