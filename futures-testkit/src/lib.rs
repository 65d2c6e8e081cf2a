//! Test tools for concurrent-futures, and the shared conformance suite.
//!
//! Tests here never sleep to order events; they use:
//!
//! * [`Gate`] — a door a test opens once; tasks block on it (Python tests' `threading.Event`).
//! * [`Latch`] — counts down to zero; a test waits until N things have happened.
//! * [`ThreadProbe`] — waits until another thread is asleep in the kernel, for tests that must
//!   act while a call is really blocked.
//! * [`watchdog`] — runs a blocking test body on its own thread and fails the test, with a
//!   message, the test's dump of its state ([`watchdog_dumping`]) and where every thread of
//!   the process and of its children waits, if it has not finished in time, instead of
//!   stalling CI.
//! * [`fixtures`] — futures in each of Python's five states (`util.py`'s `PENDING_FUTURE`,
//!   `CANCELLED_AND_NOTIFIED_FUTURE`, …) and `mul`/`divmod`-style task functions.
//! * [`ThreadPerTaskExecutor`] — the simplest real [`Executor`](concurrent_futures_core::Executor):
//!   one new thread per task; it stands in for an engine where a test only needs futures that
//!   real threads complete.
//! * [`ProcessGate`] and [`Arrivals`] — a gate and an arrival counter that work across
//!   processes, for tasks running in a process pool.
//! * [`log_capture`] — captures `log` records, for the callback-panic tests.
//! * [`block_on`] — the smallest async executor (park until woken), to await futures without
//!   a runtime.
//!
//! * [`conformance`] and [`executor_tests!`] — CPython's generic `ExecutorTest` suite over the
//!   [`Executor`](concurrent_futures_core::Executor) trait, which every engine instantiates.
//!
//! The CPython twins (`test_future.py`, `test_wait.py`, `test_as_completed.py`) live in this
//! crate's `tests/`, one Rust test per Python test, named after it.
#![deny(missing_docs)]

mod block_on;
pub mod conformance;
pub mod fixtures;
mod gate;
mod latch;
pub mod log_capture;
mod process_gate;
pub mod procfs;
mod thread_per_task;
mod thread_probe;
mod watchdog;

pub use block_on::block_on;
pub use gate::Gate;
pub use latch::Latch;
pub use process_gate::{ArrivalKey, Arrivals, GateKey, ProcessGate};
pub use thread_per_task::ThreadPerTaskExecutor;
pub use thread_probe::ThreadProbe;
pub use watchdog::{DEFAULT_TIMEOUT, watchdog, watchdog_dumping, watchdog_for};
