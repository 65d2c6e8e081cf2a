//! Scoped tasks: closures that borrow from the caller's stack, all finished before the scope
//! returns — `std::thread::scope`, on the pool's threads.

use crate::ThreadPoolExecutor;
use crate::shared::Shared;
use crate::task::{BoxedTask, ClosureTask, Task};
use crate::unwind::{AbortOnUnwind, drop_payload};
use concurrent_futures_core::shim::sync::{Arc, Condvar, Mutex};
use concurrent_futures_core::{BrokenExecutor, Future, FutureId, SubmitError};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// A scope on a pool, from [`ThreadPoolExecutor::scope`]: tasks submitted to it may borrow
/// anything that outlives the scope.
///
/// # Examples
///
/// ```
/// use concurrent_futures_thread::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let words = vec!["alpha", "beta", "gamma"];
/// let mut total = 0;
/// pool.scope(|s| {
///     let lengths: Vec<_> = words.iter().map(|w| s.spawn(|| w.len()).unwrap()).collect();
///     total = lengths.iter().map(|f| f.result(None).unwrap()).sum();
/// });
/// assert_eq!(total, 14);
/// ```
///
/// A borrow cannot outlive the scope:
///
/// ```compile_fail
/// use concurrent_futures_thread::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// pool.scope(|s| {
///     let local = vec![1, 2, 3];
///     s.spawn(|| local.len()).unwrap(); // error: `local` does not live long enough
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'env ThreadPoolExecutor,
    state: Arc<ScopeState>,
    /// Tasks whose closure panicked, in the order they did: checked, once every task finished,
    /// for a panic nobody retrieved through the task's future. `ThreadPoolExecutor::scope`
    /// always empties it before the scope is dropped; `ManuallyDrop` tells the drop checker
    /// that dropping a `Scope` touches nothing that lives for `'scope` (as `std::thread::Scope`
    /// holds nothing with a `Drop`), since the scope is borrowed for all of `'scope`.
    panicked: ManuallyDrop<Mutex<Vec<PanickedTask<'scope>>>>,
    /// Invariant in both lifetimes, as `std::thread::Scope`.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// What the scope and its queued tasks share.
struct ScopeState {
    /// Tasks submitted and not yet run to the end (by a worker or by the scope itself).
    outstanding: Mutex<usize>,
    all_done: Condvar,
    /// Every task's slot; the scope runs, at its end, the ones no worker has taken yet.
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// A scoped task, taken exactly once: by a worker, by shutdown or breakage, or by the scope.
type Slot = Mutex<Option<Box<dyn BoxedTask>>>;

impl ScopeState {
    fn finished_one(&self) {
        let mut outstanding = self.outstanding.lock();
        *outstanding -= 1;
        if *outstanding == 0 {
            self.all_done.notify_all();
        }
    }

    /// Runs every task no worker has taken, then waits for the ones workers are running —
    /// running itself, as they come, the tasks those tasks spawn in the scope (on a busy pool
    /// nobody else might). Returns the first panic that escaped a task run here (from a
    /// `Drop`: the closure's own panic fails its future), to be resumed once nothing borrows
    /// the scope any more.
    ///
    /// Never unwinds: a panic it cannot contain aborts the process, as returning while a task
    /// still runs would free what that task borrows.
    fn join(&self) -> Option<Box<dyn Any + Send>> {
        let abort = AbortOnUnwind("a scope unwound while one of its tasks may still run");
        let mut escaped = None;
        loop {
            let slots = std::mem::take(&mut *self.slots.lock());
            for slot in slots {
                let task = slot.lock().take();
                if let Some(task) = task {
                    let finish = FinishOnDrop(self);
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || task.run(&|| {}))) {
                        match escaped {
                            None => escaped = Some(panic),
                            Some(_) => drop_payload(panic),
                        }
                    }
                    drop(finish);
                }
            }
            // Wait until every task finished, or a running one spawned another: `spawn`
            // pushes its slot, then notifies with `outstanding` locked, so a slot pushed after
            // this check wakes the wait below.
            let mut outstanding = self.outstanding.lock();
            loop {
                if *outstanding == 0 {
                    drop(outstanding);
                    abort.disarm();
                    return escaped;
                }
                if !self.slots.lock().is_empty() {
                    break;
                }
                outstanding = self.all_done.wait(outstanding);
            }
        }
    }

    /// A task was added to `slots`: wake a `join` waiting for the running tasks, so that it runs
    /// the new one if no worker does.
    fn task_added(&self) {
        let _outstanding = self.outstanding.lock();
        self.all_done.notify_all();
    }
}

/// A scoped task whose closure panicked: the original payload, and a look at its future.
struct PanickedTask<'scope> {
    payload: Box<dyn Any + Send>,
    /// Whether the task's error was handed out through its future (captures a handle to it).
    retrieved: Box<dyn Fn() -> bool + Send + 'scope>,
}

/// Counts a scoped task finished when dropped: after the task was consumed, even if a `Drop`
/// inside it unwound (by then everything the task owned has been dropped).
struct FinishOnDrop<'a>(&'a ScopeState);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finished_one();
    }
}

/// The queue's view of a scoped task.
struct ScopedTask {
    slot: Arc<Slot>,
    scope: Arc<ScopeState>,
    id: FutureId,
}

impl ScopedTask {
    fn take(&self) -> Option<Box<dyn BoxedTask>> {
        self.slot.lock().take()
    }
}

impl BoxedTask for ScopedTask {
    fn run(self: Box<Self>, finished_running: &dyn Fn()) {
        match self.take() {
            Some(task) => {
                let _finish = FinishOnDrop(&self.scope);
                task.run(finished_running);
            }
            None => finished_running(),
        }
    }

    fn cancel(self: Box<Self>) {
        if let Some(task) = self.take() {
            let _finish = FinishOnDrop(&self.scope);
            task.cancel();
        }
    }

    fn fail(self: Box<Self>, error: &BrokenExecutor) {
        if let Some(task) = self.take() {
            let _finish = FinishOnDrop(&self.scope);
            task.fail(error);
        }
    }

    fn id(&self) -> FutureId {
        self.id
    }
}

impl ThreadPoolExecutor {
    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's stack; returns once
    /// every task submitted to the scope has finished — even if `f` panics (the panic is then
    /// resumed). Tasks no worker has started by then are run by this thread, so a scope opened
    /// inside one of the pool's own tasks cannot deadlock waiting for a busy pool.
    ///
    /// # Panics
    ///
    /// A task that panics fails its future, as any task does. If nobody retrieves that error
    /// through the future before the scope ends — with [`result`](Future::result),
    /// [`result_ref`](Future::result_ref), [`exception`](Future::exception),
    /// [`into_result`](Future::into_result) or `.await` — the scope resumes the panic (its
    /// original payload) once every task has finished, as `std::thread::scope` does for threads
    /// nobody joined and rayon's scope does for every panic: a panic is never lost silently.
    /// If several went unretrieved, the first to panic is resumed. A panic of `f` itself comes
    /// first.
    ///
    /// A panic that escapes a task run by this thread (from a `Drop`: its closure's captures, its
    /// result, its panic payload) is resumed here too, once every task has finished; on a worker,
    /// such a panic is logged and the worker carries on. A panic that cannot be contained while
    /// a task may still run aborts the process, as `std::thread::scope` and rayon do: the
    /// scope never returns or unwinds while a task still borrows from it.
    ///
    /// ```
    /// use concurrent_futures_thread::ThreadPoolExecutor;
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// // Retrieved: the scope returns normally.
    /// let failed = pool.scope(|s| {
    ///     let f = s.spawn(|| -> u8 { panic!("bad row") }).unwrap();
    ///     f.result(None).is_err()
    /// });
    /// assert!(failed);
    /// // Never looked at: the scope re-raises it.
    /// let outcome = catch_unwind(AssertUnwindSafe(|| {
    ///     pool.scope(|s| {
    ///         s.spawn(|| -> u8 { panic!("bad row") }).unwrap();
    ///     })
    /// }));
    /// let payload = outcome.unwrap_err();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"bad row"));
    /// ```
    ///
    /// # Differences from Python
    ///
    /// Python has no scopes; an executor's `with` block never re-raises a task's exception.
    pub fn scope<'env, F, R>(&'env self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let scope = Scope {
            pool: self,
            state: Arc::new(ScopeState {
                outstanding: Mutex::new(0),
                all_done: Condvar::new(),
                slots: Mutex::new(Vec::new()),
            }),
            panicked: ManuallyDrop::new(Mutex::new(Vec::new())),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
        let escaped = scope.state.join();
        // Every task has finished: its future holds its outcome for good.
        let unretrieved = scope.first_unretrieved_panic();
        let panic = match result {
            Ok(value) => match unretrieved.or(escaped) {
                None => return value,
                Some(panic) => {
                    drop(value);
                    panic
                }
            },
            Err(panic) => {
                unretrieved
                    .into_iter()
                    .chain(escaped)
                    .for_each(drop_payload);
                panic
            }
        };
        resume_unwind(panic)
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Schedules `f`, which may borrow anything that outlives the scope, on the pool. Named
    /// after `std::thread::Scope::spawn`, as the pool's own closure method
    /// ([`ThreadPoolExecutor::spawn`]) is.
    ///
    /// If `f` panics, its future fails with the panic's message; the scope resumes the panic
    /// when it ends unless that error was retrieved through the future (see
    /// [`ThreadPoolExecutor::scope`]).
    ///
    /// On a pool with a bounded queue ([`ThreadPoolBuilder::max_queue`]) a scoped task counts
    /// against the bound, but a full queue never blocks or refuses it, whatever the policy:
    /// the spawning thread runs it at once, as [`QueueFullPolicy::CallerRuns`] does, and its
    /// future is done when `spawn` returns. (A scope opened inside one of the pool's tasks
    /// could otherwise wait for room that only its own worker would make.)
    ///
    /// [`ThreadPoolBuilder::max_queue`]: crate::ThreadPoolBuilder::max_queue
    /// [`QueueFullPolicy::CallerRuns`]: concurrent_futures_core::QueueFullPolicy::CallerRuns
    pub fn spawn<F, T>(&'scope self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let future = Future::new();
        let watched = future.clone();
        let panicked = &self.panicked;
        // The closure's panic is caught here first, to keep its payload for the scope; the
        // task then fails its future with the same message.
        let f = move || match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => {
                drop(watched);
                value
            }
            Err(payload) => {
                let message = concurrent_futures_core::panic_message(&*payload);
                panicked.lock().push(PanickedTask {
                    payload,
                    retrieved: Box::new(move || watched.error_retrieved()),
                });
                resume_unwind(Box::new(message))
            }
        };
        let task: Box<dyn BoxedTask + 'scope> = Box::new(ClosureTask {
            future: future.clone(),
            f,
        });
        // SAFETY: only the lifetime changes. The task is run, cancelled or failed — and so
        // dropped — before `ThreadPoolExecutor::scope` returns or unwinds: `ScopeState::join`
        // runs every task still in its slot and waits until `outstanding` (counted below,
        // before the task is queued) drops to zero. `outstanding` goes down only through
        // `FinishOnDrop`, after the task was consumed, even when a `Drop` inside it unwinds.
        // `scope` calls `join` even when the scope's body panics, and `join` itself never
        // unwinds (it aborts instead). So nothing the task borrows for `'scope` is used after
        // `'scope` ends.
        let task: Box<dyn BoxedTask + 'static> = unsafe {
            std::mem::transmute::<Box<dyn BoxedTask + 'scope>, Box<dyn BoxedTask + 'static>>(task)
        };
        let slot = Arc::new(Mutex::new(Some(task)));
        *self.state.outstanding.lock() += 1;
        let queued = ScopedTask {
            slot: Arc::clone(&slot),
            scope: Arc::clone(&self.state),
            id: future.id(),
        };
        match Shared::submit_scoped(self.pool.shared(), Task::Boxed(Box::new(queued))) {
            Ok(()) => {
                self.state.slots.lock().push(slot);
                self.state.task_added();
                Ok(future)
            }
            Err(e) => {
                // Refused: nobody else holds the slot; drop the task here, inside the scope.
                let _finish = FinishOnDrop(&self.state);
                drop(slot.lock().take());
                Err(e)
            }
        }
    }
}

impl Scope<'_, '_> {
    /// The payload of the first task panic whose error nobody retrieved; every other payload
    /// is dropped here. Call it once every task has finished.
    fn first_unretrieved_panic(&self) -> Option<Box<dyn Any + Send>> {
        let panicked = std::mem::take(&mut *self.panicked.lock());
        let mut first = None;
        for task in panicked {
            let PanickedTask { payload, retrieved } = task;
            if first.is_none() && !retrieved() {
                first = Some(payload);
            } else {
                drop_payload(payload);
            }
        }
        first
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("outstanding", &*self.state.outstanding.lock())
            .finish_non_exhaustive()
    }
}
