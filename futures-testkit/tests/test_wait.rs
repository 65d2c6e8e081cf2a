//! The twin of CPython's `test_wait.py` (`WaitTests`, 3.14): one Rust test per Python test.
//!
//! Python runs these on each executor; here the futures come from [`ThreadPerTaskExecutor`]
//! (real threads, no particular engine). The engines' issues run the same bodies on their pools.
//!
//! All 9 tests are portable. `test_pending_calls_race` sets `sys.setswitchinterval(1e-6)` to
//! provoke the race (a GIL knob with no Rust analogue); here 100 real threads are released at
//! once by one gate, and the loom models in `futures-wait` cover the interleavings exhaustively.
#![cfg(not(loom))]

use concurrent_futures_core::{Executor, Future, Waitable};
use concurrent_futures_testkit::fixtures::*;
use concurrent_futures_testkit::{Gate, Latch, ThreadPerTaskExecutor, watchdog};
use concurrent_futures_wait::{DoneAndNotDone, ReturnWhen, wait};
use std::thread;
use std::time::Duration;

/// The ids of a split, for comparing sets of futures regardless of order.
fn ids<F: Waitable>(fs: &[F]) -> Vec<usize> {
    let mut ids: Vec<usize> = fs.iter().map(|f| f.id().as_usize()).collect();
    ids.sort_unstable();
    ids
}

fn assert_split<F: Waitable>(
    split: &DoneAndNotDone<F>,
    done: &[&dyn Waitable],
    not_done: &[&dyn Waitable],
) {
    assert_eq!(ids(&split.done), ids(done), "done");
    assert_eq!(ids(&split.not_done), ids(not_done), "not_done");
}

/// A future that finishes with `value` once `gate` opens: Python's `event.wait` tasks.
fn blocked_on(ex: &ThreadPerTaskExecutor, gate: &Gate) -> Future<i64> {
    let gate = gate.clone();
    ex.spawn(move || {
        gate.wait();
        0
    })
    .unwrap()
}

// test_20369: duplicates collapse (bpo-20369).
#[test]
fn bpo_20369() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let f = ex.submit(mul, (1, 2)).unwrap();
        let r = wait([&f, &f], None, ReturnWhen::AllCompleted);
        assert_split(&r, &[&f], &[]);
    });
}

#[test]
fn first_completed() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let cancelled = cancelled_future();
        let f1 = ex.submit(mul, (21, 2)).unwrap();
        let f2 = blocked_on(&ex, &gate);
        let fs: [&dyn Waitable; _] = [&cancelled, &f1, &f2];
        let r = wait(fs, None, ReturnWhen::FirstCompleted);
        assert_split(&r, &[&f1], &[&cancelled, &f2]);
        gate.open();
    });
}

#[test]
fn first_completed_some_already_completed() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let cn = cancelled_and_notified_future();
        let ok = successful_future();
        let f1 = blocked_on(&ex, &gate);
        let fs: [&dyn Waitable; _] = [&cn, &ok, &f1];
        let r = wait(fs, None, ReturnWhen::FirstCompleted);
        assert_split(&r, &[&cn, &ok], &[&f1]);
        gate.open();
    });
}

#[test]
fn first_exception() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let (event1, event2) = (Gate::new(), Gate::new());
        let f1 = ex.submit(mul, (2, 21)).unwrap();
        let e1 = event1.clone();
        let f2 = ex
            .spawn(move || -> i64 {
                e1.wait();
                panic!("raised after event1")
            })
            .unwrap();
        let f3 = blocked_on(&ex, &event2);
        // Python's helper thread: open event1 once f1 has its result.
        let (f1_seen, e1) = (f1.clone(), event1.clone());
        let helper = thread::spawn(move || {
            f1_seen.result(None).unwrap();
            e1.open();
        });
        let r = wait([&f1, &f2, &f3], None, ReturnWhen::FirstException);
        assert_split(&r, &[&f1, &f2], &[&f3]);
        event2.open();
        helper.join().unwrap();
    });
}

#[test]
fn first_exception_some_already_complete() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let ok = successful_future();
        let cancelled = cancelled_future();
        let cn = cancelled_and_notified_future();
        let f1 = ex.submit(divmod, (21, 0)).unwrap();
        let f2 = blocked_on(&ex, &gate);
        let fs: [&dyn Waitable; 5] = [&ok, &cancelled, &cn, &f1, &f2];
        let r = wait(fs, None, ReturnWhen::FirstException);
        assert_split(&r, &[&ok, &cn, &f1], &[&cancelled, &f2]);
        gate.open();
    });
}

#[test]
fn first_exception_one_already_failed() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let failed = exception_future();
        let f1 = blocked_on(&ex, &gate);
        let fs: [&dyn Waitable; _] = [&failed, &f1];
        let r = wait(fs, None, ReturnWhen::FirstException);
        assert_split(&r, &[&failed], &[&f1]);
        gate.open();
    });
}

#[test]
fn all_completed() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let ok = successful_future();
        let cn = cancelled_and_notified_future();
        let failed = exception_future();
        let future1 = ex.submit(divmod, (2, 0)).unwrap();
        let future2 = ex.submit(mul, (2, 21)).unwrap();
        let fs: [&dyn Waitable; 5] = [&ok, &cn, &failed, &future1, &future2];
        let r = wait(fs, None, ReturnWhen::AllCompleted);
        assert_split(&r, &fs, &[]);
    });
}

#[test]
fn timeout() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let cn = cancelled_and_notified_future();
        let failed = exception_future();
        let ok = successful_future();
        let f = blocked_on(&ex, &gate);
        let fs: [&dyn Waitable; _] = [&cn, &failed, &ok, &f];
        let r = wait(fs, Duration::from_millis(50), ReturnWhen::AllCompleted);
        assert_split(&r, &[&cn, &failed, &ok], &[&f]);
        gate.open();
    });
}

/// 100 futures blocked on one event, released at once, must all be seen by one `wait` (the
/// pending-counter race of issue 14406).
#[test]
fn pending_calls_race() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let started = Latch::new(100);
        let fs: Vec<Future<i64>> = (0..100)
            .map(|i| {
                let (gate, started) = (gate.clone(), started.clone());
                ex.spawn(move || {
                    started.count_down();
                    gate.wait();
                    i
                })
                .unwrap()
            })
            .collect();
        started.wait();
        gate.open();
        let r = wait(&fs, None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 100);
        assert!(r.not_done.is_empty());
    });
}
