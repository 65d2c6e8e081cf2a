//! [`PoolStats`]: a snapshot of an executor's counts.

/// How many tasks an executor holds in each stage, and how many workers it has: a snapshot
/// from `stats()` on either pool, read from counters without taking the pool's locks (the
/// thread pool) or with one short lock (the process pool).
///
/// The fields are read one after another while the pool works, so they need not add up
/// exactly to the number of tasks ever submitted at any one instant; each is exact on its own
/// at the moment it was read, and an idle pool reads exactly.
///
/// What each pool counts, where they differ: the process pool's `running` includes the one
/// task it sends ahead to a busy worker (so that the worker never waits for a round trip), and
/// its `finished` leaves out tasks cancelled while queued; the thread pool counts a cancelled
/// task as finished when a worker skips it, and a scoped task that its scope ran itself as
/// pending until a worker discards the queue's entry for it. Tasks run by their submitter
/// (`QueueFullPolicy::CallerRuns`) are not counted by either.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::PoolStats;
///
/// let stats = PoolStats { pending: 3, running: 2, finished: 10, workers: 2 };
/// assert_eq!(stats.pending + stats.running, 5);
/// assert_eq!(format!("{stats}"), "3 pending, 2 running, 10 finished, 2 workers");
/// ```
///
/// # Differences from Python
///
/// Python offers no counts (gh-66477); users read private fields such as `_work_queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PoolStats {
    /// Tasks submitted and not yet started (the thread pool) or not yet sent to a worker (the
    /// process pool); cancelled ones count until a worker or shutdown discards them.
    pub pending: usize,
    /// Tasks a worker is running now.
    pub running: usize,
    /// Tasks that workers have finished (run to the end, or discarded as cancelled) since the
    /// pool was built.
    pub finished: u64,
    /// Worker threads or processes alive now.
    pub workers: usize,
}

impl std::fmt::Display for PoolStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pending, {} running, {} finished, {} workers",
            self.pending, self.running, self.finished, self.workers
        )
    }
}
