//! [`Map`]: `Executor::map`, written once for every executor, with Python 3.14's semantics.

use crate::executor::{Executor, Payload};
use crate::{Batch, Deadline, Future, FutureError, SubmitError};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

/// The options of [`Executor::map_with`]: Python's `timeout`, `chunksize` and `buffersize`.
///
/// Built with [`new`](Self::new) and the chained setters, so that an option added later
/// breaks no caller; engines read them back with the `get_` methods (as
/// [`std::process::Command`] does, since the setters take the plain names).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::MapOptions;
/// use std::time::Duration;
///
/// let options = MapOptions::new().timeout(Duration::from_secs(5)).buffersize(64);
/// assert_eq!(options.get_timeout(), Some(Duration::from_secs(5)));
/// assert_eq!(options.get_buffersize(), Some(64));
/// assert_eq!(options.get_chunksize(), 1);
/// ```
///
/// The fields are private, so the options cannot be built as a struct literal:
///
/// ```compile_fail
/// use concurrent_futures_core::MapOptions;
///
/// let options = MapOptions { timeout: None, chunksize: 1, buffersize: None };
/// ```
///
/// The setters return new options, which must be used:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let options = concurrent_futures_core::MapOptions::new();
/// options.buffersize(8); // error: unused `MapOptions` that must be used
/// ```
///
/// # Differences from Python
///
/// Python passes these as keyword arguments of `map`; here they travel together in one value,
/// built with its setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "options do nothing until passed to `map_with`"]
pub struct MapOptions {
    timeout: Option<Duration>,
    chunksize: usize,
    buffersize: Option<usize>,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

impl MapOptions {
    /// No timeout, chunks of 1, no buffer limit: Python's defaults.
    pub const fn new() -> MapOptions {
        MapOptions {
            timeout: None,
            chunksize: 1,
            buffersize: None,
        }
    }

    /// Give up on results not ready `timeout` after the call to `map` (one deadline for the
    /// whole iteration, as in Python).
    pub const fn timeout(mut self, timeout: Duration) -> MapOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Inputs per message, for engines that batch (the process engine). Must be at least 1.
    pub const fn chunksize(mut self, chunksize: usize) -> MapOptions {
        self.chunksize = chunksize;
        self
    }

    /// At most this many tasks submitted ahead of the consumer; inputs are pulled lazily, so an
    /// infinite iterator works. Must be at least 1.
    pub const fn buffersize(mut self, buffersize: usize) -> MapOptions {
        self.buffersize = Some(buffersize);
        self
    }

    /// The timeout set with [`timeout`](Self::timeout) (`None`: wait forever).
    pub const fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The chunk size set with [`chunksize`](Self::chunksize) (1 unless set).
    pub const fn get_chunksize(&self) -> usize {
        self.chunksize
    }

    /// The buffer size set with [`buffersize`](Self::buffersize) (`None`: every input is
    /// submitted at the call).
    pub const fn get_buffersize(&self) -> Option<usize> {
        self.buffersize
    }

    fn validate(&self) -> Result<Option<NonZeroUsize>, SubmitError> {
        if self.chunksize == 0 {
            return Err(SubmitError::InvalidArgument("chunksize must be >= 1."));
        }
        match self.buffersize {
            None => Ok(None),
            Some(n) => NonZeroUsize::new(n)
                .map(Some)
                .ok_or(SubmitError::InvalidArgument(
                    "buffersize must be None or > 0",
                )),
        }
    }
}

/// Why an item of [`Map`] is missing: its task failed, timed out or was cancelled, or a lazy
/// submit (with `buffersize`) was refused.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MapError {
    /// The item's future gave no value.
    Future(FutureError),
    /// Submitting the next input failed (the executor was shut down or broke meanwhile).
    Submit(SubmitError),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Future(e) => e.fmt(f),
            MapError::Submit(e) => e.fmt(f),
        }
    }
}

/// Transparent: `Display` prints the wrapped error, so `source()` is the wrapped error's source.
impl Error for MapError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            MapError::Future(e) => e.source(),
            MapError::Submit(e) => e.source(),
        }
    }
}

impl From<FutureError> for MapError {
    fn from(e: FutureError) -> Self {
        MapError::Future(e)
    }
}

impl From<SubmitError> for MapError {
    fn from(e: SubmitError) -> Self {
        MapError::Submit(e)
    }
}

/// The iterator returned by [`Executor::map`]: results in input order.
///
/// Python 3.14's semantics:
/// * items come back in input order, whatever order the tasks finish in;
/// * the timeout counts from the call to `map`; an item already finished is returned even
///   after the deadline;
/// * with `buffersize`, at most `buffersize` tasks are submitted before iteration, and each
///   `next()` submits one more input *before* waiting for the oldest;
/// * the first error ends the iteration: it is returned in its position, the futures still held
///   are cancelled, and `next()` returns `None` from then on;
/// * the future just waited on is always `cancel()`ed afterwards (a no-op when it finished), and
///   dropping the iterator cancels every task not yet started.
///
/// # Examples
///
/// ```
/// # use concurrent_futures_core::{Executor, Future, MapOptions, Payload, SubmitError};
/// # struct Inline;
/// # impl Executor for Inline {
/// #     fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, a: A) -> Result<Future<R>, SubmitError> {
/// #         let fut = Future::new();
/// #         fut.set_result(f(a)).unwrap();
/// #         Ok(fut)
/// #     }
/// #     fn shutdown(&self, _: bool, _: bool) {}
/// # }
/// fn stringify(x: u64) -> String {
///     x.to_string()
/// }
///
/// let ex = Inline;
/// let firsts: Vec<String> = ex
///     .map_with(stringify, 0.., MapOptions::new().buffersize(2))
///     .unwrap()
///     .take(3)
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(firsts, ["0", "1", "2"]);
/// ```
///
/// The iterator is `#[must_use]`:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # use concurrent_futures_core::{Executor, Future, Payload, SubmitError};
/// # struct Inline;
/// # impl Executor for Inline {
/// #     fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, a: A) -> Result<Future<R>, SubmitError> {
/// #         let fut = Future::new();
/// #         fut.set_result(f(a)).unwrap();
/// #         Ok(fut)
/// #     }
/// #     fn shutdown(&self, _: bool, _: bool) {}
/// # }
/// # fn stringify(x: u64) -> String {
/// #     x.to_string()
/// # }
/// Inline.map(stringify, 0..3).unwrap(); // error: unused `Map` that must be used
/// ```
///
/// # Differences from Python
///
/// * The iterator borrows the executor, so the executor outlives it; Python's iterator holds a
///   weak reference and silently truncates its output if the executor is collected.
/// * A submission error while refilling the buffer is an item (`Err(MapError::Submit)`), where
///   Python raises it from `next()`; either way the iteration ends there.
/// * If `map` itself fails part-way through submitting, the tasks it did submit are cancelled.
/// * `chunksize` 0 is refused for every executor (Python's thread pool ignores it).
#[must_use = "without `buffersize` every input is already submitted; iterate to get the results, \
              or drop the iterator to cancel the tasks not started"]
pub struct Map<'e, E: ?Sized, I, A, R> {
    executor: &'e E,
    f: fn(A) -> R,
    /// Fused: once the inputs end, `map` never asks them again (Python stops there too).
    inputs: std::iter::Fuse<I>,
    chunksize: usize,
    buffered: bool,
    deadline: Deadline,
    futures: VecDeque<Pending<R>>,
    /// The values of the chunk being handed out, reversed (popped from the back).
    ready: Vec<R>,
    ended: bool,
}

/// One submitted unit of a [`Map`]: an item's future, or a whole chunk's.
enum Pending<R> {
    One(Future<R>),
    Chunk(Future<Vec<R>>),
}

impl<R> Pending<R> {
    fn cancel(&self) -> bool {
        match self {
            Pending::One(f) => f.cancel(),
            Pending::Chunk(f) => f.cancel(),
        }
    }
}

impl<'e, E, I, A, R> Map<'e, E, I, A, R>
where
    E: Executor,
    I: Iterator<Item = A>,
    A: Payload,
    R: Payload + Clone,
{
    pub(crate) fn start(
        executor: &'e E,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> Result<Self, SubmitError> {
        let buffersize = options.validate()?;
        let mut map = Map {
            executor,
            f,
            inputs: inputs.fuse(),
            chunksize: options.chunksize,
            buffered: buffersize.is_some(),
            deadline: Deadline::after(options.timeout),
            futures: VecDeque::new(),
            ready: Vec::new(),
            ended: false,
        };
        let limit = buffersize.map_or(usize::MAX, NonZeroUsize::get);
        let mut submitted = 0;
        // On error `map` is dropped, which cancels what it submitted.
        while submitted < limit && map.submit_next()? {
            submitted += 1;
        }
        Ok(map)
    }

    /// Submits the next input (or chunk of inputs); `false` once the inputs are exhausted.
    fn submit_next(&mut self) -> Result<bool, SubmitError> {
        if self.chunksize == 1 {
            let Some(arg) = self.inputs.next() else {
                return Ok(false);
            };
            self.futures
                .push_back(Pending::One(self.executor.submit(self.f, arg)?));
            return Ok(true);
        }
        let chunk: Vec<A> = self.inputs.by_ref().take(self.chunksize).collect();
        if chunk.is_empty() {
            return Ok(false);
        }
        match self.executor.submit_batch(self.f, chunk)? {
            Batch::Each(futures) => self.futures.extend(futures.into_iter().map(Pending::One)),
            Batch::Whole(future) => self.futures.push_back(Pending::Chunk(future)),
        }
        Ok(true)
    }

    fn end(&mut self) {
        self.ended = true;
        self.ready.clear();
        for future in self.futures.drain(..) {
            future.cancel();
        }
    }
}

impl<E, I, A, R> Iterator for Map<'_, E, I, A, R>
where
    E: Executor,
    I: Iterator<Item = A>,
    A: Payload,
    R: Payload + Clone,
{
    type Item = Result<R, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(value) = self.ready.pop() {
            return Some(Ok(value));
        }
        if self.ended {
            return None;
        }
        if self.buffered
            && let Err(e) = self.submit_next()
        {
            self.end();
            return Some(Err(MapError::Submit(e)));
        }
        let Some(pending) = self.futures.pop_front() else {
            self.ended = true;
            return None;
        };
        let result = match pending {
            Pending::One(future) => future.into_result_or_cancel(&self.deadline),
            Pending::Chunk(future) => match future.into_result_or_cancel(&self.deadline) {
                Ok(mut values) => {
                    values.reverse();
                    self.ready = values;
                    match self.ready.pop() {
                        Some(value) => Ok(value),
                        // An executor answered a chunk with no values: nothing to yield.
                        None => return self.next(),
                    }
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(value) => Some(Ok(value)),
            Err(e) => {
                self.end();
                Some(Err(MapError::Future(e)))
            }
        }
    }
}

impl<E: ?Sized, I, A, R> Drop for Map<'_, E, I, A, R> {
    fn drop(&mut self) {
        for future in self.futures.drain(..) {
            future.cancel();
        }
    }
}

impl<E: ?Sized, I, A, R> fmt::Debug for Map<'_, E, I, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("outstanding", &self.futures.len())
            .field("deadline", &self.deadline)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
