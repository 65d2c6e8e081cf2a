//! [`wait`]: block until a [`ReturnWhen`] condition holds.

use crate::unique::unique;
use concurrent_futures_core::waiter::{Waiter, WaiterKind};
use concurrent_futures_core::{Completion, Deadline, Waitable};
use std::time::Duration;

/// When [`wait`] returns: Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnWhen {
    /// When any future finishes or is cancelled (and notified).
    FirstCompleted,
    /// When any future finishes with an error; if none does, when all have completed.
    FirstException,
    /// When all futures have completed (the default, as in Python).
    #[default]
    AllCompleted,
}

/// The two sets [`wait`] returns: Python's `DoneAndNotDoneFutures(done, not_done)`.
///
/// Each future appears once, in the order it was first given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneAndNotDone<F> {
    /// Futures that finished, or were cancelled and notified.
    pub done: Vec<F>,
    /// Every other future given (including ones merely `cancel()`ed, as in Python).
    pub not_done: Vec<F>,
}

/// Waits for the futures: Python's `wait(fs, timeout=None, return_when=ALL_COMPLETED)`.
///
/// Returns as soon as `return_when` holds, or when `timeout` passes (`None`: never) — never
/// with an error: on timeout the split simply shows what is done. Futures may come from
/// different executors and have different result types (pass `&dyn Waitable`); duplicates
/// collapse.
///
/// A future that was `cancel()`ed counts as done only once its executor has noticed
/// (`set_running_or_notify_cancel`), exactly as in Python; this crate's engines notify promptly.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Future, TaskError, Waitable};
/// use concurrent_futures_wait::{ReturnWhen, wait};
/// use std::time::Duration;
///
/// let ok = Future::new();
/// ok.set_result(1).unwrap();
/// let failed = Future::<String>::new();
/// failed.set_exception(TaskError::panicked("no")).unwrap();
/// let pending = Future::<()>::new();
///
/// let fs: [&dyn Waitable; 3] = [&ok, &failed, &pending];
/// let r = wait(fs, Duration::from_millis(10), ReturnWhen::FirstException);
/// assert_eq!(r.done.len(), 2);
/// assert_eq!(r.not_done[0].id(), pending.id());
/// ```
///
/// # Differences from Python
///
/// `done` and `not_done` are `Vec`s in input order rather than sets; an invalid `return_when`
/// cannot be expressed.
pub fn wait<I, F>(
    fs: I,
    timeout: impl Into<Option<Duration>>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<F>
where
    I: IntoIterator<Item = F>,
    F: Waitable,
{
    let deadline = Deadline::after(timeout.into());
    let fs = unique(fs);

    // One lock-free look at every future decides whether to block at all.
    let mut pending = Vec::new();
    let mut any_done = false;
    let mut any_failed = false;
    for (i, f) in fs.iter().enumerate() {
        match f.completion() {
            None => pending.push(i),
            Some(completion) => {
                any_done = true;
                any_failed |= completion == Completion::Raised;
            }
        }
    }
    let satisfied = pending.is_empty()
        || match return_when {
            ReturnWhen::FirstCompleted => any_done,
            ReturnWhen::FirstException => any_failed,
            ReturnWhen::AllCompleted => false,
        };

    if !satisfied {
        let kind = match return_when {
            ReturnWhen::FirstCompleted => WaiterKind::FirstCompleted,
            ReturnWhen::FirstException => WaiterKind::FirstException,
            ReturnWhen::AllCompleted => WaiterKind::AllCompleted,
        };
        // Each pending future reports to the waiter exactly once: at install if it completed
        // since the look above, otherwise when it completes.
        let waiter = Waiter::new(kind, pending.len());
        for &i in &pending {
            fs[i].add_waiter(&waiter);
        }
        waiter.wait(&deadline);
        for &i in &pending {
            fs[i].remove_waiter(&waiter);
        }
    }
    split(fs)
}

fn split<F: Waitable>(fs: Vec<F>) -> DoneAndNotDone<F> {
    let mut done = Vec::with_capacity(fs.len());
    let mut not_done = Vec::new();
    for f in fs {
        if f.completion().is_some() {
            done.push(f);
        } else {
            not_done.push(f);
        }
    }
    DoneAndNotDone { done, not_done }
}
