//! [`ProcessPoolExecutor`]: Python's `concurrent.futures.ProcessPoolExecutor`.

use crate::builder::{BuildError, ProcessPoolBuilder};
use crate::call::CallSite;
use crate::launch::StartMethod;
use crate::shared::{FutureSink, Job, Shared};
use crate::{sys, wire};
use concurrent_futures_core::{
    Batch, BrokenExecutor, Executor, Future, Payload, PayloadError, PayloadStage, PoolStats,
    QueueFullPolicy, SubmitError, TaskError,
};
use nix::sys::signal::Signal;
use serde::Serialize;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A pool of worker processes: Python's `ProcessPoolExecutor`.
///
/// Tasks are plain functions `fn(A) -> R` (or closures that capture nothing) whose argument
/// and result are serde types; they run in another process of the same program, so a task that
/// crashes its process cannot take the caller down. Workers start on demand, up to
/// `max_workers`, and are reused while idle.
///
/// A worker that dies (abort, segfault, `SIGKILL`, `exit` mid-task, a failing initializer)
/// breaks the pool, as in Python: every pending future fails with `BrokenProcessPool`, naming
/// the worker's pid and how it ended, and later submits are refused. A task that panics only
/// fails its own future ([`TaskError::Remote`], with the worker's backtrace), and so does a
/// payload that cannot be serialized ([`TaskError::Payload`]).
///
/// The program must call [`bootstrap`](crate::bootstrap) on the first line of `main` (the
/// default start method needs it).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Executor;
/// use concurrent_futures_process::{ProcessPoolExecutor, bootstrap};
///
/// fn is_prime(n: u64) -> bool {
///     n > 1 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
/// }
///
/// fn main() {
///     bootstrap();
///     let pool = ProcessPoolExecutor::new().unwrap();
///     let primes: Vec<bool> = pool.map(is_prime, [7, 8, 97]).unwrap().map(Result::unwrap).collect();
///     assert_eq!(primes, [true, false, true]);
/// }
/// ```
///
/// # Differences from Python
///
/// * Functions travel by their place in the executable, not by pickling: there is nothing to
///   register, and a closure that captures anything does not compile.
/// * A future is RUNNING from the moment it is sent to a worker; each worker holds at most its
///   running task and one more, and the second only once no more workers can be started.
/// * A payload that fails to decode, in the worker or in the pool, fails its own future instead
///   of breaking the pool.
/// * Dropping the pool is `shutdown(true, false)`.
pub struct ProcessPoolExecutor {
    shared: Arc<Shared>,
}

impl ProcessPoolExecutor {
    /// A pool with the defaults: `available_parallelism` workers, the fork-server method.
    pub fn new() -> Result<ProcessPoolExecutor, BuildError> {
        ProcessPoolBuilder::default().build()
    }

    /// A builder for the other settings.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> ProcessPoolExecutor {
        ProcessPoolExecutor { shared }
    }

    /// Schedules `f(arg)` in a worker process: Python's `submit`.
    ///
    /// Fails with [`SubmitError::Shutdown`] after `shutdown` and [`SubmitError::Broken`] once
    /// the pool is broken. An argument that cannot be serialized fails the returned future
    /// with [`TaskError::Payload`]. On a pool with a bounded queue
    /// ([`ProcessPoolBuilder::max_queue`]) a full queue makes it wait, fail with
    /// [`SubmitError::QueueFull`], or call `f` in this thread, by the policy.
    pub fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        match self.submit_call(CallSite::of(f), &arg) {
            Err(SubmitError::QueueFull { .. }) if self.caller_runs() => Ok(run_here(|| f(arg))),
            submitted => submitted,
        }
    }

    /// Whether a full queue runs the task in the caller.
    fn caller_runs(&self) -> bool {
        matches!(
            self.shared.config.max_queue,
            Some((_, QueueFullPolicy::CallerRuns))
        )
    }

    fn submit_call<A: Serialize, R: Payload>(
        &self,
        site: CallSite,
        arg: &A,
    ) -> Result<Future<R>, SubmitError> {
        let id = self.shared.next_id();
        let future = Future::new();
        let site = self.shared.config.key.seal(site);
        match wire::encode_task(id, site, arg) {
            Ok(message) => {
                let sink = Box::new(FutureSink(future.clone()));
                self.shared.enqueue(Job { id, message, sink })?;
            }
            Err(e) => {
                self.shared.check_open()?;
                let error = PayloadError::new(PayloadStage::EncodeArgument, e.to_string());
                let _ = future.set_exception(TaskError::Payload(error));
            }
        }
        Ok(future)
    }

    /// Python's `shutdown(wait, cancel_futures)`: no new tasks; with `cancel_futures`, every
    /// task not yet sent to a worker is cancelled; with `wait`, returns once every worker has
    /// finished its work, exited and been reaped.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.shutdown(wait, cancel_futures);
    }

    /// Python 3.14's `terminate_workers()`: `shutdown(false, true)`, then `SIGTERM` to every
    /// live worker. Tasks they were running fail with `BrokenProcessPool`.
    pub fn terminate_workers(&self) {
        self.force(Signal::SIGTERM);
    }

    /// Python 3.14's `kill_workers()`: as [`terminate_workers`](Self::terminate_workers), with
    /// `SIGKILL`.
    pub fn kill_workers(&self) {
        self.force(Signal::SIGKILL);
    }

    fn force(&self, signal: Signal) {
        let pids = self.shared.force();
        self.shared.shutdown(false, true);
        for pid in pids {
            sys::signal(pid, signal);
        }
    }

    /// The most workers this pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    /// How this pool starts its workers.
    pub fn start_method(&self) -> StartMethod {
        self.shared.config.method
    }

    /// The pids of the live workers (Python's `_processes` keys).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.worker_pids()
    }

    /// Why the pool is broken, if it is.
    pub fn broken(&self) -> Option<BrokenExecutor> {
        self.shared.broken()
    }

    /// The pool's counts now: tasks pending (not yet sent to a worker), running (sent to a
    /// worker and not yet answered: a worker holds at most its running task and the next),
    /// finished (answered by a worker), and the live worker processes — the same names as the
    /// thread pool's `stats()`. One short lock of the pool's bookkeeping. Tasks a full queue
    /// ran in the caller are not counted.
    ///
    /// # Differences from Python
    ///
    /// Python has no counts (gh-66477).
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// The bound of the submit queue ([`ProcessPoolBuilder::max_queue`]); `None`: unbounded.
    pub fn max_queue(&self) -> Option<usize> {
        self.shared.config.max_queue.map(|(n, _)| n)
    }
}

/// `CallerRuns`: the task, called in this thread; its future is done on return.
fn run_here<R>(call: impl FnOnce() -> R) -> Future<R> {
    let future = Future::new();
    let _ = future.set_running_or_notify_cancel();
    let _ = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(value) => future.set_result(value),
        Err(panic) => future.set_exception(TaskError::from_panic(&*panic)),
    };
    future
}

impl Executor for ProcessPoolExecutor {
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        ProcessPoolExecutor::submit(self, f, arg)
    }

    /// One message, and one task in the worker, per chunk (Python's `_process_chunk`).
    fn submit_batch<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<Batch<R>, SubmitError> {
        match self.submit_call(CallSite::chunk_of(f), &args) {
            Err(SubmitError::QueueFull { .. }) if self.caller_runs() => {
                Ok(Batch::Whole(run_here(|| args.into_iter().map(f).collect())))
            }
            submitted => submitted.map(Batch::Whole),
        }
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ProcessPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        self.shared.shutdown(true, false);
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.max_workers())
            .field("start_method", &self.start_method())
            .field("workers", &self.worker_pids())
            .field("broken", &self.broken().is_some())
            .finish()
    }
}
