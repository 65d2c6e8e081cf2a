//! The state word of a [`Future`](crate::Future): Python's five states, plus one bit that says
//! whether a finished future holds an error.
//!
//! ```text
//!  bit  7 6 5 | 4         | 3      | 2 1 0
//!       unused | RETRIEVED | FAILED | status: PENDING RUNNING CANCELLED CANCELLED_AND_NOTIFIED FINISHED
//! ```
//!
//! Every transition but one is written with the future's lock held. The exception is
//! PENDING → RUNNING (`set_running_or_notify_cancel`'s common case), a compare-and-swap without
//! the lock, since nobody waits for it; so `cancel` also moves PENDING by compare-and-swap, and
//! `set_result`/`set_exception` may overwrite a RUNNING that slipped in after their check (both
//! PENDING and RUNNING may finish). The word is *read* without the lock (`done()`, the fast path
//! of `result()`, the snapshot pass of `wait`). A `Release` store of `FINISHED` publishes the
//! outcome written just before it; an `Acquire` load that sees `FINISHED` may read it.
//!
//! `RETRIEVED` is the one bit set after `FINISHED`: by a `fetch_or` when a failed future's error
//! is first handed out (`result`, `exception`, `into_result`, `.await`, …). No transition stores
//! the word after `FINISHED`, so the bit is never lost.

use std::fmt;

/// The state of a [`Future`](crate::Future), named as in Python's `concurrent.futures._base`.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Future, State};
///
/// let f = Future::<i32>::new();
/// assert_eq!(f.state(), State::Pending);
/// assert!(f.cancel());
/// assert_eq!(f.state(), State::Cancelled);
/// ```
///
/// # Differences from Python
///
/// Python keeps the state as a string in the private `_state` attribute; here it is public, as
/// an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Submitted, not started.
    Pending,
    /// An executor has started it (`set_running_or_notify_cancel` returned `true`).
    Running,
    /// `cancel()` succeeded; the executor has not yet seen it.
    Cancelled,
    /// Cancelled, and the executor has told every `wait`/`as_completed` watching it.
    CancelledAndNotified,
    /// Holds a value or an error, forever.
    Finished,
}

pub(crate) const PENDING: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const CANCELLED: u8 = 2;
pub(crate) const CANCELLED_AND_NOTIFIED: u8 = 3;
pub(crate) const FINISHED: u8 = 4;
/// Set together with `FINISHED` when the outcome is an error.
pub(crate) const FAILED: u8 = 0b1000;
pub(crate) const STATUS_MASK: u8 = 0b0111;
/// Set on a failed future once its error was handed out to a caller (see
/// `Future::error_retrieved`).
pub(crate) const RETRIEVED: u8 = 0b1_0000;

impl State {
    #[inline]
    pub(crate) fn from_word(word: u8) -> State {
        match word & STATUS_MASK {
            PENDING => State::Pending,
            RUNNING => State::Running,
            CANCELLED => State::Cancelled,
            CANCELLED_AND_NOTIFIED => State::CancelledAndNotified,
            _ => State::Finished,
        }
    }

    /// Python's constant name: `PENDING`, `RUNNING`, `CANCELLED`, `CANCELLED_AND_NOTIFIED`,
    /// `FINISHED` (used in [`InvalidStateError`](crate::InvalidStateError) messages).
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Running => "RUNNING",
            State::Cancelled => "CANCELLED",
            State::CancelledAndNotified => "CANCELLED_AND_NOTIFIED",
            State::Finished => "FINISHED",
        }
    }

    /// The word used in a future's `Debug` output; both cancel states read `cancelled`, as in
    /// Python's `_STATE_TO_DESCRIPTION_MAP`.
    pub fn description(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Cancelled | State::CancelledAndNotified => "cancelled",
            State::Finished => "finished",
        }
    }

    /// `cancelled()`: either cancel state.
    pub fn is_cancelled(self) -> bool {
        matches!(self, State::Cancelled | State::CancelledAndNotified)
    }

    /// `done()`: cancelled or finished.
    pub fn is_done(self) -> bool {
        !matches!(self, State::Pending | State::Running)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a future ended, as far as `wait` and `as_completed` are concerned.
///
/// A future merely `cancel()`ed has no completion yet: it completes (as `Cancelled`) only when
/// its executor calls `set_running_or_notify_cancel`, exactly as in Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Completion {
    /// Finished with a value (Python's `add_result`).
    Returned,
    /// Finished with an error (Python's `add_exception`).
    Raised,
    /// Cancelled and notified (Python's `add_cancelled`).
    Cancelled,
}

impl Completion {
    /// The completion a state word stands for, if any.
    #[inline]
    pub(crate) fn from_word(word: u8) -> Option<Completion> {
        match word & STATUS_MASK {
            CANCELLED_AND_NOTIFIED => Some(Completion::Cancelled),
            FINISHED if word & FAILED != 0 => Some(Completion::Raised),
            FINISHED => Some(Completion::Returned),
            _ => None,
        }
    }
}
