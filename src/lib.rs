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
#![deny(missing_docs)]

pub use concurrent_futures_core::*;
pub use concurrent_futures_wait::{
    AsCompleted, AsCompletedAll, DoneAndNotDone, ReturnWhen, as_completed, as_completed_all, wait,
};

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
