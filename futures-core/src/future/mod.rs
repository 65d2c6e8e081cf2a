//! [`Future`]: Python's `concurrent.futures.Future`, one state machine shared by every handle.

use crate::error::{CancelledError, FutureError, InvalidStateError, TaskError, TimeoutError};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::loom::{hint, thread};
use crate::state::{
    CANCELLED, CANCELLED_AND_NOTIFIED, FAILED, FINISHED, PENDING, RETRIEVED, RUNNING, STATUS_MASK,
};
use crate::waiter::{FutureId, Waiter};
use crate::{Completion, Deadline, State};
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;
use std::time::Duration;

mod awaiting;
mod deferred;
mod repr;
mod task;

pub use awaiting::{Completed, FutureAwait};
pub use deferred::DeferredCallbacks;
pub use task::FutureTask;

/// The eventual result of a task: Python's `concurrent.futures.Future`.
///
/// A `Future` is a cheap handle (one `Arc`) to state shared by all its clones: the executor keeps
/// one to complete it, the caller keeps another to wait on it. It moves through Python's five
/// [`State`]s by Python's rules: `cancel()` succeeds only while pending; an executor calls
/// [`set_running_or_notify_cancel`](Future::set_running_or_notify_cancel) before running the
/// task and [`set_result`](Future::set_result) or [`set_exception`](Future::set_exception)
/// after; once finished, the outcome never changes.
///
/// `Future<T>` is `Send + Sync` whenever `T: Send`.
///
/// # Examples
///
/// The executor's side and the caller's side of one future:
///
/// ```
/// use concurrent_futures_core::Future;
/// use std::thread;
///
/// let future = Future::new();
/// let worker = future.clone();
/// thread::spawn(move || {
///     if worker.set_running_or_notify_cancel().unwrap() {
///         worker.set_result(6 * 7).unwrap();
///     }
/// });
/// assert_eq!(future.result(None).unwrap(), 42);
/// assert!(future.done());
/// ```
///
/// A future is a key: equality and hashing are by identity (all clones of one future are equal,
/// two futures are not, whatever their values), so the docs' `{executor.submit(...): url}` idiom
/// is a `HashMap<Future<_>, _>`, and `wait` and `as_completed` over such a map hand back each
/// future with its value (see [`Waitable`](crate::Waitable)).
///
/// ```
/// use concurrent_futures_core::Future;
/// use std::collections::HashMap;
///
/// let a = Future::<u32>::new();
/// let b = Future::<u32>::new();
/// let mut names = HashMap::new();
/// names.insert(a.clone(), "a");
/// names.insert(b.clone(), "b");
/// assert_eq!(names[&a], "a");
/// assert_ne!(a, b);
/// assert_eq!(a, a.clone());
/// ```
///
/// Clippy's `mutable_key_type` lint sees the locks inside a future, not that its hash and
/// equality depend on its identity alone, which never changes: allow it where futures are keys.
///
/// # Differences from Python
///
/// * `result(timeout)` returns `Result<T, FutureError>` instead of raising; it clones the value
///   (`T: Clone`). [`result_ref`](Future::result_ref) borrows it instead, for any `T: Sync`.
/// * [`into_result`](Future::into_result) and `.await` (Rust only) hand the value over without
///   a copy when the caller holds the last handle, and clone it otherwise; they wait for the
///   future to complete, never for other handles. A result that is not `Clone` is moved out by
///   [`into_result_when_last`](Future::into_result_when_last) or
///   [`into_future_when_last`](Future::into_future_when_last), which do wait for the other
///   handles to go, since one of them might be reading it.
/// * A task's "exception" is a [`TaskError`]: a panic message, a remote error with its
///   backtrace, a broken executor, or a custom error.
/// * `set_running_or_notify_cancel` in a wrong state returns an [`InvalidStateError`] (and logs
///   it) where Python raises `RuntimeError('Future in unexpected state')`.
/// * A panicking callback is logged on the `log` target `concurrent_futures`, like Python's
///   `LOGGER.exception`; panics are never re-raised into the completing thread.
pub struct Future<T> {
    inner: Arc<Inner<T, dyn Tail>>,
}

/// A future's block: its state, then a tail that shares the allocation. The tail is `()` for a
/// future made by [`Future::new`], and the task's closure for one made by
/// [`FutureTask::new`] (see `task.rs`), so a task costs one allocation. Handles see the tail
/// as `dyn Tail` and never touch it; it is dropped with the block.
struct Inner<T, J: ?Sized> {
    /// The state word (`state.rs`). Written with `shared` locked, except PENDING → RUNNING.
    state: AtomicU8,
    shared: Mutex<Shared<T>>,
    /// Woken when a `result()` wait can end (on finishing and on cancelling), and when an
    /// `into_result_when_last` caller becomes the last handle.
    done: Condvar,
    /// The taker word: how many `Future` handles exist (low half) and how many takers wait to
    /// be the last of them (high half, see `TAKER_ONE`). Unlike the `Arc`'s count, the handle
    /// count drops at the start of a handle's `Drop`, so a taker can wait for it to reach 1.
    /// Both counts share one word so that a taker's `fetch_add` and a dropper's `fetch_sub`
    /// are ordered: one of them always sees the other.
    handles: AtomicUsize,
    /// Written once, with `shared` locked, just before `state` is stored as `FINISHED` with
    /// `Release`; read only after an `Acquire` load saw `FINISHED`; afterwards only moved out,
    /// by `into_result` or `.await` on the last handle.
    outcome: UnsafeCell<Option<Outcome<T>>>,
    /// Whatever else lives in the block (see above); last, so that it may be unsized.
    tail: J,
}

/// What may follow a future's state in its block. Handles reach it only to drop it, with the
/// block, by whichever handle goes last; hence `Send + Sync`.
trait Tail: Send + Sync {}

/// The tail of a plain future: nothing.
impl Tail for () {}

impl<T, J> Inner<T, J> {
    /// A pending future's block, counting `handles` handles.
    fn new(handles: usize, tail: J) -> Self {
        Inner {
            state: AtomicU8::new(PENDING),
            shared: Mutex::new(Shared { watchers: None }),
            done: Condvar::new(),
            handles: AtomicUsize::new(handles),
            outcome: UnsafeCell::new(None),
            tail,
        }
    }
}

/// What the lock guards besides the state word's transitions. Boxed and made on first use: most
/// futures are never watched, so the hot path allocates and touches none of it.
struct Shared<T> {
    watchers: Option<Box<Watchers<T>>>,
}

struct Watchers<T> {
    callbacks: Vec<Callback<T>>,
    waiters: Vec<Waiter>,
    /// Tasks awaiting this future (`.await`, `completed()`), by awaiter id; woken, like
    /// callbacks, when the future is finished or cancelled.
    wakers: Vec<(u64, Waker)>,
    /// `.await`s waiting to become the last handle (see `TAKER_ONE`), by awaiter id.
    taker_wakers: Vec<(u64, Waker)>,
    /// What stops the running task, if its executor can ([`Future::set_running_allowing_cancel`],
    /// [`Future::allow_cancel_while_running`]): taken by the `cancel()` that cancels it while
    /// running.
    stop_running: Option<Box<dyn FnOnce() + Send>>,
}

impl<T> Default for Watchers<T> {
    fn default() -> Self {
        Watchers {
            callbacks: Vec::new(),
            waiters: Vec::new(),
            wakers: Vec::new(),
            taker_wakers: Vec::new(),
            stop_running: None,
        }
    }
}

impl<T> Shared<T> {
    /// The watchers, made on first use.
    fn watchers(&mut self) -> &mut Watchers<T> {
        self.watchers.get_or_insert_with(Box::default)
    }

    /// The waiters installed, if any.
    fn waiters(&self) -> &[Waiter] {
        self.watchers.as_ref().map_or(&[], |w| &w.waiters)
    }
}

/// Steps a blocking `result()` watches the state word before it sleeps (a quarter spinning,
/// the rest yielding the core).
const RESULT_SPINS: u32 = 200;

/// One waiting taker in the taker word (`Inner::handles`): a caller of `into_result_when_last`
/// or an `into_future_when_last` await that waits to become the last handle. Takers are counted, not flagged, so that one
/// taker giving up (a timeout, a dropped `.await`) cannot hide another that still waits.
/// Every taker holds a handle, so the taker half never counts more than the handle half.
const TAKER_ONE: usize = 1 << (usize::BITS / 2);

/// The handle count's half of the taker word.
const HANDLES_MASK: usize = TAKER_ONE - 1;

/// How many handles a taker word counts.
#[inline]
fn handle_count(word: usize) -> usize {
    word & HANDLES_MASK
}

/// How many waiting takers a taker word counts.
#[inline]
fn taker_count(word: usize) -> usize {
    word >> (usize::BITS / 2)
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send + 'static>;

/// Whether completing a future also uncounts the completing handle (see
/// `Future::complete_collecting`).
#[derive(Clone, Copy)]
enum Release {
    No,
    /// If no callback is registered (`complete_and_drop`).
    WithoutCallbacks,
    /// If no callback is registered and another handle is left (`complete_deferring_callbacks`).
    WithoutCallbacksUnlessLast,
}

enum Outcome<T> {
    Returned(T),
    /// Boxed: a `TaskError` is 56 bytes, and the outcome lives in every future's block, where
    /// a failure is rare. Unboxed, a no-op task's block was 120 bytes, past what glibc's
    /// `malloc` keeps in its fast bins: 100,000 such blocks freed together went back to the
    /// system, to be faulted in again by the next 100,000 (about 30 page faults per 1,000
    /// tasks, and `submit` then wait over them ~1.3x slower on 2 cores). Boxed, it is 72.
    Raised(Box<TaskError>),
}

// SAFETY: every field but `outcome` is `Sync` when `T: Send` (`callbacks` are `Send` and live
// under the mutex). `outcome` is written exactly once, under the lock and before the `Release`
// store that publishes `FINISHED`; afterwards it is only read, or moved out by the one handle
// left when no other exists (so nothing can be reading it: see `take_outcome`). Lock-free reads
// touch the discriminant and the `TaskError` (which is `Sync`) and never `T`; shared `&T` is
// handed out only by `result_ref`, which requires `T: Sync`, and `result()` clones `T` only
// with the lock held, so a `!Sync` value is never accessed from two threads at once. The tail
// is `Sync` itself.
unsafe impl<T: Send, J: ?Sized + Sync> Sync for Inner<T, J> {}

impl<T> Future<T> {
    /// A new pending future, as Python's `Future()`: executors create them, and so may tests.
    pub fn new() -> Future<T> {
        Future::from_block(Arc::new(Inner::new(1, ())))
    }

    /// The handle that owns one strong count of `block` and one of the handles its `handles`
    /// counts, seeing its tail as `dyn Tail`.
    fn from_block<J: Tail + 'static>(block: Arc<Inner<T, J>>) -> Future<T> {
        // An unsizing coercion, spelled with raw pointers because loom's `Arc` cannot coerce.
        let raw: *const Inner<T, J> = Arc::into_raw(block);
        let raw = raw as *const Inner<T, dyn Tail>;
        // SAFETY: `raw` comes from `Arc::into_raw` of an `Arc<Inner<T, J>>`, and only its type
        // changed, by an unsizing coercion of the tail: the same data pointer, whose metadata
        // (`J`'s vtable) gives `J`'s size, alignment and drop, so the block is read, dropped
        // and freed exactly as `Arc<Inner<T, J>>` would. The strong count is handed over.
        let inner = unsafe { Arc::from_raw(raw) };
        Future { inner }
    }

    #[inline]
    fn word(&self) -> u8 {
        self.inner.state.load(Ordering::Acquire)
    }

    /// The current state.
    #[inline]
    pub fn state(&self) -> State {
        State::from_word(self.word())
    }

    /// `true` if the future was cancelled (in either cancel state).
    #[inline]
    pub fn cancelled(&self) -> bool {
        self.state().is_cancelled()
    }

    /// `true` if an executor is running the task now.
    #[inline]
    pub fn running(&self) -> bool {
        self.state() == State::Running
    }

    /// `true` if the future was cancelled or has finished.
    #[inline]
    pub fn done(&self) -> bool {
        self.state().is_done()
    }

    /// The future's identity: equal for all clones, distinct between live futures.
    #[inline]
    pub fn id(&self) -> FutureId {
        FutureId(Arc::as_ptr(&self.inner) as *const () as usize)
    }

    /// Attempts to cancel the future: Python's `cancel()`.
    ///
    /// Returns `false` if it is running or finished. Otherwise it is (or already was) cancelled
    /// and `true` is returned; a first cancel wakes every thread blocked in `result()` and runs
    /// the done-callbacks in this thread. `wait` and `as_completed` see the cancellation only
    /// once the executor calls `set_running_or_notify_cancel`, as in Python.
    ///
    /// A running task is cancelled too when its executor allowed it
    /// ([`set_running_allowing_cancel`](Future::set_running_allowing_cancel): a process pool
    /// built with `cancel_running(true)`); `wait` and `as_completed` then see it at once.
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    ///
    /// let f = Future::<()>::new();
    /// assert!(f.cancel());
    /// assert!(f.cancel());
    /// assert!(f.cancelled());
    /// ```
    pub fn cancel(&self) -> bool {
        let shared = self.inner.shared.lock();
        // A compare-and-swap even under the lock: `set_running_or_notify_cancel` may move
        // PENDING to RUNNING without it.
        match self.inner.state.compare_exchange(
            PENDING,
            CANCELLED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(word) if State::from_word(word).is_cancelled() => return true,
            Err(word) if word & STATUS_MASK == RUNNING => return self.cancel_running(shared),
            Err(_) => return false,
        }
        self.announce_done(shared);
        true
    }

    /// `cancel()` of a running future: succeeds only if its executor left a way to stop the
    /// task. The future goes straight to `CANCELLED_AND_NOTIFIED` (nobody else will notify it:
    /// the executor has already started the task), then the executor is told to stop the task.
    #[cold]
    fn cancel_running(&self, mut shared: MutexGuard<'_, Shared<T>>) -> bool {
        let Some(stop) = shared.watchers.as_mut().and_then(|w| w.stop_running.take()) else {
            return false;
        };
        // Under the lock, RUNNING can only move to FINISHED by `complete`, which takes it too.
        if self.inner.state.load(Ordering::Relaxed) & STATUS_MASK != RUNNING {
            return false;
        }
        self.inner
            .state
            .store(CANCELLED_AND_NOTIFIED, Ordering::Release);
        for waiter in shared.waiters() {
            waiter.notify(self.id(), Completion::Cancelled);
        }
        // The executor's outcome, if it comes, is refused (`set_result` sees a done future).
        // The task is stopped before the callbacks run: one of them may wait for the executor
        // (a `shutdown(wait)`), which must not wait for a task nobody stops.
        self.announce_done_then(shared, Some(stop));
        true
    }

    /// Lets [`cancel`](Future::cancel) succeed while the task runs: the first such `cancel()`
    /// cancels the future (waking its waiters, as a cancel while pending does), calls `stop` in
    /// the cancelling thread for the executor to stop the task, and then runs the
    /// done-callbacks. For executors that can stop a running task (a process pool kills the task's
    /// worker); the others never call it. Has no effect unless the future is running; a second
    /// call replaces the first `stop`. `stop` is dropped uncalled if the task finishes first.
    ///
    /// Between starting the task and this call, a `cancel()` of the running future fails: to
    /// start a task that can be cancelled from the moment it runs, use
    /// [`set_running_allowing_cancel`](Future::set_running_allowing_cancel).
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let f = Future::<u32>::new();
    /// assert!(f.set_running_or_notify_cancel().unwrap());
    /// assert!(!f.cancel(), "a running future refuses cancel() by default");
    /// let stopped = Arc::new(AtomicBool::new(false));
    /// let flag = stopped.clone();
    /// f.allow_cancel_while_running(move || flag.store(true, Ordering::SeqCst));
    /// assert!(f.cancel());
    /// assert!(f.cancelled() && stopped.load(Ordering::SeqCst));
    /// assert!(f.set_result(1).is_err(), "the executor's late result is refused");
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python's `cancel()` always fails on a running future.
    pub fn allow_cancel_while_running(&self, stop: impl FnOnce() + Send + 'static) {
        let mut shared = self.inner.shared.lock();
        if self.inner.state.load(Ordering::Relaxed) & STATUS_MASK == RUNNING {
            shared.watchers().stop_running = Some(Box::new(stop));
        }
    }

    /// [`set_running_or_notify_cancel`](Future::set_running_or_notify_cancel) and
    /// [`allow_cancel_while_running`](Future::allow_cancel_while_running) in one step, for an
    /// executor that can stop its tasks: the future is never seen running without `stop`, so a
    /// `cancel()` made as soon as [`running`](Future::running) says yes succeeds. (Called one
    /// after the other, they leave a moment in which `cancel()` of the running future fails.)
    /// Returns what `set_running_or_notify_cancel` returns; unless the future starts, `stop` is
    /// dropped uncalled.
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    ///
    /// let f = Future::<u32>::new();
    /// assert_eq!(f.set_running_allowing_cancel(|| {}), Ok(true));
    /// assert!(f.running() && f.cancel());
    ///
    /// let g = Future::<u32>::new();
    /// g.cancel();
    /// assert_eq!(g.set_running_allowing_cancel(|| unreachable!()), Ok(false));
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python's `cancel()` always fails on a running future.
    pub fn set_running_allowing_cancel(
        &self,
        stop: impl FnOnce() + Send + 'static,
    ) -> Result<bool, InvalidStateError> {
        let mut shared = self.inner.shared.lock();
        // Under the lock, which `cancel` takes too: it sees PENDING, or RUNNING with `stop`.
        if self
            .inner
            .state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            shared.watchers().stop_running = Some(Box::new(stop));
            return Ok(true);
        }
        drop(shared);
        self.notify_cancel_or_reject()
    }

    /// Blocks until the future is done or `deadline` passes; returns the state word then.
    fn wait_done(&self, deadline: &Deadline) -> u8 {
        let word = self.word();
        if State::from_word(word).is_done() || deadline.is_past() {
            return word;
        }
        self.wait_done_slow(deadline)
    }

    #[cold]
    fn wait_done_slow(&self, deadline: &Deadline) -> u8 {
        // A short task often finishes within a few microseconds, far sooner than a sleeping
        // thread can be woken (tens of µs on small machines): watch the state word briefly,
        // spinning then yielding, before sleeping on the condition variable.
        for step in 0..hint::spin_limit(RESULT_SPINS) {
            let word = self.word();
            if State::from_word(word).is_done() {
                return word;
            }
            if step < RESULT_SPINS / 4 {
                hint::spin();
            } else {
                thread::yield_now();
            }
        }
        // Sleeping: tell this thread's pool, if it is a worker's (see `blocking`).
        crate::blocking::blocking(|| {
            let mut shared = self.inner.shared.lock();
            loop {
                let word = self.word();
                if State::from_word(word).is_done() {
                    return word;
                }
                match deadline.instant() {
                    None => shared = self.inner.done.wait(shared),
                    Some(at) => {
                        if deadline.is_past() {
                            return word;
                        }
                        shared = self.inner.done.wait_until(shared, at);
                    }
                }
            }
        })
    }

    /// The outcome, given a state word read with `Acquire`.
    fn outcome(&self, word: u8) -> Result<&Outcome<T>, FutureError> {
        match word & STATUS_MASK {
            FINISHED => {
                // SAFETY: `word` was loaded with `Acquire` and says FINISHED, so the write of
                // `outcome` (sequenced before the `Release` store of FINISHED) is visible, and
                // no write follows it ever; the reference lives no longer than `self`'s `Arc`.
                let outcome = self.inner.outcome.with(|p| unsafe { (*p).as_ref() });
                Ok(outcome.expect("a finished future holds an outcome"))
            }
            CANCELLED | CANCELLED_AND_NOTIFIED => Err(CancelledError.into()),
            _ => Err(TimeoutError::new().into()),
        }
    }

    /// Waits for the result and clones it: Python's `result(timeout=None)`.
    ///
    /// `timeout` is `None` to wait forever, `Some(Duration::ZERO)` to poll, or how long to wait
    /// (a bare `Duration` also works). Returns the value, or why there is none: the future was
    /// cancelled, the timeout passed, or the task failed.
    ///
    /// Before it sleeps, a blocking call watches the future for a moment (50 spin hints, then
    /// up to 150 yields): short tasks finish sooner than a sleeping thread can be woken.
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    /// use std::time::Duration;
    ///
    /// let f = Future::new();
    /// assert!(f.result(Duration::ZERO).unwrap_err().is_timeout());
    /// f.set_result(String::from("ok")).unwrap();
    /// assert_eq!(f.result(None).unwrap(), "ok");
    /// ```
    pub fn result(&self, timeout: impl Into<Option<Duration>>) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let word = self.wait_done(&Deadline::after(timeout.into()));
        self.clone_outcome(word)
    }

    /// The outcome of a future whose state word (read with `Acquire`) is `word`, cloned: the
    /// value, or why there is none.
    fn clone_outcome(&self, word: u8) -> Result<T, FutureError>
    where
        T: Clone,
    {
        match self.outcome(word)? {
            Outcome::Raised(e) => Err(self.hand_out_error(e)),
            Outcome::Returned(_) => {
                // `T` may be `!Sync`: clone it with the lock held (see `Inner`'s `Sync`).
                let _guard = self.inner.shared.lock();
                match self.outcome(word)? {
                    Outcome::Returned(v) => Ok(v.clone()),
                    Outcome::Raised(_) => unreachable!("the outcome never changes"),
                }
            }
        }
    }

    /// Why a future whose state word is `word` holds no value (it is not finished, or it
    /// failed). A task's error is cloned, whatever `T` is: no handle ever needs to wait for
    /// another to hand one out.
    fn no_value(&self, word: u8) -> FutureError {
        match self.outcome(word) {
            Err(e) => e,
            Ok(Outcome::Raised(e)) => self.hand_out_error(e),
            Ok(Outcome::Returned(_)) => unreachable!("no_value of a future that returned"),
        }
    }

    /// A copy of the task's error for a caller, marking it retrieved (see `error_retrieved`).
    fn hand_out_error(&self, error: &TaskError) -> FutureError {
        self.mark_retrieved();
        FutureError::Failed(error.clone())
    }

    fn mark_retrieved(&self) {
        // Relaxed: the bit publishes nothing; after FINISHED no transition stores the word,
        // so an RMW cannot lose it. The load first keeps repeated reads from contending.
        if self.word() & RETRIEVED == 0 {
            self.inner.state.fetch_or(RETRIEVED, Ordering::Relaxed);
        }
    }

    /// `true` once the task's error has been handed out through any handle of this future: by
    /// [`result`](Future::result), [`result_ref`](Future::result_ref),
    /// [`exception`](Future::exception), [`into_result`](Future::into_result) or `.await`.
    /// Always `false` for a future that did not fail.
    ///
    /// A scope uses it to re-raise only the panics nobody looked at, as `std::thread::scope`
    /// re-raises the panics of threads nobody joined.
    ///
    /// ```
    /// use concurrent_futures_core::{Future, TaskError};
    ///
    /// let f = Future::<u8>::new();
    /// f.set_exception(TaskError::panicked("boom")).unwrap();
    /// assert!(!f.error_retrieved());
    /// assert!(f.exception(None).unwrap().is_some());
    /// assert!(f.error_retrieved());
    /// ```
    #[inline]
    pub fn error_retrieved(&self) -> bool {
        self.word() & RETRIEVED != 0
    }

    /// Waits for the result and borrows it, for results that cannot or should not be cloned.
    ///
    /// The borrow lasts as long as this handle: the outcome of a finished future never changes.
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    ///
    /// let f = Future::new();
    /// f.set_result(vec![0u8; 1 << 20]).unwrap();
    /// let bytes: &Vec<u8> = f.result_ref(None).unwrap();
    /// assert_eq!(bytes.len(), 1 << 20);
    /// ```
    pub fn result_ref(&self, timeout: impl Into<Option<Duration>>) -> Result<&T, FutureError>
    where
        T: Sync,
    {
        let word = self.wait_done(&Deadline::after(timeout.into()));
        match self.outcome(word)? {
            Outcome::Returned(v) => Ok(v),
            Outcome::Raised(e) => Err(self.hand_out_error(e)),
        }
    }

    /// Waits for the future and returns the task's error, if it failed: Python's
    /// `exception(timeout=None)`. `Ok(None)` means the task returned a value.
    ///
    /// ```
    /// use concurrent_futures_core::{Future, TaskError};
    ///
    /// let f = Future::<i32>::new();
    /// f.set_exception(TaskError::panicked("boom")).unwrap();
    /// assert!(matches!(f.exception(None), Ok(Some(TaskError::Panicked { .. }))));
    /// ```
    pub fn exception(
        &self,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<Option<TaskError>, FutureError> {
        let word = self.wait_done(&Deadline::after(timeout.into()));
        match self.outcome(word)? {
            Outcome::Returned(_) => Ok(None),
            Outcome::Raised(e) => {
                self.mark_retrieved();
                Ok(Some(TaskError::clone(e)))
            }
        }
    }

    /// Waits for the result and returns it, moved out when this is the last handle and cloned
    /// otherwise, as [`Arc::unwrap_or_clone`](std::sync::Arc::unwrap_or_clone) does.
    ///
    /// It waits for the future to complete and for nothing else: clones of the handle kept in a
    /// `Vec`, a callback or a map never delay it. Executors drop their handle right after
    /// completing a future, so the value of a future nobody else keeps is usually moved, not
    /// cloned. `.await` on a future does the same.
    ///
    /// For a result that is not `Clone`, use
    /// [`into_result_when_last`](Future::into_result_when_last) (which moves it out once the
    /// other handles are gone) or [`result_ref`](Future::result_ref) (which borrows it).
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    ///
    /// let future = Future::new();
    /// let kept = vec![future.clone()]; // a clone kept alive: no wait for it
    /// future.set_result(String::from("done")).unwrap();
    /// assert_eq!(future.into_result(None).unwrap(), "done"); // cloned
    /// let last = kept.into_iter().next().unwrap();
    /// assert_eq!(last.into_result(None).unwrap(), "done"); // the last handle: moved
    /// ```
    pub fn into_result(self, timeout: impl Into<Option<Duration>>) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let word = self.wait_done(&Deadline::after(timeout.into()));
        self.take_or_clone(word)
    }

    /// The outcome of a future whose state word (read with `Acquire`) is `word`: moved out if
    /// this is the last handle, cloned otherwise.
    fn take_or_clone(&self, word: u8) -> Result<T, FutureError>
    where
        T: Clone,
    {
        if word & STATUS_MASK != FINISHED {
            return Err(self.no_value(word));
        }
        // Acquire: pairs with the `AcqRel` decrement of every handle dropped, so all their
        // reads of the outcome happen before our move (see `take_outcome`).
        if handle_count(self.inner.handles.load(Ordering::Acquire)) == 1 {
            return self.take_outcome();
        }
        self.clone_outcome(word)
    }

    /// Waits for the result and moves it out, for any `T`: no clone, no `Sync` needed; the
    /// task's error, if it failed, is handed out at once.
    ///
    /// Moving a value out is only sound once no other handle can reach it, so after the future
    /// finishes with a value this also waits, within the same `timeout`, until this is the last
    /// handle. Executors drop their handle right after completing a future, so that wait is
    /// short; but a clone that *you* keep alive makes it last until the timeout (with `None`,
    /// forever, as joining a thread from itself would). If the timeout passes first, the result
    /// is [`FutureError::Timeout`] and the value stays with the other handles. For `Clone`
    /// results, [`into_result`](Future::into_result) never waits for other handles.
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    /// use std::sync::mpsc;
    ///
    /// // A receiver is `Send` but neither `Clone` nor `Sync`.
    /// let future = Future::new();
    /// let worker = future.clone();
    /// std::thread::spawn(move || {
    ///     let (tx, rx) = mpsc::channel();
    ///     tx.send("hello").unwrap();
    ///     worker.set_result(rx).unwrap();
    /// });
    /// let rx: mpsc::Receiver<&str> = future.into_result_when_last(None).unwrap();
    /// assert_eq!(rx.recv().unwrap(), "hello");
    /// ```
    pub fn into_result_when_last(
        self,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<T, FutureError> {
        let deadline = Deadline::after(timeout.into());
        let word = self.wait_done(&deadline);
        if word & STATUS_MASK != FINISHED || word & FAILED != 0 {
            return Err(self.no_value(word));
        }
        if handle_count(self.inner.handles.load(Ordering::Acquire)) == 1 {
            return self.take_outcome();
        }
        let mut shared = self.inner.shared.lock();
        // Count ourselves as a taker; the handle whose drop leaves one handle sees the count
        // and wakes us (it takes the lock first, so it cannot notify between our check and
        // our wait).
        let mut handles = self.inner.handles.fetch_add(TAKER_ONE, Ordering::AcqRel);
        while handle_count(handles) > 1 {
            shared = match deadline.instant() {
                None => crate::blocking::blocking(|| self.inner.done.wait(shared)),
                Some(_) if deadline.is_past() => {
                    // Uncount ourselves before our handle drops: that drop then sees only the
                    // takers that still wait, and wakes them if it leaves one handle.
                    self.inner.handles.fetch_sub(TAKER_ONE, Ordering::AcqRel);
                    return Err(TimeoutError::new().into());
                }
                Some(at) => crate::blocking::blocking(|| self.inner.done.wait_until(shared, at)),
            };
            handles = self.inner.handles.load(Ordering::Acquire);
        }
        self.inner.handles.fetch_sub(TAKER_ONE, Ordering::AcqRel);
        let outcome = self.take_outcome();
        drop(shared);
        outcome
    }

    /// Moves the outcome out of a finished future; the caller has seen `handles == 1` with
    /// `Acquire` (no lock is needed: no other handle exists to contend). The caller's handle
    /// must never read the outcome again.
    fn take_outcome(&self) -> Result<T, FutureError> {
        // SAFETY: the state is FINISHED and this is the only handle: every other handle has
        // finished dropping (its `AcqRel` decrement, which we read with `Acquire`, orders all
        // its accesses before this write), so no `&T` from `result_ref` can be alive and no
        // other thread can start a read; no new handle can appear but as a clone of this one,
        // which the caller consumes. The caller's handle is never read again.
        match self.inner.outcome.with_mut(|p| unsafe { (*p).take() }) {
            Some(Outcome::Returned(v)) => Ok(v),
            Some(Outcome::Raised(e)) => {
                self.mark_retrieved();
                Err(FutureError::Failed(*e))
            }
            None => unreachable!("a finished future holds an outcome"),
        }
    }

    /// Waits for the result until `deadline`, then moves it out if this is the last handle and
    /// clones it otherwise (`map`'s futures are almost always the last handle). A future that
    /// did not finish in time is cancelled, as by Python's `_result_or_cancel`.
    pub(crate) fn into_result_or_cancel(self, deadline: &Deadline) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let word = self.wait_done(deadline);
        if !State::from_word(word).is_done() {
            self.cancel();
        }
        self.take_or_clone(word)
    }

    /// Runs `callback` with this future once it is done: Python's `add_done_callback`.
    ///
    /// If the future is already done the callback runs now, in this thread. Otherwise it runs
    /// in the thread that finishes or cancels the future, after that thread has released the
    /// future's lock, in the order the callbacks were added. A callback that panics is caught and
    /// logged (target `concurrent_futures`); the callbacks after it still run.
    ///
    /// The callback receives the future, so it need not capture a clone of it (a clone captured
    /// by a callback of a future that never finishes would keep both alive).
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let f = Future::new();
    /// f.add_done_callback(move |f| tx.send(f.result(None).unwrap()).unwrap());
    /// f.set_result(5).unwrap();
    /// assert_eq!(rx.recv().unwrap(), 5);
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static) {
        if !self.done() {
            let mut shared = self.inner.shared.lock();
            if !self.done() {
                shared.watchers().callbacks.push(Box::new(callback));
                return;
            }
        }
        self.run_callback(callback);
    }

    fn run_callbacks(&self, callbacks: Vec<Callback<T>>) {
        for callback in callbacks {
            self.run_callback(callback);
        }
    }

    fn run_callback(&self, callback: impl FnOnce(&Future<T>)) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(self))) {
            log::error!(
                target: "concurrent_futures",
                "exception calling callback for {self:?}: {}",
                crate::unwind::panic_message(&*payload)
            );
            // The payload's own `Drop` must not unwind into the completing thread and skip
            // the callbacks after this one.
            crate::unwind::drop_panic_payload(payload);
        }
    }

    /// Marks the future running, or reports that it was cancelled: the call an executor makes
    /// just before it runs the task. Python's `set_running_or_notify_cancel()`.
    ///
    /// Returns `Ok(true)` if the future was pending (it is now running: run the task), and
    /// `Ok(false)` if it was cancelled (it is now cancelled-and-notified, and every `wait` and
    /// `as_completed` watching it has been told: skip the task). In any other state it returns an
    /// [`InvalidStateError`] and logs an error.
    ///
    /// ```
    /// use concurrent_futures_core::{Future, State};
    ///
    /// let f = Future::<()>::new();
    /// f.cancel();
    /// assert_eq!(f.set_running_or_notify_cancel(), Ok(false));
    /// assert_eq!(f.state(), State::CancelledAndNotified);
    /// ```
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, InvalidStateError> {
        // The common case needs no lock: nobody waits for RUNNING.
        let word = match self.inner.state.compare_exchange(
            PENDING,
            RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Ok(true),
            Err(word) => word,
        };
        debug_assert_ne!(word & STATUS_MASK, PENDING);
        self.notify_cancel_or_reject()
    }

    #[cold]
    fn notify_cancel_or_reject(&self) -> Result<bool, InvalidStateError> {
        let shared = self.inner.shared.lock();
        // Re-read under the lock: PENDING never comes back, but a second caller may have
        // notified a cancellation meanwhile.
        let word = self.inner.state.load(Ordering::Acquire);
        match word & STATUS_MASK {
            CANCELLED => {
                self.inner
                    .state
                    .store(CANCELLED_AND_NOTIFIED, Ordering::Release);
                for waiter in shared.waiters() {
                    waiter.notify(self.id(), Completion::Cancelled);
                }
                Ok(false)
            }
            _ => {
                drop(shared);
                let err = self.invalid_state(word);
                log::error!(target: "concurrent_futures", "Future {self:?} in unexpected state: {}", err.state());
                Err(err)
            }
        }
    }

    /// Finishes the future with a value: Python's `set_result`. Allowed while pending or
    /// running; wakes every waiting thread, tells every `wait`/`as_completed`, then runs the
    /// done-callbacks in this thread.
    ///
    /// ```
    /// use concurrent_futures_core::Future;
    ///
    /// let f = Future::new();
    /// f.set_result(1).unwrap();
    /// assert!(f.set_result(2).is_err());
    /// assert_eq!(f.result(None).unwrap(), 1);
    /// ```
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.complete(Outcome::Returned(value))
    }

    /// Finishes the future with an error: Python's `set_exception`.
    ///
    /// ```
    /// use concurrent_futures_core::{Future, TaskError};
    ///
    /// let f = Future::<()>::new();
    /// f.set_exception(TaskError::panicked("bad input")).unwrap();
    /// assert!(f.result(None).unwrap_err().task_error().is_some());
    /// ```
    pub fn set_exception(&self, error: impl Into<TaskError>) -> Result<(), InvalidStateError> {
        self.complete(Outcome::Raised(Box::new(error.into())))
    }

    fn complete(&self, outcome: Outcome<T>) -> Result<(), InvalidStateError> {
        self.complete_releasing(outcome, false).map(drop)
    }

    /// Completes the future as the last use of this handle, and drops it: an executor's
    /// `set_result`/`set_exception` (`FutureTask::run`). When no done-callback will be handed
    /// the future, the handle is uncounted *before* the outcome is published, so a caller that
    /// sees it finished already finds itself the last handle and moves the value out without
    /// waiting or cloning (`into_result`, the thread pool's `map`).
    fn complete_and_drop(self, outcome: Outcome<T>) -> Result<(), InvalidStateError> {
        let result = self.complete_releasing(outcome, true);
        if result == Ok(true) {
            // Uncounted already: drop the `Arc` without `Future`'s `Drop`.
            let this = std::mem::ManuallyDrop::new(self);
            // SAFETY: `this` is never used or dropped again, so the `Arc` is moved out once.
            drop(unsafe { std::ptr::read(&this.inner) });
        }
        result.map(drop)
    }

    /// `complete`; with `release`, also uncounts this handle (see `complete_and_drop`) if no
    /// callback is registered, and then returns `Ok(true)`.
    fn complete_releasing(
        &self,
        outcome: Outcome<T>,
        release: bool,
    ) -> Result<bool, InvalidStateError> {
        let release = if release {
            Release::WithoutCallbacks
        } else {
            Release::No
        };
        let (released, callbacks) = self.complete_collecting(outcome, release)?;
        self.run_callbacks(callbacks);
        Ok(released)
    }

    /// [`complete_releasing`](Self::complete_releasing), up to the done-callbacks, which it
    /// returns instead of running; `release` says when to uncount this handle.
    fn complete_collecting(
        &self,
        outcome: Outcome<T>,
        release: Release,
    ) -> Result<(bool, Vec<Callback<T>>), InvalidStateError> {
        let (word, completion) = match outcome {
            Outcome::Returned(_) => (FINISHED, Completion::Returned),
            Outcome::Raised(_) => (FINISHED | FAILED, Completion::Raised),
        };
        let shared = self.inner.shared.lock();
        let old = self.inner.state.load(Ordering::Relaxed);
        if !matches!(old & STATUS_MASK, PENDING | RUNNING) {
            drop(shared);
            return Err(self.invalid_state(old));
        }
        // SAFETY: we hold the lock and the state is not FINISHED, so no other thread writes
        // `outcome` or may read it (readers first need to see FINISHED).
        self.inner
            .outcome
            .with_mut(|p| unsafe { *p = Some(outcome) });
        // Callbacks are added under the lock we hold, and only to an unfinished future: if
        // there are none now, none will be handed this future, and this thread reads the
        // outcome no more. No taker waits yet (takers wait only for a finished future), so
        // the decrement has nobody to wake; it is ordered before the `Release` store below,
        // so whoever sees FINISHED sees this handle gone.
        let no_callbacks = shared
            .watchers
            .as_ref()
            .is_none_or(|w| w.callbacks.is_empty());
        let released = match release {
            Release::No => false,
            Release::WithoutCallbacks => {
                no_callbacks && {
                    let old = self.inner.handles.fetch_sub(1, Ordering::AcqRel);
                    debug_assert_eq!(
                        taker_count(old),
                        0,
                        "a taker waits for an unfinished future"
                    );
                    true
                }
            }
            // Never the last handle: its drop would drop the value, in this thread.
            Release::WithoutCallbacksUnlessLast => {
                no_callbacks
                    && self
                        .inner
                        .handles
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                            (handle_count(old) > 1).then(|| old - 1)
                        })
                        .is_ok()
            }
        };
        self.inner.state.store(word, Ordering::Release);
        for waiter in shared.waiters() {
            waiter.notify(self.id(), completion);
        }
        Ok((released, self.announce_done_collecting(shared, None)))
    }

    /// The future has just become done (finished or cancelled), with `shared` still locked:
    /// wake the threads blocked in `result()`, then — after releasing the lock — the awaiting
    /// tasks, then run the callbacks in this thread.
    fn announce_done(&self, shared: MutexGuard<'_, Shared<T>>) {
        self.announce_done_then(shared, None);
    }

    /// [`announce_done`](Self::announce_done), calling `stop` (a running task's, see
    /// [`cancel_running`](Self::cancel_running)) once the lock is released and before anything
    /// else is woken or called.
    fn announce_done_then(
        &self,
        shared: MutexGuard<'_, Shared<T>>,
        stop: Option<Box<dyn FnOnce() + Send>>,
    ) {
        let callbacks = self.announce_done_collecting(shared, stop);
        self.run_callbacks(callbacks);
    }

    /// [`announce_done_then`](Self::announce_done_then), up to the done-callbacks, which it
    /// returns instead of running.
    fn announce_done_collecting(
        &self,
        mut shared: MutexGuard<'_, Shared<T>>,
        stop: Option<Box<dyn FnOnce() + Send>>,
    ) -> Vec<Callback<T>> {
        self.inner.done.notify_all();
        let (wakers, callbacks, stop_running) = match shared.watchers.as_mut() {
            Some(w) => (
                std::mem::take(&mut w.wakers),
                std::mem::take(&mut w.callbacks),
                w.stop_running.take(),
            ),
            None => (Vec::new(), Vec::new(), None),
        };
        drop(shared);
        if let Some(stop) = stop {
            crate::unwind::contain_panic("stopping a cancelled task", stop);
        }
        // The task is over: its executor's way to stop it goes (outside the lock: it may own
        // the executor's last reference).
        if let Some(stop) = stop_running {
            crate::unwind::contain_panic("dropping a task's stop", || drop(stop));
        }
        // A waker is an async runtime's code: its panic must not unwind from here, past a
        // handle already released (`complete_collecting`) and the callbacks not yet run.
        for (_, waker) in wakers {
            crate::unwind::contain_panic("waking a task awaiting a future", || waker.wake());
        }
        callbacks
    }

    fn invalid_state(&self, word: u8) -> InvalidStateError {
        InvalidStateError::new(State::from_word(word), format!("{self:?}"))
    }

    /// How the future completed, in the sense of `wait` (see [`Completion`]).
    #[inline]
    pub(crate) fn completion(&self) -> Option<Completion> {
        Completion::from_word(self.word())
    }

    pub(crate) fn add_waiter(&self, waiter: &Waiter) {
        let mut shared = self.inner.shared.lock();
        match Completion::from_word(self.inner.state.load(Ordering::Relaxed)) {
            Some(completion) => waiter.notify(self.id(), completion),
            None => shared.watchers().waiters.push(waiter.clone()),
        }
    }

    pub(crate) fn remove_waiter(&self, waiter: &Waiter) {
        let mut shared = self.inner.shared.lock();
        if let Some(i) = shared.waiters().iter().position(|w| w.ptr_eq(waiter)) {
            shared.watchers().waiters.swap_remove(i);
        }
    }

    /// How many `wait`/`as_completed` calls are watching this future now (for diagnostics and
    /// for tests that check waiters are always removed).
    pub fn waiter_count(&self) -> usize {
        self.inner.shared.lock().waiters().len()
    }

    /// How many done-callbacks are registered and have not run yet.
    pub fn callback_count(&self) -> usize {
        self.inner
            .shared
            .lock()
            .watchers
            .as_ref()
            .map_or(0, |w| w.callbacks.len())
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: a new handle is made from an existing one.
        let old = self.inner.handles.fetch_add(1, Ordering::Relaxed);
        if handle_count(old) >= HANDLES_MASK - 1 {
            // The handle count would carry into the taker count (2^32 handles on 64-bit
            // targets, 2^16 on 32-bit ones): give up as `Arc` does on overflow.
            std::process::abort();
        }
        Future {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Drop for Future<T> {
    fn drop(&mut self) {
        // Leaving exactly one handle while takers wait to be the last: wake them, under the
        // lock so the wake-up cannot fall between a taker's check and its wait. (Every taker
        // holds a handle, so the one left is a taker's.) After the decrement this handle never
        // touches the outcome again.
        let old = self.inner.handles.fetch_sub(1, Ordering::AcqRel);
        if handle_count(old) == 1 {
            // The last counted handle drops the value, rather than whichever thread lets go of
            // the block last: an executor that released its handle on completing the future
            // (`complete_collecting`) may still hold it, and must not run the value's `Drop`.
            // SAFETY: every access to `outcome` is made through a counted handle, or by an
            // executor before it releases its count; the `AcqRel` decrements order all of them
            // before this one, and no counted handle is left to make another.
            drop(self.inner.outcome.with_mut(|p| unsafe { (*p).take() }));
        } else if handle_count(old) == 2 && taker_count(old) > 0 {
            self.wake_takers();
        }
    }
}

impl<T> Future<T> {
    #[cold]
    fn wake_takers(&self) {
        let mut shared = self.inner.shared.lock();
        self.inner.done.notify_all();
        let takers = shared
            .watchers
            .as_mut()
            .map(|w| std::mem::take(&mut w.taker_wakers))
            .unwrap_or_default();
        drop(shared);
        takers.into_iter().for_each(|(_, waker)| waker.wake());
    }
}

// A panic cannot leave a future half-changed: user code (callbacks, `T::clone`) never runs
// between a state check and the store that acts on it, and the lock is released on unwind. So
// a future may cross `catch_unwind`, as tasks' futures do.
impl<T> std::panic::UnwindSafe for Future<T> {}
impl<T> std::panic::RefUnwindSafe for Future<T> {}

/// By identity, as Python futures compare: clones of one future are equal.
impl<T> PartialEq for Future<T> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Future<T> {}

/// Hashes the future's [`FutureId`], as `FutureId`'s own `Hash` does.
impl<T> Hash for Future<T> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl<T> Default for Future<T> {
    fn default() -> Self {
        Future::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn future_is_send_and_sync_for_send_results() {
        fn assert_send_sync<X: Send + Sync>() {}
        assert_send_sync::<Future<std::cell::Cell<i32>>>();
        assert_send_sync::<Future<Vec<u8>>>();
    }
}
