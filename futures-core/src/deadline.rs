//! When a blocking call gives up.

use crate::loom::time::Instant;
use std::time::Duration;

/// The moment a blocking wait gives up, fixed when the wait starts.
///
/// Python's timeouts are `None` (wait forever), `0` or negative (poll), or a number of seconds;
/// here they are `Option<Duration>`. A timeout so large that it overflows the clock means
/// "forever". Under `cfg(loom)` the clock is the model clock that loom tests move by hand.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Deadline;
/// use std::time::Duration;
///
/// assert!(Deadline::after(Some(Duration::ZERO)).is_past());
/// assert!(!Deadline::after(None).is_past());
/// assert_eq!(Deadline::after(None).remaining(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline `timeout` from now; `None` never passes.
    pub fn after(timeout: Option<Duration>) -> Deadline {
        Deadline {
            at: timeout.and_then(|t| Instant::now().checked_add(t)),
        }
    }

    /// A deadline that never passes.
    pub const fn never() -> Deadline {
        Deadline { at: None }
    }

    /// Whether the deadline has come.
    pub fn is_past(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// Time left before the deadline (zero once it is past); `None` for a deadline that never
    /// passes.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The instant itself, for the engines' timed condition waits (the shim's clock). Not
    /// part of the public API.
    #[doc(hidden)]
    pub fn instant(&self) -> Option<Instant> {
        self.at
    }
}
