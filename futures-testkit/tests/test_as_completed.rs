//! The twin of CPython's `test_as_completed.py` (`AsCompletedTests`, 3.14): one Rust test per
//! Python test.
//!
//! All 5 tests are portable. `test_free_reference_yielded_future` checks garbage collection in
//! Python; here it checks that the iterator keeps no handle to (and no waiter on) a future it has
//! yielded: the result's drop counter moves as soon as the caller drops its handles.
#![cfg(not(loom))]

use concurrent_futures_core::{Executor, Future, Waitable};
use concurrent_futures_testkit::fixtures::*;
use concurrent_futures_testkit::{Gate, ThreadPerTaskExecutor, watchdog};
use concurrent_futures_wait::as_completed;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn sorted_ids<F: Waitable>(fs: impl IntoIterator<Item = F>) -> Vec<usize> {
    let mut ids: Vec<usize> = fs.into_iter().map(|f| f.id().as_usize()).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn no_timeout() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let cn = cancelled_and_notified_future();
        let failed = exception_future();
        let ok = successful_future();
        let future1 = ex.submit(mul, (2, 21)).unwrap();
        let future2 = ex.submit(mul, (7, 6)).unwrap();
        let all: [&dyn Waitable; 5] = [&cn, &failed, &ok, &future1, &future2];
        let yielded: Vec<_> = as_completed(all, None).map(Result::unwrap).collect();
        assert_eq!(sorted_ids(yielded), sorted_ids(all));
    });
}

#[test]
fn future_times_out() {
    watchdog(|| {
        for timeout in [Duration::ZERO, Duration::from_millis(100)] {
            let ex = ThreadPerTaskExecutor::new();
            let gate = Gate::new();
            let g = gate.clone();
            let slow = ex
                .spawn(move || {
                    g.wait();
                    0
                })
                .unwrap();
            let cn = cancelled_and_notified_future();
            let failed = exception_future();
            let ok = successful_future();
            let mut completed = Vec::new();
            let mut timed_out = false;
            for item in as_completed([&cn, &failed, &ok, &slow], timeout) {
                match item {
                    Ok(f) => completed.push(f),
                    Err(e) => {
                        assert_eq!(e.counts(), Some((1, 4)));
                        timed_out = true;
                    }
                }
            }
            assert!(timed_out, "timeout {timeout:?} did not time out");
            assert_eq!(sorted_ids(completed), sorted_ids([&cn, &failed, &ok]));
            gate.open();
        }
    });
}

#[test]
fn duplicate_futures() {
    watchdog(|| {
        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let g = gate.clone();
        let f = ex
            .spawn(move || {
                g.wait();
                2
            })
            .unwrap();
        let mut it = as_completed(std::iter::repeat_n(&f, 3), None);
        gate.open();
        assert_eq!(it.next().unwrap().unwrap().id(), f.id());
        assert!(it.next().is_none());
        assert_eq!(
            f.waiter_count(),
            0,
            "one waiter for the one future, and it was removed"
        );
    });
}

/// The Rust analogue of "each yielded future is collectable": the iterator keeps no handle to a
/// future it has yielded, so dropping the yielded handle (and the caller's) drops the result.
#[test]
fn free_reference_yielded_future() {
    watchdog(|| {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));

        let mut futures_list: Vec<Future<Counted>> = (0..8).map(|_| Future::new()).collect();
        let cn = Future::<Counted>::new();
        cn.cancel();
        cn.set_running_or_notify_cancel().unwrap();
        futures_list.push(cn);
        let finished = Future::new();
        finished.set_result(Counted(dropped.clone())).unwrap();
        futures_list.push(finished);

        // timeout=0: the two done futures come out, then the timeout.
        let waiting: Vec<Future<Counted>> = futures_list.clone();
        drop(futures_list);
        let mut it = as_completed(waiting.clone(), Duration::ZERO);
        let mut pending: Vec<Future<Counted>> = waiting;
        for item in it.by_ref() {
            match item {
                Ok(f) => {
                    assert_eq!(f.waiter_count(), 0, "detached before it was yielded");
                    pending.retain(|p| p.id() != f.id());
                    drop(f);
                }
                Err(e) => assert_eq!(e.counts(), Some((8, 10))),
            }
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the finished future's value was freed"
        );
        assert_eq!(pending.len(), 8);
        drop(it);

        // Then complete the rest one at a time: each is freed as soon as it is yielded and dropped.
        let mut it = as_completed(pending.clone(), None);
        let setters = pending;
        for (n, f) in setters.into_iter().enumerate() {
            f.set_result(Counted(dropped.clone())).unwrap();
            drop(f);
            let yielded = it.next().unwrap().unwrap();
            assert_eq!(yielded.waiter_count(), 0, "detached before it was yielded");
            drop(yielded);
            assert_eq!(dropped.load(Ordering::SeqCst), 2 + n);
        }
        assert!(it.next().is_none());
    });
}

#[test]
fn correct_timeout_exception_msg() {
    let futures = [
        cancelled_and_notified_future(),
        pending_future(),
        running_future(),
        successful_future(),
    ];
    let mut it = as_completed(&futures, Duration::ZERO);
    let mut yielded = 0;
    let err = loop {
        match it.next().expect("ends with the timeout") {
            Ok(_) => yielded += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(yielded, 2);
    assert_eq!(err.to_string(), "2 (of 4) futures unfinished");
}
