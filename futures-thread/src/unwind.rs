//! Panics that escape a task's own `catch_unwind`: a panic payload, a closure or a result whose
//! `Drop` panics. The pool contains them here — logged, and their payloads dropped without
//! letting a second panic out — so a worker thread never dies and no bookkeeping is skipped.

use concurrent_futures_core::panic_message;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, containing a panic (`what` names what was running, for the log). Returns whether
/// `f` returned normally.
pub(crate) fn contain(what: &str, f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            log::error!(
                target: "concurrent_futures",
                "{what} panicked outside the task (in a Drop): {}; the pool carries on",
                panic_message(&*payload)
            );
            drop_payload(payload);
            false
        }
    }
}

/// Drops a panic payload; if its own `Drop` panics, that second payload is leaked rather than
/// dropped (its `Drop` could panic again, without end).
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        log::error!(
            target: "concurrent_futures",
            "dropping a panic payload panicked: {}; leaking it",
            panic_message(&*again)
        );
        std::mem::forget(again);
    }
}

/// Aborts the process if dropped while armed: for code that must not unwind (a scope that
/// unwound while one of its tasks runs would free what the task borrows).
pub(crate) struct AbortOnUnwind(pub(crate) &'static str);

impl AbortOnUnwind {
    /// The protected code finished without unwinding.
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("concurrent-futures: {}; aborting", self.0);
        std::process::abort();
    }
}
