//! A queued unit of work: a closure and the future it completes, behind one trait object.

use concurrent_futures_core::{BrokenExecutor, Future, FutureId, TaskError};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What the pool can do with a queued task without knowing its types.
pub(crate) trait Task: Send {
    /// Runs the task if its future was not cancelled. `finished_running` is called after the
    /// closure returns and *before* the future is completed, so the pool counts this worker
    /// free by the time a waiting caller wakes up and submits again.
    fn run(self: Box<Self>, finished_running: &dyn Fn());

    /// Cancels the future and notifies its watchers (shutdown with `cancel_futures`).
    fn cancel(self: Box<Self>);

    /// Fails the future with `error`, unless it was cancelled (then only notifies).
    fn fail(self: Box<Self>, error: &BrokenExecutor);

    /// The id of the future this task completes (for `shutdown_timeout`'s report).
    fn id(&self) -> FutureId;
}

/// A closure and its future.
pub(crate) struct FutureTask<F, T> {
    pub(crate) future: Future<T>,
    pub(crate) f: F,
}

impl<F, T> Task for FutureTask<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn run(self: Box<Self>, finished_running: &dyn Fn()) {
        let FutureTask { future, f } = *self;
        if future.set_running_or_notify_cancel() != Ok(true) {
            finished_running();
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(f));
        finished_running();
        // A queued future is only ever completed here, so neither call can find it finished.
        let _ = match outcome {
            Ok(value) => future.set_result(value),
            Err(panic) => {
                let set = future.set_exception(TaskError::from_panic(&*panic));
                // The payload's own `Drop` may panic: keep that inside.
                crate::unwind::drop_payload(panic);
                set
            }
        };
    }

    fn cancel(self: Box<Self>) {
        self.future.cancel();
        let _ = self.future.set_running_or_notify_cancel();
    }

    fn fail(self: Box<Self>, error: &BrokenExecutor) {
        // A future cancelled while queued is notified instead, so it cannot strand the futures
        // queued after it (CPython's drain stops at it with InvalidStateError).
        if self.future.set_running_or_notify_cancel() == Ok(true) {
            let _ = self.future.set_exception(TaskError::Broken(error.clone()));
        }
    }

    fn id(&self) -> FutureId {
        self.future.id()
    }
}
