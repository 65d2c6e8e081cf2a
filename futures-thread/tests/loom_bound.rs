//! Loom models of the bounded submit queue (`shared/bound.rs`) and of `shutdown_timeout`'s wait
//! for the workers to exit (`shared/stop.rs`).
//!
//! Run with `cargo xtask loom`. A lost wake-up leaves a thread blocked for ever, which loom
//! reports as a deadlock.
#![cfg(loom)]

use concurrent_futures_core::{QueueFullPolicy, SubmitError};
use concurrent_futures_thread::ThreadPoolExecutor;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::time::Duration;

/// One worker, a queue of one, submitters that wait for room.
fn bounded_pool() -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .max_queue(1)
        .queue_full_policy(QueueFullPolicy::Block { timeout: None })
        .thread_name_prefix("loom")
        .build()
        .unwrap()
}

/// A door a task waits behind (the loom twin of testkit's `Gate`).
#[derive(Clone, Default)]
struct Door(Arc<(Mutex<bool>, Condvar)>);

impl Door {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
}

/// The second submit finds the first task still queued (the worker has not taken it) and
/// waits for room: the worker that takes the first task must wake it. If `took` did not wake
/// room waiters, or a waiter could register after the worker's look at the word, the submitter
/// would sleep for ever.
#[test]
fn a_submitter_blocked_on_a_full_queue_is_woken_when_a_worker_takes_a_task() {
    loom::model(|| {
        let pool = bounded_pool();
        let first = pool.spawn(|| 1u8).unwrap();
        let second = pool.spawn(|| 2u8).unwrap();
        assert_eq!(
            first.result(None).unwrap() + second.result(None).unwrap(),
            3
        );
        pool.shutdown(true, false);
    });
}

/// A submitter waits for room that can never come (the worker is stuck, one task queued):
/// shutdown must wake it with `SubmitError::Shutdown`. If closing did not wake room waiters,
/// or the submitter could miss the flag, it would sleep for ever.
#[test]
fn a_submitter_blocked_on_a_full_queue_is_refused_when_the_pool_shuts_down() {
    loom::model(|| {
        let pool = Arc::new(bounded_pool());
        let door = Door::default();
        let d = door.clone();
        let stuck = pool.spawn(move || d.wait()).unwrap();
        // Waits, if need be, until the worker took `stuck`; then the queue is full for good.
        let queued = pool.spawn(|| 2u8).unwrap();
        let p = pool.clone();
        let submitter = thread::spawn(move || p.spawn(|| 3u8).map(|_| ()));
        pool.shutdown(false, false);
        assert_eq!(submitter.join().unwrap(), Err(SubmitError::Shutdown));
        door.open();
        stuck.result(None).unwrap();
        assert_eq!(queued.result(None).unwrap(), 2);
        pool.shutdown(true, false);
    });
}

/// `shutdown_timeout` waits for the workers to exit with a deadline that never passes (loom's
/// clock stands still without a timer thread): the exiting worker must wake it, or it sleeps
/// for ever. Every worker exits, so the report is complete.
#[test]
fn shutdown_timeout_is_woken_by_the_last_worker_exiting() {
    loom::model(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .thread_name_prefix("loom")
            .build()
            .unwrap();
        let task = pool.spawn(|| 1u8).unwrap();
        let report = pool.shutdown_timeout(Duration::from_secs(1));
        assert!(report.is_complete(), "{report:?}");
        assert!(report.still_running.is_empty());
        assert!(task.done());
    });
}
