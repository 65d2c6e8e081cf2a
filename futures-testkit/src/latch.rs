//! [`Latch`]: wait until N things have happened.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A count-down latch: [`wait`](Latch::wait) returns once [`count_down`](Latch::count_down)
/// has been called `n` times. Cloning gives another handle.
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::Latch;
/// use std::thread;
///
/// let latch = Latch::new(3);
/// for _ in 0..3 {
///     let l = latch.clone();
///     thread::spawn(move || l.count_down());
/// }
/// latch.wait();
/// assert_eq!(latch.count(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Latch {
    inner: Arc<(Mutex<usize>, Condvar)>,
}

impl Latch {
    /// A latch that opens after `n` count-downs.
    pub fn new(n: usize) -> Latch {
        Latch {
            inner: Arc::new((Mutex::new(n), Condvar::new())),
        }
    }

    /// Counts one event (no-op once at zero).
    pub fn count_down(&self) {
        let (count, cv) = &*self.inner;
        let mut count = count.lock().unwrap();
        *count = count.saturating_sub(1);
        if *count == 0 {
            cv.notify_all();
        }
    }

    /// Events still to come.
    pub fn count(&self) -> usize {
        *self.inner.0.lock().unwrap()
    }

    /// Blocks until the count reaches zero (panics after two minutes: a broken test).
    pub fn wait(&self) {
        let (count, cv) = &*self.inner;
        let guard = count.lock().unwrap();
        let (guard, _) = cv
            .wait_timeout_while(guard, Duration::from_secs(120), |n| *n > 0)
            .unwrap();
        assert_eq!(*guard, 0, "latch still expects {} count-downs", *guard);
    }
}
