//! The errors, named as in Python's `concurrent.futures`.
//!
//! | Python                         | here                                            |
//! |--------------------------------|-------------------------------------------------|
//! | `CancelledError`               | [`CancelledError`], [`FutureError::Cancelled`]  |
//! | `TimeoutError`                 | [`TimeoutError`], [`FutureError::Timeout`]      |
//! | `InvalidStateError`            | [`InvalidStateError`]                           |
//! | `BrokenExecutor` and subclasses| [`BrokenExecutor`] with a [`BrokenKind`]        |
//! | an exception raised by a task  | [`TaskError`], [`FutureError::Failed`]          |
//! | `RuntimeError` from `submit`   | [`SubmitError`]                                 |

use crate::State;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The future was cancelled (Python's `CancelledError`).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Future, FutureError};
///
/// let f = Future::<i32>::new();
/// f.cancel();
/// assert!(matches!(f.result(None), Err(FutureError::Cancelled(_))));
/// ```
///
/// # Differences from Python
///
/// Python raises `CancelledError` from `result()`; here it comes back as
/// `Err(FutureError::Cancelled(CancelledError))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CancelledError;

impl fmt::Display for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("The Future was cancelled.")
    }
}

impl Error for CancelledError {}

/// A wait ran out of time (Python's `TimeoutError`).
///
/// From `result()` and `exception()` it carries no count, as in Python, whose message is empty;
/// from `as_completed` it says how many futures were still unfinished.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::TimeoutError;
///
/// assert_eq!(TimeoutError::unfinished(2, 4).to_string(), "2 (of 4) futures unfinished");
/// ```
///
/// # Differences from Python
///
/// Python raises the built-in `TimeoutError`; here it is `Err(FutureError::Timeout(_))` from
/// `result()` and `exception()`, and an item of `as_completed`, carrying how many futures were
/// unfinished when that is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutError {
    unfinished: Option<(usize, usize)>,
}

impl TimeoutError {
    /// A timeout with no count (from `result()`).
    pub const fn new() -> TimeoutError {
        TimeoutError { unfinished: None }
    }

    /// `unfinished` of `total` futures did not finish in time (from `as_completed`).
    pub const fn unfinished(unfinished: usize, total: usize) -> TimeoutError {
        TimeoutError {
            unfinished: Some((unfinished, total)),
        }
    }

    /// `(unfinished, total)`, when the timeout came from `as_completed`.
    pub fn counts(&self) -> Option<(usize, usize)> {
        self.unfinished
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unfinished {
            Some((n, total)) => write!(f, "{n} (of {total}) futures unfinished"),
            None => f.write_str("timed out waiting for the future"),
        }
    }
}

impl Error for TimeoutError {}

/// An executor-side transition was asked of a future in the wrong state (Python's
/// `InvalidStateError`). The message is Python's: `'{STATE}: {repr}'`.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Future, State};
///
/// let f = Future::new();
/// f.set_result(1).unwrap();
/// let err = f.set_result(2).unwrap_err();
/// assert_eq!(err.state(), State::Finished);
/// assert!(err.to_string().starts_with("FINISHED: <Future at 0x"));
/// assert!(err.to_string().ends_with("state=finished returned i32>"));
/// ```
///
/// # Differences from Python
///
/// Python raises it with a message naming the state and the future's repr; this carries the
/// same text, and the state itself as [`InvalidStateError::state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStateError {
    state: State,
    repr: String,
}

impl InvalidStateError {
    pub(crate) fn new(state: State, repr: String) -> InvalidStateError {
        InvalidStateError { state, repr }
    }

    /// The state the future was in.
    pub fn state(&self) -> State {
        self.state
    }
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.state.name(), self.repr)
    }
}

impl Error for InvalidStateError {}

/// Which executor broke; Python's subclasses of `BrokenExecutor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokenKind {
    /// `BrokenThreadPool`: a thread initializer failed.
    ThreadPool,
    /// `BrokenProcessPool`: a worker process died or could not start.
    ProcessPool,
    /// Any other executor (`BrokenExecutor` itself).
    Other,
}

impl BrokenKind {
    /// Python's class name for this kind.
    pub fn name(self) -> &'static str {
        match self {
            BrokenKind::ThreadPool => "BrokenThreadPool",
            BrokenKind::ProcessPool => "BrokenProcessPool",
            BrokenKind::Other => "BrokenExecutor",
        }
    }
}

/// The executor can no longer run tasks (Python's `BrokenExecutor`, `BrokenThreadPool`,
/// `BrokenProcessPool`). Every pending future of a broken executor fails with it, and its
/// `submit` refuses new work with it.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{BrokenExecutor, BrokenKind};
///
/// let e = BrokenExecutor::new(BrokenKind::ProcessPool, "worker 4242 was killed by SIGKILL");
/// assert_eq!(e.kind(), BrokenKind::ProcessPool);
/// assert_eq!(e.to_string(), "BrokenProcessPool: worker 4242 was killed by SIGKILL");
/// ```
///
/// # Differences from Python
///
/// Python has a subclass per engine (`BrokenThreadPool`, `BrokenProcessPool`); here one type
/// carries a [`BrokenKind`], and its `Display` starts with the Python class name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenExecutor {
    kind: BrokenKind,
    reason: Arc<str>,
}

impl BrokenExecutor {
    /// A broken-executor error of `kind`, saying why.
    pub fn new(kind: BrokenKind, reason: impl Into<Arc<str>>) -> BrokenExecutor {
        BrokenExecutor {
            kind,
            reason: reason.into(),
        }
    }

    /// Which executor broke.
    pub fn kind(&self) -> BrokenKind {
        self.kind
    }

    /// Why it broke.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for BrokenExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.reason)
    }
}

impl Error for BrokenExecutor {}

/// Why a task failed: what Python stores with `set_exception`.
///
/// It is cheap to clone (shared text), because every call of `result()` returns it again.
/// Like every error here, its `Display` is one line; for a task that failed in a worker
/// process, the alternate form `{:#}` adds the remote traceback ([`TaskError::traceback`]).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Future, FutureError, TaskError};
///
/// let f = Future::<i32>::new();
/// f.set_exception(TaskError::panicked("division by zero")).unwrap();
/// match f.result(None) {
///     Err(FutureError::Failed(TaskError::Panicked { message })) => {
///         assert_eq!(&*message, "division by zero")
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
///
/// # Differences from Python
///
/// Python hands back the exception object the task raised. Rust tasks panic instead of raising,
/// and a process pool's error crosses as text, so this enum says which kind of failure it was;
/// the worker's traceback is text too ([`TaskError::traceback`], or `{:#}`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked in this process; the panic message is kept.
    Panicked {
        /// The panic message.
        message: Arc<str>,
    },
    /// The task failed in another process. Its message is the worker's panic message; the
    /// *remote traceback* (Python's `_RemoteTraceback`, chained as the `__cause__`) is the
    /// worker's account of where it failed: see [`TaskError::traceback`].
    Remote {
        /// The failure's message.
        message: Arc<str>,
        /// The remote traceback: where the worker panicked and, when the worker's environment
        /// asks for backtraces (`RUST_BACKTRACE` or `RUST_LIB_BACKTRACE`, read as
        /// [`Backtrace::capture`](std::backtrace::Backtrace::capture) does), its backtrace.
        traceback: Arc<str>,
    },
    /// The executor broke before the task could finish.
    Broken(BrokenExecutor),
    /// The argument or the result could not cross the process boundary (Python's
    /// `PicklingError`): only this task failed, the executor is still healthy.
    Payload(PayloadError),
    /// The executor stopped the task, or lost it with the process that ran it: see
    /// [`TaskStopped`]. Only pools that opted in to supervising their workers say this (a
    /// process pool with crash isolation, task time limits, a shutdown time limit or the
    /// interrupt handler); the others break instead, as Python's do.
    Stopped(TaskStopped),
    /// Any other error, set by a hand-written executor.
    Custom(Arc<dyn Error + Send + Sync + 'static>),
}

impl TaskError {
    /// A task that panicked with `message`.
    pub fn panicked(message: impl Into<Arc<str>>) -> TaskError {
        TaskError::Panicked {
            message: message.into(),
        }
    }

    /// A task that panicked, from the payload `std::panic::catch_unwind` returned.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> TaskError {
        TaskError::panicked(crate::unwind::panic_message(payload))
    }

    /// A task that failed in another process.
    pub fn remote(message: impl Into<Arc<str>>, traceback: impl Into<Arc<str>>) -> TaskError {
        TaskError::Remote {
            message: message.into(),
            traceback: traceback.into(),
        }
    }

    /// The remote traceback of a task that failed in another process (Python's
    /// `_RemoteTraceback`): the worker's text saying where it panicked, with its backtrace when
    /// the worker's `RUST_BACKTRACE` asked for one. `None` for every other kind of error.
    ///
    /// `Display` leaves it out, so that `{}` prints one line; the alternate form `{:#}` appends
    /// it.
    ///
    /// # Examples
    ///
    /// ```
    /// use concurrent_futures_core::TaskError;
    ///
    /// let e = TaskError::remote("division by zero", "panicked at src/main.rs:4:5");
    /// assert_eq!(e.to_string(), "task failed in a worker process: division by zero");
    /// assert_eq!(e.traceback(), Some("panicked at src/main.rs:4:5"));
    /// assert_eq!(
    ///     format!("{e:#}"),
    ///     "task failed in a worker process: division by zero\n\n\
    ///      Remote traceback:\npanicked at src/main.rs:4:5"
    /// );
    /// assert_eq!(TaskError::panicked("boom").traceback(), None);
    /// ```
    pub fn traceback(&self) -> Option<&str> {
        match self {
            TaskError::Remote { traceback, .. } => Some(traceback),
            _ => None,
        }
    }

    /// Any other error.
    pub fn custom(error: impl Error + Send + Sync + 'static) -> TaskError {
        TaskError::Custom(Arc::new(error))
    }

    /// The name a Python repr would show after `raised` (the exception's class).
    pub fn kind_name(&self) -> &'static str {
        match self {
            TaskError::Panicked { .. } => "Panicked",
            TaskError::Remote { .. } => "RemoteError",
            TaskError::Broken(b) => b.kind().name(),
            TaskError::Payload(_) => "PayloadError",
            TaskError::Stopped(s) => s.reason.kind_name(),
            TaskError::Custom(_) => "Error",
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked { message } => write!(f, "task panicked: {message}"),
            TaskError::Remote { message, traceback } => {
                write!(f, "task failed in a worker process: {message}")?;
                if f.alternate() && !traceback.is_empty() {
                    write!(f, "\n\nRemote traceback:\n{traceback}")?;
                }
                Ok(())
            }
            TaskError::Broken(b) => b.fmt(f),
            TaskError::Payload(p) => p.fmt(f),
            TaskError::Stopped(s) => s.fmt(f),
            TaskError::Custom(e) => e.fmt(f),
        }
    }
}

/// The wrapped errors are transparent: `Display` already prints them, so `source()` skips them
/// and continues with *their* source (a reporter would print the same text twice otherwise).
impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TaskError::Broken(b) => b.source(),
            TaskError::Payload(p) => p.source(),
            TaskError::Custom(e) => e.source(),
            _ => None,
        }
    }
}

impl From<TaskStopped> for TaskError {
    fn from(s: TaskStopped) -> TaskError {
        TaskError::Stopped(s)
    }
}

/// Why an executor stopped a task (see [`TaskStopped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The worker process running it ended in the middle of it (a crash, a signal, `exit`),
    /// with crash isolation on: only this task failed, and a new worker took the old one's
    /// place.
    WorkerDied,
    /// It ran past its time limit (the argument): its worker was stopped and replaced.
    TimedOut(Duration),
    /// It was still running when a shutdown's time limit (the argument) passed.
    ShutdownTimedOut(Duration),
    /// An interrupt (`SIGINT`, Ctrl-C) stopped the pool's work.
    Interrupted,
}

impl StopReason {
    /// The name a Python repr would show for it.
    fn kind_name(self) -> &'static str {
        match self {
            StopReason::WorkerDied => "WorkerDied",
            StopReason::TimedOut(_) => "TimeoutError",
            StopReason::ShutdownTimedOut(_) => "ShutdownTimedOut",
            StopReason::Interrupted => "KeyboardInterrupt",
        }
    }
}

/// A task that its executor stopped, or lost with the process that ran it: which task, why, and
/// how its worker process ended. The executor did not break: after a crash or a time limit it
/// carries on with a new worker (after a shutdown's limit or an interrupt it is shut down, as
/// asked).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{StopReason, TaskError, TaskStopped};
/// use std::time::Duration;
///
/// let stopped = TaskStopped::new(
///     StopReason::TimedOut(Duration::from_secs(2)),
///     17,
///     4242,
///     "was killed by signal 15 (SIGTERM)",
/// );
/// assert_eq!(
///     TaskError::from(stopped).to_string(),
///     "task 17 ran past its time limit of 2s and was stopped: worker process 4242 was \
///      killed by signal 15 (SIGTERM)"
/// );
/// ```
///
/// # Differences from Python
///
/// Python has no such error: its `result(timeout)` leaves the task running, and a worker that
/// dies breaks the whole pool (`BrokenProcessPool`). It is closest to pebble's
/// `ProcessExpired` and, for [`StopReason::TimedOut`], its `TimeoutError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStopped {
    reason: StopReason,
    task: u64,
    pid: u32,
    ended: Arc<str>,
}

impl TaskStopped {
    /// Task number `task` (the number its executor gave it at submit: they start at 0 and
    /// increase) stopped for `reason`;
    /// worker process `pid` ended as `ended` says ("was killed by signal 9 (SIGKILL)").
    pub fn new(reason: StopReason, task: u64, pid: u32, ended: impl Into<Arc<str>>) -> Self {
        TaskStopped {
            reason,
            task,
            pid,
            ended: ended.into(),
        }
    }

    /// Why the task was stopped.
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// The task's number, given by its executor at submit (the process pool's worker states and
    /// exit history use the same numbers).
    pub fn task(&self) -> u64 {
        self.task
    }

    /// The worker process that ran it.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How that process ended, in words: "exited with code 3", "was killed by signal 9
    /// (SIGKILL)".
    pub fn ended(&self) -> &str {
        &self.ended
    }
}

impl fmt::Display for TaskStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (task, pid, ended) = (self.task, self.pid, &self.ended);
        match self.reason {
            StopReason::WorkerDied => write!(
                f,
                "task {task} was lost with its worker: worker process {pid} {ended} while running it"
            ),
            StopReason::TimedOut(limit) => write!(
                f,
                "task {task} ran past its time limit of {limit:?} and was stopped: worker process \
                 {pid} {ended}"
            ),
            StopReason::ShutdownTimedOut(limit) => write!(
                f,
                "task {task} was still running when the shutdown's time limit of {limit:?} passed, \
                 and was stopped: worker process {pid} {ended}"
            ),
            StopReason::Interrupted => write!(
                f,
                "task {task} was stopped by an interrupt (SIGINT): worker process {pid} {ended}"
            ),
        }
    }
}

impl Error for TaskStopped {}

impl From<BrokenExecutor> for TaskError {
    fn from(b: BrokenExecutor) -> TaskError {
        TaskError::Broken(b)
    }
}

/// Where a payload failed to cross between processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadStage {
    /// Serializing the argument, in the submitting process.
    EncodeArgument,
    /// Deserializing the argument, in the worker.
    DecodeArgument,
    /// Serializing the result, in the worker.
    EncodeResult,
    /// Deserializing the result, in the submitting process.
    DecodeResult,
}

impl PayloadStage {
    fn describe(self) -> &'static str {
        match self {
            PayloadStage::EncodeArgument => "the argument could not be serialized",
            PayloadStage::DecodeArgument => "the worker could not deserialize the argument",
            PayloadStage::EncodeResult => "the worker could not serialize the result",
            PayloadStage::DecodeResult => "the result could not be deserialized",
        }
    }
}

/// A task's argument or result could not be (de)serialized: Python's `PicklingError`.
///
/// Only the one task fails; the executor stays usable.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{PayloadError, PayloadStage};
///
/// let e = PayloadError::new(PayloadStage::DecodeResult, "WontImplement");
/// assert_eq!(e.stage(), PayloadStage::DecodeResult);
/// assert_eq!(e.to_string(), "the result could not be deserialized: WontImplement");
/// ```
///
/// # Differences from Python
///
/// Python breaks the whole pool when a worker cannot unpickle its arguments or the parent cannot
/// unpickle a result; here those fail only the one future, like the other two stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    stage: PayloadStage,
    message: Arc<str>,
}

impl PayloadError {
    /// A payload error at `stage`, with the serializer's message.
    pub fn new(stage: PayloadStage, message: impl Into<Arc<str>>) -> PayloadError {
        PayloadError {
            stage,
            message: message.into(),
        }
    }

    /// Where it failed.
    pub fn stage(&self) -> PayloadStage {
        self.stage
    }

    /// The serializer's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage.describe(), self.message)
    }
}

impl Error for PayloadError {}

impl From<PayloadError> for TaskError {
    fn from(p: PayloadError) -> TaskError {
        TaskError::Payload(p)
    }
}

/// Why `result()` or `exception()` gave no value.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Future, FutureError};
/// use std::time::Duration;
///
/// let f = Future::<i32>::new();
/// let err = f.result(Duration::ZERO).unwrap_err();
/// assert!(matches!(err, FutureError::Timeout(_)));
/// ```
///
/// # Differences from Python
///
/// Python raises one of several exceptions from `result()`; in Rust they are the variants of
/// this one error, returned in a `Result`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FutureError {
    /// The future was cancelled.
    Cancelled(CancelledError),
    /// The timeout passed before the future finished.
    Timeout(TimeoutError),
    /// The task failed (panicked, failed remotely, or its executor broke).
    Failed(TaskError),
}

impl FutureError {
    /// Whether this is [`FutureError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, FutureError::Cancelled(_))
    }

    /// Whether this is [`FutureError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, FutureError::Timeout(_))
    }

    /// The task's error, for [`FutureError::Failed`].
    pub fn task_error(&self) -> Option<&TaskError> {
        match self {
            FutureError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled(e) => e.fmt(f),
            FutureError::Timeout(e) => e.fmt(f),
            FutureError::Failed(e) => e.fmt(f),
        }
    }
}

/// Transparent, like [`TaskError`]: `Display` prints the wrapped error, `source()` is its source.
impl Error for FutureError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FutureError::Cancelled(e) => e.source(),
            FutureError::Timeout(e) => e.source(),
            FutureError::Failed(e) => e.source(),
        }
    }
}

impl From<CancelledError> for FutureError {
    fn from(e: CancelledError) -> FutureError {
        FutureError::Cancelled(e)
    }
}

impl From<TimeoutError> for FutureError {
    fn from(e: TimeoutError) -> FutureError {
        FutureError::Timeout(e)
    }
}

impl From<TaskError> for FutureError {
    fn from(e: TaskError) -> FutureError {
        FutureError::Failed(e)
    }
}

/// Why an executor refused work (Python raises `RuntimeError` or `ValueError`).
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::SubmitError;
///
/// assert_eq!(SubmitError::Shutdown.to_string(), "cannot schedule new futures after shutdown");
/// assert_eq!(
///     SubmitError::QueueFull { bound: 8 }.to_string(),
///     "the submit queue is full (8 tasks waiting, its max_queue); retry later or use another \
///      QueueFullPolicy"
/// );
/// ```
///
/// # Differences from Python
///
/// Python raises `RuntimeError` (after shutdown), the executor's broken-pool error, or
/// `ValueError`; here they are variants of one error, returned in a `Result`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// `shutdown()` was called (Python: `RuntimeError('cannot schedule new futures after
    /// shutdown')`).
    Shutdown,
    /// The executor is broken.
    Broken(BrokenExecutor),
    /// An argument was out of range (Python's `ValueError`), e.g. a `buffersize` of 0.
    InvalidArgument(&'static str),
    /// The executor's bounded submit queue (`max_queue`) was full: refused by
    /// [`QueueFullPolicy::Reject`](crate::QueueFullPolicy::Reject), or no room came before
    /// [`QueueFullPolicy::Block`](crate::QueueFullPolicy::Block)'s timeout. Python has no bound.
    QueueFull {
        /// The pool's `max_queue`.
        bound: usize,
    },
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Shutdown => f.write_str("cannot schedule new futures after shutdown"),
            SubmitError::Broken(b) => b.fmt(f),
            SubmitError::InvalidArgument(msg) => f.write_str(msg),
            SubmitError::QueueFull { bound } => write!(
                f,
                "the submit queue is full ({bound} tasks waiting, its max_queue); retry later or \
                 use another QueueFullPolicy"
            ),
        }
    }
}

/// Transparent, like [`TaskError`]: `Display` prints the wrapped error, `source()` is its source.
impl Error for SubmitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SubmitError::Broken(b) => b.source(),
            _ => None,
        }
    }
}

impl From<BrokenExecutor> for SubmitError {
    fn from(b: BrokenExecutor) -> SubmitError {
        SubmitError::Broken(b)
    }
}
