//! Awaiting a [`Future`] in any async runtime: a waker is registered like a done-callback, so
//! core needs no runtime.

use super::{FAILED, Future, STATUS_MASK, TAKER_ONE, handle_count};
use crate::FutureError;
use crate::loom::sync::atomic::Ordering;
use crate::state::FINISHED;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, Waker};

/// Numbers awaiters, so each keeps one waker slot on a future however often it is polled.
static NEXT_AWAITER: AtomicU64 = AtomicU64::new(0);

fn next_awaiter() -> u64 {
    NEXT_AWAITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl<T> Future<T> {
    /// Registers `waker` under `awaiter` unless the future is done; returns whether it is done.
    fn register_unless_done(&self, awaiter: u64, waker: &Waker) -> bool {
        if self.done() {
            return true;
        }
        let mut shared = self.inner.shared.lock();
        if self.done() {
            return true;
        }
        let wakers = &mut shared.watchers().wakers;
        match wakers.iter_mut().find(|(id, _)| *id == awaiter) {
            Some((_, slot)) if slot.will_wake(waker) => {}
            Some((_, slot)) => *slot = waker.clone(),
            None => wakers.push((awaiter, waker.clone())),
        }
        false
    }

    /// How many async tasks are awaiting this future now (for diagnostics, and for tests that
    /// check an abandoned `.await` leaves nothing behind).
    pub fn awaiter_count(&self) -> usize {
        let shared = self.inner.shared.lock();
        shared
            .watchers
            .as_ref()
            .map_or(0, |w| w.wakers.len() + w.taker_wakers.len())
    }

    fn unregister(&self, awaiter: u64) {
        let mut shared = self.inner.shared.lock();
        if let Some(w) = shared.watchers.as_mut() {
            w.wakers.retain(|(id, _)| *id != awaiter);
        }
    }

    /// An async wait for the future to be done (finished or cancelled), leaving the result in
    /// place: afterwards `result(Duration::ZERO)` or `result_ref` return at once. Use it to
    /// await a future whose result is neither `Clone` nor to be moved; `.await` on the future
    /// itself moves or clones the value out instead.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// use concurrent_futures_core::Future;
    /// use std::time::Duration;
    ///
    /// let shared = Future::new();
    /// let setter = shared.clone();
    /// std::thread::spawn(move || setter.set_result(3).unwrap());
    /// block_on(shared.completed());
    /// assert_eq!(shared.result(Duration::ZERO).unwrap(), 3);
    /// ```
    pub fn completed(&self) -> Completed<'_, T> {
        Completed {
            future: self,
            awaiter: next_awaiter(),
        }
    }
}

/// The future returned by [`Future::completed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Completed<'a, T> {
    future: &'a Future<T>,
    awaiter: u64,
}

impl<T> std::future::Future for Completed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.future.register_unless_done(self.awaiter, cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<T> Drop for Completed<'_, T> {
    fn drop(&mut self) {
        if !self.future.done() {
            self.future.unregister(self.awaiter);
        }
    }
}

impl<T> fmt::Debug for Completed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completed")
            .field("future", self.future)
            .finish()
    }
}

/// `.await` on a [`Future`] gives its result, as [`Future::into_result`] does: the value, or
/// the same [`FutureError`] (`Cancelled`, or `Failed` with the task's error).
///
/// It waits for the future to complete and for nothing else: the value is moved out when this
/// is the last handle and cloned otherwise, so clones kept elsewhere never delay it. For a
/// result that is not `Clone`, await [`Future::into_future_when_last`] (moves the value out
/// once the other handles are gone) or [`Future::completed`] (leaves it in place).
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// use concurrent_futures_core::Future;
///
/// let future = Future::new();
/// let worker = future.clone();
/// let kept = future.clone(); // alive until the end: `.await` does not wait for it
/// std::thread::spawn(move || worker.set_result(String::from("done")).unwrap());
/// assert_eq!(block_on(async { future.await }).unwrap(), "done");
/// assert_eq!(kept.result(None).unwrap(), "done");
/// ```
///
/// A result that is not `Clone` cannot be awaited this way, since another handle might still
/// read it:
///
/// ```compile_fail,E0277
/// # async fn f() {
/// let future = concurrent_futures_core::Future::<std::sync::mpsc::Receiver<u8>>::new();
/// let _ = future.await; // error: `Receiver<u8>: Clone` is not satisfied
/// # }
/// ```
impl<T: Clone> std::future::IntoFuture for Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = FutureAwait<T>;

    fn into_future(self) -> FutureAwait<T> {
        FutureAwait {
            future: Some(self),
            awaiter: next_awaiter(),
            taking: false,
            shared_value: Some(Future::clone_outcome),
        }
    }
}

impl<T> Future<T> {
    /// An async [`into_result_when_last`](Future::into_result_when_last): awaits the result
    /// and moves it out, for any `T`, once this is the last handle. The task's error, if it
    /// failed, comes at once.
    ///
    /// Executors drop their handle right after completing a future; a clone that you keep
    /// alive keeps this pending until you drop it. For `Clone` results, plain `.await` never
    /// waits for other handles.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// use concurrent_futures_core::Future;
    /// use std::sync::mpsc;
    ///
    /// let future = Future::new();
    /// let worker = future.clone();
    /// std::thread::spawn(move || {
    ///     let (tx, rx) = mpsc::channel();
    ///     tx.send(7).unwrap();
    ///     worker.set_result(rx).unwrap(); // then the worker's handle drops
    /// });
    /// let rx: mpsc::Receiver<i32> = block_on(future.into_future_when_last()).unwrap();
    /// assert_eq!(rx.recv().unwrap(), 7);
    /// ```
    pub fn into_future_when_last(self) -> FutureAwait<T> {
        FutureAwait {
            future: Some(self),
            awaiter: next_awaiter(),
            taking: false,
            shared_value: None,
        }
    }
}

/// How a [`FutureAwait`] gets the value while other handles exist.
type SharedValue<T> = fn(&Future<T>, u8) -> Result<T, FutureError>;

/// The future `.await` on a [`Future`] polls (see its `IntoFuture` implementation), and the one
/// [`Future::into_future_when_last`] returns.
#[must_use = "futures do nothing unless awaited"]
pub struct FutureAwait<T> {
    /// `None` once the output was returned.
    future: Option<Future<T>>,
    awaiter: u64,
    /// We are counted as a waiting taker (`TAKER_ONE`), and `taker_wakers` may hold our waker.
    taking: bool,
    /// `.await`: clone the value when other handles exist. `None` (`into_future_when_last`):
    /// wait to be the last handle.
    shared_value: Option<SharedValue<T>>,
}

impl<T> std::future::Future for FutureAwait<T> {
    type Output = Result<T, FutureError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let future = this
            .future
            .as_ref()
            .expect("FutureAwait polled after it returned");
        if !future.register_unless_done(this.awaiter, cx.waker()) {
            return Poll::Pending;
        }
        let word = future.word();
        if word & STATUS_MASK != FINISHED || word & FAILED != 0 {
            let error = future.no_value(word);
            this.future = None;
            return Poll::Ready(Err(error));
        }
        if let Some(shared_value) = this.shared_value {
            // `into_result`'s rule: move when last, clone otherwise; never wait for handles.
            let output = if handle_count(future.inner.handles.load(Ordering::Acquire)) == 1 {
                future.take_outcome()
            } else {
                shared_value(future, word)
            };
            this.future = None;
            return Poll::Ready(output);
        }
        // Finished: move the value out once this is the last handle (`into_result_when_last`'s
        // protocol, with a waker instead of the condvar).
        let mut shared = future.inner.shared.lock();
        let handles = if this.taking {
            future.inner.handles.load(Ordering::Acquire)
        } else {
            this.taking = true;
            future.inner.handles.fetch_add(TAKER_ONE, Ordering::AcqRel)
        };
        let takers = &mut shared.watchers().taker_wakers;
        if handle_count(handles) > 1 {
            // Our waker, once (a handle's drop may have taken it since the last poll).
            match takers.iter_mut().find(|(id, _)| *id == this.awaiter) {
                Some((_, slot)) if slot.will_wake(cx.waker()) => {}
                Some((_, slot)) => *slot = cx.waker().clone(),
                None => takers.push((this.awaiter, cx.waker().clone())),
            }
            return Poll::Pending;
        }
        takers.retain(|(id, _)| *id != this.awaiter);
        future.inner.handles.fetch_sub(TAKER_ONE, Ordering::AcqRel);
        this.taking = false;
        let output = future.take_outcome();
        drop(shared);
        this.future = None;
        Poll::Ready(output)
    }
}

impl<T> Unpin for FutureAwait<T> {}

impl<T> Drop for FutureAwait<T> {
    fn drop(&mut self) {
        let Some(future) = &self.future else { return };
        let mut shared = future.inner.shared.lock();
        if let Some(w) = shared.watchers.as_mut() {
            w.wakers.retain(|(id, _)| *id != self.awaiter);
            w.taker_wakers.retain(|(id, _)| *id != self.awaiter);
        }
        if self.taking {
            // Uncounted before our handle drops (right after this), so that drop sees only
            // the takers that still wait, and wakes them if it leaves one handle.
            future.inner.handles.fetch_sub(TAKER_ONE, Ordering::AcqRel);
        }
    }
}

impl<T> fmt::Debug for FutureAwait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.future {
            Some(future) => f
                .debug_struct("FutureAwait")
                .field("future", future)
                .finish(),
            None => f.write_str("FutureAwait(returned)"),
        }
    }
}
