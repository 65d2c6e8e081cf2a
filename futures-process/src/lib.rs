//! The process engine of concurrent-futures: Python's `concurrent.futures.process`.
//!
//! * [`ProcessPoolExecutor`] — the pool, implementing the core
//!   [`Executor`](concurrent_futures_core::Executor) trait; [`ProcessPoolBuilder`] for its
//!   settings and [`StartMethod`] for how workers start.
//! * [`bootstrap`] — the first line of `main` (Python's `if __name__ == "__main__":`), and
//!   [`bootstrap_before_main!`] for test binaries.
//!
//! # Examples
//!
//! ```
//! use concurrent_futures_process::{ProcessPoolExecutor, bootstrap};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() {
//!     bootstrap();
//!     let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
//!     assert_eq!(pool.submit(square, 7).unwrap().result(None).unwrap(), 49);
//! }
//! ```
//!
//! # How it works
//!
//! Each worker is this same program, started by [`StartMethod`], connected by two
//! `ipc-channel` byte channels that only the pool and that worker hold. A function crosses by
//! its offset in the executable (see `call.rs`), tagged with a MAC under a key that each pool
//! draws for itself, so that a worker runs only calls its own pool made (see `auth.rs`);
//! arguments and results by postcard. The caller
//! that submits sends the task straight to an idle worker, and the worker's *courier* thread in
//! the pool completes the future and sends the worker its next task: one thread hop from a
//! result to a waiting caller. A worker's channel closing is how its death is seen, in well
//! under a millisecond; a blocking reap then gives the exit code or signal, and no worker is
//! ever left a zombie. Workers die with the pool's process (`PR_SET_PDEATHSIG`); the pool asks
//! an idle worker to leave with a message, and a worker also leaves when its channel closes.
//!
//! With [`StartMethod::ForkServer`] and [`StartMethod::Spawn`] a new worker holds none of the
//! pool's descriptors and connects to a one-shot server the pool made for it (a guard
//! thread watches the child's pidfd meanwhile, so a child that dies first cannot leave the pool
//! waiting, and kills one that has not connected within
//! [`ProcessPoolBuilder::handshake_timeout`]); with [`StartMethod::Fork`] it inherits its
//! channels and starts at once.
//!
//! # Seeing it run
//!
//! `ps`, `top` and `/proc/<pid>/comm` show each worker process as `cf-worker` and the fork
//! server as `cf-forkserver` (their full command line stays the program's). The pool logs
//! through the `log` crate on target `concurrent_futures`: at debug level each worker process
//! that started (and how) and each that ended (and how: exit code or signal); at error level a
//! pool that broke (`BrokenProcessPool` and why) and an initializer that failed (with the
//! remote traceback); at warn level a `Fork` pool built in a multi-threaded process.
#![deny(missing_docs)]

mod auth;
mod bootstrap;
mod builder;
mod call;
mod courier;
mod forkserver;
mod interrupt;
mod launch;
#[cfg(loom)]
#[doc(hidden)]
pub mod model;
mod pool;
mod refused;
mod shared;
mod sys;
mod wire;
mod worker;
mod workers;

#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod test_support;

pub use bootstrap::bootstrap;
pub use builder::{BuildError, ProcessPoolBuilder};
pub use launch::StartMethod;
pub use pool::ProcessPoolExecutor;
pub use refused::{CallRefused, RefusalReason};
pub use workers::{ExitReason, ShutdownReport, WorkerExit, WorkerInfo, WorkerState};
