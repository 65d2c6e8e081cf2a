//! [`FutureTask`]: a closure and the future it completes, in one allocation.
//!
//! The closure is the tail of the future's own block (`Inner<T, Job<F>>`), so submitting a task
//! allocates once, and the worker that runs it frees nothing the submitter allocated: it takes
//! the closure out of the block, runs it (its captures die on the worker, where they were used)
//! and drops its handle; the block goes with the last handle, usually the caller's.

use super::{Future, Inner, Outcome, Tail};
use crate::TaskError;
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Arc;
use crate::waiter::FutureId;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

/// A queued task: a closure and the [`Future`] it completes, sharing one allocation (the name
/// and the idea are Java's `FutureTask`). Executors queue it and call [`run`](Self::run),
/// [`cancel`](Self::cancel) or [`fail`](Self::fail) once; dropping it unrun drops the closure
/// and leaves the future pending.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::FutureTask;
///
/// let (task, future) = FutureTask::new(|| 6 * 7);
/// std::thread::spawn(move || task.run(&|| {}));
/// assert_eq!(future.result(None).unwrap(), 42);
/// ```
pub struct FutureTask {
    /// The block, as `Arc::into_raw` of an `Arc<Inner<T, Job<F>>>` gave it. This task owns one
    /// strong count of it and one of the handles its `handles` counts, and is the only one to
    /// touch its `Job`.
    block: NonNull<()>,
    vtable: &'static VTable,
}

/// The typed halves of a task's operations. Each takes the task's `block` and consumes the
/// task: its strong count, its handle and its claim on the closure.
struct VTable {
    run: unsafe fn(NonNull<()>, &dyn Fn()),
    cancel: unsafe fn(NonNull<()>),
    fail: unsafe fn(NonNull<()>, TaskError),
    drop: unsafe fn(NonNull<()>),
}

/// The closure, in the tail of its future's block. `None` once taken.
struct Job<F>(UnsafeCell<Option<F>>);

// SAFETY: a shared `&Job<F>` (every handle can reach the block) gives no access to `F`: the
// cell is read only by `parts`, which only the block's one `FutureTask` calls, once, as it is
// consumed. So `F` is reached by one thread, the one that took the task (it moves there:
// `F: Send`), and otherwise only dropped with the block by the last `Arc`, which is exclusive.
unsafe impl<F: Send> Sync for Job<F> {}

impl<F: Send + 'static> Tail for Job<F> {}

/// `FutureTask::new::<F, T>`'s vtable, as a constant so that `&` of it is `'static`.
struct VTables<F, T>(PhantomData<(F, T)>);

impl<F, T> VTables<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const VTABLE: VTable = VTable {
        run: run::<F, T>,
        cancel: cancel::<F, T>,
        fail: fail::<F, T>,
        drop: drop_task::<F, T>,
    };
}

impl FutureTask {
    /// A task that runs `f`, and a handle to the future it completes.
    pub fn new<F, T>(f: F) -> (FutureTask, Future<T>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // Two handles: the caller's and this task's.
        let block = Arc::new(Inner::new(2, Job(UnsafeCell::new(Some(f)))));
        let future = Future::from_block(Arc::clone(&block));
        let raw = Arc::into_raw(block).cast_mut().cast::<()>();
        let task = FutureTask {
            block: NonNull::new(raw).expect("Arc::into_raw is never null"),
            vtable: &VTables::<F, T>::VTABLE,
        };
        (task, future)
    }

    /// Runs the task unless its future was cancelled: marks the future running, calls the
    /// closure, calls `finished_running`, then completes the future with the closure's value or
    /// panic (a panic is caught: the future fails with its message). A cancelled future is
    /// notified instead (`set_running_or_notify_cancel`), and `finished_running` called.
    ///
    /// `finished_running` runs *before* the future completes, so an executor can count its
    /// worker free by the time a waiting caller wakes up and submits again. The closure and its
    /// captures are dropped before this returns.
    ///
    /// Panics that escape it come from a `Drop` (the closure's captures on the cancelled path,
    /// or the result's when this drops the last handle), or from `finished_running` itself; a
    /// panic payload's `Drop` is contained. An executor should contain them, as the thread
    /// pool's workers do.
    pub fn run(self, finished_running: &dyn Fn()) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `block` and `vtable` were made together by `new`, and `this` is consumed.
        unsafe { (this.vtable.run)(this.block, finished_running) }
    }

    /// Cancels the future and notifies its watchers (an executor's shutdown with
    /// `cancel_futures`), then drops the closure.
    pub fn cancel(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: as in `run`.
        unsafe { (this.vtable.cancel)(this.block) }
    }

    /// Fails the future with `error` (a broken executor), unless it was cancelled: then it is
    /// only notified, so it cannot strand the futures queued after it. Drops the closure.
    pub fn fail(self, error: impl Into<TaskError>) {
        let this = ManuallyDrop::new(self);
        // SAFETY: as in `run`.
        unsafe { (this.vtable.fail)(this.block, error.into()) }
    }

    /// The id of the future this task completes.
    #[inline]
    pub fn id(&self) -> FutureId {
        FutureId(self.block.as_ptr() as usize)
    }
}

impl Drop for FutureTask {
    fn drop(&mut self) {
        // SAFETY: as in `run`: `self` is never used again.
        unsafe { (self.vtable.drop)(self.block) }
    }
}

// SAFETY: the task owns a strong count and a handle of a block that is `Send + Sync` (`T` and
// `F` are `Send`), and the closure it alone takes out is `Send`.
unsafe impl Send for FutureTask {}

impl fmt::Debug for FutureTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutureTask")
            .field("id", &self.id())
            .finish()
    }
}

/// Takes a task apart: its handle on the future and its closure.
///
/// # Safety
///
/// `block` is the `block` of a `FutureTask` made by `FutureTask::new::<F, T>`, and that task is
/// consumed by this call (it is never used or dropped again).
unsafe fn parts<F, T>(block: NonNull<()>) -> (Future<T>, F)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: the caller's contract: `block` came from `Arc::into_raw` of an
    // `Arc<Inner<T, Job<F>>>`, and the task's strong count is ours to take back.
    let block = unsafe { Arc::from_raw(block.as_ptr().cast::<Inner<T, Job<F>>>()) };
    // SAFETY: only the block's one task reads the cell (see `Job`'s `Sync`), once, here; the
    // write that filled it (in `new`) happened before the task was handed to this thread.
    let f = block.tail.0.with_mut(|p| unsafe { (*p).take() });
    let f = f.expect("a task's closure is taken once");
    // The task's handle was counted by `new`.
    (Future::from_block(block), f)
}

/// `FutureTask::run`.
///
/// # Safety
///
/// As for [`parts`].
unsafe fn run<F, T>(block: NonNull<()>, finished_running: &dyn Fn())
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: forwarded.
    let (future, f) = unsafe { parts::<F, T>(block) };
    if future.set_running_or_notify_cancel() != Ok(true) {
        finished_running();
        return;
    }
    let outcome = catch_unwind(AssertUnwindSafe(f));
    finished_running();
    // A queued future is only ever completed here, so neither call can find it finished.
    // The task's handle goes as the future completes, so the caller can move the value out.
    match outcome {
        Ok(value) => {
            let _ = future.complete_and_drop(Outcome::Returned(value));
        }
        Err(panic) => {
            let _ =
                future.complete_and_drop(Outcome::Raised(Box::new(TaskError::from_panic(&*panic))));
            // The payload's own `Drop` may panic: keep that inside.
            crate::unwind::drop_panic_payload(panic);
        }
    }
}

/// `FutureTask::cancel`.
///
/// # Safety
///
/// As for [`parts`].
unsafe fn cancel<F, T>(block: NonNull<()>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: forwarded.
    let (future, _f) = unsafe { parts::<F, T>(block) };
    future.cancel();
    let _ = future.set_running_or_notify_cancel();
}

/// `FutureTask::fail`.
///
/// # Safety
///
/// As for [`parts`].
unsafe fn fail<F, T>(block: NonNull<()>, error: TaskError)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: forwarded.
    let (future, _f) = unsafe { parts::<F, T>(block) };
    if future.set_running_or_notify_cancel() == Ok(true) {
        let _ = future.set_exception(error);
    }
}

/// Dropping a `FutureTask` unrun: the closure goes, the future stays pending.
///
/// # Safety
///
/// As for [`parts`].
unsafe fn drop_task<F, T>(block: NonNull<()>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: forwarded.
    drop(unsafe { parts::<F, T>(block) });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::FutureTask;
    use crate::State;
    use std::sync::Arc;

    #[test]
    fn a_task_runs_once_and_frees_its_captures_when_it_runs() {
        let captured = Arc::new(());
        let held = Arc::clone(&captured);
        let (task, future) = FutureTask::new(move || Arc::strong_count(&held));
        assert_eq!(task.id(), future.id());
        task.run(&|| {});
        assert_eq!(future.result(None).unwrap(), 2);
        assert_eq!(Arc::strong_count(&captured), 1);
    }

    #[test]
    fn a_cancelled_task_notifies_and_drops_its_closure_without_running_it() {
        let captured = Arc::new(());
        let held = Arc::clone(&captured);
        let (task, future) = FutureTask::new(move || -> u8 { panic!("ran {held:?}") });
        assert!(future.cancel());
        task.run(&|| {});
        assert_eq!(future.state(), State::CancelledAndNotified);
        assert_eq!(Arc::strong_count(&captured), 1);
    }

    #[test]
    fn a_panicking_closure_fails_the_future() {
        let (task, future) = FutureTask::new(|| -> u8 { panic!("boom") });
        task.run(&|| {});
        assert!(future.exception(None).unwrap().is_some());
    }

    #[test]
    fn dropping_a_task_unrun_leaves_the_future_pending_and_the_last_handle_takes() {
        let captured = Arc::new(());
        let held = Arc::clone(&captured);
        let (task, future) = FutureTask::new(move || drop(held));
        drop(task);
        assert_eq!(Arc::strong_count(&captured), 1);
        assert_eq!(future.state(), State::Pending);
        future.set_result(()).unwrap();
        future.into_result_when_last(None).unwrap();
    }

    #[test]
    fn a_task_run_on_another_thread_hands_its_value_to_the_last_handle() {
        for _ in 0..20 {
            let (task, future) = FutureTask::new(|| vec![1_u8, 2, 3]);
            let worker = std::thread::spawn(move || task.run(&|| {}));
            assert_eq!(future.into_result_when_last(None).unwrap(), [1, 2, 3]);
            worker.join().unwrap();
        }
    }

    #[test]
    fn cancel_and_fail_complete_the_future() {
        let (task, future) = FutureTask::new(|| 1);
        task.cancel();
        assert_eq!(future.state(), State::CancelledAndNotified);
        let (task, future) = FutureTask::new(|| 1);
        task.fail(crate::TaskError::panicked("broken"));
        assert!(future.exception(None).unwrap().is_some());
    }
}
