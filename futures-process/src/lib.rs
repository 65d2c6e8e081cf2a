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
//! its offset in the executable, tagged with a MAC under a key that each pool draws for
//! itself, so that a worker runs only calls its own pool made; arguments and results by
//! postcard. That half is shared with other multi-process engines, in
//! [`concurrent_futures_remote`] (its call sites, their authentication, the wire format and
//! the worker's serve loop). The caller
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
//! # Beyond Python
//!
//! Off by default, so that Python's behaviour stays the default; each is a
//! [`ProcessPoolBuilder`] option or a [`ProcessPoolExecutor`] method:
//!
//! * crash isolation ([`isolate_crashes`](ProcessPoolBuilder::isolate_crashes)) with a
//!   restart-storm guard ([`max_restarts`](ProcessPoolBuilder::max_restarts));
//! * time limits that stop the work ([`task_timeout`](ProcessPoolBuilder::task_timeout),
//!   [`submit_with_timeout`](ProcessPoolExecutor::submit_with_timeout),
//!   [`grace_period`](ProcessPoolBuilder::grace_period));
//! * `cancel()` of a running task ([`cancel_running`](ProcessPoolBuilder::cancel_running));
//! * recycling by task count in every start method, by memory, and when idle
//!   ([`max_worker_memory`](ProcessPoolBuilder::max_worker_memory),
//!   [`idle_timeout`](ProcessPoolBuilder::idle_timeout));
//! * [`shutdown_timeout`](ProcessPoolExecutor::shutdown_timeout);
//! * Ctrl-C ([`stop_on_interrupt`](ProcessPoolBuilder::stop_on_interrupt));
//! * introspection: [`stats`](ProcessPoolExecutor::stats),
//!   [`workers`](ProcessPoolExecutor::workers),
//!   [`exit_history`](ProcessPoolExecutor::exit_history).
//!
//! The pool stops a worker by sending `SIGTERM` to its process group (with `SIGCONT`, for a
//! stopped one), then `SIGKILL` after the grace period; a stopped task's future fails with
//! [`TaskError::Stopped`](concurrent_futures_core::TaskError::Stopped), and a new worker takes
//! the old one's place. No orphans, always: each worker leads its own process group, and what
//! its tasks started in that group dies with it — when it is stopped, killed, recycled or shut
//! down (the pool kills the group once the worker is reaped), and when the program dies (the
//! worker's parent-death signal takes its group down). A process that leaves the group on
//! purpose (`setsid`, a daemon) is its own. A worker's end is seen even while a process its task
//! forked holds the worker's channel open: the pool watches each worker's pidfd too.
//!
//! Two consequences of workers leading their own process groups, as Python's do not: a task
//! that reads from the terminal is stopped by `SIGTTIN` (its group is not the terminal's
//! foreground group; give it a time limit, or read elsewhere), and the `SIGINT` that workers
//! ignore stays ignored in the programs their tasks start.
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

mod bootstrap;
mod builder;
mod courier;
mod deathwatch;
mod forkserver;
mod interrupt;
mod launch;
#[cfg(loom)]
#[doc(hidden)]
pub mod model;
mod pool;
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
pub use concurrent_futures_remote::{CallRefused, RefusalReason};
pub use launch::StartMethod;
pub use pool::ProcessPoolExecutor;
pub use workers::{ExitReason, ShutdownReport, WorkerExit, WorkerInfo, WorkerState};
