//! Awaiting a [`Future`] in any async runtime: a waker is registered like a done-callback, so
//! core needs no runtime.

use super::{Future, STATUS_MASK, TAKER_ONE, handle_count};
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
    /// await a future that other handles share; `.await` on the future itself moves the value
    /// out instead.
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
/// The value is moved out, for any `T`, once this is the last handle; executors drop theirs
/// right after completing the future. To await a future other handles keep, await
/// [`Future::completed`] instead.
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
/// std::thread::spawn(move || worker.set_result(String::from("done")).unwrap());
/// assert_eq!(block_on(async { future.await }).unwrap(), "done");
/// ```
impl<T> std::future::IntoFuture for Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = FutureAwait<T>;

    fn into_future(self) -> FutureAwait<T> {
        FutureAwait {
            future: Some(self),
            awaiter: next_awaiter(),
            taking: false,
        }
    }
}

/// The future `.await` on a [`Future`] polls (see its `IntoFuture` implementation).
#[must_use = "futures do nothing unless awaited"]
pub struct FutureAwait<T> {
    /// `None` once the output was returned.
    future: Option<Future<T>>,
    awaiter: u64,
    /// We are counted as a waiting taker (`TAKER_ONE`), and `taker_wakers` may hold our waker.
    taking: bool,
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
        if word & STATUS_MASK != FINISHED {
            this.future = None;
            return Poll::Ready(Err(FutureError::Cancelled(crate::CancelledError)));
        }
        // Finished: move the value out once this is the last handle (`into_result`'s protocol,
        // with a waker instead of the condvar).
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
