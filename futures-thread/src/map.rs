//! [`Map`]: the thread pool's own `map`, for closures over values of any `Send` type.
//!
//! Core's `Map` (behind the `Executor` trait) takes each result out of its item's `Future`,
//! which needs `R: Clone` whenever the worker still holds its handle. Here no caller ever sees
//! an item's future, so an item has none: its input and its result live in a slot that the
//! worker fills and the iterator empties (`map/items.rs`). No value is ever cloned, and no
//! `Serialize`, `Clone` or `Sync` is asked of it.

mod items;

pub(crate) use items::ItemTask;

use crate::ThreadPoolExecutor;
use crate::shared::Shared;
use crate::task::Task;
use concurrent_futures_core::{
    CancelledError, Deadline, FutureError, MapError, MapOptions, SubmitError, TimeoutError,
};
use items::{Call, Items, Outcome};
use std::fmt;
use std::iter::FusedIterator;

/// The iterator returned by [`ThreadPoolExecutor::map`] and
/// [`map_with`](ThreadPoolExecutor::map_with): the results of a closure over every input, in
/// input order.
///
/// It has the semantics of Python 3.14's `Executor.map`, as core's
/// [`Map`](concurrent_futures_core::Map) does:
/// * items come back in input order, whatever order the tasks finish in;
/// * the timeout counts from the call to `map`; an item already finished is returned even
///   after the deadline;
/// * with `buffersize`, at most `buffersize` tasks are submitted before iteration, and each
///   `next()` submits one more input *before* waiting for the oldest;
/// * the first error (a panic, the timeout, a broken pool, a refused refill) ends the
///   iteration: it is returned in its position, the tasks still held are cancelled, and
///   `next()` returns `None` from then on;
/// * the task just waited on is always cancelled afterwards (a no-op when it finished), and
///   dropping the iterator cancels every task not yet started.
///
/// Each value is moved from the worker to the iterator, never cloned, so inputs and results
/// need only be `Send`.
///
/// # Examples
///
/// A capturing closure over values that are neither `Clone` nor serde types:
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
/// use std::sync::mpsc;
///
/// let pool = ThreadPoolExecutor::new();
/// let prefix = String::from("got ");
/// let receivers = (0..3).map(|i| {
///     let (tx, rx) = mpsc::channel();
///     tx.send(i).unwrap();
///     rx
/// });
/// let texts: Vec<String> = pool
///     .map(move |rx: mpsc::Receiver<i32>| format!("{prefix}{}", rx.recv().unwrap()), receivers)
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(texts, ["got 0", "got 1", "got 2"]);
/// ```
///
/// The iterator is `#[must_use]`: a map whose results are never looked at is a mistake.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let pool = concurrent_futures_thread::ThreadPoolExecutor::new();
/// pool.map(|x: u8| x + 1, [1, 2]).unwrap(); // error: unused `Map` that must be used
/// ```
///
/// # Differences from Python
///
/// * The iterator borrows the pool, so the pool outlives it (Python's iterator holds a weak
///   reference and silently truncates its output once the executor is collected).
/// * A submission refused while refilling the buffer (the pool was shut down meanwhile) is an
///   item, `Err(MapError::Submit(_))`, where Python raises it from `next()`; either way the
///   iteration ends there.
/// * `chunksize` is checked (0 is refused, as on every executor here). Python's thread pool
///   ignores it; here, without `buffersize`, `chunksize(n)` with `n > 1` queues the inputs
///   `n` at a time (each still its own task, with its own result): one step on the pool's
///   shared state per `n` inputs, at the price of taking `n` inputs before their tasks are
///   queued — do not use it with an input iterator that waits for results of the same map.
///   (Since items need no future, a submit per input is cheap already: on 2 cores, `map` over
///   100,000 ints ran at 5.3–6.5M items/s with `chunksize` 1 and with 64 alike.)
#[must_use = "without `buffersize` every input is already submitted; iterate to get the results, \
              or drop the iterator to cancel the tasks not started"]
pub struct Map<'e, I: Iterator, R> {
    pool: &'e ThreadPoolExecutor,
    /// Fused: once the inputs end, `map` never asks them again (Python stops there too).
    inputs: std::iter::Fuse<I>,
    /// `buffersize` was given: refill one task per `next()`.
    buffered: bool,
    deadline: Deadline,
    /// The submitted items, oldest first.
    items: Items<I::Item, R>,
    ended: bool,
}

impl<'e, I, R> Map<'e, I, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    R: Send + 'static,
{
    /// Checks `options` as Python does, then submits every input (or the first `buffersize`).
    pub(crate) fn start(
        pool: &'e ThreadPoolExecutor,
        f: Call<I::Item, R>,
        inputs: I,
        options: MapOptions,
    ) -> Result<Self, SubmitError> {
        if options.get_chunksize() == 0 {
            return Err(SubmitError::InvalidArgument("chunksize must be >= 1."));
        }
        let limit = match options.get_buffersize() {
            None => usize::MAX,
            Some(0) => {
                return Err(SubmitError::InvalidArgument(
                    "buffersize must be None or > 0",
                ));
            }
            Some(n) => n,
        };
        let mut map = Map {
            pool,
            inputs: inputs.fuse(),
            buffered: options.get_buffersize().is_some(),
            deadline: Deadline::after(options.get_timeout()),
            items: Items::new(f),
            ended: false,
        };
        let chunk = options.get_chunksize();
        if map.buffered || chunk == 1 {
            let mut submitted = 0;
            // On error `map` is dropped, which cancels what it submitted.
            while submitted < limit && map.submit_next()? {
                submitted += 1;
            }
        } else {
            map.submit_in_chunks(chunk)?;
        }
        Ok(map)
    }

    /// Submits every input, `chunk` tasks per reservation in the pool's state word (one step
    /// of the word per chunk instead of per task): `chunk` inputs are taken before their
    /// tasks are queued, as Python's process pool takes a chunk's inputs.
    fn submit_in_chunks(&mut self, chunk: usize) -> Result<(), SubmitError> {
        let mut tasks = Vec::with_capacity(chunk.min(1024));
        loop {
            for arg in self.inputs.by_ref().take(chunk) {
                tasks.push(Task::Item(self.items.push(arg)));
            }
            let taken = tasks.len();
            // On error `map` is dropped, which cancels what it submitted (the refused chunk's
            // futures included: cancelling one never queued only marks it).
            Shared::submit_all(self.pool.shared(), &mut tasks)?;
            if taken < chunk {
                return Ok(());
            }
        }
    }

    /// Submits the next input; `false` once the inputs are exhausted.
    fn submit_next(&mut self) -> Result<bool, SubmitError> {
        let Some(arg) = self.inputs.next() else {
            return Ok(false);
        };
        // A refused item is dropped by `submit`, which cancels it.
        Shared::submit(self.pool.shared(), Task::Item(self.items.push(arg)))?;
        Ok(true)
    }

    fn end(&mut self) {
        self.ended = true;
        self.items.cancel_pending();
    }
}

impl<I, R> Iterator for Map<'_, I, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    R: Send + 'static,
{
    type Item = Result<R, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        // Python's order: refill first, then wait for the oldest.
        if self.buffered
            && let Err(e) = self.submit_next()
        {
            self.end();
            return Some(Err(MapError::Submit(e)));
        }
        let outcome = match self.items.next(&self.deadline) {
            None => {
                self.ended = true;
                return None;
            }
            Some(Outcome::Returned(value)) => return Some(Ok(value)),
            Some(Outcome::Failed(error)) => FutureError::Failed(error),
            Some(Outcome::Cancelled) => FutureError::Cancelled(CancelledError),
            // The item was cancelled if it had not started (Python's `_result_or_cancel`).
            Some(Outcome::TimedOut) => FutureError::Timeout(TimeoutError::new()),
        };
        self.end();
        Some(Err(MapError::Future(outcome)))
    }
}

impl<I, R> FusedIterator for Map<'_, I, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    R: Send + 'static,
{
}

impl<I: Iterator, R> Drop for Map<'_, I, R> {
    fn drop(&mut self) {
        self.items.cancel_pending();
    }
}

impl<I: Iterator, R> fmt::Debug for Map<'_, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("outstanding", &self.items.pending())
            .field("deadline", &self.deadline)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
