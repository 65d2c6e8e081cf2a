//! What the pool tells about its worker processes: each live one ([`WorkerInfo`]), the recent
//! exits ([`WorkerExit`], [`ExitReason`]), and what a shutdown with a time limit did
//! ([`ShutdownReport`]).

use std::time::{Duration, SystemTime};

/// One live worker process, as [`ProcessPoolExecutor::workers`](crate::ProcessPoolExecutor::workers)
/// saw it.
///
/// # Examples
///
/// ```
/// use concurrent_futures_process::{ProcessPoolExecutor, WorkerState, bootstrap};
///
/// fn add_one(x: u32) -> u32 {
///     x + 1
/// }
///
/// fn main() {
///     bootstrap();
///     let pool = ProcessPoolExecutor::builder().max_workers(1).build().unwrap();
///     pool.submit(add_one, 1).unwrap().result(None).unwrap();
///     let worker = &pool.workers()[0];
///     assert_eq!(worker.tasks_run, 1);
///     assert_eq!(worker.state, WorkerState::Idle);
///     assert!(worker.resident_memory.unwrap() > 0);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// Its process id.
    pub pid: u32,
    /// What it is doing.
    pub state: WorkerState,
    /// Tasks it has answered.
    pub tasks_run: u64,
    /// Its resident memory in bytes (from `/proc/<pid>/statm`); `None` if it could not be read.
    pub resident_memory: Option<u64>,
}

/// What a worker process is doing (see [`WorkerInfo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerState {
    /// Waiting for a task.
    Idle,
    /// Running task number `task` (as [`TaskStopped::task`](concurrent_futures_core::TaskStopped::task)
    /// counts), for `elapsed` so far.
    Running {
        /// The task's number.
        task: u64,
        /// How long it has run.
        elapsed: Duration,
    },
    /// Being stopped by the pool (a time limit, a cancel, a shutdown's limit, an interrupt).
    Stopping,
    /// Asked to leave once idle (shutdown, `max_tasks_per_child`, recycling).
    Leaving,
}

/// A worker process that ended, from
/// [`ProcessPoolExecutor::exit_history`](crate::ProcessPoolExecutor::exit_history).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerExit {
    /// Its process id.
    pub pid: u32,
    /// Why it ended.
    pub reason: ExitReason,
    /// How it ended, in words: "exited with code 0", "was killed by signal 9 (SIGKILL)".
    pub ended: String,
    /// When the pool saw it end.
    pub at: SystemTime,
    /// The task it was running then, if any (by number, as
    /// [`TaskStopped::task`](concurrent_futures_core::TaskStopped::task) counts).
    pub task: Option<u64>,
}

/// Why a worker process ended (see [`WorkerExit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// The pool asked it to leave: shutdown, `max_tasks_per_child`.
    Retired,
    /// Recycled after a task left its resident memory (bytes) above
    /// [`max_worker_memory`](crate::ProcessPoolBuilder::max_worker_memory).
    RecycledForMemory {
        /// Its resident memory then.
        resident: u64,
    },
    /// Recycled after being idle for [`idle_timeout`](crate::ProcessPoolBuilder::idle_timeout).
    RecycledWhenIdle,
    /// It ended without being asked: a crash, a signal from outside, `exit` in a task.
    Crashed,
    /// Its initializer failed.
    InitializerFailed,
    /// Stopped because its task ran past its time limit.
    TimedOut,
    /// Stopped because its running task was cancelled
    /// ([`cancel_running`](crate::ProcessPoolBuilder::cancel_running)).
    Cancelled,
    /// Stopped because a shutdown's time limit passed
    /// ([`shutdown_timeout`](crate::ProcessPoolExecutor::shutdown_timeout)).
    ShutdownTimedOut,
    /// Stopped by an interrupt ([`stop_on_interrupt`](crate::ProcessPoolBuilder::stop_on_interrupt)).
    Interrupted,
}

/// What [`ProcessPoolExecutor::shutdown_timeout`](crate::ProcessPoolExecutor::shutdown_timeout)
/// did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Queued tasks that had not started: cancelled.
    pub cancelled: usize,
    /// The tasks (by number) still running when the limit passed, and any sent to their
    /// workers behind them: those workers were stopped and these futures failed with [`StopReason::ShutdownTimedOut`](concurrent_futures_core::StopReason::ShutdownTimedOut).
    pub stopped: Vec<u64>,
}

impl ShutdownReport {
    /// Whether every task that had started finished before the limit.
    pub fn finished_in_time(&self) -> bool {
        self.stopped.is_empty()
    }
}
