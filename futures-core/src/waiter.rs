//! The hook `wait` and `as_completed` hang on futures: Python's `_Waiter` family.
//!
//! A [`Waiter`] is installed on every unfinished future a call watches. When such a future
//! completes — finishes, or is cancelled *and notified* — it tells each of its waiters, under the
//! future's own lock (lock order: future, then waiter; a waiter never takes a future's lock).
//! The waiter records the future's [`FutureId`] and decides, by its [`WaiterKind`], whether the
//! watching thread may wake.
//!
//! Waiters hold ids, never futures, so a future and its waiters form no cycle; the watcher
//! removes its waiter from every future before it returns (or, for `as_completed`, when its
//! iterator is dropped).

use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::{Completion, Deadline};

/// The identity of a future: the address of its shared state, equal for all clones of one
/// future and distinct between live futures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FutureId(pub(crate) usize);

impl FutureId {
    /// The id as a number (for hashing and sorting).
    pub fn as_usize(self) -> usize {
        self.0
    }

    /// The id whose [`as_usize`](Self::as_usize) is `id`, for engines that keep ids in atomics.
    /// Not part of the public API.
    #[doc(hidden)]
    pub fn from_usize(id: usize) -> FutureId {
        FutureId(id)
    }
}

/// When a [`Waiter`] fires: the `return_when` of `wait`, or `as_completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaiterKind {
    /// On the first completion of any kind.
    FirstCompleted,
    /// On the first error, or once every watched future completed.
    FirstException,
    /// Once every watched future completed.
    AllCompleted,
    /// On every completion; the watcher takes the completed ids and waits again.
    AsCompleted,
}

/// One `wait` or `as_completed` call's view of the futures it watches.
///
/// Cloning gives another handle to the same waiter.
///
/// # Examples
///
/// A hand-rolled `wait` for one future:
///
/// ```
/// use concurrent_futures_core::waiter::{Waiter, WaiterKind};
/// use concurrent_futures_core::{Deadline, Future, Waitable};
///
/// let f = Future::<u8>::new();
/// let waiter = Waiter::new(WaiterKind::AllCompleted, 1);
/// f.add_waiter(&waiter);
/// let g = f.clone();
/// std::thread::spawn(move || g.set_result(7).unwrap());
/// assert!(waiter.wait(&Deadline::never()));
/// f.remove_waiter(&waiter);
/// assert_eq!(waiter.take_finished(), vec![f.id()]);
/// ```
#[derive(Debug, Clone)]
pub struct Waiter {
    inner: Arc<WaiterInner>,
}

#[derive(Debug)]
struct WaiterInner {
    state: Mutex<WaiterState>,
    fired: Condvar,
}

#[derive(Debug)]
struct WaiterState {
    kind: WaiterKind,
    /// Watched futures that have not completed yet (FirstException, AllCompleted).
    remaining: usize,
    fired: bool,
    finished: Vec<FutureId>,
}

impl Waiter {
    /// A waiter of `kind` for `watched` futures, each of which will report exactly one
    /// completion (install it only on futures that have not completed).
    pub fn new(kind: WaiterKind, watched: usize) -> Waiter {
        let state = WaiterState {
            kind,
            remaining: watched,
            fired: false,
            finished: Vec::new(),
        };
        Waiter {
            inner: Arc::new(WaiterInner {
                state: Mutex::new(state),
                fired: Condvar::new(),
            }),
        }
    }

    /// Records that future `id` completed; called by the future, under its lock.
    pub(crate) fn notify(&self, id: FutureId, completion: Completion) {
        let mut state = self.inner.state.lock();
        state.finished.push(id);
        state.remaining = state.remaining.saturating_sub(1);
        let fire = match state.kind {
            WaiterKind::FirstCompleted | WaiterKind::AsCompleted => true,
            WaiterKind::FirstException => completion == Completion::Raised || state.remaining == 0,
            WaiterKind::AllCompleted => state.remaining == 0,
        };
        if fire && !state.fired {
            state.fired = true;
            self.inner.fired.notify_all();
        }
    }

    /// Blocks until the waiter fires or `deadline` passes; returns whether it fired.
    ///
    /// The sleep runs inside [`blocking`](crate::blocking::blocking), so a pool whose worker
    /// waits here can compensate.
    pub fn wait(&self, deadline: &Deadline) -> bool {
        if self.inner.state.lock().fired {
            return true;
        }
        crate::blocking::blocking(|| {
            let mut state = self.inner.state.lock();
            loop {
                if state.fired {
                    return true;
                }
                match deadline.instant() {
                    None => state = self.inner.fired.wait(state),
                    Some(at) => {
                        if deadline.is_past() {
                            return false;
                        }
                        state = self.inner.fired.wait_until(state, at);
                    }
                }
            }
        })
    }

    /// Takes the ids recorded so far, in completion order, and re-arms the waiter so that the
    /// next completion fires it again (the `as_completed` loop).
    pub fn take_finished(&self) -> Vec<FutureId> {
        let mut state = self.inner.state.lock();
        state.fired = false;
        std::mem::take(&mut state.finished)
    }

    /// Whether `self` and `other` are handles to one waiter.
    pub fn ptr_eq(&self, other: &Waiter) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
