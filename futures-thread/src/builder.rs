//! [`ThreadPoolBuilder`]: Python's `ThreadPoolExecutor(max_workers, thread_name_prefix,
//! initializer, initargs)`.

use crate::ThreadPoolExecutor;
use crate::shared::{Bound, Config, Initializer, MAX_SPARES, Shared};
use concurrent_futures_core::QueueFullPolicy;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Numbers the default thread-name prefixes, process-wide (`ThreadPoolExecutor-0`, `-1`, …).
static POOL_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Configures a [`ThreadPoolExecutor`].
///
/// # Examples
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(4)
///     .thread_name_prefix("SpecialPool")
///     .initializer(|| println!("worker starting"))
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 4);
/// ```
///
/// A builder is `#[must_use]`: its setters return it, and nothing is built until
/// [`build`](Self::build).
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let builder = concurrent_futures_thread::ThreadPoolExecutor::builder();
/// builder.max_workers(4); // error: unused `ThreadPoolBuilder` that must be used
/// ```
///
/// # Differences from Python
///
/// Python takes these as constructor arguments; `initializer` here is one closure (Python's
/// `initargs` are its captures), and a failing initializer may return an error instead of
/// raising. `max_queue` and `queue_full_policy` have no Python counterpart (its queue is
/// unbounded); they are Java's `ThreadPoolExecutor` bounded queue and rejection policies.
/// `max_spare_threads` bounds the compensation Python does not have (its pool deadlocks where
/// ours starts a spare thread, see
/// [Waiting inside a task](ThreadPoolExecutor#waiting-inside-a-task)).
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    thread_name_prefix: Option<String>,
    initializer: Option<Initializer>,
    max_queue: Option<usize>,
    queue_full_policy: QueueFullPolicy,
    max_spare_threads: Option<usize>,
}

impl ThreadPoolBuilder {
    /// A builder with Python's defaults.
    pub fn new() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// At most this many threads (default `min(32, available_parallelism + 4)`, as Python's
    /// `min(32, os.process_cpu_count() + 4)`). Zero is refused by [`build`](Self::build).
    pub fn max_workers(mut self, max_workers: usize) -> ThreadPoolBuilder {
        self.max_workers = Some(max_workers);
        self
    }

    /// Threads are named `{prefix}_{k}` (default prefix `ThreadPoolExecutor-{n}`, with `n`
    /// counting pools process-wide, as in Python).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> ThreadPoolBuilder {
        self.thread_name_prefix = Some(prefix.into());
        self
    }

    /// Runs `initializer` once at the start of each worker thread. If it panics, the pool
    /// breaks (see [`try_initializer`](Self::try_initializer)).
    pub fn initializer(self, initializer: impl Fn() + Send + Sync + 'static) -> ThreadPoolBuilder {
        self.try_initializer(move || {
            initializer();
            Ok::<(), std::convert::Infallible>(())
        })
    }

    /// Runs `initializer` once at the start of each worker thread. If it returns an error or
    /// panics, the pool becomes broken, as in Python: every queued future fails with a
    /// `BrokenThreadPool` error ([`BrokenKind::ThreadPool`]) carrying the message, and later
    /// submits are refused with it.
    ///
    /// [`BrokenKind::ThreadPool`]: concurrent_futures_core::BrokenKind::ThreadPool
    pub fn try_initializer<E: fmt::Display>(
        mut self,
        initializer: impl Fn() -> Result<(), E> + Send + Sync + 'static,
    ) -> ThreadPoolBuilder {
        self.initializer = Some(std::sync::Arc::new(move || {
            initializer().map_err(|e| e.to_string())
        }));
        self
    }

    /// Bounds the submit queue: at most `n` submitted tasks wait that no worker has taken
    /// (running tasks do not count). A submit that finds `n` waiting follows the
    /// [`queue_full_policy`](Self::queue_full_policy). Every way of submitting goes through
    /// it: `submit`, `spawn`, the pool's `map` and the [`Executor`] trait's `map` (which
    /// submit one input at a time, so a `map` over more inputs than the bound blocks, runs
    /// in the caller, or returns `SubmitError::QueueFull` by the policy) and scoped tasks
    /// (which run in the caller when the queue is full, see [`Scope::spawn`]). Zero is refused
    /// by [`build`](Self::build). Default: unbounded, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_core::{QueueFullPolicy, SubmitError};
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .max_queue(1)
    ///     .queue_full_policy(QueueFullPolicy::Reject)
    ///     .build()
    ///     .unwrap();
    /// let (started, running) = mpsc::channel();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let busy = pool.spawn(move || { started.send(()).unwrap(); gate.recv().unwrap() }).unwrap();
    /// running.recv().unwrap(); // the worker is busy
    /// let queued = pool.spawn(|| 2).unwrap(); // waits in the queue: it is full now
    /// assert_eq!(pool.spawn(|| 3).unwrap_err(), SubmitError::QueueFull { bound: 1 });
    /// release.send(()).unwrap();
    /// busy.result(None).unwrap();
    /// assert_eq!(queued.result(None).unwrap(), 2);
    /// ```
    ///
    /// [`Executor`]: concurrent_futures_core::Executor
    /// [`Scope::spawn`]: crate::Scope::spawn
    pub fn max_queue(mut self, n: usize) -> ThreadPoolBuilder {
        self.max_queue = Some(n);
        self
    }

    /// What a submit does when the queue bounded by [`max_queue`](Self::max_queue) is full:
    /// wait for room (the default, [`QueueFullPolicy::Block`] without a timeout), refuse, or
    /// run the task in the submitting thread. Without `max_queue` it has no effect.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_core::QueueFullPolicy;
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    ///
    /// // A producer that outruns the workers runs the surplus itself.
    /// let pool = ThreadPoolExecutor::builder()
    ///     .max_workers(2)
    ///     .max_queue(4)
    ///     .queue_full_policy(QueueFullPolicy::CallerRuns)
    ///     .build()
    ///     .unwrap();
    /// let futures: Vec<_> = (0..100u64).map(|n| pool.spawn(move || n * n).unwrap()).collect();
    /// let total: u64 = futures.iter().map(|f| f.result(None).unwrap()).sum();
    /// assert_eq!(total, 328_350);
    /// ```
    pub fn queue_full_policy(mut self, policy: QueueFullPolicy) -> ThreadPoolBuilder {
        self.queue_full_policy = policy;
        self
    }

    /// At most `n` spare threads beyond [`max_workers`](Self::max_workers): one for each
    /// worker whose task is blocked in a wait, while it blocks (see
    /// [Waiting inside a task](ThreadPoolExecutor#waiting-inside-a-task)). Default and most:
    /// 255 (more is refused by [`build`](Self::build)). Zero turns compensation off: a task
    /// waiting on its own pool can then wait forever when every worker waits, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    /// use std::sync::Arc;
    ///
    /// // A task waits for a task it queued on a one-worker pool: a spare thread runs it.
    /// let pool = Arc::new(
    ///     ThreadPoolExecutor::builder().max_workers(1).max_spare_threads(1).build().unwrap(),
    /// );
    /// let inner = pool.clone();
    /// let outer = pool.spawn(move || inner.spawn(|| 6 * 7).unwrap().result(None).unwrap());
    /// assert_eq!(outer.unwrap().result(None).unwrap(), 42);
    /// assert!(ThreadPoolExecutor::builder().max_spare_threads(256).build().is_err());
    /// ```
    pub fn max_spare_threads(mut self, n: usize) -> ThreadPoolBuilder {
        self.max_spare_threads = Some(n);
        self
    }

    /// Builds the pool. No thread starts until the first submit.
    pub fn build(self) -> Result<ThreadPoolExecutor, BuildError> {
        let max_workers = self.max_workers.unwrap_or_else(default_max_workers);
        if max_workers == 0 {
            return Err(BuildError("max_workers must be greater than 0"));
        }
        if self.max_queue == Some(0) {
            return Err(BuildError("max_queue must be greater than 0"));
        }
        let max_spares = self.max_spare_threads.unwrap_or(MAX_SPARES);
        if max_spares > MAX_SPARES {
            return Err(BuildError("max_spare_threads must be at most 255"));
        }
        let name_prefix = self.thread_name_prefix.unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                POOL_COUNTER.fetch_add(1, Ordering::Relaxed)
            )
        });
        let config = Config {
            max_workers,
            name_prefix,
            initializer: self.initializer,
            max_queue: self.max_queue.map(|limit| Bound {
                limit,
                policy: self.queue_full_policy,
            }),
            max_spares,
        };
        Ok(ThreadPoolExecutor::from_shared(Shared::new(config)))
    }
}

/// `min(32, available_parallelism + 4)`: Python 3.13's default.
pub(crate) fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.thread_name_prefix)
            .field("initializer", &self.initializer.is_some())
            .field("max_queue", &self.max_queue)
            .field("queue_full_policy", &self.queue_full_policy)
            .field("max_spare_threads", &self.max_spare_threads)
            .finish()
    }
}

/// A pool could not be built (Python's `ValueError` from the constructor).
///
/// # Differences from Python
///
/// Python raises `ValueError` from the constructor; here `build()` returns this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildError(&'static str);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BuildError {}
