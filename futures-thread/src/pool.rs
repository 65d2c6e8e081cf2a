//! [`ThreadPoolExecutor`]: Python's `concurrent.futures.ThreadPoolExecutor`.

use crate::builder::ThreadPoolBuilder;
use crate::shared::Shared;
use crate::task::FutureTask;
use concurrent_futures_core::shim::sync::Arc;
use concurrent_futures_core::{BrokenExecutor, Executor, Future, Payload, SubmitError};
use std::fmt;

/// A pool of threads that runs submitted calls: Python's `ThreadPoolExecutor`.
///
/// Threads start lazily, one per submit while no worker is free, up to `max_workers`; an idle
/// worker is always reused before a new thread starts. Dropping the pool is leaving Python's
/// `with` block: `shutdown(wait = true)`, so queued tasks run and every worker is joined.
///
/// # Examples
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let future = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(future.result(None).unwrap(), 42);
///
/// // A panic fails only its own future; the worker keeps serving.
/// let failed = pool.submit(|| -> u8 { panic!("boom") }).unwrap();
/// assert!(failed.result(None).unwrap_err().to_string().contains("boom"));
/// assert_eq!(pool.submit(|| 1).unwrap().result(None).unwrap(), 1);
/// ```
///
/// # Differences from Python
///
/// * `submit` takes a closure (`pool.submit(move || pow(2, 8))`); the [`Executor`] trait's
///   `submit(f, arg)` form, shared with the process engine, is there for generic code.
/// * Futures cancelled by `shutdown(wait, cancel_futures = true)` are also *notified*, so
///   `wait` and `as_completed` report them done (CPython leaves them `CANCELLED`, gh-87893).
/// * A failed initializer breaks the pool and fails every queued future with
///   `BrokenThreadPool`, including the ones queued after a cancelled future (CPython's drain
///   stops there and strands them pending).
/// * There is no interpreter exit: dropping the pool is the exit hook.
/// * `shutdown(wait = true)` from one of the pool's own tasks returns without waiting, where
///   Python raises `RuntimeError`.
/// * A panic in a `Drop` that runs on a worker (a task's panic payload, a result nobody holds,
///   a cancelled closure's captures) is logged and contained: the worker lives on.
/// * An idle worker spins briefly before sleeping (see the crate documentation).
pub struct ThreadPoolExecutor {
    shared: Arc<Shared>,
}

impl ThreadPoolExecutor {
    /// A pool with Python's defaults (`max_workers = min(32, available_parallelism + 4)`).
    pub fn new() -> ThreadPoolExecutor {
        ThreadPoolBuilder::new()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder for `max_workers`, `thread_name_prefix` and `initializer`.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> ThreadPoolExecutor {
        ThreadPoolExecutor { shared }
    }

    /// Schedules `f` and returns a future for its result: Python's `submit(fn)`.
    ///
    /// Fails with [`SubmitError::Shutdown`] after `shutdown` ("cannot schedule new futures
    /// after shutdown") and with [`SubmitError::Broken`] once an initializer has failed.
    pub fn submit<T, F>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let future = Future::new();
        let task = FutureTask {
            future: future.clone(),
            f,
        };
        Shared::submit(&self.shared, Box::new(task))?;
        Ok(future)
    }

    /// Python's `shutdown(wait=True, *, cancel_futures=False)`: no new tasks; with
    /// `cancel_futures`, cancel (and notify) every task not started; with `wait`, return once
    /// every worker thread has finished and been joined. Safe to call more than once, and from
    /// several threads at once: every waiting call returns only after all workers exited.
    ///
    /// Called from one of the pool's own tasks, `wait` does not wait: the calling worker cannot
    /// wait for its own thread, and waiting for the others could wait for a worker that is
    /// itself waiting for this one. (Python raises `RuntimeError('cannot join current
    /// thread')` there.)
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.shutdown(wait, cancel_futures);
    }

    /// The most threads this pool will start.
    pub fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    /// Threads started so far (they live until shutdown, as in Python).
    pub fn worker_count(&self) -> usize {
        self.shared.threads()
    }

    /// Why the pool is broken (its initializer failed), if it is.
    pub fn broken(&self) -> Option<BrokenExecutor> {
        self.shared.broken()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> Self {
        ThreadPoolExecutor::new()
    }
}

impl Executor for ThreadPoolExecutor {
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        ThreadPoolExecutor::submit(self, move || f(arg))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPoolExecutor::shutdown(self, wait, cancel_futures)
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shared.shutdown(true, false);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}
