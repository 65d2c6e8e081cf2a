//! The core of [concurrent-futures]: Python's `concurrent.futures._base` in Rust.
//!
//! * [`Future`] — the state machine every executor completes and every caller waits on, with
//!   Python's five [`State`]s and rules, done-callbacks, and `result(timeout)`; it can also be
//!   `.await`ed in any async runtime ([`FutureAwait`], [`Completed`]). An executor whose
//!   completing thread must run no user code hands the done-callbacks to another thread
//!   ([`Future::complete_deferring_callbacks`], [`DeferredCallbacks`]).
//! * [`Executor`] — the one interface of the thread and process engines, with `submit`,
//!   [`map`](Executor::map) (written once, here; an engine that batches gets `chunksize`'s
//!   chunks through [`submit_batch`](Executor::submit_batch) and [`Batch`]) and `shutdown`.
//! * The errors — [`CancelledError`], [`TimeoutError`], [`InvalidStateError`],
//!   [`BrokenExecutor`], [`TaskError`], [`PayloadError`] (with [`PayloadStage`]),
//!   [`FutureError`], [`SubmitError`].
//! * What the engines share: [`QueueFullPolicy`] (a bounded submit queue's policy) and
//!   [`PoolStats`] (their counts).
//! * [`blocking`] — how an executor's worker hears that its task blocks in a wait, so that
//!   the pool can compensate (a task waiting on its own pool must not starve it).
//! * [`waiter`] and [`Waitable`] — the hook that `wait` and `as_completed` (in
//!   `concurrent-futures-wait`) install on futures of any result type.
//!
//! Every lock, condition variable and atomic here comes from one internal shim that switches to
//! [loom] under `cfg(loom)`; `cargo xtask loom` model-checks the code that ships.
//!
//! # Examples
//!
//! ```
//! use concurrent_futures_core::{Future, FutureError};
//! use std::thread;
//!
//! let future = Future::new();
//! let worker = future.clone();
//! let handle = thread::spawn(move || {
//!     if worker.set_running_or_notify_cancel() == Ok(true) {
//!         worker.set_result("hello".to_owned()).unwrap();
//!     }
//! });
//! match future.result(None) {
//!     Ok(s) => assert_eq!(s, "hello"),
//!     Err(FutureError::Cancelled(_)) => unreachable!("nobody cancelled it"),
//!     Err(e) => panic!("{e}"),
//! }
//! handle.join().unwrap();
//! ```
//!
//! A `Future` is only `Send` when its result is:
//!
//! ```compile_fail
//! fn assert_send<T: Send>(_: T) {}
//! assert_send(concurrent_futures_core::Future::<std::rc::Rc<i32>>::new());
//! ```
//!
//! [concurrent-futures]: https://docs.python.org/3/library/concurrent.futures.html
//! [loom]: https://docs.rs/loom
#![deny(missing_docs)]

#[allow(missing_docs)] // internal: reachable only through the doc-hidden `shim`
mod loom;

/// The std/loom switch, shared with this workspace's engines so that their protocols are the
/// modelled code too. Not part of the public API: no semver promise.
#[doc(hidden)]
pub mod shim {
    pub use crate::loom::{cell, hint, sync, thread, time};
}

pub mod blocking;
mod deadline;
mod error;
mod executor;
mod future;
mod map;
mod queue;
mod state;
mod stats;
mod unwind;
mod waitable;
pub mod waiter;

pub use deadline::Deadline;
pub use error::{
    BrokenExecutor, BrokenKind, CancelledError, FutureError, InvalidStateError, PayloadError,
    PayloadStage, StopReason, SubmitError, TaskError, TaskStopped, TimeoutError,
};
pub use executor::{Batch, Executor, Payload};
pub use future::{Completed, DeferredCallbacks, Future, FutureAwait, FutureTask};
pub use map::{Map, MapError, MapOptions};
pub use queue::QueueFullPolicy;
pub use state::{Completion, State};
pub use stats::PoolStats;
pub use unwind::panic_message;
#[doc(hidden)]
pub use unwind::{contain_panic, drop_panic_payload};
pub use waitable::Waitable;
pub use waiter::FutureId;

/// The model clock of `cfg(loom)` builds: loom has no time, so models move it by hand.
#[cfg(loom)]
pub mod model_clock {
    /// Moves the model clock forward by `step` (from a model's timer thread).
    pub fn advance(step: std::time::Duration) {
        crate::loom::time::advance(step)
    }
}
