//! [`CallRefused`]: a worker's answer to a task message it cannot vouch for.

use serde::{Deserialize, Serialize};
use std::error::Error;
use std::fmt;

/// A worker refused to run a task: the message was not one its pool made (forged, corrupted,
/// or sealed under another pool's key), or could not be read at all.
///
/// Only that task fails, with this error inside
/// [`TaskError::Custom`](concurrent_futures_core::TaskError::Custom); the worker keeps serving.
/// A pool's own tasks are never refused: seeing this means something wrote to a worker's
/// channel that was not its pool, or the message was damaged on the way.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::TaskError;
/// // Re-exported by `concurrent_futures_process` (and the facade's `process` module) too.
/// use concurrent_futures_remote::{CallRefused, RefusalReason};
///
/// fn refusal(error: &TaskError) -> Option<&CallRefused> {
///     match error {
///         TaskError::Custom(e) => e.downcast_ref::<CallRefused>(),
///         _ => None,
///     }
/// }
/// # let _ = refusal;
/// # let _ = RefusalReason::Unauthenticated;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRefused {
    reason: RefusalReason,
    detail: String,
}

/// Why a worker refused a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The call site's tag does not check out under the pool's key: the pool did not make
    /// this call (a forged or damaged message, or another pool's).
    Unauthenticated,
    /// The call site is authentic but names a place outside the worker's executable code.
    OutsideCode,
    /// The message could not be decoded.
    Malformed,
    /// A task came before the worker's settings, so it had no key to check it with.
    BeforeSettings,
    /// The worker could not read its own code map to check the call (most often for want of
    /// a file descriptor); it will try again for the next task.
    Unverifiable,
    /// The worker ran the task but could not send its result (most often for want of a file
    /// descriptor for a large result's shared memory).
    ResultNotSent,
}

impl CallRefused {
    pub(crate) fn new(reason: RefusalReason, detail: String) -> CallRefused {
        CallRefused { reason, detail }
    }

    /// Why.
    pub fn reason(&self) -> RefusalReason {
        self.reason
    }
}

impl fmt::Display for CallRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            RefusalReason::Unauthenticated => {
                "the worker refused a call its pool did not make (its tag does not match the \
                 pool's key)"
            }
            RefusalReason::OutsideCode => {
                "the worker refused a call outside this executable's code"
            }
            RefusalReason::Malformed => "the worker refused a message it cannot decode",
            RefusalReason::BeforeSettings => {
                "the worker refused a task sent before its settings (it has no key yet)"
            }
            RefusalReason::Unverifiable => "the worker cannot check the call",
            RefusalReason::ResultNotSent => "the worker ran the task but could not send its result",
        };
        f.write_str(what)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl Error for CallRefused {}
