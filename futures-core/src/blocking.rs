//! Blocking waits inside an executor's workers: the hook that lets a pool compensate, as Java's
//! `ForkJoinPool` does for a `ManagedBlocker`.
//!
//! An engine's worker thread installs a [`BlockingHook`] for as long as it serves tasks. Every
//! wait for a future in this workspace — `result()` and the other waits of
//! [`Future`](crate::Future), `into_result_when_last`'s wait for the other handles, a
//! [`Waiter`](crate::waiter::Waiter) (`wait`, `as_completed`), the testkit's `block_on` — runs
//! its sleep inside [`blocking`], which tells the hook that the thread is about to block and,
//! afterwards, that it resumed (a wait that ends while it still spins is not reported). Other
//! waits (a lock, a scope's wait for its tasks, a submit waiting for room in a full queue, a
//! join) are not reported unless their caller wraps them in [`blocking`]. A thread pool uses that to start a spare thread while one of its workers waits, so
//! a task that waits on a task queued behind it on a busy pool does not wait forever.
//!
//! On a thread with no hook (any thread that is not an engine's worker), [`blocking`] only runs
//! the wait: nothing changes there.
//!
//! # Differences from Python
//!
//! Python has no such hook: a task of its `ThreadPoolExecutor` that waits for a task queued
//! behind it on a pool whose workers all wait deadlocks (its docs warn about it). The thread
//! pool of this workspace compensates instead (see its "Waiting inside a task").

use crate::loom::thread_local;
use std::cell::RefCell;
use std::sync::Arc;

/// What an engine's worker is told about a blocking wait on its thread.
///
/// Both calls may come with a future's lock held: an implementation must not take the lock of
/// a future, nor run user code, nor wait.
///
/// # Examples
///
/// A hook that counts the waits of its thread (an engine's would start a spare thread):
///
/// ```
/// use concurrent_futures_core::blocking::{BlockingHook, blocking, install_hook};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// #[derive(Default)]
/// struct Count(AtomicUsize);
///
/// impl BlockingHook for Count {
///     fn blocking(&self) -> bool {
///         self.0.fetch_add(1, Ordering::SeqCst);
///         true
///     }
///     fn unblocked(&self) {}
/// }
///
/// let count = Arc::new(Count::default());
/// let guard = install_hook(count.clone());
/// // What every sleeping wait of the workspace does around its sleep:
/// assert_eq!(blocking(|| 6 * 7), 42);
/// drop(guard);
/// assert_eq!(blocking(|| 1), 1); // no hook any more
/// assert_eq!(count.0.load(Ordering::SeqCst), 1);
/// ```
pub trait BlockingHook: Send + Sync {
    /// The thread is about to block. Returns `true` if the hook counted it; only then is
    /// [`unblocked`](BlockingHook::unblocked) called when the wait ends.
    fn blocking(&self) -> bool;

    /// The wait that [`blocking`](BlockingHook::blocking) counted has ended.
    fn unblocked(&self);
}

thread_local! {
    // Not `const { … }`: loom's `thread_local!` does not take it.
    #[allow(clippy::missing_const_for_thread_local)]
    static HOOK: RefCell<Option<Arc<dyn BlockingHook>>> = RefCell::new(None);
}

/// Runs `wait`, a wait that may block this thread, telling this thread's [`BlockingHook`] (if
/// it has one) before and after: the way to block inside a pool's task without starving the
/// pool (Java's `ForkJoinPool.managedBlock`). The waits of this workspace call it already;
/// call it around your own blocking waits (a channel's `recv`, `thread::park`) when they may
/// wait for work queued on the pool that runs you.
///
/// The "after" part runs even if `wait` unwinds.
///
/// ```
/// use concurrent_futures_core::blocking::blocking;
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// std::thread::spawn(move || tx.send(7).unwrap());
/// assert_eq!(blocking(|| rx.recv()).unwrap(), 7);
/// ```
pub fn blocking<R>(wait: impl FnOnce() -> R) -> R {
    // Taken out for the length of the wait: a wait nested in this one (a `result()` inside a
    // user's `blocking`, a hook that itself waits) finds no hook and is not counted twice.
    // `try_with`: in a thread-local destructor the hook may be gone; the wait then just runs.
    let hook = HOOK
        .try_with(|hook| hook.borrow_mut().take())
        .ok()
        .flatten();
    let Some(hook) = hook else {
        return wait();
    };
    /// Puts the hook back (calling `unblocked` first if it counted the wait), also if the
    /// wait unwinds.
    struct Resumed {
        hook: Option<Arc<dyn BlockingHook>>,
        counted: bool,
    }
    impl Drop for Resumed {
        fn drop(&mut self) {
            if let Some(hook) = self.hook.take() {
                if self.counted {
                    hook.unblocked();
                }
                let _ = HOOK.try_with(|slot| *slot.borrow_mut() = Some(hook));
            }
        }
    }
    let mut resumed = Resumed {
        hook: Some(hook),
        counted: false,
    };
    resumed.counted = resumed.hook.as_ref().is_some_and(|hook| hook.blocking());
    wait()
}

/// Installs `hook` as this thread's blocking hook until the returned guard is dropped (which
/// puts back the one before). For engines: a worker thread holds one while it serves tasks.
#[must_use = "the hook is removed when the guard is dropped"]
pub fn install_hook(hook: Arc<dyn BlockingHook>) -> HookGuard {
    let previous = HOOK.with(|slot| slot.borrow_mut().replace(hook));
    HookGuard {
        previous,
        _this_thread: std::marker::PhantomData,
    }
}

/// Keeps a [`BlockingHook`] installed on this thread (see [`install_hook`]).
///
/// It is not `Send`: dropping it puts back the hook of the thread that installed it, so it
/// must be dropped there.
///
/// ```compile_fail
/// use concurrent_futures_core::blocking::{BlockingHook, install_hook};
/// use std::sync::Arc;
///
/// struct Silent;
/// impl BlockingHook for Silent {
///     fn blocking(&self) -> bool {
///         false
///     }
///     fn unblocked(&self) {}
/// }
///
/// let guard = install_hook(Arc::new(Silent));
/// std::thread::spawn(move || drop(guard));
/// ```
pub struct HookGuard {
    previous: Option<Arc<dyn BlockingHook>>,
    /// Not `Send`: it restores the hook of the thread that installed it, on that thread.
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: a guard dropped while the thread's locals are torn down has nothing to do.
        let _ = HOOK.try_with(|slot| *slot.borrow_mut() = previous);
    }
}

impl std::fmt::Debug for HookGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookGuard").finish_non_exhaustive()
    }
}
