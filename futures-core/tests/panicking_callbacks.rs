//! A done-callback's panic is logged and contained, even when its panic payload's own `Drop`
//! panics: the callbacks after it still run, and the thread completing the future carries on.
#![cfg(not(loom))]

use concurrent_futures_core::{Future, State};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A panic payload whose `Drop` panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop dropped");
    }
}

#[test]
fn a_callback_whose_panic_payload_panics_on_drop_does_not_skip_later_callbacks() {
    let f = Future::new();
    let ran = Arc::new(AtomicUsize::new(0));
    f.add_done_callback(|_| std::panic::panic_any(PanicOnDrop));
    let r = ran.clone();
    f.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    // Must not unwind into the completing thread.
    f.set_result(1).unwrap();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the later callback was skipped"
    );
}

/// The executor's side of a cancellation (cancel, then notify) completes even when a callback
/// panics this way, so `wait` and `as_completed` see the future done.
#[test]
fn cancel_with_such_a_callback_still_lets_the_executor_notify() {
    let f = Future::<u8>::new();
    f.add_done_callback(|_| std::panic::panic_any(PanicOnDrop));
    assert!(f.cancel());
    assert_eq!(f.set_running_or_notify_cancel(), Ok(false));
    assert_eq!(f.state(), State::CancelledAndNotified);
}
