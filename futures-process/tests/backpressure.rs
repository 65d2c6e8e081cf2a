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
