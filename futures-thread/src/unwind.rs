//! Panics that escape a task's own `catch_unwind`: a panic payload, a closure or a result whose
//! `Drop` panics. The pool contains them (with core's helpers: logged, and their payloads
//! dropped without letting a second panic out), so a worker thread never dies and no
//! bookkeeping is skipped; and where a panic cannot be contained, it aborts.

pub(crate) use concurrent_futures_core::{
    contain_panic as contain, drop_panic_payload as drop_payload,
};

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
