//! [`ProcessPoolBuilder`]: Python's `ProcessPoolExecutor(...)` constructor arguments.

use crate::launch::{self, StartMethod};
use crate::pool::ProcessPoolExecutor;
use crate::shared::{Config, Shared, Supervision};
use crate::wire::{self, Init};
use crate::{forkserver, sys};
use concurrent_futures_core::{Payload, PayloadError, PayloadStage, QueueFullPolicy};
use concurrent_futures_remote::auth::{CallKey, Version};
use concurrent_futures_remote::call::CallSite;
use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Configures a [`ProcessPoolExecutor`]; made by [`ProcessPoolExecutor::builder`].
///
/// # Examples
///
/// ```
/// use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
///
/// fn pid(_: ()) -> u32 {
///     std::process::id()
/// }
///
/// let pool = ProcessPoolExecutor::builder()
///     .max_workers(1)
///     .start_method(StartMethod::Fork)
///     .build()
///     .unwrap();
/// assert_ne!(pool.submit(pid, ()).unwrap().result(None).unwrap(), std::process::id());
/// ```
///
/// # Differences from Python
///
/// Python takes these as constructor arguments, and the start method as `mp_context`; here
/// they are builder methods. `initializer` takes a function and its argument (Python's
/// `initializer` and `initargs`).
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    method: StartMethod,
    initializer: Option<Result<(CallSite, Vec<u8>), PayloadError>>,
    max_tasks_per_child: Option<usize>,
    handshake_timeout: Option<Duration>,
    max_queue: Option<usize>,
    queue_full_policy: QueueFullPolicy,
    supervision: Supervision,
    stop_on_interrupt: bool,
}

impl ProcessPoolBuilder {
    /// How long a new worker started by [`StartMethod::ForkServer`] or [`StartMethod::Spawn`]
    /// may take to connect to the pool unless [`handshake_timeout`](Self::handshake_timeout)
    /// says otherwise: ten seconds, hundreds of times what a start takes on a loaded machine.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// At most this many worker processes (default: `available_parallelism`); 0 is an error.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// How workers are started (default [`StartMethod::ForkServer`], as Python 3.14 on Linux).
    ///
    /// [`StartMethod::Fork`] forks the pool's own, multi-threaded process: a task that takes a
    /// lock another thread of the program held at that instant hangs forever (see the hazard
    /// on [`StartMethod::Fork`]; it is why Python 3.14 made `forkserver` the default). Choose
    /// it only for tasks that take no lock shared with the program's other threads.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = method;
        self
    }

    /// Runs `f(arg)` in each worker before its first task (Python's `initializer` and
    /// `initargs`). If it panics, the worker exits and the pool breaks, as in Python.
    pub fn initializer<A: Payload>(mut self, f: fn(A), arg: A) -> Self {
        let encoded = postcard::to_allocvec(&arg)
            .map(|bytes| (CallSite::of(f), bytes))
            .map_err(|e| PayloadError::new(PayloadStage::EncodeArgument, e.to_string()));
        self.initializer = Some(encoded);
        self
    }

    /// Replaces a worker after it has run this many tasks (Python's `max_tasks_per_child`),
    /// with every start method.
    ///
    /// # Differences from Python
    ///
    /// Python refuses it with the `fork` method, since a replacement is forked from a process
    /// that has threads by then. Here every `Fork` worker is forked from the pool's
    /// multi-threaded process anyway (with the hazard documented on [`StartMethod::Fork`]),
    /// so a replacement is no different.
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// How long a new worker may take to connect (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](Self::DEFAULT_HANDSHAKE_TIMEOUT)). A worker that has not
    /// connected by then (its `main` blocks before [`bootstrap`](crate::bootstrap), say) is
    /// killed and reaped, and the pool breaks with an error naming its pid and the cause.
    /// [`StartMethod::Fork`] has no hand-shake.
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = Some(limit);
        self
    }

    /// Bounds the submit queue: at most `n` submitted tasks wait that were not yet sent to a
    /// worker (tasks sent to a worker do not count). A submit that finds `n` waiting follows
    /// the [`queue_full_policy`](Self::queue_full_policy); `submit` and the [`Executor`]
    /// trait's `map` (each chunk is one task) go through it. Zero is refused by
    /// [`build`](Self::build). Default: unbounded, as in Python.
    ///
    /// ```
    /// use concurrent_futures_core::{Executor, QueueFullPolicy};
    /// use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
    ///
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .start_method(StartMethod::Fork)
    ///     .max_queue(2)
    ///     .queue_full_policy(QueueFullPolicy::Block { timeout: None })
    ///     .build()
    ///     .unwrap();
    /// let sum: u64 = pool.map(square, 1..=10).unwrap().map(Result::unwrap).sum();
    /// assert_eq!(sum, 385);
    /// assert_eq!(pool.max_queue(), Some(2));
    /// ```
    ///
    /// [`Executor`]: concurrent_futures_core::Executor
    pub fn max_queue(mut self, n: usize) -> Self {
        self.max_queue = Some(n);
        self
    }

    /// What a submit does when the queue bounded by [`max_queue`](Self::max_queue) is full
    /// (default: wait for room, [`QueueFullPolicy::Block`] without a timeout). With
    /// [`QueueFullPolicy::CallerRuns`] the submitting thread calls the function itself, in
    /// this process: a panic then fails the future with [`TaskError::Panicked`] rather than
    /// [`TaskError::Remote`], and nothing is serialized. Without `max_queue` it has no effect.
    ///
    /// [`TaskError::Panicked`]: concurrent_futures_core::TaskError::Panicked
    /// [`TaskError::Remote`]: concurrent_futures_core::TaskError::Remote
    pub fn queue_full_policy(mut self, policy: QueueFullPolicy) -> Self {
        self.queue_full_policy = policy;
        self
    }

    /// Crash isolation (default off, as in Python): a worker that dies in the middle of a
    /// task — a segfault, an abort, an out-of-memory kill, `exit` — fails only that task's
    /// future, with [`TaskError::Stopped`] ([`StopReason::WorkerDied`], naming the task, the
    /// pid and how the process ended), and a new worker takes its place; every other future
    /// and the pool stay healthy. A worker that dies in its initializer still breaks the pool,
    /// and so does a restart storm (see [`max_restarts`](Self::max_restarts)). With isolation
    /// each worker holds only the task it runs (no task waits in a worker behind another).
    ///
    /// ```
    /// use concurrent_futures_core::{StopReason, TaskError};
    /// use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
    ///
    /// fn crash(code: i32) -> i32 {
    ///     std::process::exit(code)
    /// }
    ///
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .start_method(StartMethod::Fork)
    ///     .isolate_crashes(true)
    ///     .build()
    ///     .unwrap();
    /// let error = pool.submit(crash, 3).unwrap().exception(None).unwrap().unwrap();
    /// let TaskError::Stopped(stopped) = error else { panic!("{error}") };
    /// assert_eq!(stopped.reason(), StopReason::WorkerDied);
    /// assert_eq!(stopped.ended(), "exited with code 3");
    /// assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
    /// assert!(pool.broken().is_none());
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python always breaks the pool (`BrokenProcessPool` for every pending future); that stays
    /// the default here.
    ///
    /// [`TaskError::Stopped`]: concurrent_futures_core::TaskError::Stopped
    /// [`StopReason::WorkerDied`]: concurrent_futures_core::StopReason::WorkerDied
    pub fn isolate_crashes(mut self, on: bool) -> Self {
        self.supervision.isolate_crashes = on;
        self
    }

    /// The restart-storm guard of [`isolate_crashes`](Self::isolate_crashes): when more than
    /// `deaths` workers die unasked within `window`, the pool breaks with
    /// `BrokenProcessPool`, saying so, instead of starting workers forever for a task (or a
    /// machine) that kills every worker it touches. Default: more than 16 within a minute.
    /// Deaths the pool caused (time limits, cancels) do not count.
    pub fn max_restarts(mut self, deaths: usize, window: Duration) -> Self {
        self.supervision.max_restarts = (deaths, window);
        self
    }

    /// Every task's time limit (default none; a submit can give its own with
    /// [`submit_with_timeout`](ProcessPoolExecutor::submit_with_timeout)). A task still running
    /// when its limit passes is stopped: its worker's process group gets `SIGTERM`, then
    /// `SIGKILL` after the [`grace_period`](Self::grace_period); the future fails with
    /// [`TaskError::Stopped`] ([`StopReason::TimedOut`]) and a new worker takes the old one's
    /// place. The clock starts when the task is sent to a worker; a task with a limit never
    /// waits in a worker behind another.
    ///
    /// # Differences from Python
    ///
    /// Python's `result(timeout)` only stops waiting; the task runs on.
    ///
    /// [`TaskError::Stopped`]: concurrent_futures_core::TaskError::Stopped
    /// [`StopReason::TimedOut`]: concurrent_futures_core::StopReason::TimedOut
    pub fn task_timeout(mut self, limit: Duration) -> Self {
        self.supervision.task_timeout = Some(limit);
        self
    }

    /// How long a worker that is being stopped (a time limit, a cancel, a shutdown's limit,
    /// an interrupt) has between `SIGTERM` and `SIGKILL` (default 1 s). `SIGTERM` goes to the
    /// worker's whole process group, with `SIGCONT` so that a stopped (`SIGSTOP`) worker acts
    /// on it; a worker that ignores it is killed when the grace period ends. Zero sends
    /// `SIGKILL` at once.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.supervision.grace = grace;
        self
    }

    /// Lets [`Future::cancel`](concurrent_futures_core::Future::cancel) stop a running task
    /// (default off, as in Python): the future is cancelled at once (`wait` and `as_completed`
    /// see it), and the worker running the task is stopped as a time limit stops it, then
    /// replaced. Each worker then holds only the task it runs.
    ///
    /// Everything that cancels futures then stops running tasks too: dropping a `map`'s
    /// iterator early, or a `map` that ends on a failed item, cancels the chunks still running.
    ///
    /// ```
    /// use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
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
    ///     .cancel_running(true)
    ///     .build()
    ///     .unwrap();
    /// let future = pool.submit(forever, ()).unwrap();
    /// while !future.running() {
    ///     std::thread::yield_now();
    /// }
    /// assert!(future.cancel());
    /// assert!(future.cancelled());
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python's `cancel()` fails on a running task.
    pub fn cancel_running(mut self, on: bool) -> Self {
        self.supervision.cancel_running = on;
        self
    }

    /// Recycles a worker whose resident memory is above `bytes` after a task (default: no
    /// limit): it takes no new task and leaves once idle; a new worker starts when work needs
    /// one. The memory is read from `/proc/<pid>/statm` after each task.
    ///
    /// # Differences from Python
    ///
    /// Python recycles by task count only (`max_tasks_per_child`); loky recycles by memory.
    pub fn max_worker_memory(mut self, bytes: u64) -> Self {
        self.supervision.max_memory = Some(bytes);
        self
    }

    /// Recycles a worker idle for `limit` (default: never): the pool shrinks to no process at
    /// all when it has no work, and grows again on demand.
    ///
    /// # Differences from Python
    ///
    /// Python keeps its workers until shutdown; loky has the same option.
    pub fn idle_timeout(mut self, limit: Duration) -> Self {
        self.supervision.idle_timeout = Some(limit);
        self
    }

    /// Ctrl-C stops the pool's work (default off: as in Python, workers ignore `SIGINT` and
    /// the program decides). On, the first `SIGINT` the program gets shuts the pool down
    /// (`shutdown(false, true)`: queued tasks are cancelled) and stops every worker running a
    /// task (`SIGTERM` to its process group, `SIGKILL` after the
    /// [`grace_period`](Self::grace_period)); those futures fail with
    /// [`TaskError::Stopped`] ([`StopReason::Interrupted`]).
    ///
    /// The program's own `SIGINT` handler still runs: the pool's handler, installed by the
    /// first such pool, calls the one that was there before it. Install yours before building
    /// the pool (a handler installed later replaces the pool's). If `SIGINT` was left at its
    /// default, the program then ends as Ctrl-C would have ended it, once the pools' workers
    /// are gone. If the program ignores `SIGINT` when the pool is built, so does the pool.
    ///
    /// # Differences from Python
    ///
    /// Python has no such option (gh-125886): its workers ignore `SIGINT`, and a
    /// `KeyboardInterrupt` in the main thread leaves queued and running work to finish.
    ///
    /// [`TaskError::Stopped`]: concurrent_futures_core::TaskError::Stopped
    /// [`StopReason::Interrupted`]: concurrent_futures_core::StopReason::Interrupted
    pub fn stop_on_interrupt(mut self, on: bool) -> Self {
        self.stop_on_interrupt = on;
        self
    }

    /// Checks the settings and makes the pool. No process starts until the first submit.
    pub fn build(self) -> Result<ProcessPoolExecutor, BuildError> {
        let max_workers = match self.max_workers {
            Some(0) => return Err(BuildError::MaxWorkers),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_queue == Some(0) {
            return Err(BuildError::MaxQueue);
        }
        if self.max_tasks_per_child == Some(0) {
            return Err(BuildError::MaxTasksPerChild);
        }
        match self.method {
            // A spawned worker runs `main` again up to `bootstrap()`: that call must exist and
            // come first (a late call, once threads exist, is refused as the fork server is).
            StartMethod::ForkServer | StartMethod::Spawn => match forkserver::get() {
                None => return Err(BuildError::NotBootstrapped(self.method)),
                Some(Err(why)) => return Err(BuildError::Bootstrap(why.to_owned())),
                Some(Ok(_)) => {}
            },
            StartMethod::Fork => {
                if let Some(n @ 2..) = sys::thread_count() {
                    log::warn!(
                        target: "concurrent_futures",
                        "this process has {n} threads; forking it may deadlock the worker if \
                         another thread holds a lock (the ForkServer start method is safe)"
                    );
                }
            }
        }
        let initializer = self
            .initializer
            .transpose()
            .map_err(BuildError::Initializer)?;
        let key = CallKey::generate().map_err(|e| BuildError::Randomness(e.kind()))?;
        // ipc-channel's first use on this thread, where a failure is harmless (see
        // `warm_up_ipc_channel`); if no descriptor is free now, each launch tries again.
        let _ = launch::warm_up_ipc_channel();
        let max_tasks = self.max_tasks_per_child.map(|n| n as u64);
        let has_initializer = initializer.is_some();
        let init = wire::encode_init(&Init {
            version: Version::ours(),
            key: key.clone(),
            initializer: initializer.map(|(site, args)| (key.seal(site), args)),
            max_tasks,
        });
        let shared = Shared::new(Config {
            max_workers,
            method: self.method,
            key,
            init,
            has_initializer,
            max_tasks,
            handshake_timeout: self
                .handshake_timeout
                .unwrap_or(Self::DEFAULT_HANDSHAKE_TIMEOUT),
            max_queue: self.max_queue.map(|n| (n, self.queue_full_policy)),
            supervision: self.supervision,
        });
        if self.stop_on_interrupt {
            crate::interrupt::watch(std::sync::Arc::downgrade(&shared))
                .map_err(BuildError::InterruptHandler)?;
        }
        Ok(ProcessPoolExecutor::from_shared(shared))
    }
}

/// Why [`ProcessPoolBuilder::build`] refused.
///
/// Its `Display` is one line and never repeats its [`source`](Error::source): a reporter that
/// walks the chain prints each message once. Its `Debug` is that message followed by the
/// source's, as `anyhow`'s is, so that `build().unwrap()` in a program that forgot
/// [`bootstrap`](crate::bootstrap) panics with the line to add:
///
/// ```text
/// called `Result::unwrap()` on an `Err` value: the 'forkserver' start method needs
/// `concurrent_futures::process::bootstrap();` as the first line of `main` (…)
/// ```
///
/// # Differences from Python
///
/// Python raises `ValueError` from the constructor, or fails later in the child when the
/// `__main__` guard is missing; here `build()` returns this error, and a missing `bootstrap()`
/// is caught when the pool is built.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_workers(0)` (Python's `ValueError`).
    MaxWorkers,
    /// `max_tasks_per_child(0)`.
    MaxTasksPerChild,
    /// `max_queue(0)`.
    MaxQueue,
    /// The program never called [`bootstrap`](crate::bootstrap), which this start method needs.
    NotBootstrapped(StartMethod),
    /// [`bootstrap`](crate::bootstrap) ran but could not prepare the program, most often
    /// because it was not the first call in `main` and threads already existed (the reason is
    /// given).
    Bootstrap(String),
    /// The initializer's argument could not be serialized (the serializer's error is the
    /// [`source`](Error::source)).
    Initializer(PayloadError),
    /// The operating system's random number generator failed, so the pool could not draw the
    /// key that its workers check every call with.
    Randomness(std::io::ErrorKind),
    /// [`stop_on_interrupt`](ProcessPoolBuilder::stop_on_interrupt) could not install its
    /// `SIGINT` handler (the reason is given).
    InterruptHandler(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MaxWorkers => f.write_str("max_workers must be greater than 0"),
            BuildError::MaxTasksPerChild => f.write_str("max_tasks_per_child must be >= 1"),
            BuildError::MaxQueue => f.write_str("max_queue must be greater than 0"),
            BuildError::NotBootstrapped(method) => write!(
                f,
                "the '{}' start method needs `concurrent_futures::process::bootstrap();` as the \
                 first line of `main` (in an async `main` or a test binary: \
                 `concurrent_futures::process::bootstrap_before_main!();` at the top level)",
                method.name()
            ),
            BuildError::Bootstrap(why) => {
                write!(f, "bootstrap() could not prepare this program: {why}")
            }
            BuildError::Initializer(_) => {
                f.write_str("the initializer cannot be sent to the workers")
            }
            BuildError::InterruptHandler(why) => {
                write!(f, "stop_on_interrupt could not be set up: {why}")
            }
            BuildError::Randomness(kind) => write!(
                f,
                "the operating system's random number generator failed ({kind}), so no key to \
                 authenticate the pool's calls could be drawn"
            ),
        }
    }
}

/// The message and its source's, unquoted: what `unwrap()` and `expect()` print.
impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)?;
        let mut source = self.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::Initializer(e) => Some(e),
            _ => None,
        }
    }
}
