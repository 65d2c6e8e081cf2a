//! [`Executor`]: the one interface both engines implement (Python's `Executor` ABC).

use crate::map::{Map, MapOptions};
use crate::{Future, SubmitError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value that can cross to any executor's worker: sent to a thread, or serialized to another
/// process. The Rust analogue of Python's "picklable"; implemented for every type that is
/// `Serialize + DeserializeOwned + Send + 'static`.
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

/// Runs calls asynchronously: Python's `concurrent.futures.Executor`.
///
/// The unit of work is a plain function `fn(A) -> R` whose argument and result are
/// [`Payload`]s, so that a function written once against this trait runs unchanged on a thread
/// pool or a process pool. Engines may accept more (the thread engine also takes closures).
///
/// Dropping an executor should behave like leaving Python's `with` block: `shutdown(true,
/// false)`.
///
/// # Examples
///
/// An executor of your own, written on this crate alone: it runs each task inline, at submit.
///
/// ```
/// use concurrent_futures_core::{Executor, Future, Payload, SubmitError, TaskError};
/// use std::cell::Cell;
///
/// #[derive(Default)]
/// struct Inline {
///     shut_down: Cell<bool>,
/// }
///
/// impl Executor for Inline {
///     fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError> {
///         if self.shut_down.get() {
///             return Err(SubmitError::Shutdown);
///         }
///         let future = Future::new();
///         if future.set_running_or_notify_cancel() == Ok(true) {
///             let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(arg)));
///             let _ = match outcome {
///                 Ok(value) => future.set_result(value),
///                 Err(panic) => future.set_exception(TaskError::from_panic(&*panic)),
///             };
///         }
///         Ok(future)
///     }
///
///     fn shutdown(&self, _wait: bool, _cancel_futures: bool) {
///         self.shut_down.set(true);
///     }
/// }
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let ex = Inline::default();
/// assert_eq!(ex.submit(square, 12).unwrap().result(None).unwrap(), 144);
/// let squares: Vec<u64> = ex.map(square, 1..=4).unwrap().map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ex.shutdown(true, false);
/// assert_eq!(ex.submit(square, 1).unwrap_err(), SubmitError::Shutdown);
/// ```
///
/// # Differences from Python
///
/// * `submit` takes one argument; several travel as a tuple (`fn((u32, u32)) -> u32`).
/// * `map` takes one iterator of arguments, so Python's `map(fn, xs, ys)` is
///   `map(f, xs.zip(ys))`. Options (`timeout`, `chunksize`, `buffersize`) go in [`MapOptions`].
/// * `shutdown(wait, cancel_futures)` takes both flags positionally.
pub trait Executor {
    /// Schedules `f(arg)` and returns a future for its result: Python's `submit(fn, arg)`.
    ///
    /// Fails with [`SubmitError::Shutdown`] after `shutdown`, or [`SubmitError::Broken`] once
    /// the executor is broken.
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError>;

    /// Schedules `f` over a batch of arguments, for [`map`](Executor::map) with a `chunksize`
    /// above 1.
    ///
    /// The default submits each argument as its own task ([`Batch::Each`]), which is what
    /// Python's thread pool does with `chunksize`. An executor that gains from batching (the
    /// process pool: one message per chunk) overrides it and returns [`Batch::Whole`]: one
    /// future for the chunk's results, in order, failing as a whole if any item fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_core::{Batch, Executor, Future, Payload, SubmitError};
    ///
    /// struct Inline;
    /// impl Executor for Inline {
    ///     fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError> {
    ///         let future = Future::new();
    ///         future.set_result(f(arg)).unwrap();
    ///         Ok(future)
    ///     }
    ///     fn shutdown(&self, _wait: bool, _cancel_futures: bool) {}
    /// }
    ///
    /// fn double(x: u8) -> u8 {
    ///     2 * x
    /// }
    ///
    /// match Inline.submit_batch(double, vec![1, 2, 3]).unwrap() {
    ///     Batch::Each(futures) => {
    ///         let values: Vec<u8> = futures.iter().map(|f| f.result(None).unwrap()).collect();
    ///         assert_eq!(values, [2, 4, 6]);
    ///     }
    ///     Batch::Whole(_) => unreachable!("the default submits each argument"),
    /// }
    /// ```
    fn submit_batch<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<Batch<R>, SubmitError> {
        let mut futures = Vec::with_capacity(args.len());
        for arg in args {
            match self.submit(f, arg) {
                Ok(future) => futures.push(future),
                Err(e) => {
                    for future in &futures {
                        future.cancel();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Batch::Each(futures))
    }

    /// Signals the executor to free its resources once pending futures are done: Python's
    /// `shutdown(wait=True, *, cancel_futures=False)`. With `wait`, returns only once every
    /// running and queued task has finished. With `cancel_futures`, cancels every task not yet
    /// started. Safe to call more than once; `submit` fails afterwards.
    fn shutdown(&self, wait: bool, cancel_futures: bool);

    /// `f` over every input, results in input order: Python's `map(fn, iterable)` with the
    /// default options (every input submitted now, no timeout). See [`map_with`](Self::map_with).
    fn map<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
    ) -> Result<Map<'_, Self, I::IntoIter, A, R>, SubmitError>
    where
        Self: Sized,
        A: Payload,
        R: Payload + Clone,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, inputs, MapOptions::new())
    }

    /// `f` over every input with Python 3.14's `map` options: see [`Map`] for the semantics.
    ///
    /// Submission errors (shut down, broken, an invalid option) are returned here; without a
    /// `buffersize` every input is consumed and submitted before this returns.
    ///
    /// Each result is moved out of its future, which `map` owns; `R: Clone` is only the
    /// fallback for a result whose executor has not yet dropped its own handle to the future.
    fn map_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        options: MapOptions,
    ) -> Result<Map<'_, Self, I::IntoIter, A, R>, SubmitError>
    where
        Self: Sized,
        A: Payload,
        R: Payload + Clone,
        I: IntoIterator<Item = A>,
    {
        Map::start(self, f, inputs.into_iter(), options)
    }
}

/// What [`Executor::submit_batch`] gives back: the results of a chunk of `map`.
#[derive(Debug)]
pub enum Batch<R> {
    /// One future per argument, in order.
    Each(Vec<Future<R>>),
    /// One future for all the chunk's results, in order.
    Whole(Future<Vec<R>>),
}
