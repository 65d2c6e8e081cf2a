//! [`ProcessPoolExecutor`]: Python's `concurrent.futures.ProcessPoolExecutor`.

use crate::builder::{BuildError, ProcessPoolBuilder};
use crate::launch::StartMethod;
use crate::shared::{FutureSink, Job, Shared};
use crate::workers::{ShutdownReport, WorkerExit, WorkerInfo};
use crate::{sys, wire};
use concurrent_futures_core::{
    Batch, BrokenExecutor, Executor, Future, Payload, PayloadError, PayloadStage, PoolStats,
    QueueFullPolicy, SubmitError, TaskError,
};
use concurrent_futures_remote::call::CallSite;
use nix::sys::signal::Signal;
use serde::Serialize;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

/// A pool of worker processes: Python's `ProcessPoolExecutor`.
///
/// Tasks are plain functions `fn(A) -> R` (or closures that capture nothing) whose argument
/// and result are serde types; they run in another process of the same program, so a task that
/// crashes its process cannot take the caller down. Workers start on demand, up to
/// `max_workers`, and are reused while idle.
///
/// A worker that dies (abort, segfault, `SIGKILL`, `exit` mid-task, a failing initializer)
/// breaks the pool, as in Python: every pending future fails with `BrokenProcessPool`, naming
/// the worker's pid and how it ended, and later submits are refused. With
/// [`isolate_crashes`](ProcessPoolBuilder::isolate_crashes) only the dead worker's task fails
/// and a new worker takes its place (see the crate's "Beyond Python" for the other options:
/// time limits, cancel of running tasks, recycling, `shutdown_timeout`, Ctrl-C). A task that panics only
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
        let timeout = self.shared.config.supervision.task_timeout;
        match self.submit_call(CallSite::of(f), &arg, timeout) {
            Err(SubmitError::QueueFull { .. }) if self.caller_runs() => Ok(run_here(|| f(arg))),
            submitted => submitted,
        }
    }

    /// [`submit`](Self::submit) with a time limit for this task (instead of the pool's
    /// [`task_timeout`](ProcessPoolBuilder::task_timeout)). If the task still runs `limit`
    /// after it was sent to a worker, the pool stops that worker (`SIGTERM` to its process
    /// group, then `SIGKILL` after the [`grace_period`](ProcessPoolBuilder::grace_period)),
    /// fails the future with [`TaskError::Stopped`] ([`StopReason::TimedOut`], naming the task
    /// and the worker) and starts a new worker in its place. The rest of the pool carries on.
    ///
    /// A task that a full queue runs in the caller ([`QueueFullPolicy::CallerRuns`]) has no
    /// limit.
    ///
    /// ```
    /// use concurrent_futures_core::{StopReason, TaskError};
    /// use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
    /// use std::time::Duration;
    ///
    /// fn forever(_: ()) {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .start_method(StartMethod::Fork)
    ///     .build()
    ///     .unwrap();
    /// let future = pool
    ///     .submit_with_timeout(forever, (), Duration::from_millis(100))
    ///     .unwrap();
    /// match future.exception(None).unwrap() {
    ///     Some(TaskError::Stopped(s)) => {
    ///         assert_eq!(s.reason(), StopReason::TimedOut(Duration::from_millis(100)))
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python has no way to stop a task: `result(timeout)` only stops waiting for it.
    ///
    /// [`TaskError::Stopped`]: concurrent_futures_core::TaskError::Stopped
    /// [`StopReason::TimedOut`]: concurrent_futures_core::StopReason::TimedOut
    pub fn submit_with_timeout<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
        limit: Duration,
    ) -> Result<Future<R>, SubmitError> {
        match self.submit_call(CallSite::of(f), &arg, Some(limit)) {
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
        timeout: Option<Duration>,
    ) -> Result<Future<R>, SubmitError> {
        let id = self.shared.next_id();
        let future = Future::new();
        let site = self.shared.config.key.seal(site);
        match wire::encode_task(id, site, arg) {
            Ok(message) => {
                let sink = Box::new(FutureSink(future.clone()));
                self.shared.enqueue(Job {
                    id,
                    message,
                    sink,
                    timeout,
                })?;
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

    /// `shutdown` with a time limit: no new tasks, every queued task is cancelled, and the
    /// tasks already running get until `limit` to finish; then the workers still running one
    /// are stopped (`SIGTERM` to each worker's process group, `SIGKILL` after the
    /// [`grace_period`](ProcessPoolBuilder::grace_period)) and their futures fail with
    /// [`TaskError::Stopped`] ([`StopReason::ShutdownTimedOut`]). Returns once every worker
    /// has ended and been reaped, within `limit` plus the grace period (plus the time a worker
    /// being started may take to connect), with what it cancelled and stopped.
    ///
    /// ```
    /// use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
    /// use std::time::Duration;
    ///
    /// fn forever(_: ()) {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .start_method(StartMethod::Fork)
    ///     .build()
    ///     .unwrap();
    /// let futures: Vec<_> = (0..10).map(|_| pool.submit(forever, ()).unwrap()).collect();
    /// while !futures[0].running() {
    ///     std::thread::yield_now();
    /// }
    /// let report = pool.shutdown_timeout(Duration::from_millis(50));
    /// // The running task, and the one its worker held next, were stopped; the rest cancelled.
    /// assert_eq!(report.stopped, [0, 1]);
    /// assert_eq!(report.cancelled, 8);
    /// assert!(futures[0].exception(None).unwrap().is_some());
    /// assert!(futures[9].cancelled());
    /// assert!(pool.worker_pids().is_empty());
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python's `shutdown` has no time limit (gh-72165).
    ///
    /// [`TaskError::Stopped`]: concurrent_futures_core::TaskError::Stopped
    /// [`StopReason::ShutdownTimedOut`]: concurrent_futures_core::StopReason::ShutdownTimedOut
    pub fn shutdown_timeout(&self, limit: Duration) -> ShutdownReport {
        self.shared.shutdown_timeout(limit)
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
    /// finished (answered by a worker, or stopped in one), and the live worker processes — the same names as the
    /// thread pool's `stats()`. One short lock of the pool's bookkeeping. Tasks a full queue
    /// ran in the caller are not counted.
    ///
    /// # Differences from Python
    ///
    /// Python has no counts (gh-66477).
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// Each live worker process: its pid, what it is doing, how many tasks it ran, its
    /// resident memory. One short lock, then one small `/proc` read per worker.
    ///
    /// # Differences from Python
    ///
    /// Python has only the pids (`_processes`).
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let mut workers = self.shared.workers();
        for worker in &mut workers {
            worker.resident_memory = sys::resident_memory(worker.pid as i32);
        }
        workers
    }

    /// The last 256 worker processes that ended, oldest first: pid, why (asked to leave,
    /// crashed, timed out, recycled, …), how (exit code or signal), when, and the task it
    /// was running.
    ///
    /// # Differences from Python
    ///
    /// Python keeps no history.
    pub fn exit_history(&self) -> Vec<WorkerExit> {
        self.shared.exit_history()
    }

    /// How many worker processes this pool has started (that connected), ever.
    pub fn workers_started(&self) -> u64 {
        self.shared.workers_started()
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
        let timeout = self.shared.config.supervision.task_timeout;
        match self.submit_call(CallSite::chunk_of(f), &args, timeout) {
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
