//! The process pool's bounded submit queue (`max_queue` with a `QueueFullPolicy`) and its
//! `stats()`. With one worker, a full queue is: the running task, the next one already sent to
//! the worker (`DEPTH`), and `max_queue` tasks not sent.

mod common;

use common::{Blockers, ProcessPoolExecutor, StartMethod};
use concurrent_futures_core::{Future, QueueFullPolicy, State, SubmitError};
use concurrent_futures_testkit::{ThreadProbe, watchdog};
use std::sync::{Arc, mpsc};
use std::thread;

concurrent_futures_process::bootstrap_before_main!();

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn bounded(policy: QueueFullPolicy) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(StartMethod::Fork)
        .max_queue(1)
        .queue_full_policy(policy)
        .build()
        .unwrap()
}

/// Two blocked tasks in the worker and one queued: the queue is full.
fn fill(pool: &ProcessPoolExecutor, blockers: &Blockers) -> (Vec<Future<u32>>, Future<u32>) {
    // One at a time: until the worker has connected, the first waits in the queue.
    let mut blocked = blockers.submit(pool, 1);
    blockers.arrivals.wait_for(1);
    blocked.extend(blockers.submit(pool, 1));
    let queued = pool.submit(pid, ()).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.pending, stats.running, stats.workers),
        (1, 2, 1),
        "{stats}"
    );
    (blocked, queued)
}

fn drain(blockers: &Blockers, blocked: Vec<Future<u32>>, queued: Future<u32>) {
    blockers.gate.open();
    for f in blocked {
        f.result(None).unwrap();
    }
    queued.result(None).unwrap();
}

#[test]
fn reject_refuses_with_queue_full_and_stats_count_every_stage() {
    watchdog(|| {
        let pool = bounded(QueueFullPolicy::Reject);
        let blockers = Blockers::new();
        let (blocked, queued) = fill(&pool, &blockers);
        assert_eq!(
            pool.submit(pid, ()).unwrap_err(),
            SubmitError::QueueFull { bound: 1 }
        );
        drain(&blockers, blocked, queued);
        pool.shutdown(true, false);
        let stats = pool.stats();
        assert_eq!(
            (stats.pending, stats.running, stats.finished, stats.workers),
            (0, 0, 3, 0)
        );
    });
}

#[test]
fn caller_runs_calls_the_function_in_the_submitting_process() {
    watchdog(|| {
        let pool = bounded(QueueFullPolicy::CallerRuns);
        let blockers = Blockers::new();
        let (blocked, queued) = fill(&pool, &blockers);
        let here = pool.submit(pid, ()).unwrap();
        assert_eq!(here.state(), State::Finished);
        assert_eq!(here.result(None).unwrap(), std::process::id());
        drain(&blockers, blocked, queued);
    });
}

/// Runs `submit` on its own thread, and returns once that thread is blocked in it.
fn blocked_submitter<T: Send + 'static>(
    submit: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        tx.send(ThreadProbe::current()).unwrap();
        submit()
    });
    rx.recv().unwrap().wait_until_sleeping();
    handle
}

#[test]
fn a_blocked_submitter_is_woken_when_a_task_is_sent_to_a_worker() {
    watchdog(|| {
        let pool = Arc::new(bounded(QueueFullPolicy::Block { timeout: None }));
        let blockers = Blockers::new();
        let (blocked, queued) = fill(&pool, &blockers);
        let p = pool.clone();
        let submitter = blocked_submitter(move || p.submit(pid, ()));
        drain(&blockers, blocked, queued);
        assert_ne!(
            submitter.join().unwrap().unwrap().result(None).unwrap(),
            std::process::id()
        );
    });
}

#[test]
fn a_blocked_submitter_is_refused_with_shutdown_when_the_pool_shuts_down() {
    watchdog(|| {
        let pool = Arc::new(bounded(QueueFullPolicy::Block { timeout: None }));
        let blockers = Blockers::new();
        let (blocked, queued) = fill(&pool, &blockers);
        let p = pool.clone();
        let submitter = blocked_submitter(move || p.submit(pid, ()).map(|_| ()));
        pool.shutdown(false, false);
        assert_eq!(submitter.join().unwrap(), Err(SubmitError::Shutdown));
        drain(&blockers, blocked, queued);
    });
}

#[test]
fn max_queue_zero_is_refused() {
    let err = ProcessPoolExecutor::builder()
        .max_queue(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_queue must be greater than 0");
}

/// A done-callback runs on one of the pool's own courier threads, the only threads that make
/// room: a blocking submit from there must not wait for room it alone could make (it is queued
/// beyond the bound). This hung before.
#[test]
fn a_done_callback_submitting_to_its_full_bounded_pool_does_not_deadlock() {
    watchdog(|| {
        let pool = Arc::new(bounded(QueueFullPolicy::Block { timeout: None }));
        let (tx, rx) = mpsc::channel();
        let p = pool.clone();
        let first = pool.submit(pid, ()).unwrap();
        first.add_done_callback(move |_| {
            for _ in 0..4 {
                tx.send(p.submit(pid, ()).unwrap()).unwrap();
            }
        });
        first.result(None).unwrap();
        for _ in 0..4 {
            rx.recv().unwrap().result(None).unwrap();
        }
    });
}

/// On a pool that may still start workers, the jobs those workers will take at once do not
/// count against the bound: a fresh pool of four with `max_queue(1)` takes five jobs (four
/// running, one waiting) before it refuses. It refused the second before.
#[test]
fn reject_counts_only_the_jobs_that_must_wait() {
    watchdog(|| {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(4)
            .start_method(StartMethod::Fork)
            .max_queue(1)
            .queue_full_policy(QueueFullPolicy::Reject)
            .build()
            .unwrap();
        let blockers = Blockers::new();
        let accepted = blockers.submit(&pool, 4);
        blockers.arrivals.wait_for(4);
        let waiting = pool.submit(pid, ()).unwrap();
        // Four running, one more already sent to a worker (`DEPTH`) or queued: the next ones
        // are refused once the queue holds one.
        let mut refused = 0;
        let mut extra = Vec::new();
        for _ in 0..8 {
            match pool.submit(pid, ()) {
                Ok(f) => extra.push(f),
                Err(e) => {
                    assert_eq!(e, SubmitError::QueueFull { bound: 1 });
                    refused += 1;
                }
            }
        }
        assert!(refused > 0, "a full pool refused nothing");
        blockers.gate.open();
        for f in accepted.into_iter().chain(extra) {
            f.result(None).unwrap();
        }
        waiting.result(None).unwrap();
    });
}
