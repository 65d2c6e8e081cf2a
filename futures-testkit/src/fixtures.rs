//! Futures in every state, and task functions: the fixtures of CPython's `util.py`.

use concurrent_futures_core::{Future, State, TaskError};

/// A future driven into `state` through the public transitions only; a finished one holds
/// `outcome` (a value, or an error).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::State;
/// use concurrent_futures_testkit::fixtures::create_future;
///
/// let f = create_future::<i32>(State::CancelledAndNotified, None);
/// assert_eq!(f.state(), State::CancelledAndNotified);
/// ```
pub fn create_future<T>(state: State, outcome: Option<Result<T, TaskError>>) -> Future<T> {
    let f = Future::new();
    match state {
        State::Pending => {}
        State::Running => {
            assert_eq!(f.set_running_or_notify_cancel(), Ok(true));
        }
        State::Cancelled => {
            assert!(f.cancel());
        }
        State::CancelledAndNotified => {
            assert!(f.cancel());
            assert_eq!(f.set_running_or_notify_cancel(), Ok(false));
        }
        State::Finished => {
            match outcome.expect("a finished future needs an outcome") {
                Ok(v) => f.set_result(v),
                Err(e) => f.set_exception(e),
            }
            .expect("a new future accepts an outcome");
        }
    }
    f
}

/// `PENDING_FUTURE`.
pub fn pending_future() -> Future<i32> {
    create_future(State::Pending, None)
}

/// `RUNNING_FUTURE`.
pub fn running_future() -> Future<i32> {
    create_future(State::Running, None)
}

/// `CANCELLED_FUTURE`: cancelled, but no executor has noticed (not done for `wait`).
pub fn cancelled_future() -> Future<i32> {
    create_future(State::Cancelled, None)
}

/// `CANCELLED_AND_NOTIFIED_FUTURE`.
pub fn cancelled_and_notified_future() -> Future<i32> {
    create_future(State::CancelledAndNotified, None)
}

/// `EXCEPTION_FUTURE`: finished with an error (Python's `OSError()`).
pub fn exception_future() -> Future<i32> {
    create_future(State::Finished, Some(Err(TaskError::panicked("OSError"))))
}

/// `SUCCESSFUL_FUTURE`: finished with 42.
pub fn successful_future() -> Future<i32> {
    create_future(State::Finished, Some(Ok(42)))
}

/// Python's `mul(x, y)`.
pub fn mul((x, y): (i64, i64)) -> i64 {
    x * y
}

/// Python's `divmod(x, y)` on integers (floor division); panics on `y == 0` with Rust's
/// "attempt to divide by zero", the twin of `ZeroDivisionError`.
pub fn divmod((x, y): (i64, i64)) -> (i64, i64) {
    (x.div_euclid(y), x.rem_euclid(y))
}

/// Python's `pow(x, y)`.
pub fn pow((x, y): (i64, u32)) -> i64 {
    x.pow(y)
}

/// A process-wide gate, by number: plain `fn` tasks (which capture nothing) block on it.
///
/// ```
/// use concurrent_futures_testkit::fixtures::{global_gate, wait_on_global_gate};
///
/// global_gate(7001).open();
/// assert_eq!(wait_on_global_gate(7001), 7001);
/// ```
pub fn global_gate(key: u64) -> crate::Gate {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static GATES: Mutex<Option<HashMap<u64, crate::Gate>>> = Mutex::new(None);
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default()
        .clone()
}

/// A task that blocks until [`global_gate`]`(key)` opens, then returns `key`.
pub fn wait_on_global_gate(key: u64) -> u64 {
    global_gate(key).wait();
    key
}

/// Python's `str` on an integer.
pub fn stringify(x: i64) -> String {
    x.to_string()
}

/// Python's `abs`.
pub fn abs(x: i64) -> i64 {
    x.abs()
}

/// Python's `add(x, y)`.
pub fn add((x, y): (i64, i64)) -> i64 {
    x + y
}

/// An iterator that is not fused: `Some(1)`, `None`, `Some(3)`, `None`, … — for checking that
/// a consumer stops at the first `None`, as Python's loops do.
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::fixtures::Unfused;
///
/// let mut it = Unfused::default();
/// assert_eq!((it.next(), it.next(), it.next()), (Some(1), None, Some(3)));
/// ```
#[derive(Debug, Default)]
pub struct Unfused(u64);

impl Iterator for Unfused {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.0 += 1;
        (self.0 % 2 == 1).then_some(self.0)
    }
}
