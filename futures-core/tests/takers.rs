//! Takers of one future. `into_result` and `.await` wait for completion and nothing else: a
//! clone kept anywhere never delays them (issue 9, point 3; each test below hung before). The
//! last-handle takers (`into_result_when_last`, `into_future_when_last`) never strand each
//! other, whichever gives up, times out or is dropped (the hardening issue's "two takers"
//! defect). The interleavings are proved in `loom_future.rs`.
#![cfg(not(loom))]

use concurrent_futures_core::{Future, TaskError};
use concurrent_futures_testkit::{block_on, watchdog};
use std::future::Future as _;
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

#[test]
fn into_result_returns_while_clones_live_in_an_array_and_a_callback() {
    watchdog(|| {
        let f = Future::new();
        let in_a_vec = [f.clone(), f.clone()];
        let in_a_callback = f.clone();
        let never_runs = Future::<()>::new();
        never_runs.add_done_callback(move |_| drop(in_a_callback));
        let setter = f.clone();
        std::thread::spawn(move || setter.set_result(String::from("value")).unwrap());
        assert_eq!(f.into_result(None).unwrap(), "value");
        assert_eq!(in_a_vec[1].result(None).unwrap(), "value");
    });
}

#[test]
fn await_returns_while_a_clone_lives() {
    watchdog(|| {
        let f = Future::new();
        let kept = f.clone();
        let setter = f.clone();
        std::thread::spawn(move || setter.set_result(vec![1u8, 2]).unwrap());
        assert_eq!(block_on(async { f.await }).unwrap(), [1, 2]);
        assert_eq!(kept.result(Duration::ZERO).unwrap(), [1, 2]);
    });
}

/// The last-handle takers hand a task's error out at once: an error is always cloneable, so
/// nothing needs to wait for the other handles.
#[test]
fn last_handle_takers_return_a_tasks_error_while_clones_live() {
    watchdog(|| {
        let f = Future::<std::sync::mpsc::Receiver<u8>>::new();
        let kept = f.clone();
        f.set_exception(TaskError::panicked("no receiver")).unwrap();
        let e = f.clone().into_result_when_last(None).unwrap_err();
        assert!(e.task_error().is_some());
        let e = block_on(f.into_future_when_last()).unwrap_err();
        assert!(e.task_error().is_some());
        assert!(kept.error_retrieved());
    });
}

/// B awaits the last handle (pending: A's handle lives); A takes with a timeout, times out and
/// is dropped. B is now the last handle: it must be woken and get the value. With one shared
/// "taker waiting" bit, A cleared it on timing out, its drop woke nobody and B stayed pending
/// forever.
#[test]
fn an_await_when_last_is_woken_when_a_second_taker_times_out_and_drops() {
    let a = Future::new();
    a.set_result(String::from("value")).unwrap();
    let mut b = a.clone().into_future_when_last();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut b).poll(&mut cx).is_pending());

    assert!(
        a.into_result_when_last(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "B was not woken");
    match Pin::new(&mut b).poll(&mut cx) {
        Poll::Ready(v) => assert_eq!(v.unwrap(), "value"),
        Poll::Pending => panic!("B is the last handle but still pending"),
    }
}

/// The blocking form: B in `into_result_when_last(None)` on a thread, A in
/// `into_result_when_last(timeout)`. A times out and drops; B must return the value (it hung
/// forever before the hardening fix).
#[test]
fn into_result_when_last_is_woken_when_a_second_taker_times_out_and_drops() {
    watchdog(|| {
        let a = Future::new();
        a.set_result(vec![1u8, 2, 3]).unwrap();
        let b = a.clone();
        let taker = std::thread::spawn(move || b.into_result_when_last(None));
        assert!(
            a.into_result_when_last(Duration::from_millis(200))
                .unwrap_err()
                .is_timeout()
        );
        assert_eq!(taker.join().unwrap().unwrap(), [1, 2, 3]);
    });
}

/// Dropping a pending last-handle await uncounts it: a later last-handle drop still wakes the
/// remaining one, and nothing is left registered.
#[test]
fn a_dropped_await_taker_leaves_the_other_await_woken_and_nothing_registered() {
    let f = Future::new();
    f.set_result(7u32).unwrap();
    let keeper = f.clone();
    let mut first = f.clone().into_future_when_last();
    let mut second = f.into_future_when_last();
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
