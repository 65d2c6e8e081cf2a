#![doc = include_str!("../README.md")]
//!
//! # Python → Rust
//!
//! Every name of Python's `concurrent.futures`, and where it is here. "Same" means the same name,
//! as a method or function of the type in the row above it.
//!
//! | Python | Rust |
//! |---|---|
//! | `Future` | [`Future<T>`](Future): a cheap handle; clones share one state |
//! | `Future.cancel()`, `cancelled()`, `running()`, `done()` | same |
//! | `Future.result(timeout=None)` | [`Future::result`]`(None)` (clones), [`Future::result_ref`] (borrows), [`Future::into_result`] and `.await` (move out of the last handle, clone otherwise), [`Future::into_result_when_last`] (any `T`) |
//! | `Future.exception(timeout=None)` | [`Future::exception`] |
//! | `Future.add_done_callback(fn)` | [`Future::add_done_callback`] |
//! | `Future.set_running_or_notify_cancel()`, `set_result(r)`, `set_exception(e)` | same (`set_exception` takes a [`TaskError`]) |
//! | `Executor` | the [`Executor`] trait |
//! | `Executor.submit(fn, /, *args)` | [`Executor::submit`]`(f, arg)` (several arguments as a tuple); the thread pool's `submit` also takes a closure of one argument, and its `spawn(f)` a closure of none |
//! | `Executor.map(fn, *iterables, timeout, chunksize, buffersize)` | [`Executor::map`]`(f, inputs)`, [`Executor::map_with`]`(f, inputs, `[`MapOptions`]`)` (several iterables: zip them); the thread pool's own `map` takes capturing closures over any `Send` values |
//! | `Executor.shutdown(wait=True, *, cancel_futures=False)` | [`Executor::shutdown`]`(wait, cancel_futures)`; dropping an executor is leaving the `with` block |
//! | `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer, initargs)` | `ThreadPoolExecutor::builder()` (feature `thread`) |
//! | `ProcessPoolExecutor(max_workers, mp_context, initializer, initargs, max_tasks_per_child)` | `ProcessPoolExecutor::builder()` (feature `process`, Linux) |
//! | `ProcessPoolExecutor.terminate_workers()`, `kill_workers()` | same; beyond Python, `shutdown_timeout(d)`, per-task time limits, crash isolation, `cancel()` of running tasks, recycling, Ctrl-C: see the process engine's "Beyond Python" |
//! | `mp_context` (`"forkserver"`, `"spawn"`, `"fork"`) | `process::StartMethod` |
//! | `if __name__ == "__main__":` | `process::bootstrap()` on the first line of `main` |
//! | `InterpreterPoolExecutor`, `BrokenInterpreterPool`, `ExecutionFailed` | not provided: Rust has no sub-interpreters; use the thread or process pool |
//! | `wait(fs, timeout=None, return_when=ALL_COMPLETED)` | [`wait`]`(fs, timeout, return_when)` → [`DoneAndNotDone`] |
//! | `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED` | [`ReturnWhen::FirstCompleted`], [`ReturnWhen::FirstException`], [`ReturnWhen::AllCompleted`] |
//! | `as_completed(fs, timeout=None)` | [`as_completed`]`(fs, timeout)` |
//! | `CancelledError` | [`CancelledError`], inside [`FutureError::Cancelled`] |
//! | `TimeoutError` | [`TimeoutError`], inside [`FutureError::Timeout`] |
//! | `InvalidStateError` | [`InvalidStateError`] |
//! | `BrokenExecutor` | [`BrokenExecutor`] |
//! | `thread.BrokenThreadPool`, `process.BrokenProcessPool` | [`BrokenExecutor`] of kind [`BrokenKind::ThreadPool`], [`BrokenKind::ProcessPool`] |
//! | the exception a task raised | [`TaskError`]: `Panicked`, `Remote` (Python's `_RemoteTraceback`), `Payload`, `Broken`, `Custom` |
//! | `pickle.PicklingError` on an argument or a result | [`PayloadError`] (only that future fails) |
//! | `RuntimeError('cannot schedule new futures after shutdown')` | [`SubmitError::Shutdown`] |
//!
//! # Waiting inside a task
//!
//! A task of a thread pool may wait for another future of its own pool (`result()`,
//! `into_result`, [`wait`], [`as_completed`], `.await` through a `block_on` that parks inside
//! [`blocking::blocking`]) even when every worker is busy: where Python's pool deadlocks, ours
//! compensates, as Java's `ForkJoinPool` does for a `ManagedBlocker`. A worker about to sleep
//! in such a wait tells its pool (the [`blocking`] hook), and while it sleeps the pool may run
//! one spare thread for it, started only if a task is queued and no thread is free for it —
//! at most 255 spares beyond `max_workers`, fewer with the builder's `max_spare_threads` (0
//! turns compensation off) — and the spares retire once the waits end. Chains of nested waits
//! finish even on a one-worker pool (see "Waiting inside a task" on the thread pool). Waits the
//! pool cannot see (a lock, a channel) are compensated only when wrapped in `blocking`. A
//! scope goes further: once its body has returned, it runs itself the scoped tasks no worker
//! has started (and those they spawn).
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
    Future, FutureAwait, FutureError, FutureId, FutureTask, InvalidStateError, Map, MapError,
    MapOptions, Payload, PayloadError, PayloadStage, PoolStats, QueueFullPolicy, State, StopReason,
    SubmitError, TaskError, TaskStopped, TimeoutError, Waitable, blocking, panic_message, waiter,
};
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

/// `mpi4py.futures`: the MPI pool, its `bootstrap`, and the transport under it (feature
/// `mpi`, off by default; needs a system MPI).
#[cfg(feature = "mpi")]
pub mod mpi {
    pub use concurrent_futures_mpi::*;
}
#[cfg(feature = "mpi")]
pub use concurrent_futures_mpi::MpiPoolExecutor;
