//! [`as_completed`]: futures in the order they complete.

use crate::unique::{IdMap, unique};
use concurrent_futures_core::waiter::{Waiter, WaiterKind};
use concurrent_futures_core::{Deadline, TimeoutError, Waitable};
use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::time::Duration;

/// Yields each future once as it completes: Python's `as_completed(fs, timeout=None)`.
///
/// Futures already done come first, then the others in the order they complete. If `timeout`
/// passes first, the iterator yields one `Err(TimeoutError)` — `"{n} (of {total}) futures
/// unfinished"` — and ends. Duplicates collapse.
///
/// As in Python's generator, nothing happens until the first `next()`: the timeout clock starts
/// there. Dropping the iterator early removes its waiter from every future it still watches.
///
/// Its [`size_hint`](Iterator::size_hint) is exact without a timeout (one item per distinct
/// future not yet yielded), so a progress bar can take its length from it; with a timeout the
/// upper bound is exact and the lower one counts the timeout's single `Err`.
/// [`as_completed_all`] is the form without a timeout: its items are the futures themselves,
/// and it is an [`ExactSizeIterator`].
///
/// Each item is what was given: a future, a reference, or a `(future, tag)` pair, so iterating
/// a `HashMap<Future<T>, V>` yields each future with its value, Python's
/// `future_to_url[future]` without the lookup:
///
/// ```
/// use concurrent_futures_core::Future;
/// use concurrent_futures_wait::as_completed;
/// use std::collections::HashMap;
///
/// let mut future_to_url = HashMap::new();
/// for url in ["a.example", "b.example"] {
///     let f = Future::new();
///     f.set_result(url.len()).unwrap();
///     future_to_url.insert(f, url);
/// }
/// for item in as_completed(&future_to_url, None) {
///     let (future, url) = item.unwrap();
///     assert_eq!(future.result(None).unwrap(), url.len());
/// }
/// ```
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Future;
/// use concurrent_futures_wait::as_completed;
/// use std::time::Duration;
///
/// let finished = Future::new();
/// finished.set_result(42).unwrap();
/// let stuck = Future::<i32>::new();
///
/// let mut it = as_completed([&finished, &stuck], Duration::ZERO);
/// assert_eq!(it.next().unwrap().unwrap().result(None).unwrap(), 42);
/// assert_eq!(it.next().unwrap().unwrap_err().to_string(), "1 (of 2) futures unfinished");
/// assert!(it.next().is_none());
/// ```
///
/// # Differences from Python
///
/// `fs` is collected (and its duplicates collapsed) when `as_completed` is called (Python reads
/// it at the first `next()`); the clock still starts at the first `next()`. The timeout is an
/// `Err` item, not an exception.
pub fn as_completed<I, F>(fs: I, timeout: impl Into<Option<Duration>>) -> AsCompleted<F>
where
    I: IntoIterator<Item = F>,
    F: Waitable,
{
    AsCompleted {
        stage: Stage::NotStarted {
            fs: unique(fs),
            timeout: timeout.into(),
        },
    }
}

/// [`as_completed`] without a timeout: yields every future (each once) as it completes, the
/// futures themselves rather than `Result`s, and knows its length, so progress bars wrap it
/// directly.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Future;
/// use concurrent_futures_wait::as_completed_all;
///
/// let futures: Vec<Future<u32>> = (0..3).map(|_| Future::new()).collect();
/// for (i, f) in futures.iter().enumerate() {
///     f.set_result(i as u32).unwrap();
/// }
/// let mut it = as_completed_all(&futures);
/// assert_eq!(it.len(), 3);
/// let first = it.next().unwrap();
/// assert_eq!(first.result(None).unwrap(), 0);
/// assert_eq!(it.len(), 2);
/// ```
///
/// # Differences from Python
///
/// Python has one `as_completed(fs, timeout=None)`; this is its `timeout=None` form under a
/// name of its own, so that its type can promise a length and its items need no unwrapping.
pub fn as_completed_all<I, F>(fs: I) -> AsCompletedAll<F>
where
    I: IntoIterator<Item = F>,
    F: Waitable,
{
    AsCompletedAll(as_completed(fs, None))
}

/// The iterator of [`as_completed_all`].
pub struct AsCompletedAll<F: Waitable>(AsCompleted<F>);

impl<F: Waitable> Iterator for AsCompletedAll<F> {
    type Item = F;

    fn next(&mut self) -> Option<F> {
        self.0
            .next()
            .map(|item| item.unwrap_or_else(|_| unreachable!("no timeout was set")))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// Exact: without a timeout, every future not yet yielded will be.
impl<F: Waitable> ExactSizeIterator for AsCompletedAll<F> {}

impl<F: Waitable> FusedIterator for AsCompletedAll<F> {}

impl<F: Waitable> fmt::Debug for AsCompletedAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsCompletedAll").field(&self.0).finish()
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<F: Waitable> {
    stage: Stage<F>,
}

enum Stage<F: Waitable> {
    NotStarted {
        fs: Vec<F>,
        timeout: Option<Duration>,
    },
    Running(Watch<F>),
    Ended,
}

/// The state of a started iteration.
struct Watch<F: Waitable> {
    deadline: Deadline,
    /// A timeout was set: the iteration may end early, with one `Err`.
    timed: bool,
    total: usize,
    /// Completed, not yet yielded; no waiter is installed on these.
    ready: VecDeque<F>,
    /// Not yet completed (or completed but not yet collected from the waiter).
    pending: IdMap<F>,
    waiter: Option<Waiter>,
}

impl<F: Waitable> Watch<F> {
    /// Starts watching `fs`, already without duplicates.
    fn start(fs: Vec<F>, timeout: Option<Duration>) -> Watch<F> {
        let deadline = Deadline::after(timeout);
        let total = fs.len();
        let mut ready = VecDeque::with_capacity(fs.len());
        let mut unfinished = Vec::new();
        for f in fs {
            if f.completion().is_some() {
                ready.push_back(f);
            } else {
                unfinished.push(f);
            }
        }
        let mut pending = IdMap::with_capacity_and_hasher(unfinished.len(), Default::default());
        let waiter = (!unfinished.is_empty())
            .then(|| Waiter::new(WaiterKind::AsCompleted, unfinished.len()));
        if let Some(waiter) = &waiter {
            for f in unfinished {
                f.add_waiter(waiter);
                pending.insert(f.id(), f);
            }
        }
        Watch {
            deadline,
            timed: timeout.is_some(),
            total,
            ready,
            pending,
            waiter,
        }
    }

    /// Moves every future the waiter has heard of from `pending` to `ready`, detaching it.
    fn collect(&mut self, waiter: &Waiter) {
        for id in waiter.take_finished() {
            if let Some(f) = self.pending.remove(&id) {
                f.remove_waiter(waiter);
                self.ready.push_back(f);
            }
        }
    }

    fn detach_all(&mut self) {
        if let Some(waiter) = &self.waiter {
            for f in self.pending.values() {
                f.remove_waiter(waiter);
            }
        }
        self.pending.clear();
    }
}

impl<F: Waitable> Drop for Watch<F> {
    fn drop(&mut self) {
        self.detach_all();
    }
}

impl<F: Waitable> Iterator for AsCompleted<F> {
    type Item = Result<F, TimeoutError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Stage::NotStarted { .. } = self.stage {
            let Stage::NotStarted { fs, timeout } =
                std::mem::replace(&mut self.stage, Stage::Ended)
            else {
                unreachable!()
            };
            self.stage = Stage::Running(Watch::start(fs, timeout));
        }
        let Stage::Running(watch) = &mut self.stage else {
            return None;
        };
        loop {
            if let Some(f) = watch.ready.pop_front() {
                return Some(Ok(f));
            }
            let waiter = match &watch.waiter {
                Some(waiter) if !watch.pending.is_empty() => waiter.clone(),
                _ => {
                    self.stage = Stage::Ended;
                    return None;
                }
            };
            if watch.deadline.is_past() {
                let err = TimeoutError::unfinished(watch.pending.len(), watch.total);
                self.stage = Stage::Ended;
                return Some(Err(err));
            }
            waiter.wait(&watch.deadline);
            watch.collect(&waiter);
        }
    }

    /// Exact without a timeout; with one, at least the futures already known to be done (and
    /// the one `Err`, if others remain), at most every future not yet yielded.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let (ready, pending, timed) = match &self.stage {
            Stage::NotStarted { fs, timeout } => (0, fs.len(), timeout.is_some()),
            Stage::Running(w) => (w.ready.len(), w.pending.len(), w.timed),
            Stage::Ended => (0, 0, false),
        };
        let upper = ready + pending;
        let lower = if timed { ready + pending.min(1) } else { upper };
        (lower, Some(upper))
    }
}

impl<F: Waitable> FusedIterator for AsCompleted<F> {}

impl<F: Waitable> fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stage {
            Stage::NotStarted { fs, .. } => f
                .debug_struct("AsCompleted")
                .field("not_started", &fs.len())
                .finish(),
            Stage::Running(w) => f
                .debug_struct("AsCompleted")
                .field("ready", &w.ready.len())
                .field("pending", &w.pending.len())
                .field("total", &w.total)
                .finish(),
            Stage::Ended => f.write_str("AsCompleted(ended)"),
        }
    }
}
