//! [`Gate`]: a one-way door.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A door that starts closed and, once opened, stays open. Cloning gives another handle.
///
/// Blocking on a gate that is never opened panics after [`Gate::MAX_WAIT`], so a broken test
/// fails instead of hanging.
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::Gate;
/// use std::thread;
///
/// let gate = Gate::new();
/// let g = gate.clone();
/// let t = thread::spawn(move || {
///     g.wait();
///     "through"
/// });
/// gate.open();
/// assert_eq!(t.join().unwrap(), "through");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Gate {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    /// The longest any `wait` blocks before it panics.
    pub const MAX_WAIT: Duration = Duration::from_secs(120);

    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Opens the gate, releasing every waiter now and later.
    pub fn open(&self) {
        let (open, cv) = &*self.inner;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        *self.inner.0.lock().unwrap()
    }

    /// Blocks until the gate is open (panics after [`Gate::MAX_WAIT`]).
    pub fn wait(&self) {
        assert!(self.wait_timeout(Self::MAX_WAIT), "gate was never opened");
    }

    /// Blocks until the gate is open or `timeout` passes; returns whether it is open.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (open, cv) = &*self.inner;
        let guard = open.lock().unwrap();
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |open| !*open)
            .unwrap();
        *guard
    }
}
