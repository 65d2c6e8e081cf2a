//! [`QueueFullPolicy`]: what a bounded submit queue does with one submit too many.

use std::time::Duration;

/// What `submit` does when an executor's bounded submit queue (`max_queue(n)` on either
/// pool's builder) already holds `n` tasks that no worker has taken: the rejection policies of
/// Java's `ThreadPoolExecutor`, shared by the thread and the process pool.
///
/// The queue counts submitted tasks that no worker has started (the thread pool) or that were
/// not yet sent to a worker process (the process pool); running tasks do not count. Without
/// `max_queue` the queue is unbounded and no policy applies, as in Python.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::QueueFullPolicy;
/// use std::time::Duration;
///
/// // Wait for room, but never more than a second (then `SubmitError::QueueFull`).
/// let patient = QueueFullPolicy::Block { timeout: Some(Duration::from_secs(1)) };
/// // Refuse at once with `SubmitError::QueueFull`.
/// let strict = QueueFullPolicy::Reject;
/// // Run the task in the submitting thread: its future is done when `submit` returns.
/// let inline = QueueFullPolicy::CallerRuns;
/// assert_eq!(QueueFullPolicy::default(), QueueFullPolicy::Block { timeout: None });
/// assert_ne!(patient, strict);
/// assert_ne!(strict, inline);
/// ```
///
/// # Differences from Python
///
/// Python has no bounded submit queue (only `map(buffersize=)`): its queue grows without
/// limit. This is Java's `ThreadPoolExecutor` with a bounded `BlockingQueue` and a
/// `RejectedExecutionHandler`; `Block` is what Java users write by hand with `queue.put`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFullPolicy {
    /// The submitter waits until a worker takes a task (making room), up to `timeout`
    /// (`None`: for as long as it takes). Ends early with `SubmitError::Shutdown` or
    /// `SubmitError::Broken` when the pool shuts down or breaks meanwhile, and with
    /// `SubmitError::QueueFull` when the timeout passes. The default.
    ///
    /// A task that submits to its own pool with this policy can wait for ever once every
    /// worker does the same (as with Java's `put`): give such a pool a timeout, or
    /// `CallerRuns`.
    Block {
        /// How long to wait for room; `None` waits for as long as it takes.
        timeout: Option<Duration>,
    },
    /// The submit is refused with `SubmitError::QueueFull` (Java's `AbortPolicy`).
    Reject,
    /// The submitting thread runs the task itself, before `submit` returns (Java's
    /// `CallerRunsPolicy`): a natural brake on a producer that outruns the pool. The returned
    /// future is already done. Not available where the task cannot run in the caller (the
    /// process pool runs it in a worker, see its builder).
    CallerRuns,
}

impl Default for QueueFullPolicy {
    fn default() -> Self {
        QueueFullPolicy::Block { timeout: None }
    }
}
