//! Running an MPI call that may never return on a helper thread, with a deadline.
//!
//! Some MPI calls hang for good on a failure Open MPI does not report (the spike:
//! `MPI_Comm_spawn` of a program that never reaches `MPI_Init`). Such a call runs on its own
//! thread; past the deadline the caller gets a typed error, the thread is abandoned, and the
//! process is marked so that MPI is not finalized under the stuck call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

static ABANDONED: AtomicBool = AtomicBool::new(false);

/// Whether an MPI call was abandoned in this process (then finalizing could hang too).
pub(crate) fn abandoned() -> bool {
    ABANDONED.load(Ordering::Acquire)
}

/// Marks an MPI call abandoned on a thread that may never come back from it (see
/// [`crate::progresswatch`]).
pub(crate) fn abandon() {
    ABANDONED.store(true, Ordering::Release);
}

/// Runs `call` on a thread named `name`; `None` if it has not returned within `limit`.
pub(crate) fn with_deadline<T: Send + 'static>(
    name: &str,
    limit: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(call());
        });
    if spawned.is_err() {
        return None;
    }
    match rx.recv_timeout(limit) {
        Ok(value) => Some(value),
        Err(_) => {
            ABANDONED.store(true, Ordering::Release);
            None
        }
    }
}
