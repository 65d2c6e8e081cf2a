//! Several takers of one future (`into_result`, `.await`): whichever gives up, times out or is
//! dropped, the others are never stranded. Regression tests for the hardening issue's "two
//! takers" defect; the interleavings are proved in `loom_future.rs`.
#![cfg(not(loom))]

use concurrent_futures_core::Future;
use concurrent_futures_testkit::watchdog;
use std::future::{Future as _, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// B awaits (pending: A's handle lives); A takes with a timeout, times out and is dropped. B is
/// now the last handle: it must be woken and get the value. With one shared "taker waiting"
/// bit, A cleared it on timing out, its drop woke nobody and B stayed pending forever.
#[test]
fn an_await_is_woken_when_a_second_taker_times_out_and_drops() {
    let a = Future::new();
    a.set_result(String::from("value")).unwrap();
    let mut b = a.clone().into_future();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut b).poll(&mut cx).is_pending());

    assert!(
        a.into_result(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "B was not woken");
    match Pin::new(&mut b).poll(&mut cx) {
        Poll::Ready(v) => assert_eq!(v.unwrap(), "value"),
        Poll::Pending => panic!("B is the last handle but still pending"),
    }
}

/// The blocking form: B in `into_result(None)` on a thread, A in `into_result(timeout)`. A times
/// out and drops; B must return the value (it hung forever before the fix).
#[test]
fn into_result_is_woken_when_a_second_taker_times_out_and_drops() {
    watchdog(|| {
        let a = Future::new();
        a.set_result(vec![1u8, 2, 3]).unwrap();
        let b = a.clone();
        let taker = std::thread::spawn(move || b.into_result(None));
        assert!(
            a.into_result(Duration::from_millis(200))
                .unwrap_err()
                .is_timeout()
        );
        assert_eq!(taker.join().unwrap().unwrap(), [1, 2, 3]);
    });
}

/// Dropping a pending `.await` taker uncounts it: a later last-handle drop still wakes the
/// remaining `.await` taker, and nothing is left registered.
#[test]
fn a_dropped_await_taker_leaves_the_other_await_woken_and_nothing_registered() {
    let f = Future::new();
    f.set_result(7u32).unwrap();
    let keeper = f.clone();
    let mut first = f.clone().into_future();
    let mut second = f.into_future();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
    assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
    assert_eq!(keeper.awaiter_count(), 2);
    drop(first);
    assert_eq!(keeper.awaiter_count(), 1);
    drop(keeper);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    match Pin::new(&mut second).poll(&mut cx) {
        Poll::Ready(v) => assert_eq!(v.unwrap(), 7),
        Poll::Pending => panic!("the last handle is still pending"),
    }
}
