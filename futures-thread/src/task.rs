//! What the queue holds: a pool task (core's [`FutureTask`], closure and future in one
//! allocation), an item of `map` (a slot in a shared segment), or a scoped task behind one
//! trait object.

use crate::map::ItemTask;
use concurrent_futures_core::{BrokenExecutor, Future, FutureId, FutureTask, TaskError};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A queued unit of work.
pub(crate) enum Task {
    /// `submit`, `spawn`, `map`: one allocation per task.
    Future(FutureTask),
    /// An item of the pool's own `map`: no future, no allocation of its own.
    Item(ItemTask),
    /// A scope's task, reached through its slot (`scope.rs`).
    Boxed(Box<dyn BoxedTask>),
}

impl Task {
    /// Runs the task if its future was not cancelled. `finished_running` is called after the
    /// closure returns and *before* the future is completed, so the pool counts this worker
    /// free by the time a waiting caller wakes up and submits again.
    #[inline]
    pub(crate) fn run(self, finished_running: &dyn Fn()) {
        match self {
            Task::Future(task) => task.run(finished_running),
            Task::Item(task) => task.run(finished_running),
            Task::Boxed(task) => task.run(finished_running),
        }
    }

    /// Cancels the future and notifies its watchers (shutdown with `cancel_futures`).
    pub(crate) fn cancel(self) {
        match self {
            Task::Future(task) => task.cancel(),
            Task::Item(task) => task.cancel(),
            Task::Boxed(task) => task.cancel(),
        }
    }

    /// Fails the future with `error`, unless it was cancelled (then only notifies).
    pub(crate) fn fail(self, error: &BrokenExecutor) {
        match self {
            Task::Future(task) => task.fail(TaskError::Broken(error.clone())),
            Task::Item(task) => task.fail(error),
            Task::Boxed(task) => task.fail(error),
        }
    }

    /// The id of the future this task completes (for `shutdown_timeout`'s report).
    #[inline]
    pub(crate) fn id(&self) -> FutureId {
        match self {
            Task::Future(task) => task.id(),
            Task::Item(task) => task.id(),
            Task::Boxed(task) => task.id(),
        }
    }
}

/// What the pool can do with a boxed task without knowing its types: the same operations as
/// [`Task`]'s.
pub(crate) trait BoxedTask: Send {
    /// See [`Task::run`].
    fn run(self: Box<Self>, finished_running: &dyn Fn());

    /// See [`Task::cancel`].
    fn cancel(self: Box<Self>);

    /// See [`Task::fail`].
    fn fail(self: Box<Self>, error: &BrokenExecutor);

    /// See [`Task::id`].
    fn id(&self) -> FutureId;
}

/// A closure and its future, boxed: a scope's task, whose closure may borrow (core's
/// [`FutureTask`] holds only `'static` closures).
pub(crate) struct ClosureTask<F, T> {
    pub(crate) future: Future<T>,
    pub(crate) f: F,
}

impl<F, T> BoxedTask for ClosureTask<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn run(self: Box<Self>, finished_running: &dyn Fn()) {
        let ClosureTask { future, f } = *self;
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
