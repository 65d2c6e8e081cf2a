//! [`MpiPoolExecutor`]: the `Executor` over MPI worker ranks (mpi4py's `MPIPoolExecutor`).
//!
//! The task model is the process pool's, from the remote-call member: a task is an
//! `fn(A) -> R` named by its place in the executable (every rank runs the same program),
//! sealed with the pool's key, with a postcard-encoded argument; each worker runs the
//! remote-call member's serve loop over its MPI link.
//!
//! **Scheduling.** One lock guards the queue, the workers' free places and the tasks in
//! flight. Each worker holds up to [`PER_WORKER`] tasks: the one it runs and two more, so that
//! it never waits for a round trip between two tasks (Python's process pool likewise sends
//! `max_workers + 1` ahead). A submit queues its job and sends it at once if a worker has a
//! free place. A result is handled on the transport's receiving thread the moment it comes:
//! the next queued job goes to the worker whose place came free, and the future is completed
//! (a small result is decoded there; a large one on the manager). What may run user code —
//! the done-callbacks, the drop of a result nobody holds — and every other event (a death, a
//! goodbye) go to the pool's manager, the transport's event thread. A place that comes free is
//! used first, so that a lone task goes to a worker that is still polling rather than to one
//! that has begun to sleep. Futures are completed, and their done-callbacks run, without the
//! lock held; a panic there is contained, so the manager never dies. No send blocks: one still
//! under way (a large message) is finished by the receiving thread.
//!
//! **Faults.** A worker that dies (seen at once on the pool's host, which MPI itself never
//! reports), one silent past the heartbeat timeout (a death on another host, or a frozen
//! process), or an MPI failure breaks the pool, as a dead process breaks Python's process pool:
//! the tasks in flight and every queued one fail with a `BrokenExecutor` naming the rank and
//! its host, and later submits are refused. A message that cannot be sent for its own reason
//! (too large for MPI) fails its task only.
//!
//! **Shutdown.** `shutdown` refuses new tasks; with `cancel_futures` it cancels the queued
//! ones. Once nothing is queued or in flight, the workers are dismissed, on a thread of their
//! own (they say goodbye and exit; on this host the ones that do not are killed after a
//! deadline); with `wait`, `shutdown` returns after that.

use crate::MpiError;
use crate::transport::{Event, Rank, Workers, WorkersConfig};
use crate::workers::{Handled, Work};
use concurrent_futures_core::{
    Batch, BrokenExecutor, BrokenKind, Executor, Future, Payload, PayloadError, PayloadStage,
    SubmitError, TaskError, contain_panic,
};
use concurrent_futures_remote::wire::{self, FromWorker, Init};
use concurrent_futures_remote::{CallKey, CallSite, Version};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Tasks a worker holds at once: the one it runs and two more (they are marked running when
/// sent, as Python's process pool marks what it moves to its call queue). With one more only,
/// a tiny task's result going back and the next task coming out take longer than the task, and
/// the worker idles: `cargo xtask bench mpi` row (b), `map` over 10,000 ints with chunksize 1,
/// ran at 24k-34k items/s with two, 38k-66k with three, 2 workers on 2 cores.
const PER_WORKER: usize = 3;

/// Where a job's outcome goes: its future, behind the result type.
trait Sink: Send {
    /// PENDING → RUNNING; `false` if the future was cancelled.
    fn start(&self) -> bool;
    /// Cancels a future that never started (and notifies its waiters).
    fn cancel(&self);
    /// Completes the future with the result bytes or the error.
    fn finish(self: Box<Self>, outcome: Result<&[u8], TaskError>);
    /// Completes the future as `finish` does, but runs no user code beyond the result's
    /// `Deserialize`: returns what is left for another thread, if anything (its done-callbacks,
    /// and this handle when its drop could drop the value).
    fn finish_deferring(self: Box<Self>, outcome: Result<&[u8], TaskError>) -> Option<Work>;
    /// Fails a future not started yet (the pool broke); a cancelled one is only notified.
    fn fail_queued(self: Box<Self>, error: TaskError);
    /// Fails a future that is running (its worker died).
    fn fail_running(self: Box<Self>, error: TaskError);
}

struct FutureSink<R>(Future<R>);

impl<R: Payload> Sink for FutureSink<R> {
    fn start(&self) -> bool {
        self.0.set_running_or_notify_cancel() == Ok(true)
    }

    fn cancel(&self) {
        self.0.cancel();
        let _ = self.0.set_running_or_notify_cancel();
    }

    fn finish(self: Box<Self>, outcome: Result<&[u8], TaskError>) {
        // A future cancelled meanwhile refuses the outcome; Python ignores that too.
        let _ = match outcome.and_then(wire::decode_result::<R>) {
            Ok(value) => self.0.set_result(value),
            Err(e) => self.0.set_exception(e),
        };
    }

    fn finish_deferring(self: Box<Self>, outcome: Result<&[u8], TaskError>) -> Option<Work> {
        // Decoding runs the result type's `Deserialize`: small results only come this way.
        let outcome = outcome.and_then(wire::decode_result::<R>);
        let FutureSink(future) = *self;
        match future.complete_deferring_callbacks(outcome) {
            Ok(left) if left.is_empty() => None,
            Ok(left) => Some(Box::new(move || left.run())),
            // Finished already: cancelled (a running task cannot be), or set by a caller
            // against the rules. It refuses the outcome, as in `finish`; the value decoded for
            // it was dropped here.
            Err(_) => None,
        }
    }

    fn fail_queued(self: Box<Self>, error: TaskError) {
        if self.0.set_running_or_notify_cancel() == Ok(true) {
            let _ = self.0.set_exception(error);
        }
    }

    fn fail_running(self: Box<Self>, error: TaskError) {
        let _ = self.0.set_exception(error);
    }
}

/// A task waiting for a worker.
struct Job {
    id: u64,
    message: Vec<u8>,
    sink: Box<dyn Sink>,
}

/// A task sent to a worker and not answered yet.
struct Flight {
    id: u64,
    sink: Box<dyn Sink>,
}

/// What the lock guards.
struct State {
    queue: VecDeque<Job>,
    /// A worker's rank once per free place (in turn: 0, 1, .., 0, 1, ..).
    free: VecDeque<Rank>,
    /// The task each busy worker runs.
    running: HashMap<Rank, VecDeque<Flight>>,
    /// Tasks in flight, over every worker.
    in_flight: usize,
    /// The transport, until the workers are dismissed.
    workers: Option<Workers>,
    shutdown: bool,
    broken: Option<BrokenExecutor>,
    /// The workers were dismissed (or the pool broke and they were let go): nothing will run.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Woken when the pool closes.
    closed: Condvar,
    key: CallKey,
    next_id: AtomicU64,
    /// Set once the workers have started.
    max_workers: std::sync::OnceLock<usize>,
    /// The transport's event thread, which handles the workers' events other than results,
    /// and runs the futures' done-callbacks: the pool's manager. A `shutdown(wait)` there (a
    /// callback dropping the pool) must not wait for itself, and the workers are dismissed
    /// from another thread (their goodbyes arrive on this one).
    manager: std::sync::OnceLock<std::thread::ThreadId>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this thread is the manager (see [`Shared::manager`]).
    fn on_manager(&self) -> bool {
        self.manager.get() == Some(&std::thread::current().id())
    }
}

/// How to build an [`MpiPoolExecutor`]: the number of workers to spawn and the deadlines of
/// starting and stopping them.
///
/// # Examples
///
/// ```no_run
/// use concurrent_futures_mpi::MpiPoolExecutor;
/// use std::time::Duration;
///
/// let _session = concurrent_futures_mpi::bootstrap().unwrap();
/// let pool = MpiPoolExecutor::builder()
///     .max_workers(4)
///     .start_timeout(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// # drop(pool);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MpiPoolBuilder {
    config: WorkersConfig,
    /// The initializer's call site and encoded argument, or why the argument did not encode.
    initializer: Option<Result<(CallSite, Vec<u8>), String>>,
}

impl MpiPoolBuilder {
    /// How many workers to spawn from a plain program (default 2). Under a launcher
    /// (`mpirun -n N`), ranks 1..N are the workers and this is ignored, as mpi4py's
    /// `MPICommExecutor` does. Zero is refused by [`build`](Self::build).
    pub fn max_workers(mut self, n: usize) -> MpiPoolBuilder {
        self.config.workers = n;
        self
    }

    /// How long starting the workers may take, spawn and hello together (default 30 s each):
    /// a worker program that never calls [`bootstrap`](crate::bootstrap) fails the build with an error
    /// instead of hanging it.
    pub fn start_timeout(mut self, limit: Duration) -> MpiPoolBuilder {
        self.config.spawn_timeout = limit;
        self.config.hello_timeout = limit;
        self
    }

    /// How long shutdown waits for the workers' goodbyes before killing the ones on this
    /// host (default 10 s).
    pub fn shutdown_timeout(mut self, limit: Duration) -> MpiPoolBuilder {
        self.config.shutdown_timeout = limit;
        self
    }

    /// Runs `f(arg)` in each worker before its first task (Python's `initializer` and
    /// `initargs`). If it panics, the pool breaks, as in Python: every task submitted fails
    /// with a `BrokenExecutor` that carries the initializer's panic message, and later submits
    /// are refused. An argument that cannot be serialized fails [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concurrent_futures_mpi::MpiPoolExecutor;
    ///
    /// fn set_up(level: u32) {
    ///     // Runs once in each worker: open files, seed, set globals...
    ///     let _ = level;
    /// }
    ///
    /// let _session = concurrent_futures_mpi::bootstrap().unwrap();
    /// let pool = MpiPoolExecutor::builder().initializer(set_up, 3).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn initializer<A: Payload>(mut self, f: fn(A), arg: A) -> MpiPoolBuilder {
        let encoded = wire::encode_argument(&arg)
            .map(|bytes| (CallSite::of(f), bytes))
            .map_err(|e| e.to_string());
        self.initializer = Some(encoded);
        self
    }

    /// How long a worker may stay silent (the pool and each worker send heartbeats ten
    /// times in this span) before it is presumed dead and the pool breaks (default 30 s); the
    /// workers presume the pool dead, and leave, after the same silence from it. This is how a
    /// worker on another host that dies, or a frozen worker, is seen; on the pool's own host a
    /// death is seen at once. A worker whose large result is still coming gets one second more
    /// per 100 MB of it. At least 100 ms: [`build`](Self::build) refuses less.
    pub fn heartbeat_timeout(mut self, limit: Duration) -> MpiPoolBuilder {
        self.config.heartbeat_timeout = limit;
        self
    }

    /// Starts the workers (spawns them, or takes the launcher's ranks) and the pool.
    pub fn build(self) -> Result<MpiPoolExecutor, MpiError> {
        if self.config.workers == 0 {
            return Err(MpiError::InvalidArgument(
                "max_workers must be greater than 0",
            ));
        }
        let initializer = match self.initializer {
            Some(Err(why)) => return Err(MpiError::InitializerArgument(why)),
            Some(Ok(initializer)) => Some(initializer),
            None => None,
        };
        let key = CallKey::generate().map_err(|e| MpiError::Init(e.to_string()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                free: VecDeque::new(),
                running: HashMap::new(),
                in_flight: 0,
                workers: None,
                shutdown: false,
                broken: None,
                closed: false,
            }),
            closed: Condvar::new(),
            key,
            next_id: AtomicU64::new(1),
            max_workers: std::sync::OnceLock::new(),
            manager: std::sync::OnceLock::new(),
        });
        let on_receiving = {
            let shared = Arc::clone(&shared);
            move |rank, event| on_receiving(&shared, rank, event)
        };
        let handler = {
            let shared = Arc::clone(&shared);
            move |_: &crate::transport::Outbox, rank, event| {
                let _ = shared.manager.set(std::thread::current().id());
                on_event(&shared, rank, event);
            }
        };
        let workers = Workers::start_split(&self.config, on_receiving, handler)?;
        let ranks: Vec<Rank> = workers.members().iter().map(|w| w.rank).collect();
        let _ = shared.max_workers.set(ranks.len());
        let init = wire::encode_init(&Init {
            version: Version::ours(),
            key: shared.key.clone(),
            initializer: initializer.map(|(site, bytes)| (shared.key.seal(site), bytes)),
            max_tasks: None,
        });
        for &rank in &ranks {
            workers.send(rank, init.clone())?;
        }
        let mut state = shared.lock();
        if state.broken.is_some() {
            // A worker died (or MPI failed) already: the pool is broken from the start.
            drop(state);
            dismiss_workers(&shared, workers);
        } else {
            // A worker reads its settings (and runs the initializer) before any task: it can
            // be sent tasks at once. With an initializer it answers `Ready`, which needs no
            // action; a failed one breaks the pool.
            state.free = (0..PER_WORKER)
                .flat_map(|_| ranks.iter().copied())
                .collect();
            state.workers = Some(workers);
            drop(state);
        }
        Ok(MpiPoolExecutor { shared })
    }
}

/// Python's `mpi4py.futures.MPIPoolExecutor`: tasks run in MPI worker processes, spawned by a
/// plain program or given by a launcher (`mpirun -n N`), on this machine or across a cluster.
///
/// The program's `main` must call [`bootstrap`](crate::bootstrap) first: the workers are
/// copies of it.
///
/// # Examples
///
/// ```no_run
/// use concurrent_futures_mpi::MpiPoolExecutor;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let _session = concurrent_futures_mpi::bootstrap().unwrap();
/// let pool = MpiPoolExecutor::new().unwrap();
/// assert_eq!(pool.submit(square, 7).unwrap().result(None).unwrap(), 49);
/// ```
///
/// # Differences from Python
///
/// * Functions are `fn(A) -> R` with serde payloads, found by their place in the program (all
///   ranks run the same executable), where mpi4py pickles the function.
/// * A worker that dies breaks the pool (as Python's `BrokenProcessPool`), naming its rank and
///   host; so does one that sends no heartbeat for
///   [`heartbeat_timeout`](MpiPoolBuilder::heartbeat_timeout). mpi4py's pool hangs or aborts,
///   as Open MPI does.
/// * No `max_tasks_per_child` (mpi4py has none either) or per-worker environment.
pub struct MpiPoolExecutor {
    shared: Arc<Shared>,
}

impl MpiPoolExecutor {
    /// A builder, with mpi4py's defaults where they apply.
    pub fn builder() -> MpiPoolBuilder {
        MpiPoolBuilder {
            config: WorkersConfig::default(),
            initializer: None,
        }
    }

    /// A pool with the default settings (2 spawned workers, or the launcher's ranks).
    pub fn new() -> Result<MpiPoolExecutor, MpiError> {
        MpiPoolExecutor::builder().build()
    }

    /// How many workers serve this pool.
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers.get().copied().unwrap_or(0)
    }

    /// Schedules `f(arg)` on a worker rank: Python's `submit`. An argument that cannot be
    /// serialized fails the returned future with [`TaskError::Payload`].
    pub fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        self.submit_call(CallSite::of(f), &arg)
    }

    fn submit_call<A: Serialize, R: Payload>(
        &self,
        site: CallSite,
        arg: &A,
    ) -> Result<Future<R>, SubmitError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let future = Future::new();
        let message = match wire::encode_task(id, self.shared.key.seal(site), arg) {
            Ok(message) => message,
            Err(e) => {
                refusal(&self.shared.lock()).map_or(Ok(()), Err)?;
                let error = PayloadError::new(PayloadStage::EncodeArgument, e.to_string());
                let _ = future.set_exception(TaskError::Payload(error));
                return Ok(future);
            }
        };
        let mut state = self.shared.lock();
        if let Some(refused) = refusal(&state) {
            return Err(refused);
        }
        state.queue.push_back(Job {
            id,
            message,
            sink: Box::new(FutureSink(future.clone())),
        });
        let unsent = dispatch(&mut state);
        drop(state);
        fail_unsent(unsent);
        Ok(future)
    }

    /// Python's `shutdown(wait, cancel_futures)`: no new tasks; with `cancel_futures`, every
    /// task not yet sent to a worker is cancelled; with `wait`, returns once every task has
    /// ended and the workers have left.
    ///
    /// Called from a done-callback of this pool's futures (which run on the pool's manager
    /// thread), `wait` cannot be honoured: what it would wait for is handled on that very
    /// thread. It then returns at once, and the workers are dismissed once the pool is idle,
    /// as with `wait = false`.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let mut state = self.shared.lock();
        state.shutdown = true;
        let cancelled: Vec<Job> = if cancel_futures {
            state.queue.drain(..).collect()
        } else {
            Vec::new()
        };
        let dismiss = take_workers_if_done(&mut state);
        drop(state);
        for job in cancelled {
            contain_panic("cancelling an MPI task's future", || job.sink.cancel());
        }
        if let Some(workers) = dismiss {
            if wait {
                dismiss_workers(&self.shared, workers);
            } else {
                // Python's `shutdown(wait=False)` returns at once: the workers are dismissed
                // (their goodbyes awaited, stragglers killed) on a thread of their own.
                dismiss_elsewhere(&self.shared, workers);
            }
        }
        // A done-callback on the manager thread cannot wait for the manager (Python's pool,
        // likewise, cannot join its own thread): the pool closes once this event is handled.
        if wait && !self.shared.on_manager() {
            let mut state = self.shared.lock();
            while !state.closed {
                state = self
                    .shared
                    .closed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// Why a submit is refused now, if it is.
fn refusal(state: &State) -> Option<SubmitError> {
    if let Some(broken) = &state.broken {
        return Some(SubmitError::Broken(broken.clone()));
    }
    state.shutdown.then_some(SubmitError::Shutdown)
}

/// A job that could not be sent, and its error: failed once the lock is released (its
/// future's done-callbacks may take the lock again).
type Unsent = (Box<dyn Sink>, TaskError);

/// Sends queued jobs to workers with a free place. Called with the lock held; returns the
/// jobs that could not be sent, for [`fail_unsent`] after the lock is released.
#[must_use = "the unsent jobs must be failed, after the lock is released"]
fn dispatch(state: &mut State) -> Vec<Unsent> {
    let mut unsent = Vec::new();
    while !state.free.is_empty() {
        let Some(job) = state.queue.pop_front() else {
            break;
        };
        if !job.sink.start() {
            // Cancelled while queued: notified by `start`, never sent.
            continue;
        }
        let rank = state.free.pop_front().expect("checked non-empty");
        let sent = match &state.workers {
            Some(workers) => workers.send(rank, job.message),
            None => Err(MpiError::WorkerGone(rank)),
        };
        match sent {
            Ok(()) => {
                state.running.entry(rank).or_default().push_back(Flight {
                    id: job.id,
                    sink: job.sink,
                });
                state.in_flight += 1;
            }
            Err(e @ MpiError::WorkerGone(_)) => {
                // The worker is gone: its death event breaks the pool; this job fails now.
                let error =
                    broken_error(format!("cannot send a task to MPI worker rank {rank}: {e}"));
                unsent.push((job.sink, TaskError::Broken(error)));
            }
            Err(e) => {
                // This message could not be posted (too large for MPI, or MPI wedged, which
                // the progress watch reports to the pool as well): it fails alone, and the
                // worker keeps its place. (A send MPI fails later is the worker's
                // `Event::Failed`, which breaks the pool.)
                state.free.push_front(rank);
                let error = match e {
                    MpiError::TooLarge(_) => TaskError::Payload(PayloadError::new(
                        PayloadStage::EncodeArgument,
                        e.to_string(),
                    )),
                    other => TaskError::Broken(broken_error(format!(
                        "cannot send a task to MPI worker rank {rank}: {other}"
                    ))),
                };
                unsent.push((job.sink, error));
            }
        }
    }
    unsent
}

/// Fails the jobs `dispatch` could not send (called without the lock).
fn fail_unsent(unsent: Vec<Unsent>) {
    for (sink, error) in unsent {
        contain_panic("failing an MPI task's future", || sink.fail_running(error));
    }
}

fn broken_error(message: String) -> BrokenExecutor {
    BrokenExecutor::new(BrokenKind::Other, message)
}

/// Once shut down and idle, the workers to dismiss (taken out: only one caller gets them).
fn take_workers_if_done(state: &mut State) -> Option<Workers> {
    if state.shutdown && state.queue.is_empty() && state.in_flight == 0 {
        state.workers.take()
    } else {
        None
    }
}

/// Tells the workers to leave and waits for them (outside the lock), then closes the pool. On
/// the manager thread, which must go on receiving their goodbyes, this happens on a thread of
/// its own.
fn dismiss_workers(shared: &Arc<Shared>, workers: Workers) {
    if shared.on_manager() {
        return dismiss_elsewhere(shared, workers);
    }
    if let Err(e) = workers.shutdown() {
        log::warn!(target: "concurrent_futures", "stopping the MPI workers: {e}");
    }
    let mut state = shared.lock();
    state.closed = true;
    shared.closed.notify_all();
}

/// [`dismiss_workers`] on a thread of its own.
fn dismiss_elsewhere(shared: &Arc<Shared>, workers: Workers) {
    let shared_there = Arc::clone(shared);
    let dismissing = std::thread::Builder::new()
        .name("MpiPoolExecutor-shutdown".to_owned())
        .spawn(move || dismiss_workers(&shared_there, workers));
    if let Err(e) = dismissing {
        // The workers went with the thread's closure: dropped here, they stop from here (or,
        // on the manager thread, in the background: see `Workers::start_with`).
        log::warn!(target: "concurrent_futures", "cannot start a thread to dismiss the MPI workers: {e}");
        let mut state = shared.lock();
        state.closed = true;
        shared.closed.notify_all();
    }
}

/// Results up to this size are decoded on the receiving thread, which completes their futures
/// at once; larger ones, whose decoding takes longer (and would hold up the messages behind
/// them), go to the manager thread. Completing here saves a hand-off between threads per
/// result: `cargo xtask bench mpi` row (a), one submit and its result, 2 cores, took a median
/// of 30 µs over 8 runs (20-43 µs), against 36 µs (28-48 µs) over 7 runs completed on the
/// manager; the runs are noise-bound (the floor itself ranged over 17-39 µs). A result type
/// whose `Deserialize` blocks holds up the receiving thread: past the progress watch's limit
/// (5 s at least), MPI is declared wedged.
const DECODED_ON_RECEIVING: usize = 64 << 10;

/// The receiving thread's part of an event: a task's result, matched to its flight and its
/// worker's place filled again at once; the future completed if the result is small
/// ([`DECODED_ON_RECEIVING`]). What is left, and any other event, goes to the manager
/// ([`on_event`]): it runs no user code here.
fn on_receiving(shared: &Arc<Shared>, rank: Rank, event: Event) -> Handled {
    let Event::Message(bytes) = event else {
        return Handled::Pass(event);
    };
    let Some(FromWorker::Done { id, .. }) = wire::decode_from_worker(&bytes) else {
        return Handled::Pass(Event::Message(bytes));
    };
    let mut state = shared.lock();
    // A worker answers its tasks in the order it got them; any other answer breaks the pool,
    // which the manager does.
    let answers_first = state
        .running
        .get(&rank)
        .and_then(VecDeque::front)
        .is_some_and(|flight| flight.id == id);
    if !answers_first {
        drop(state);
        return Handled::Pass(Event::Message(bytes));
    }
    let flight = state
        .running
        .get_mut(&rank)
        .and_then(VecDeque::pop_front)
        .expect("checked: it answers its first flight");
    state.in_flight -= 1;
    let mut unsent = Vec::new();
    if state.broken.is_none() {
        state.free.push_front(rank);
        unsent = dispatch(&mut state);
    }
    let dismiss = take_workers_if_done(&mut state);
    drop(state);
    let finish: Option<Work> = if bytes.len() <= DECODED_ON_RECEIVING {
        // Nothing may unwind from here with `dismiss` held: dropped on this thread, the
        // workers would stop from it.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flight.sink.finish_deferring(task_outcome(&bytes))
        }))
        .unwrap_or_else(|payload| {
            log::error!(target: "concurrent_futures", "completing an MPI task's future panicked");
            concurrent_futures_core::drop_panic_payload(payload);
            None
        })
    } else {
        Some(Box::new(move || flight.sink.finish(task_outcome(&bytes))))
    };
    if finish.is_none() && unsent.is_empty() && dismiss.is_none() {
        return Handled::Done;
    }
    let shared = Arc::clone(shared);
    Handled::Later(Box::new(move || {
        let _ = shared.manager.set(std::thread::current().id());
        fail_unsent(unsent);
        // A panic from a `Drop` (of a result nobody holds any more) must not stop the manager.
        if let Some(finish) = finish {
            contain_panic("completing an MPI task's future", finish);
        }
        if let Some(workers) = dismiss {
            dismiss_workers(&shared, workers);
        }
    }))
}

/// The outcome of the task a `Done` message answers.
fn task_outcome(bytes: &[u8]) -> Result<&[u8], TaskError> {
    match wire::decode_from_worker(bytes) {
        Some(FromWorker::Done { outcome, .. }) => outcome.map_err(wire::Failure::into_task_error),
        _ => unreachable!("decoded as a task's outcome before"),
    }
}

/// The manager's handling of one event of the workers.
fn on_event(shared: &Arc<Shared>, rank: Rank, event: Event) {
    match event {
        Event::Message(bytes) => on_message(shared, rank, &bytes),
        Event::Died { host, pid, .. } => break_pool(
            shared,
            format!("MPI worker rank {rank} on host {host} (pid {pid}) died"),
        ),
        Event::Silent { host, pid, after } => break_pool(
            shared,
            format!(
                "MPI worker rank {rank} on host {host} (pid {pid}) sent no heartbeat for {:.1} s: \
                 presumed dead",
                after.as_secs_f64()
            ),
        ),
        Event::Left { code } => {
            // Expected at shutdown, once the worker's tasks are done; otherwise (or with a
            // task still on it) it fails what it held.
            let unexpected = {
                let state = shared.lock();
                !state.shutdown || state.running.get(&rank).is_some_and(|q| !q.is_empty())
            };
            if unexpected {
                break_pool(
                    shared,
                    format!("MPI worker rank {rank} left the pool (exit code {code})"),
                );
            }
        }
        Event::Failed(e) => break_pool(shared, format!("MPI failed talking to rank {rank}: {e}")),
    }
}

fn on_message(shared: &Arc<Shared>, rank: Rank, bytes: &[u8]) {
    let (finished, outcome) = match wire::decode_from_worker(bytes) {
        Some(FromWorker::Ready) => (None, None),
        Some(FromWorker::Done { id, outcome }) => {
            // A worker answers its tasks in the order it got them.
            let flight = {
                let mut state = shared.lock();
                let flight = state.running.get_mut(&rank).and_then(VecDeque::pop_front);
                if flight.is_some() {
                    state.in_flight -= 1;
                }
                flight
            };
            match flight {
                Some(flight) if flight.id == id => (Some(flight.sink), Some(outcome)),
                other => {
                    // Put it back, for `break_pool` to fail with the others.
                    if let Some(flight) = other {
                        let mut state = shared.lock();
                        state.running.entry(rank).or_default().push_front(flight);
                        state.in_flight += 1;
                    }
                    return break_pool(
                        shared,
                        format!(
                            "MPI worker rank {rank} answered task {id}, which it was not running"
                        ),
                    );
                }
            }
        }
        Some(FromWorker::InitFailed { message, .. }) => {
            return break_pool(
                shared,
                format!("the initializer of MPI worker rank {rank} failed: {message}"),
            );
        }
        None => {
            return break_pool(
                shared,
                format!("MPI worker rank {rank} sent an unreadable message"),
            );
        }
    };
    // A place is free again on this worker (after a task, not after `Ready`, which only a
    // worker with an initializer sends, with its places already counted): fill it before this
    // task's callbacks run.
    let mut state = shared.lock();
    let mut unsent = Vec::new();
    if state.broken.is_none() && finished.is_some() {
        state.free.push_front(rank);
        unsent = dispatch(&mut state);
    }
    let dismiss = take_workers_if_done(&mut state);
    drop(state);
    fail_unsent(unsent);
    if let (Some(sink), Some(outcome)) = (finished, outcome) {
        // The future's callbacks run here; a panic from a `Drop` (of a result nobody holds
        // any more) must not stop the manager.
        contain_panic("completing an MPI task's future", || {
            sink.finish(outcome.map_err(wire::Failure::into_task_error))
        });
    }
    if let Some(workers) = dismiss {
        dismiss_workers(shared, workers);
    }
}

/// A worker died or MPI failed: fail every task queued or in flight, refuse new ones, and let
/// the workers go.
fn break_pool(shared: &Arc<Shared>, why: String) {
    let error = broken_error(why);
    let mut state = shared.lock();
    if state.broken.is_none() {
        log::error!(target: "concurrent_futures", "{error}");
        state.broken = Some(error.clone());
    }
    let queued: Vec<Job> = state.queue.drain(..).collect();
    let running: Vec<Flight> = state.running.drain().flat_map(|(_, f)| f).collect();
    state.in_flight = 0;
    state.free.clear();
    let workers = state.workers.take();
    drop(state);
    for job in queued {
        let error = TaskError::Broken(error.clone());
        contain_panic("failing an MPI task's future", || {
            job.sink.fail_queued(error)
        });
    }
    for flight in running {
        let error = TaskError::Broken(error.clone());
        contain_panic("failing an MPI task's future", || {
            flight.sink.fail_running(error)
        });
    }
    if let Some(workers) = workers {
        dismiss_workers(shared, workers);
    }
}

impl Executor for MpiPoolExecutor {
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        MpiPoolExecutor::submit(self, f, arg)
    }

    /// One message, and one task in the worker, per chunk (mpi4py's chunked `map`).
    fn submit_batch<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<Batch<R>, SubmitError> {
        self.submit_call(CallSite::chunk_of(f), &args)
            .map(Batch::Whole)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        MpiPoolExecutor::shutdown(self, wait, cancel_futures);
    }
}

impl Drop for MpiPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl fmt::Debug for MpiPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MpiPoolExecutor")
            .field("max_workers", &self.max_workers())
            .field("queued", &state.queue.len())
            .field("in_flight", &state.in_flight)
            .field("free_places", &state.free.len())
            .field("shutdown", &state.shutdown)
            .field("broken", &state.broken.is_some())
            .finish()
    }
}
