//! Python's `concurrent.futures`, in Rust: this facade re-exports everything, like the
//! package's `__init__.py`: the core ([`Future`], [`Executor`], the errors), [`wait`] and
//! [`as_completed`], the thread engine ([`thread`], [`ThreadPoolExecutor`]; feature `thread`)
//! and the process engine (`process`, `ProcessPoolExecutor`; feature `process`, Linux).
//!
//! ```
//! use concurrent_futures::{Future, ReturnWhen, wait};
//!
//! let a = Future::new();
//! let b = Future::<i32>::new();
//! a.set_result("ready").unwrap();
//! let outcome = wait([&a as &dyn concurrent_futures::Waitable, &b], None, ReturnWhen::FirstCompleted);
//! assert_eq!(outcome.done.len(), 1);
//! ```
//!
//! The core's internals (its std/loom switch and panic helpers, shared only with this
//! workspace's engines) are not re-exported:
//!
//! ```compile_fail
//! use concurrent_futures::shim::sync::Mutex;
//! ```
#![deny(missing_docs)]

// Listed one by one, not by glob: core's doc-hidden internals (`shim`, `contain_panic`,
// `drop_panic_payload`) are for the engines, not for users of the facade.
pub use concurrent_futures_core::{
    Batch, BrokenExecutor, BrokenKind, CancelledError, Completed, Completion, Deadline, Executor,
    Future, FutureAwait, FutureError, FutureId, InvalidStateError, Map, MapError, MapOptions,
    Payload, PayloadError, PayloadStage, State, SubmitError, TaskError, TimeoutError, Waitable,
    panic_message, waiter,
};
pub use concurrent_futures_wait::{AsCompleted, DoneAndNotDone, ReturnWhen, as_completed, wait};

/// Python's `concurrent.futures.thread`: the thread engine.
#[cfg(feature = "thread")]
pub mod thread {
    pub use concurrent_futures_thread::*;
}
#[cfg(feature = "thread")]
pub use concurrent_futures_thread::ThreadPoolExecutor;

/// Python's `concurrent.futures.process`: the process engine (Linux).
#[cfg(all(feature = "process", target_os = "linux"))]
pub mod process {
    pub use concurrent_futures_process::*;
}
#[cfg(all(feature = "process", target_os = "linux"))]
pub use concurrent_futures_process::ProcessPoolExecutor;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
