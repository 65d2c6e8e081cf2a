//! Loom models of `wait` and `as_completed` installing their waiter while futures complete.
//!
//! Run with `cargo xtask loom`.
#![cfg(loom)]

use concurrent_futures_core::{Deadline, Future, model_clock};
use concurrent_futures_wait::{ReturnWhen, as_completed, wait};
use loom::thread;
use std::time::Duration;

fn complete_in_thread(f: &Future<u8>, value: u8) -> thread::JoinHandle<()> {
    let f = f.clone();
    thread::spawn(move || f.set_result(value).unwrap())
}

/// If the waiter were installed after a future's check but missed its completion, `wait` would
/// block forever (loom reports the deadlock).
#[test]
fn wait_first_completed_installed_while_a_future_completes_misses_no_completion() {
    loom::model(|| {
        let (a, b) = (Future::<u8>::new(), Future::<u8>::new());
        let t = complete_in_thread(&a, 1);
        let r = wait([&a, &b], None, ReturnWhen::FirstCompleted);
        assert_eq!(r.done.len(), 1);
        assert_eq!(r.done[0].id(), a.id());
        assert_eq!(r.not_done[0].id(), b.id());
        t.join().unwrap();
        assert_eq!((a.waiter_count(), b.waiter_count()), (0, 0));
    });
}

/// Two completions race the install: `AllCompleted` must count both, once each.
#[test]
fn wait_all_completed_installed_while_futures_complete_counts_each_completion_once() {
    loom::model(|| {
        let (a, b) = (Future::<u8>::new(), Future::<u8>::new());
        let ta = complete_in_thread(&a, 1);
        let tb = complete_in_thread(&b, 2);
        let r = wait([&a, &b], None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 2);
        assert!(r.not_done.is_empty());
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!((a.waiter_count(), b.waiter_count()), (0, 0));
    });
}

/// An executor's `set_running_or_notify_cancel` on a cancelled future must reach the waiter.
#[test]
fn wait_sees_a_cancelled_future_once_its_executor_notifies() {
    loom::model(|| {
        let f = Future::<u8>::new();
        assert!(f.cancel());
        let worker = f.clone();
        let t = thread::spawn(move || assert_eq!(worker.set_running_or_notify_cancel(), Ok(false)));
        let r = wait([&f], None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 1);
        t.join().unwrap();
    });
}

/// `wait` with a timeout and a timer thread: it returns, and a future reported not done means
/// the deadline had passed.
#[test]
fn wait_with_timeout_racing_completion_and_the_clock_reports_not_done_only_after_the_deadline() {
    loom::model(|| {
        let f = Future::<u8>::new();
        let timeout = Duration::from_millis(5);
        let deadline = Deadline::after(Some(timeout));
        let t = complete_in_thread(&f, 1);
        let timer = thread::spawn(move || model_clock::advance(timeout));
        let r = wait([&f], timeout, ReturnWhen::AllCompleted);
        if !r.not_done.is_empty() {
            assert!(deadline.is_past(), "gave up before the deadline");
        }
        t.join().unwrap();
        timer.join().unwrap();
        assert_eq!(f.waiter_count(), 0);
    });
}

/// Every future is yielded exactly once, whether it finished before the iterator looked, while
/// the waiter was being installed, or after.
#[test]
fn as_completed_installed_while_futures_complete_yields_each_exactly_once() {
    loom::model(|| {
        let (a, b) = (Future::<u8>::new(), Future::<u8>::new());
        let ta = complete_in_thread(&a, 1);
        let tb = complete_in_thread(&b, 2);
        let mut ids: Vec<_> = as_completed([&a, &b], None)
            .map(|f| f.unwrap().id())
            .collect();
        ids.sort();
        let mut expected = vec![a.id(), b.id()];
        expected.sort();
        assert_eq!(ids, expected);
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!((a.waiter_count(), b.waiter_count()), (0, 0));
    });
}

/// Dropping the iterator after one item, while the other future completes, must leave no
/// waiter on either future.
#[test]
fn as_completed_dropped_midway_leaves_no_waiter_behind() {
    loom::model(|| {
        let (a, b) = (Future::<u8>::new(), Future::<u8>::new());
        a.set_result(1).unwrap();
        let tb = complete_in_thread(&b, 2);
        let mut it = as_completed([&a, &b], None);
        let first = it.next().unwrap().unwrap();
        assert!(first.done());
        drop(it);
        tb.join().unwrap();
        assert_eq!((a.waiter_count(), b.waiter_count()), (0, 0));
    });
}

/// `FirstException` with one future failing and one succeeding while the waiter is installed,
/// and a third that never completes: `wait` must return once the failure is seen (a waiter
/// that ignored the failure, or missed it during the install, would wait for the third future
/// forever: loom reports the deadlock).
#[test]
fn wait_first_exception_returns_on_a_failure_racing_a_success_and_never_misses_it() {
    loom::model(|| {
        let (a, b, c) = (
            Future::<u8>::new(),
            Future::<u8>::new(),
            Future::<u8>::new(),
        );
        let failer = a.clone();
        let ta = thread::spawn(move || {
            failer
                .set_exception(concurrent_futures_core::TaskError::panicked("boom"))
                .unwrap()
        });
        let tb = complete_in_thread(&b, 2);
        let r = wait([&a, &b, &c], None, ReturnWhen::FirstException);
        assert!(
            r.done.iter().any(|f| f.id() == a.id()),
            "the failure is done"
        );
        assert!(r.not_done.iter().any(|f| f.id() == c.id()));
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(
            (a.waiter_count(), b.waiter_count(), c.waiter_count()),
            (0, 0, 0)
        );
    });
}

/// A timed `wait` whose deadline the clock never reaches must be woken by the completion: the
/// timed wait really sleeps in the model, so a lost wake-up is a deadlock loom reports.
#[test]
fn wait_with_a_timeout_is_woken_by_a_completion_before_its_deadline() {
    loom::model(|| {
        let (a, b) = (Future::<u8>::new(), Future::<u8>::new());
        let ta = complete_in_thread(&a, 1);
        let tb = complete_in_thread(&b, 2);
        let r = wait([&a, &b], Duration::from_secs(1), ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 2);
        ta.join().unwrap();
        tb.join().unwrap();
    });
}

/// The same for `as_completed` with a timeout: each completion wakes the iterator in time.
#[test]
fn as_completed_with_a_timeout_is_woken_by_each_completion_before_its_deadline() {
    loom::model(|| {
        let (a, b) = (Future::<u8>::new(), Future::<u8>::new());
        let ta = complete_in_thread(&a, 1);
        let tb = complete_in_thread(&b, 2);
        let mut yielded = 0;
        for f in as_completed([&a, &b], Duration::from_secs(1)) {
            assert!(f.unwrap().done());
            yielded += 1;
        }
        assert_eq!(yielded, 2);
        ta.join().unwrap();
        tb.join().unwrap();
    });
}
