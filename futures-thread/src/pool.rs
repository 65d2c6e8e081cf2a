//! [`ThreadPoolExecutor`]: Python's `concurrent.futures.ThreadPoolExecutor`.

use crate::builder::ThreadPoolBuilder;
use crate::map::Map;
use crate::shared::Shared;
use crate::shared::ShutdownReport;
use crate::task::Task;
use concurrent_futures_core::shim::sync::Arc;
use concurrent_futures_core::{
    BrokenExecutor, Executor, Future, FutureTask, MapOptions, Payload, PoolStats, SubmitError,
};
use std::fmt;

/// A pool of threads that runs submitted calls: Python's `ThreadPoolExecutor`.
///
/// Threads start lazily, one per submit while no worker is free, up to `max_workers`; an idle
/// worker is always reused before a new thread starts. Dropping the pool is leaving Python's
/// `with` block: `shutdown(wait = true)`, so queued tasks run and every worker is joined.
///
/// Tasks are closures and values of any `Send` type: nothing needs to be `Clone` or
/// serializable.
///
/// * [`submit(f, arg)`](Self::submit) is Python's `submit(fn, arg)`: a function or closure of
///   one argument (several travel as a tuple);
/// * [`spawn(f)`](Self::spawn) runs a closure that takes nothing, as `std::thread::spawn`
///   does (Python's `submit(lambda: …)`);
/// * [`map(f, inputs)`](Self::map) and [`map_with`](Self::map_with) take a `Fn` closure, with
///   Python's options in [`MapOptions`].
///
/// # Examples
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
///
/// fn pow((base, exp): (u64, u32)) -> u64 {
///     base.pow(exp)
/// }
///
/// let pool = ThreadPoolExecutor::new();
/// assert_eq!(pool.submit(pow, (2, 8)).unwrap().result(None).unwrap(), 256);
/// let future = pool.spawn(|| 6 * 7).unwrap();
/// assert_eq!(future.result(None).unwrap(), 42);
///
/// // A panic fails only its own future; the worker keeps serving.
/// let failed = pool.spawn(|| -> u8 { panic!("boom") }).unwrap();
/// assert!(failed.result(None).unwrap_err().to_string().contains("boom"));
/// assert_eq!(pool.spawn(|| 1).unwrap().result(None).unwrap(), 1);
///
/// // A closure that captures, over inputs that are neither `Clone` nor serde types.
/// struct Counter(std::sync::Mutex<u32>);
/// let step = 10;
/// let counters = (0..3).map(|n| Counter(std::sync::Mutex::new(n)));
/// let totals: Vec<u32> = pool
///     .map(move |c: Counter| c.0.into_inner().unwrap() + step, counters)
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(totals, [10, 11, 12]);
/// ```
///
/// # `submit`, `map` and the [`Executor`] trait
///
/// The pool's own `submit`, `map` and `map_with` have the trait's names and shapes, but take
/// any closure and any `Send` values; as inherent methods they are the ones a method call
/// finds, with or without the trait in scope. Whatever the trait accepts (a `fn(A) -> R` over
/// [`Payload`]s) they accept too, so code written for the process pool compiles unchanged on
/// this one. Generic code written against [`Executor`] calls the trait's methods, which run on
/// the same workers:
///
/// ```
/// use concurrent_futures_core::{Executor, MapOptions};
/// use concurrent_futures_thread::ThreadPoolExecutor;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn sum_of_squares<E: Executor>(executor: &E, n: u64) -> u64 {
///     executor.map(square, 1..=n).unwrap().map(Result::unwrap).sum()
/// }
///
/// let pool = ThreadPoolExecutor::new();
/// assert_eq!(pool.submit(square, 3).unwrap().result(None).unwrap(), 9);
/// assert_eq!(Executor::submit(&pool, square, 3).unwrap().result(None).unwrap(), 9);
/// assert_eq!(sum_of_squares(&pool, 3), 14);
/// let firsts: Vec<u64> = Executor::map_with(&pool, square, 1.., MapOptions::new().buffersize(2))
///     .unwrap()
///     .take(3)
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(firsts, [1, 4, 9]);
/// ```
///
/// The trait's `map` returns core's [`Map`](concurrent_futures_core::Map) and keeps its
/// `R: Clone` bound; the pool's own returns [`Map`](crate::Map), which moves every value.
///
/// # Differences from Python
///
/// * `submit` takes one argument; a closure that takes none is given to [`spawn`](Self::spawn)
///   (Rust has no overloading, and the one-argument form must stay the trait's `submit`).
/// * `map` takes one iterator of arguments (zip several yourself), borrows the pool, and
///   checks `chunksize` (0 is refused); where Python's thread pool ignores it, `chunksize(n)`
///   queues the inputs `n` at a time (see [`Map`]).
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
/// * A task that waits on the pool does not starve it (see below), where Python's pool
///   deadlocks once every worker waits on a task queued behind it; so the pool may run more
///   than `max_workers` threads while tasks wait (at most 255 more), and shrinks back after.
/// * Beyond Python, all off by default: a bounded submit queue
///   ([`ThreadPoolBuilder::max_queue`]), counts ([`stats`](Self::stats)), and a shutdown with
///   a time limit ([`shutdown_timeout`](Self::shutdown_timeout)).
///
/// # Waiting inside a task
///
/// A task may wait for other futures of its own pool — `result()`, `exception()`,
/// `into_result`, `wait`, `as_completed` (from `concurrent-futures-wait`), or `.await` through
/// a `block_on` that parks inside [`blocking`](concurrent_futures_core::blocking::blocking) —
/// even when every worker is busy: as Java's `ForkJoinPool` does for a `ManagedBlocker`, the
/// pool *compensates*. A worker whose task is about to sleep in such a wait is counted
/// blocked, and while it is, the pool may run one spare thread more, started only if a task is
/// queued and no thread is free for it. So a chain of tasks each waiting for the next one
/// finishes even on a one-worker pool. Once the waits end, threads beyond `max_workers`
/// retire as they next look for work: a spare busy with a long task finishes it first, so
/// for that long the pool may run more than `max_workers` tasks at once.
/// [`worker_count`](Self::worker_count) and [`stats`](Self::stats) count the spares while they
/// serve. A spare that retires is not joined: `shutdown(wait=True)` waits for the workers
/// that serve, and a retired spare may still be ending its thread (it runs no task) when it
/// returns.
///
/// The bound: at most [`max_spare_threads`](crate::ThreadPoolBuilder::max_spare_threads)
/// spares (default and most 255) at once; a wait beyond that many is not compensated, and may
/// then wait for a worker as in Python. A worker blocked in a wait leaves its place free for
/// the bounded queue ([`max_queue`](crate::ThreadPoolBuilder::max_queue) counts only the tasks
/// that no thread, spare included, can start). Waits the pool cannot see — a lock, a channel's
/// `recv`, a submit waiting for room in a full queue — are not compensated unless wrapped in
/// [`blocking`](concurrent_futures_core::blocking::blocking). A scope's own wait for its
/// tasks is not compensated either: it runs the tasks no worker has taken itself. Waits on
/// threads that are not this pool's workers behave exactly as before.
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
/// use std::sync::Arc;
///
/// fn depth(pool: Arc<ThreadPoolExecutor>, n: u32) -> u32 {
///     if n == 0 {
///         return 0;
///     }
///     let inner = pool.clone();
///     pool.spawn(move || depth(inner, n - 1)).unwrap().result(None).unwrap() + 1
/// }
///
/// let pool = Arc::new(ThreadPoolExecutor::builder().max_workers(1).build().unwrap());
/// let inner = pool.clone();
/// assert_eq!(pool.spawn(move || depth(inner, 20)).unwrap().result(None).unwrap(), 20);
/// ```
///
/// Python's pool, given the same chain, waits forever: its one worker waits for a task that
/// only that worker could run.
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

    /// Schedules `f(arg)` and returns a future for its result: Python's `submit(fn, arg)`.
    ///
    /// `f` is a function or a closure of one argument (several travel as a tuple); `arg` and
    /// the result may be of any `Send` type. For a closure of no argument, see
    /// [`spawn`](Self::spawn).
    ///
    /// Fails with [`SubmitError::Shutdown`] after `shutdown` ("cannot schedule new futures
    /// after shutdown") and with [`SubmitError::Broken`] once an initializer has failed. On a
    /// pool with a bounded queue ([`ThreadPoolBuilder::max_queue`]) a full queue makes it
    /// wait, fail with [`SubmitError::QueueFull`], or run `f` in this thread, by the policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = mpsc::channel();
    /// let sum = pool.submit(|rx: mpsc::Receiver<u32>| rx.iter().sum::<u32>(), rx).unwrap();
    /// (1..=4).for_each(|n| tx.send(n).unwrap());
    /// drop(tx);
    /// assert_eq!(sum.result(None).unwrap(), 10);
    /// ```
    pub fn submit<F, A, R>(&self, f: F, arg: A) -> Result<Future<R>, SubmitError>
    where
        F: FnOnce(A) -> R + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
    {
        self.spawn(move || f(arg))
    }

    /// Schedules the closure `f` and returns a future for its result: Python's
    /// `submit(lambda: …)`, named as `std::thread::spawn` is.
    ///
    /// Fails as [`submit`](Self::submit) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let words = vec!["alpha", "beta"];
    /// let future = pool.spawn(move || words.concat()).unwrap();
    /// assert_eq!(future.result(None).unwrap(), "alphabeta");
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (task, future) = FutureTask::new(f);
        Shared::submit(&self.shared, Task::Future(task))?;
        Ok(future)
    }

    /// `f` over every input, results in input order: Python's `map(fn, iterable)` with the
    /// default options (every input submitted now, no timeout). See [`Map`] for the semantics
    /// and [`map_with`](Self::map_with) for the options.
    ///
    /// `f` may capture (it is shared by the tasks, hence `Fn + Sync`); inputs and results may
    /// be of any `Send` type.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let offset = 100;
    /// let shifted: Vec<u64> = pool.map(move |x: u64| x + offset, 1..=3).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(shifted, [101, 102, 103]);
    /// ```
    pub fn map<F, A, R, I>(&self, f: F, inputs: I) -> Result<Map<'_, I::IntoIter, R>, SubmitError>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, inputs, MapOptions::new())
    }

    /// `f` over every input with Python 3.14's `map` options: the timeout (counted from this
    /// call), `buffersize`, and `chunksize` (inputs queued that many at a time, where Python's
    /// thread pool ignores it). See [`Map`] for the semantics.
    ///
    /// Submission errors (shut down, broken, an invalid option) are returned here; without a
    /// `buffersize` every input is consumed and submitted before this returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_core::MapOptions;
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let options = MapOptions::new().buffersize(4).timeout(Duration::from_secs(60));
    /// // An endless input: only `buffersize` tasks run ahead of the consumer.
    /// let lines: Vec<String> = pool
    ///     .map_with(|n: u64| format!("line {n}"), 0.., options)
    ///     .unwrap()
    ///     .take(2)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(lines, ["line 0", "line 1"]);
    /// ```
    pub fn map_with<F, A, R, I>(
        &self,
        f: F,
        inputs: I,
        options: MapOptions,
    ) -> Result<Map<'_, I::IntoIter, R>, SubmitError>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        Map::start(self, std::sync::Arc::new(f), inputs.into_iter(), options)
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

    /// Python's `shutdown` with a time limit: no new tasks; every task not started is
    /// cancelled (and notified, as by `shutdown(wait, cancel_futures = true)`); then waits up
    /// to `limit` for the workers to finish their running tasks and exit.
    ///
    /// If they all exit in time, they are joined and the report [`is_complete`]. Otherwise it
    /// returns at the limit and reports the tasks still running ([`still_running`], by their
    /// futures' [`id`](Future::id)s): threads cannot be killed, so those keep running, *detached*
    /// — not joined, now or later: a later `shutdown(wait = true)` or dropping the pool does not
    /// wait for them — and each exits once its task returns; their futures still complete.
    /// Called from one of the pool's own tasks, it does not wait (as `shutdown(wait)`) and
    /// detaches nothing: the owner's later `shutdown(wait)` still joins every worker.
    ///
    /// The limit bounds the wait for the workers' tasks; joining workers that have left their
    /// loop also waits for their threads' thread-local destructors, which the limit does not
    /// bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPoolExecutor::builder().max_workers(1).build().unwrap();
    /// let (started, running) = mpsc::channel();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let stuck = pool.spawn(move || { started.send(()).unwrap(); gate.recv().unwrap() }).unwrap();
    /// let queued = pool.spawn(|| ()).unwrap();
    /// running.recv().unwrap();
    /// let report = pool.shutdown_timeout(Duration::from_millis(10));
    /// assert_eq!(report.cancelled, 1);
    /// assert!(queued.cancelled());
    /// assert_eq!(report.still_running, [stuck.id()]);
    /// assert!(!report.is_complete());
    /// release.send(()).unwrap(); // the detached worker finishes its task, then exits
    /// stuck.result(None).unwrap();
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python's `shutdown` has no time limit (gh-72165): `shutdown(wait=True)` waits for ever
    /// and `wait=False` does not wait at all.
    ///
    /// [`is_complete`]: ShutdownReport::is_complete
    /// [`still_running`]: ShutdownReport::still_running
    pub fn shutdown_timeout(&self, limit: std::time::Duration) -> ShutdownReport {
        self.shared.shutdown_timeout(limit)
    }

    /// The pool's counts now: tasks pending (submitted, not taken by a worker), running (a
    /// task blocked in a wait counts as running), finished by workers (retired spares'
    /// included), and the live worker threads (spares included while they serve) — the same
    /// names as the process pool's `stats()`. Reads atomics and each worker's own counter; the submit and task
    /// paths take no lock for them, so reading is cheap at any time. Tasks run in the
    /// submitting thread (a full queue's `CallerRuns`, or a scope at its end) are not counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
    /// assert_eq!(pool.stats().workers, 0);
    /// pool.spawn(|| ()).unwrap().result(None).unwrap();
    /// pool.shutdown(true, false);
    /// let stats = pool.stats();
    /// assert_eq!((stats.pending, stats.running, stats.finished, stats.workers), (0, 0, 1, 0));
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python has no counts (gh-66477).
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// The bound of the submit queue ([`ThreadPoolBuilder::max_queue`]); `None`: unbounded.
    pub fn max_queue(&self) -> Option<usize> {
        self.shared.config.max_queue.map(|b| b.limit)
    }

    /// The most threads this pool runs tasks on, besides the spares it starts while tasks wait
    /// (see [Waiting inside a task](Self#waiting-inside-a-task)).
    pub fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    /// Worker threads serving now: at most `max_workers`, plus the spares started while tasks
    /// wait on the pool (see [Waiting inside a task](Self#waiting-inside-a-task)), which retire
    /// once those waits end. Otherwise they live until shutdown, as in Python.
    pub fn worker_count(&self) -> usize {
        self.shared.stats().workers
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
        ThreadPoolExecutor::submit(self, f, arg)
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
