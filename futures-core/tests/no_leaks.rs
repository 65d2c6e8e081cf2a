//! A future never leaks what it holds: callbacks, waiters and the value are dropped exactly
//! once, when they have run or when the last handle goes.
#![cfg(not(loom))]

use concurrent_futures_core::waiter::{Waiter, WaiterKind};
use concurrent_futures_core::{Future, Waitable};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts drops of the values it is cloned into.
#[derive(Clone, Default)]
struct DropCounter(Arc<AtomicUsize>);

#[derive(Clone)]
struct Tracked(DropCounter);

impl Drop for Tracked {
    fn drop(&mut self) {
        (self.0).0.fetch_add(1, Ordering::SeqCst);
    }
}

impl DropCounter {
    fn track(&self) -> Tracked {
        Tracked(self.clone())
    }

    fn drops(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn callbacks_of_a_future_that_never_finishes_are_dropped_with_its_last_handle() {
    let counter = DropCounter::default();
    let f = Future::<u8>::new();
    for _ in 0..3 {
        let tracked = counter.track();
        f.add_done_callback(move |_| drop(tracked));
    }
    let clone = f.clone();
    drop(f);
    assert_eq!(counter.drops(), 0, "a live handle keeps the callbacks");
    drop(clone);
    assert_eq!(counter.drops(), 3);
}

#[test]
fn callbacks_are_dropped_once_they_have_run() {
    let counter = DropCounter::default();
    let f = Future::<u8>::new();
    for _ in 0..3 {
        let tracked = counter.track();
        f.add_done_callback(move |_| {
            let _keep = &tracked;
        });
    }
    f.set_result(1).unwrap();
    assert_eq!(counter.drops(), 3);
    assert_eq!(f.callback_count(), 0);
    // A callback added after completion runs at once and is dropped at once.
    let tracked = counter.track();
    f.add_done_callback(move |_| drop(tracked));
    assert_eq!(counter.drops(), 4);
}

#[test]
fn cancel_runs_and_drops_the_callbacks() {
    let counter = DropCounter::default();
    let f = Future::<u8>::new();
    let tracked = counter.track();
    f.add_done_callback(move |_| drop(tracked));
    assert!(f.cancel());
    assert_eq!(counter.drops(), 1);
}

#[test]
fn a_panicking_callback_is_dropped_too() {
    let counter = DropCounter::default();
    let f = Future::<u8>::new();
    let tracked = counter.track();
    f.add_done_callback(move |_| {
        let _keep = &tracked;
        panic!("callback panics on purpose");
    });
    f.set_result(1).unwrap();
    assert_eq!(counter.drops(), 1);
}

#[test]
fn the_value_is_dropped_once_when_the_last_handle_goes() {
    let counter = DropCounter::default();
    let f = Future::new();
    let clones: Vec<_> = (0..4).map(|_| f.clone()).collect();
    f.set_result(counter.track()).unwrap();
    assert!(f.result_ref(None).is_ok());
    drop(f);
    assert_eq!(counter.drops(), 0);
    drop(clones);
    assert_eq!(counter.drops(), 1);
}

#[test]
fn a_rejected_value_is_dropped_at_once() {
    let counter = DropCounter::default();
    let f = Future::new();
    f.set_result(counter.track()).unwrap();
    assert!(f.set_result(counter.track()).is_err());
    assert_eq!(counter.drops(), 1);
}

#[test]
fn removed_waiters_are_released() {
    let f = Future::<u8>::new();
    let waiter = Waiter::new(WaiterKind::AllCompleted, 1);
    f.add_waiter(&waiter);
    f.add_waiter(&Waiter::new(WaiterKind::FirstCompleted, 1));
    assert_eq!(f.waiter_count(), 2);
    f.remove_waiter(&waiter);
    assert_eq!(f.waiter_count(), 1);
    // A waiter added to a completed future is told at once and not kept.
    let done = Future::new();
    done.set_result(1u8).unwrap();
    let late = Waiter::new(WaiterKind::AsCompleted, 1);
    done.add_waiter(&late);
    assert_eq!(done.waiter_count(), 0);
    assert_eq!(late.take_finished(), vec![done.id()]);
}

#[test]
fn into_result_moves_the_value_out_and_nothing_is_dropped_twice() {
    let counter = DropCounter::default();
    let f = Future::new();
    let worker = f.clone();
    worker.set_result(counter.track()).unwrap();
    drop(worker);
    let value = f.into_result(None).expect("finished");
    assert_eq!(counter.drops(), 0, "moved, not dropped");
    drop(value);
    assert_eq!(counter.drops(), 1);
}

#[test]
fn into_result_clones_while_another_handle_lives_and_each_copy_drops_once() {
    let counter = DropCounter::default();
    let f = Future::new();
    f.set_result(counter.track()).unwrap();
    let kept = f.clone();
    let copy = f.into_result(None).expect("finished");
    assert_eq!(counter.drops(), 0);
    drop(copy);
    assert_eq!(counter.drops(), 1, "the copy");
    drop(kept);
    assert_eq!(counter.drops(), 2, "the value, with the last handle");
}

#[test]
fn into_result_when_last_times_out_while_another_handle_lives_and_leaves_the_value_there() {
    let counter = DropCounter::default();
    let f = Future::new();
    f.set_result(counter.track()).unwrap();
    let kept = f.clone();
    assert!(
        f.into_result_when_last(std::time::Duration::ZERO)
            .err()
            .expect("another handle lives")
            .is_timeout()
    );
    assert!(
        kept.result_ref(None).is_ok(),
        "the value stayed with the other handle"
    );
    assert_eq!(counter.drops(), 0);
    drop(kept);
    assert_eq!(counter.drops(), 1);
}
