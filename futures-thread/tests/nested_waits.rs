//! Waits that help (issue 10, point 3): a task that waits on a future of its own pool never
//! starves it. Every test here hangs (the watchdog fails it) on a pool that does not
//! compensate for its blocked workers.
#![cfg(not(loom))]

use concurrent_futures_core::blocking::blocking;
use concurrent_futures_core::{Future, QueueFullPolicy, SubmitError};
use concurrent_futures_testkit::{Gate, Latch, block_on, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use concurrent_futures_wait::{ReturnWhen, as_completed_all, wait};
use std::sync::Arc;

/// How deep the chains nest.
const DEPTH: u32 = 100;

fn one_worker() -> Arc<ThreadPoolExecutor> {
    Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap(),
    )
}

/// How a level of a chain waits for the level below it.
#[derive(Clone, Copy)]
enum By {
    Result,
    Wait,
    AsCompleted,
    IntoResult,
    Await,
}

/// Level `depth` submits level `depth - 1` to `pool` and waits for it by `how`; level 0
/// returns 0. The result is the depth.
fn chain(pool: Arc<ThreadPoolExecutor>, depth: u32, how: By) -> u32 {
    if depth == 0 {
        return 0;
    }
    let inner = pool.clone();
    let below: Future<u32> = pool.spawn(move || chain(inner, depth - 1, how)).unwrap();
    let value = match how {
        By::Result => below.result(None).unwrap(),
        By::Wait => {
            let done = wait([below.clone()], None, ReturnWhen::AllCompleted);
            assert!(done.not_done.is_empty());
            below.result(None).unwrap()
        }
        By::AsCompleted => as_completed_all([below])
            .next()
            .unwrap()
            .result(None)
            .unwrap(),
        By::IntoResult => below.into_result(None).unwrap(),
        By::Await => block_on(async { below.await }).unwrap(),
    };
    value + 1
}

fn chain_on_one_worker(how: By) {
    watchdog(move || {
        let pool = one_worker();
        let inner = pool.clone();
        let top = pool.spawn(move || chain(inner, DEPTH, how)).unwrap();
        assert_eq!(top.result(None).unwrap(), DEPTH);
        pool.shutdown(true, false);
    });
}

#[test]
fn nested_result_waits_100_deep_on_a_one_worker_pool_finish() {
    chain_on_one_worker(By::Result);
}

#[test]
fn nested_wait_calls_100_deep_on_a_one_worker_pool_finish() {
    chain_on_one_worker(By::Wait);
}

#[test]
fn nested_as_completed_100_deep_on_a_one_worker_pool_finish() {
    chain_on_one_worker(By::AsCompleted);
}

#[test]
fn nested_into_result_100_deep_on_a_one_worker_pool_finish() {
    chain_on_one_worker(By::IntoResult);
}

#[test]
fn nested_awaits_by_block_on_100_deep_on_a_one_worker_pool_finish() {
    chain_on_one_worker(By::Await);
}

/// Every worker runs a task that fans out to queued tasks and waits for them all.
#[test]
fn a_fan_out_where_every_worker_waits_on_queued_tasks_finishes() {
    watchdog(|| {
        let workers = 3;
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(workers)
                .build()
                .unwrap(),
        );
        // Every worker holds a parent before any child is submitted.
        let started = Arc::new(Latch::new(workers));
        let parents: Vec<Future<u64>> = (0..workers as u64)
            .map(|p| {
                let (pool, started) = (pool.clone(), started.clone());
                pool.clone()
                    .spawn(move || {
                        started.count_down();
                        started.wait();
                        let children: Vec<Future<u64>> = (0..4)
                            .map(|c| pool.spawn(move || p * 10 + c).unwrap())
                            .collect();
                        let all = wait(children, None, ReturnWhen::AllCompleted);
                        all.done.iter().map(|f| f.result(None).unwrap()).sum()
                    })
                    .unwrap()
            })
            .collect();
        let total: u64 = parents.iter().map(|f| f.result(None).unwrap()).sum();
        assert_eq!(total, (0..workers as u64).map(|p| 40 * p + 6).sum::<u64>());
        pool.shutdown(true, false);
    });
}

/// The spares started for a chain leave once the waits end: the pool is back to
/// `max_workers` threads.
#[test]
fn spares_started_for_blocked_workers_retire_once_the_waits_end() {
    watchdog(|| {
        let pool = one_worker();
        let inner = pool.clone();
        let top = pool.spawn(move || chain(inner, 10, By::Result)).unwrap();
        assert_eq!(top.result(None).unwrap(), 10);
        // Spares retire as they come to look for work; none is needed any more.
        while pool.worker_count() > 1 {
            std::thread::yield_now();
        }
        assert_eq!(pool.spawn(|| 5).unwrap().result(None).unwrap(), 5);
        assert_eq!(pool.worker_count(), 1);
        pool.shutdown(true, false);
    });
}

/// A task that waits for each level of a chain to start counts the threads: every blocked
/// level got exactly one spare, and `stats()` counts the spares while they live. Once the
/// waits end the spares retire, and the tasks they ran stay counted as finished.
#[test]
fn stats_count_spares_while_they_live_and_their_tasks_after_they_retire() {
    watchdog(|| {
        let pool = one_worker();
        let inner = pool.clone();
        // Levels 3, 2, 1 block (three spares); level 0 reads the counts.
        let seen = pool
            .spawn(move || {
                let probe = inner.clone();
                counted_chain(inner, 3, move || {
                    (probe.worker_count(), probe.stats().workers)
                })
            })
            .unwrap();
        assert_eq!(seen.result(None).unwrap(), (4, 4));
        while pool.worker_count() > 1 {
            std::thread::yield_now();
        }
        let stats = pool.stats();
        assert_eq!((stats.workers, stats.finished), (1, 4), "{stats}");
        pool.shutdown(true, false);
    });
}

/// Level `depth` of a chain that waits by `result()`; level 0 returns `bottom()`.
fn counted_chain<R: Clone + Send + 'static>(
    pool: Arc<ThreadPoolExecutor>,
    depth: u32,
    bottom: impl FnOnce() -> R + Send + 'static,
) -> R {
    if depth == 0 {
        return bottom();
    }
    let inner = pool.clone();
    pool.spawn(move || counted_chain(inner, depth - 1, bottom))
        .unwrap()
        .result(None)
        .unwrap()
}

/// `max_spare_threads(n)` bounds the compensation: with two spares, the third blocked level
/// gets none, so the level it waits for stays queued (its timed wait times out) until a
/// level above returns.
#[test]
fn no_more_spares_start_than_max_spare_threads() {
    watchdog(|| {
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .max_spare_threads(2)
                .build()
                .unwrap(),
        );
        let inner = pool.clone();
        let top = pool
            .spawn(move || {
                let probe = inner.clone();
                counted_chain(inner, 2, move || {
                    // The third level: on the last spare, with none left to start.
                    let queued = probe.spawn(|| 1).unwrap();
                    let waited = queued.result(std::time::Duration::from_millis(50));
                    let threads = probe.worker_count();
                    (waited.is_err(), threads, queued)
                })
            })
            .unwrap();
        let (timed_out, threads, queued) = top.result(None).unwrap();
        assert!(timed_out, "a fourth thread ran the queued level");
        assert_eq!(threads, 3);
        // Once the chain returned, a thread is free for it.
        assert_eq!(queued.result(None).unwrap(), 1);
        pool.shutdown(true, false);
    });
}

/// Waits the pool cannot see (a `Gate`, in a task; a timed `result()` outside the pool) start
/// no spare: a task queued behind the blocked worker waits for it, as in Python.
#[test]
fn waits_the_pool_cannot_see_start_no_spare() {
    watchdog(|| {
        let pool = one_worker();
        let gate = Arc::new(Gate::new());
        let g = gate.clone();
        let busy = pool.spawn(move || g.wait()).unwrap();
        let queued = pool.spawn(|| 1).unwrap();
        assert!(
            queued
                .result(std::time::Duration::from_millis(20))
                .unwrap_err()
                .is_timeout()
        );
        assert_eq!(pool.worker_count(), 1);
        gate.open();
        busy.result(None).unwrap();
        assert_eq!(queued.result(None).unwrap(), 1);
        pool.shutdown(true, false);
    });
}

/// A wait wrapped in `blocking` is compensated like the pool's own waits; and a blocked
/// worker's place counts as free for the bounded queue (the bound counts only the tasks that
/// must wait): with `max_queue(1)`, the only worker blocked and its spare still starting,
/// two tasks are accepted — one for the spare, one queued — and the third is refused.
#[test]
fn a_blocked_workers_place_is_free_for_the_bounded_queue() {
    watchdog(|| {
        // The spare's start is held in its initializer until the submits are done.
        let spare_may_start = Arc::new(Gate::new());
        let starts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (gate, count) = (spare_may_start.clone(), starts.clone());
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .max_queue(1)
            .queue_full_policy(QueueFullPolicy::Reject)
            .initializer(move || {
                if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                    gate.wait();
                }
            })
            .build()
            .unwrap();
        let (entered, release) = (Arc::new(Gate::new()), Arc::new(Gate::new()));
        let (e, r) = (entered.clone(), release.clone());
        let blocked = pool
            .spawn(move || {
                blocking(|| {
                    e.open();
                    r.wait()
                })
            })
            .unwrap();
        entered.wait();
        let first = pool.spawn(|| 1).unwrap();
        let second = pool.spawn(|| 2).unwrap();
        assert_eq!(
            pool.spawn(|| 3).unwrap_err(),
            SubmitError::QueueFull { bound: 1 }
        );
        assert_eq!(pool.worker_count(), 2);
        spare_may_start.open();
        assert_eq!(
            first.result(None).unwrap() + second.result(None).unwrap(),
            3
        );
        release.open();
        blocked.result(None).unwrap();
        pool.shutdown(true, false);
    });
}

/// A spare that has nothing to do retires as soon as the wait it stood in for ends, even
/// while the worker that waited is still busy: it does not sleep on as a surplus thread.
#[test]
fn an_idle_spare_retires_when_the_wait_ends_while_the_waiter_still_runs() {
    watchdog(|| {
        let pool = one_worker();
        let (entered, release, finish) = (
            Arc::new(Gate::new()),
            Arc::new(Gate::new()),
            Arc::new(Gate::new()),
        );
        let (e, r, f) = (entered.clone(), release.clone(), finish.clone());
        let waiter = pool
            .spawn(move || {
                blocking(|| {
                    e.open();
                    r.wait()
                });
                // Still running, no longer counted blocked.
                f.wait();
            })
            .unwrap();
        entered.wait();
        // Runs on the spare, which then idles.
        assert_eq!(pool.spawn(|| 1).unwrap().result(None).unwrap(), 1);
        assert_eq!(pool.worker_count(), 2);
        release.open();
        while pool.worker_count() > 1 {
            std::thread::yield_now();
        }
        assert_eq!(pool.stats().workers, 1);
        finish.open();
        waiter.result(None).unwrap();
        pool.shutdown(true, false);
    });
}
