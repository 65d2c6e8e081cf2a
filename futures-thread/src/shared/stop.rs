//! Counting and stopping: `stats()` and `shutdown_timeout`.
//!
//! Each worker owns a [`WorkerSlot`] that only it writes: the id of the task it runs (0 when
//! none) and how many tasks it has finished. Plain stores by the one writer, on the worker's
//! own cache line, so the hot path gains no shared read-modify-write. Readers (`stats`, a
//! timed-out `shutdown_timeout`) find the slots in `joining`, where `start_worker` puts them
//! and where a worker counts itself `exited` at the end of its thread, waking
//! `all_joined`. `shutdown_timeout` waits on that condition variable, under that lock, for
//! `exited` to reach the number of workers started — every change of `exited` notifies under
//! the lock, so the wait cannot miss the last one (loom: `tests/loom_pool.rs`).

use super::Shared;
use crate::task::Task;
use crate::unwind::contain;
use concurrent_futures_core::shim::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use concurrent_futures_core::shim::thread;
use concurrent_futures_core::{Deadline, FutureId, PoolStats};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// One worker's view for the readers: what it runs now, how much it finished.
pub(crate) struct WorkerSlot {
    /// The running task's future id, or 0.
    current: CachePadded<AtomicUsize>,
    /// Tasks this worker finished (written only by the worker).
    finished: AtomicU64,
    /// The worker retired as a spare (see `shared/spare.rs`): it is off the books.
    retired: AtomicBool,
}

impl WorkerSlot {
    pub(crate) fn new() -> WorkerSlot {
        WorkerSlot {
            current: CachePadded::new(AtomicUsize::new(0)),
            finished: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// Tasks this worker has finished.
    pub(super) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// Marks the worker retired (by the worker itself, as it leaves the books).
    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Whether the worker retired as a spare (then it is not counted as exited).
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// The worker took `task`.
    #[inline]
    pub(crate) fn running(&self, task: &Task) {
        self.current.store(task.id().as_usize(), Ordering::Release);
    }

    /// The worker's task closure returned: counted finished before its future completes, so
    /// that a caller woken by the result already reads it in `stats` (the one writer: no
    /// read-modify-write needed).
    #[inline]
    pub(crate) fn finished_one(&self) {
        let n = self.finished.load(Ordering::Relaxed);
        self.finished.store(n + 1, Ordering::Release);
    }

    /// The worker is done with its task.
    #[inline]
    pub(crate) fn ran(&self) {
        self.current.store(0, Ordering::Release);
    }
}

/// What [`ThreadPoolExecutor::shutdown_timeout`](crate::ThreadPoolExecutor::shutdown_timeout)
/// found: how many queued tasks it cancelled, and which tasks were still running when the
/// limit passed.
///
/// # Examples
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
/// use std::time::Duration;
///
/// let pool = ThreadPoolExecutor::new();
/// pool.spawn(|| 1 + 1).unwrap().result(None).unwrap();
/// let report = pool.shutdown_timeout(Duration::from_secs(10));
/// assert!(report.is_complete());
/// assert_eq!(report.cancelled, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Queued tasks that had not started: cancelled (and notified).
    pub cancelled: usize,
    /// The futures of the tasks still running when the limit passed (compare with
    /// [`Future::id`](concurrent_futures_core::Future::id)). Their threads were left running,
    /// not joined: each ends once its task returns.
    pub still_running: Vec<FutureId>,
    /// Worker threads that had not exited when the limit passed (and were left running).
    pub threads_left: usize,
}

impl ShutdownReport {
    /// Whether every worker had exited (and was joined) before the limit.
    pub fn is_complete(&self) -> bool {
        self.threads_left == 0
    }
}

impl Shared {
    /// A worker's thread ends its loop (its very last step).
    pub(crate) fn worker_exited(&self) {
        let mut joining = self.joining.lock();
        joining.exited += 1;
        self.all_joined.notify_all();
    }

    /// The counts of `stats()`: atomics, plus the slots under `joining` (a lock that neither
    /// submitters nor workers take on their way).
    pub(crate) fn stats(&self) -> PoolStats {
        let pending = self.queued_now() as usize;
        let running = self.busy.load(Ordering::Acquire);
        let joining = self.joining.lock();
        let finished = joining
            .slots
            .iter()
            .map(|slot| slot.finished())
            .sum::<u64>()
            + joining.retired_finished;
        PoolStats {
            pending,
            running,
            finished,
            workers: joining.workers.len() - joining.exited,
        }
    }

    /// `shutdown_timeout(limit)`: see the method's documentation.
    pub(crate) fn shutdown_timeout(&self, limit: Duration) -> ShutdownReport {
        let deadline = Deadline::after(Some(limit));
        self.close(super::SHUTDOWN);
        let mut cancelled = 0;
        for task in self.drain() {
            cancelled += 1;
            contain("cancelling a task", || task.cancel());
        }
        let me = thread::current().id();
        let mut joining = self.joining.lock();
        // From one of the pool's own tasks: do not wait for our own thread.
        let waits = !joining.workers.contains(&me);
        while waits && joining.exited < joining.workers.len() && !deadline.is_past() {
            joining = match deadline.instant() {
                Some(at) => self.all_joined.wait_until(joining, at),
                None => self.all_joined.wait(joining),
            };
        }
        let threads_left = joining.workers.len() - joining.exited;
        // From a task, nothing was waited for: leave the handles, so that the owner's later
        // `shutdown(wait)` or drop still joins the other workers.
        let handles = if waits {
            std::mem::take(&mut joining.handles)
        } else {
            Vec::new()
        };
        let still_running = joining
            .slots
            .iter()
            .map(|slot| slot.current.load(Ordering::Acquire))
            .filter(|&id| id != 0)
            .map(FutureId::from_usize)
            .collect();
        drop(joining);
        if threads_left == 0 {
            // Every worker has left its loop: these joins return as soon as the threads'
            // thread-local destructors have run (not bounded by `limit`: documented).
            for handle in handles {
                let _ = handle.join();
            }
        }
        // Otherwise the handles are dropped: the threads are detached, and end by themselves
        // once their task returns (a later `shutdown(wait)` or drop does not wait for them).
        ShutdownReport {
            cancelled,
            still_running,
            threads_left,
        }
    }
}
