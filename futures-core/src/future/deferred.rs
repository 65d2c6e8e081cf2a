//! [`DeferredCallbacks`]: finishing a future on one thread and running its done-callbacks on
//! another, for an executor whose completing thread must run no user code.

use super::{Callback, Future, Outcome, Release};
use crate::error::{InvalidStateError, TaskError};
use std::fmt;

impl<T> Future<T> {
    /// Finishes the future with `outcome` (a value, as [`set_result`](Future::set_result), or
    /// an error, as [`set_exception`](Future::set_exception)) as the last use of this handle,
    /// and wakes every thread and task waiting for it and every `wait`/`as_completed` watching
    /// it; but instead of running its done-callbacks, it hands them back, with this handle if
    /// dropping it could drop the value: [`DeferredCallbacks::run`] runs them and drops it, on
    /// whichever thread the executor chooses.
    ///
    /// For an executor whose completing thread must not run user code: the MPI engine's
    /// receiving thread, which must go on moving messages while a slow callback runs, finishes
    /// a future the moment its result arrives. When nothing is handed back
    /// ([`is_empty`](DeferredCallbacks::is_empty): no callback, and another handle holds the
    /// future), it need not wake another thread at all.
    ///
    /// A released handle never drops the value: the last counted handle does, wherever it is
    /// dropped. Tasks awaiting the future are woken in this thread (their wakers are the async
    /// runtime's code, not the user's). A callback added after this call, the future being
    /// finished, runs at once in the adding thread, as always: it may run before the deferred
    /// ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let f = Future::new();
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let seen = Arc::clone(&ran);
    /// f.add_done_callback(move |_| seen.store(true, Ordering::SeqCst));
    /// let callbacks = f.clone().complete_deferring_callbacks(Ok(7)).unwrap();
    /// assert_eq!(f.result(None).unwrap(), 7, "finished already");
    /// assert!(!ran.load(Ordering::SeqCst), "its callback has not run yet");
    /// std::thread::spawn(move || callbacks.run()).join().unwrap();
    /// assert!(ran.load(Ordering::SeqCst));
    ///
    /// // No callback, and `g` still held: nothing is left to do.
    /// let g = Future::new();
    /// assert!(g.clone().complete_deferring_callbacks(Ok(8)).unwrap().is_empty());
    /// assert_eq!(g.into_result(None).unwrap(), 8);
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InvalidStateError`] if the future is already done, as from `set_result`.
    pub fn complete_deferring_callbacks(
        self,
        outcome: Result<T, TaskError>,
    ) -> Result<DeferredCallbacks<T>, InvalidStateError> {
        let outcome = match outcome {
            Ok(value) => Outcome::Returned(value),
            Err(error) => Outcome::Raised(Box::new(error)),
        };
        let (released, callbacks) =
            self.complete_collecting(outcome, Release::WithoutCallbacksUnlessLast)?;
        let future = if released {
            // Uncounted already: drop the `Arc` without `Future`'s `Drop`.
            let this = std::mem::ManuallyDrop::new(self);
            // SAFETY: `this` is never used or dropped again, so the `Arc` is moved out once.
            drop(unsafe { std::ptr::read(&this.inner) });
            None
        } else {
            Some(self)
        };
        Ok(DeferredCallbacks { future, callbacks })
    }
}

/// What is left of a future finished by [`Future::complete_deferring_callbacks`]: its
/// done-callbacks, not run yet, and the completing handle when dropping it could drop the
/// value.
///
/// [`run`](Self::run) runs the callbacks in the order they were added, each with a panic
/// caught and logged, as the completing thread would have, then drops the handle. Dropping
/// does the same, on the dropping thread: a callback is never lost.
#[must_use = "dropped, the callbacks run here; hand them to the thread that should run them"]
pub struct DeferredCallbacks<T> {
    /// The completing handle; `None` once released (no callbacks, and not the last handle).
    future: Option<Future<T>>,
    callbacks: Vec<Callback<T>>,
}

impl<T> DeferredCallbacks<T> {
    /// Whether nothing is left: no callback to run, and no handle whose drop could drop the
    /// value.
    pub fn is_empty(&self) -> bool {
        self.future.is_none()
    }

    /// Runs the callbacks, in the order they were added, each with a panic caught and logged;
    /// then drops the handle.
    pub fn run(mut self) {
        self.run_all();
    }

    fn run_all(&mut self) {
        if let Some(future) = self.future.take() {
            future.run_callbacks(std::mem::take(&mut self.callbacks));
        }
    }
}

impl<T> Drop for DeferredCallbacks<T> {
    fn drop(&mut self) {
        self.run_all();
    }
}

impl<T> fmt::Debug for DeferredCallbacks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredCallbacks")
            .field("callbacks", &self.callbacks.len())
            .field("holds_the_future", &self.future.is_some())
            .finish()
    }
}
