//! The one place that names `parking_lot`, `std::sync` or `loom`.
//!
//! Every lock, condition variable, atomic, `Arc`, cell and clock used by this crate comes from
//! here, so the code that `cargo xtask loom` checks is the code that ships (the pattern of
//! tokio's `src/loom/`). Both back ends offer the same small, std-shaped API:
//!
//! * `sync::Mutex::lock` returns a guard without poisoning;
//! * `sync::Condvar::wait` takes and returns the guard by value;
//! * `sync::Condvar::wait_until` takes a [`time::Instant`] deadline and may wake early: callers
//!   always loop on their predicate. Under loom it really sleeps, until notified or until the
//!   model clock passes the deadline, so a lost wake-up on a timed wait is a reported deadlock;
//! * `cell::UnsafeCell` exposes `with` / `with_mut` so that loom can check each access;
//! * `thread_local!` is std's, or loom's (each loom thread has its own);
//! * `time::Instant` is `std::time::Instant`, or under loom a model clock that only a test's
//!   timer thread moves (loom has no clock of its own).

#[cfg(not(loom))]
mod std;
#[cfg(not(loom))]
pub(crate) use self::std::thread_local;
#[cfg(not(loom))]
pub use self::std::{cell, hint, sync, thread, time};

#[cfg(loom)]
mod mocked;
#[cfg(loom)]
pub(crate) use self::mocked::thread_local;
#[cfg(loom)]
pub use self::mocked::{cell, hint, sync, thread, time};
