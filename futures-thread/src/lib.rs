//! The thread engine of concurrent-futures: Python's `concurrent.futures.thread`.
//!
//! * [`ThreadPoolExecutor`] — Python's pool, implementing the core
//!   [`Executor`](concurrent_futures_core::Executor) trait; its own `submit`, `spawn` and
//!   `map` take closures and values of any `Send` type.
//! * [`Map`] — the iterator of the pool's own `map`.
//! * [`ThreadPoolBuilder`] — `max_workers`, `thread_name_prefix`, `initializer`, a
//!   bounded submit queue (`max_queue`, `queue_full_policy`), and the bound on spare threads
//!   (`max_spare_threads`): a task that waits on its own pool gets a spare thread while it
//!   waits, instead of deadlocking as in Python (see
//!   [Waiting inside a task](ThreadPoolExecutor#waiting-inside-a-task)).
//! * [`ShutdownReport`] — what [`ThreadPoolExecutor::shutdown_timeout`] left running.
//! * [`Scope`] — tasks that borrow from the caller's stack ([`ThreadPoolExecutor::scope`]).
//!
//! # Examples
//!
//! ```
//! use concurrent_futures_thread::ThreadPoolExecutor;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
//! let squares: Vec<u64> = pool.map(square, 1..=5).unwrap().map(Result::unwrap).collect();
//! assert_eq!(squares, [1, 4, 9, 16, 25]);
//!
//! // Closures that capture, over any `Send` values.
//! let scale = 3;
//! let scaled: Vec<u64> = pool.map(move |x: u64| scale * x, 1..=3).unwrap().map(Result::unwrap).collect();
//! assert_eq!(scaled, [3, 6, 9]);
//! assert_eq!(pool.submit(square, 7).unwrap().result(None).unwrap(), 49);
//! assert_eq!(pool.spawn(move || scale + 1).unwrap().result(None).unwrap(), 4);
//! ```
//!
//! # Spinning
//!
//! A thread put to sleep on a condition variable takes tens of microseconds to wake on a small
//! machine (about 80 µs across the two vCPUs this project is benchmarked on). So an idle worker
//! first watches the queue's counter without any lock — 50 `spin_loop` hints, then up to 150
//! `yield_now`s, so a core it does not need goes back to the submitter — and only then sleeps.
//! A task submitted right after another finished is picked up without a wake-up, and an idle
//! pool costs no CPU once that short watch is over. `Future::result` does the same on the
//! caller's side. Measured with `cargo xtask bench thread` on that machine: one submit-to-result
//! round trip takes 1.0–1.6 µs, against 45–100 µs for CPython's pool in the same run.
//!
//! The spinning is paid for in CPU time, so the bench prints the CPU time per task (user and
//! system, every thread of the process) beside each wall time, for this pool and for every
//! peer. On that machine a round trip costs about 2.4 µs of CPU, less than half of what Java's
//! pools and rayon with a channel spend on it in the same run. An idle pool spends 0.02–0.06 ms
//! of CPU in a second. That is why the watch is kept this short: it is long enough to catch a
//! task submitted right after a result, and short enough that an idle pool costs nothing.
//!
#![deny(missing_docs)]

mod builder;
mod map;
mod pool;
mod scope;
mod shared;
mod task;
mod unwind;
mod worker;

pub use builder::{BuildError, ThreadPoolBuilder};
pub use map::Map;
pub use pool::ThreadPoolExecutor;
pub use scope::Scope;
pub use shared::ShutdownReport;
