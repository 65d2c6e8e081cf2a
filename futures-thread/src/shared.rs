//! The pool's protocol: one queue, idle-worker accounting, shutdown and breakage.
//!
//! Everything shared between `submit`, the workers and `shutdown` lives in [`Shared`], and every
//! lock and atomic in it comes from core's std/loom shim, so the loom models in
//! `tests/loom_pool.rs` check this very code.
//!
//! * **Queue**: a `VecDeque` under `state`'s lock; `queued` mirrors its length so spinning
//!   workers can watch it without the lock.
//! * **Idle accounting** (Python 3.8's idle semaphore, made exact): `busy` counts workers
//!   between taking a task and the task's closure returning. A worker leaves `busy` *before* it
//!   completes the future, so a caller that wakes from `result()` and submits again finds it
//!   free. `submit` starts a thread only if the queue holds more tasks than there are free
//!   workers (`threads - busy`), and never more than `max_workers`.
//! * **Shutdown**: a flag; workers leave once it is set and the queue is empty, so queued tasks
//!   still run (Python's relayed `None`, without the relay: `notify_all` wakes every sleeper).
//! * **Breakage**: a failed initializer sets `broken`, and every queued future fails with it.

use crate::task::Task;
use crate::worker;
use concurrent_futures_core::shim::hint;
use concurrent_futures_core::shim::sync::atomic::{AtomicUsize, Ordering};
use concurrent_futures_core::shim::sync::{Arc, Condvar, Mutex};
use concurrent_futures_core::shim::thread::{self, JoinHandle};
use concurrent_futures_core::{BrokenExecutor, BrokenKind, SubmitError};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::fmt;

/// Spin steps an idle worker takes, watching the queue, before it sleeps (see the crate docs).
const WORKER_SPINS: u32 = 200;

/// Of those, how many are pure `spin_loop` hints before the worker starts yielding its core.
const SPIN_BEFORE_YIELD: u32 = 50;

/// Python's message for a pool whose initializer failed.
pub(crate) const BROKEN_MESSAGE: &str =
    "A thread initializer failed, the thread pool is not usable anymore";

/// A worker's start-up hook: `Err` (or a panic) breaks the pool. (Immutable configuration,
/// not part of the protocol: a plain std `Arc`, which can hold a `dyn Fn`.)
pub(crate) type Initializer = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the pool was built with.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) name_prefix: String,
    pub(crate) initializer: Option<Initializer>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Sleeping workers wait here: `submit` wakes one, shutdown and breakage wake all.
    work_ready: Condvar,
    /// The queue's length, for spinning workers.
    queued: CachePadded<AtomicUsize>,
    /// Workers between taking a task and its closure returning.
    busy: CachePadded<AtomicUsize>,
    /// Workers awake and looking for a task (spinning, or about to lock the queue): while one
    /// is, a submit need not wake a sleeper — that worker will take the task.
    searching: CachePadded<AtomicUsize>,
    /// Join handles, under their own lock, which `shutdown(wait)` holds while it joins.
    handles: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) config: Config,
}

struct State {
    queue: VecDeque<Box<dyn Task>>,
    /// Threads started (never decreases, as in Python).
    threads: usize,
    /// Workers waiting on `work_ready`.
    sleeping: usize,
    shutdown: bool,
    broken: Option<BrokenExecutor>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                sleeping: 0,
                shutdown: false,
                broken: None,
            }),
            work_ready: Condvar::new(),
            queued: CachePadded::new(AtomicUsize::new(0)),
            busy: CachePadded::new(AtomicUsize::new(0)),
            searching: CachePadded::new(AtomicUsize::new(0)),
            handles: Mutex::new(Vec::new()),
            config,
        })
    }

    /// Queues `task`, waking an idle worker or starting a new one.
    /// (An associated function: loom's `Arc` cannot be a method receiver.)
    pub(crate) fn submit(this: &Arc<Shared>, task: Box<dyn Task>) -> Result<(), SubmitError> {
        let me: &Shared = this;
        let mut state = me.state.lock();
        if let Some(broken) = &state.broken {
            return Err(SubmitError::Broken(broken.clone()));
        }
        if state.shutdown {
            return Err(SubmitError::Shutdown);
        }
        state.queue.push_back(task);
        me.queued.store(state.queue.len(), Ordering::Release);
        // A searching worker re-checks the queue under this lock before it sleeps, so skipping
        // the wake-up while one searches loses nothing (and saves a futex call per submit).
        if state.sleeping > 0 && me.searching.load(Ordering::Acquire) == 0 {
            me.work_ready.notify_one();
        }
        // `busy` only grows under this lock, so this is never below the true number of free
        // workers (a racing decrement at worst makes it start one thread early).
        let free = state.threads - me.busy.load(Ordering::Acquire).min(state.threads);
        if state.queue.len() > free && state.threads < me.config.max_workers {
            let name = format!("{}_{}", me.config.name_prefix, state.threads);
            let shared = Arc::clone(this);
            match thread::spawn_named(name, move || worker::run(&shared)) {
                Ok(handle) => {
                    state.threads += 1;
                    me.handles.lock().push(handle);
                }
                Err(e) if state.threads == 0 => {
                    state.queue.pop_back();
                    me.queued.store(state.queue.len(), Ordering::Release);
                    let reason = format!("cannot start a worker thread: {e}");
                    return Err(SubmitError::Broken(BrokenExecutor::new(
                        BrokenKind::ThreadPool,
                        reason,
                    )));
                }
                // The running workers will take the task.
                Err(e) => {
                    log::warn!(target: "concurrent_futures", "cannot start another worker thread: {e}")
                }
            }
        }
        Ok(())
    }

    /// The next task for a worker; `None` once the pool is shut down and drained, or broken.
    pub(crate) fn next_task(&self) -> Option<Box<dyn Task>> {
        self.searching.fetch_add(1, Ordering::AcqRel);
        let spins = hint::spin_limit(WORKER_SPINS);
        let mut spun = 0;
        while spun < spins && self.queued.load(Ordering::Acquire) == 0 {
            // Spin briefly, then yield: on a machine with few cores the submitter may need
            // this core to produce the work we are waiting for.
            if spun < SPIN_BEFORE_YIELD {
                hint::spin();
            } else {
                thread::yield_now();
            }
            spun += 1;
        }
        let mut state = self.state.lock();
        self.searching.fetch_sub(1, Ordering::AcqRel);
        loop {
            if let Some(task) = state.queue.pop_front() {
                self.queued.store(state.queue.len(), Ordering::Release);
                self.busy.fetch_add(1, Ordering::AcqRel);
                // More work and nobody looking for it: pass the baton to a sleeper.
                if !state.queue.is_empty()
                    && state.sleeping > 0
                    && self.searching.load(Ordering::Acquire) == 0
                {
                    self.work_ready.notify_one();
                }
                return Some(task);
            }
            if state.shutdown || state.broken.is_some() {
                return None;
            }
            state.sleeping += 1;
            state = self.work_ready.wait(state);
            state.sleeping -= 1;
        }
    }

    /// A worker's task closure returned (called before its future is completed).
    pub(crate) fn finished_running(&self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Python's `shutdown(wait, cancel_futures)`.
    pub(crate) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled = {
            let mut state = self.state.lock();
            state.shutdown = true;
            let cancelled = if cancel_futures {
                std::mem::take(&mut state.queue)
            } else {
                VecDeque::new()
            };
            self.queued.store(state.queue.len(), Ordering::Release);
            self.work_ready.notify_all();
            cancelled
        };
        // Outside the lock: cancelling runs the futures' callbacks, in this thread.
        for task in cancelled {
            task.cancel();
        }
        if wait {
            let me = thread::current().id();
            let mut handles = self.handles.lock();
            for handle in handles.drain(..) {
                // A task that shuts down its own pool cannot join its own thread.
                if handle.thread().id() != me {
                    let _ = handle.join();
                }
            }
        }
    }

    /// The initializer failed: break the pool and fail every queued future.
    pub(crate) fn break_pool(&self, why: &str) {
        let error =
            BrokenExecutor::new(BrokenKind::ThreadPool, format!("{BROKEN_MESSAGE} ({why})"));
        let drained = {
            let mut state = self.state.lock();
            if state.broken.is_none() {
                state.broken = Some(error.clone());
            }
            let drained = std::mem::take(&mut state.queue);
            self.queued.store(0, Ordering::Release);
            self.work_ready.notify_all();
            drained
        };
        for task in drained {
            task.fail(&error);
        }
    }

    /// Threads started so far.
    pub(crate) fn threads(&self) -> usize {
        self.state.lock().threads
    }

    /// Why the pool is broken, if it is.
    pub(crate) fn broken(&self) -> Option<BrokenExecutor> {
        self.state.lock().broken.clone()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.config.max_workers)
            .field("threads", &state.threads)
            .field("queued", &state.queue.len())
            .field("busy", &self.busy.load(Ordering::Relaxed))
            .field("shutdown", &state.shutdown)
            .field("broken", &state.broken.is_some())
            .finish()
    }
}
