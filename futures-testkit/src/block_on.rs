//! [`block_on`]: the smallest executor for a `std::future::Future` — park until woken.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread, sleeping between polls until its waker is
/// called: proof that a future needs no runtime, only a correct waker.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Future;
/// use concurrent_futures_testkit::block_on;
///
/// let f = Future::new();
/// let worker = f.clone();
/// std::thread::spawn(move || worker.set_result(9).unwrap());
/// assert_eq!(block_on(async { f.await }).unwrap(), 9);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A worker of a pool that blocks here lets that pool compensate (see `blocking`).
        concurrent_futures_core::blocking::blocking(thread::park);
    }
}
