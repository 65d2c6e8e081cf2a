//! [`ProcessPoolBuilder`]: Python's `ProcessPoolExecutor(...)` constructor arguments.

use crate::auth::{CallKey, Version};
use crate::call::CallSite;
use crate::launch::{self, StartMethod};
use crate::pool::ProcessPoolExecutor;
use crate::shared::{Config, Shared};
use crate::wire::{self, Init};
use crate::{forkserver, sys};
use concurrent_futures_core::{Payload, PayloadError, PayloadStage, QueueFullPolicy};
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

    /// Replaces a worker after it has run this many tasks (Python's `max_tasks_per_child`).
    /// Refused with [`StartMethod::Fork`], as in Python.
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
        match self.max_tasks_per_child {
            Some(0) => return Err(BuildError::MaxTasksPerChild),
            Some(_) if self.method == StartMethod::Fork => {
                return Err(BuildError::MaxTasksWithFork);
            }
            _ => {}
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
        let init = wire::encode_init(&Init {
            version: Version::ours(),
            key: key.clone(),
            initializer: initializer.map(|(site, args)| (key.seal(site), args)),
            max_tasks,
        });
        Ok(ProcessPoolExecutor::from_shared(Shared::new(Config {
            max_workers,
            method: self.method,
            key,
            init,
            max_tasks,
            handshake_timeout: self
                .handshake_timeout
                .unwrap_or(Self::DEFAULT_HANDSHAKE_TIMEOUT),
            max_queue: self.max_queue.map(|n| (n, self.queue_full_policy)),
        })))
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
    /// `max_tasks_per_child` with the `Fork` method.
    MaxTasksWithFork,
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
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MaxWorkers => f.write_str("max_workers must be greater than 0"),
            BuildError::MaxTasksPerChild => f.write_str("max_tasks_per_child must be >= 1"),
            BuildError::MaxQueue => f.write_str("max_queue must be greater than 0"),
            BuildError::MaxTasksWithFork => f.write_str(
                "max_tasks_per_child is incompatible with the 'fork' start method; supply a \
                 different start method",
            ),
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
