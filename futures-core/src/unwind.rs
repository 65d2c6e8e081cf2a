//! Catching panics from tasks and callbacks, and reading their messages.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The message of a panic payload: the `&str` or `String` given to `panic!`, or a placeholder
/// for a payload of another type (from `std::panic::panic_any`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    }
}

/// Drops a panic payload on a thread that must carry on: if the payload's own `Drop` panics,
/// that second payload is leaked rather than dropped (its `Drop` could panic again, without
/// end). For executors: the payload of a task's or a callback's panic is user code's value.
#[doc(hidden)]
pub fn drop_panic_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        log::error!(
            target: "concurrent_futures",
            "dropping a panic payload panicked: {}; leaking it",
            panic_message(&*again)
        );
        std::mem::forget(again);
    }
}

/// Runs `f` on a thread that must carry on (a worker, a courier, a shutdown loop), containing a
/// panic that escapes it — in practice from a `Drop` of a user value: a result nobody holds, a
/// closure's captures. The panic is logged (`what` says what was running) and its payload
/// dropped with [`drop_panic_payload`]. Returns whether `f` returned normally.
#[doc(hidden)]
pub fn contain_panic(what: &str, f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            log::error!(
                target: "concurrent_futures",
                "{what} panicked outside the task (in a Drop): {}; the executor carries on",
                panic_message(&*payload)
            );
            drop_panic_payload(payload);
            false
        }
    }
}
