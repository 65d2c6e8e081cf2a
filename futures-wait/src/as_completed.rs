//! [`as_completed`]: futures in the order they complete.

use crate::unique::{IdMap, unique};
use concurrent_futures_core::waiter::{Waiter, WaiterKind};
use concurrent_futures_core::{Deadline, TimeoutError, Waitable};
use std::collections::VecDeque;
use std::fmt;
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
/// `fs` is collected when `as_completed` is called (Python reads it at the first `next()`); the
/// clock still starts at the first `next()`. The timeout is an `Err` item, not an exception.
pub fn as_completed<I, F>(fs: I, timeout: impl Into<Option<Duration>>) -> AsCompleted<F>
where
    I: IntoIterator<Item = F>,
    F: Waitable,
{
    AsCompleted {
        stage: Stage::NotStarted {
            fs: fs.into_iter().collect(),
            timeout: timeout.into(),
        },
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
    total: usize,
    /// Completed, not yet yielded; no waiter is installed on these.
    ready: VecDeque<F>,
    /// Not yet completed (or completed but not yet collected from the waiter).
    pending: IdMap<F>,
    waiter: Option<Waiter>,
}

impl<F: Waitable> Watch<F> {
    fn start(fs: Vec<F>, timeout: Option<Duration>) -> Watch<F> {
        let deadline = Deadline::after(timeout);
        let fs = unique(fs);
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
}

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
