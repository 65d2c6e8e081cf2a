//! The pool's bookkeeping: the queue of jobs not yet sent, the live workers and what each is
//! running, and the flags. One lock guards it all; nothing blocks while holding it (messages
//! are sent after it is released).
//!
//! Python splits this between `_pending_work_items`, the call queue and the manager thread.
//! Here there is no manager: a submitter sends straight to an idle worker, and each worker's
//! courier thread completes that worker's futures and hands it the next job, so a result
//! reaches a waiting caller with one thread hop.

use crate::courier;
use crate::launch::{self, LaunchError, StartMethod};
use crate::sys;
use crate::wire;
use crate::workers::{ExitReason, WorkerExit, WorkerInfo, WorkerState};
use concurrent_futures_core::shim::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use concurrent_futures_core::shim::sync::{Condvar, Mutex, MutexGuard};
use concurrent_futures_core::shim::thread::{self as shim_thread, JoinHandle};
use concurrent_futures_core::shim::time::Instant;
use concurrent_futures_core::{
    BrokenExecutor, BrokenKind, Deadline, Future, Payload, PoolStats, QueueFullPolicy, SubmitError,
    TaskError, contain_panic,
};
use concurrent_futures_remote::auth::CallKey;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

mod supervise;

pub(crate) use supervise::Supervision;

/// At most this many jobs are sent to one worker ahead of its results: the one it runs and the
/// next, so it never waits for a round trip between tasks (Python's call queue holds
/// `max_workers + 1`). The second is sent only when no more workers can be started.
const DEPTH: usize = 2;

/// The executor-level reason of a broken pool (Python's `_broken`).
pub(crate) const NOT_USABLE: &str =
    "A child process terminated abruptly, the process pool is not usable anymore";

/// What the pool was built with. (Its `Debug` leaves out `init`, which holds the key.)
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) method: StartMethod,
    /// The key this pool seals its call sites with (also inside `init`).
    pub(crate) key: CallKey,
    /// The encoded `Init` message every new worker gets first.
    pub(crate) init: Vec<u8>,
    /// Whether `init` holds an initializer (a new worker then says when it has run it).
    pub(crate) has_initializer: bool,
    pub(crate) max_tasks: Option<u64>,
    /// How long a spawned or fork-server worker may take to connect.
    pub(crate) handshake_timeout: std::time::Duration,
    /// `max_queue` and its policy; `None`: unbounded.
    pub(crate) max_queue: Option<(usize, QueueFullPolicy)>,
    /// What the pool does beyond Python's: crash isolation, time limits, recycling.
    pub(crate) supervision: Supervision,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("max_workers", &self.max_workers)
            .field("method", &self.method)
            .field("key", &self.key)
            .field("max_tasks", &self.max_tasks)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_queue", &self.max_queue)
            .field("supervision", &self.supervision)
            .finish_non_exhaustive()
    }
}

/// Where a job's outcome goes: its future, behind the result type.
pub(crate) trait Sink: Send {
    /// PENDING → RUNNING; `false` if the future was cancelled.
    fn start(&self) -> bool;
    /// [`start`](Sink::start), letting `cancel()` of the running future call `stop` from the
    /// moment it runs.
    fn start_stoppable(&self, stop: Box<dyn FnOnce() + Send>) -> bool;
    /// Cancels a future that never started (and notifies its waiters).
    fn cancel(&self);
    /// Completes the future with the result bytes or the error.
    fn finish(self: Box<Self>, outcome: Result<&[u8], TaskError>);
}

pub(crate) struct FutureSink<R>(pub(crate) Future<R>);

impl<R: Payload> Sink for FutureSink<R> {
    fn start(&self) -> bool {
        self.0.set_running_or_notify_cancel() == Ok(true)
    }

    fn cancel(&self) {
        self.0.cancel();
    }

    fn start_stoppable(&self, stop: Box<dyn FnOnce() + Send>) -> bool {
        self.0.set_running_allowing_cancel(stop) == Ok(true)
    }

    fn finish(self: Box<Self>, outcome: Result<&[u8], TaskError>) {
        let decoded = outcome.and_then(wire::decode_result::<R>);
        // A future cancelled meanwhile refuses the outcome; Python ignores that too.
        let _ = match decoded {
            Ok(value) => self.0.set_result(value),
            Err(e) => self.0.set_exception(e),
        };
    }
}

/// A task waiting to be sent.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) message: Vec<u8>,
    pub(crate) sink: Box<dyn Sink>,
    /// How long it may run before the pool stops it (`None`: no limit).
    pub(crate) timeout: Option<Duration>,
}

/// A job sent to a worker and not yet answered.
struct Flight {
    id: u64,
    sink: Box<dyn Sink>,
    timeout: Option<Duration>,
}

/// A live worker.
struct Slot {
    pid: i32,
    /// `None` once the pool closed it (shutdown, break): the worker exits when it sees that.
    tasks: Option<Arc<wire::Sender>>,
    /// What it was sent and has not answered, oldest (the one it runs) first.
    in_flight: VecDeque<Flight>,
    sent: u64,
    /// Tasks it answered.
    finished: u64,
    init_failure: Option<String>,
    /// When its oldest job in flight started (about: when it was sent, or when the one before
    /// it was answered), or when it became idle.
    since: Instant,
    /// The pool is stopping it (`supervise.rs`); no job is sent to it any more.
    stop: Option<supervise::Stop>,
    /// The pool retires it once it is idle (too much memory, idle too long).
    recycle: Option<ExitReason>,
    /// Its initializer has returned (or it has none): the time limit of the job it runs counts
    /// from the later of this and the job's start.
    ready: bool,
}

impl Slot {
    fn retiring(&self, max_tasks: Option<u64>) -> bool {
        self.recycle.is_some() || max_tasks.is_some_and(|max| self.sent >= max)
    }

    /// Whether it may be sent another job.
    fn open(&self, max_tasks: Option<u64>) -> bool {
        self.tasks.is_some() && !self.retiring(max_tasks) && self.stop.is_none()
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    workers: Vec<Slot>,
    launching: usize,
    shutdown: bool,
    forced: bool,
    broken: Option<BrokenExecutor>,
    couriers: Vec<Courier>,
    /// `shutdown(wait)` calls joining the courier threads they took, now: the others wait for
    /// them, so that every waiting call returns after every courier has ended.
    joiners: usize,
    /// Tasks whose outcome came back from a worker (for `stats`).
    finished: u64,
    /// Why the restart-storm guard broke the pool, if it is about to.
    storm: Option<String>,
    /// Worker processes that connected, ever.
    started: u64,
    /// The last [`HISTORY`] worker exits, oldest first.
    history: VecDeque<WorkerExit>,
    /// When the recent unexpected worker deaths happened (the restart-storm guard's window).
    deaths: VecDeque<Instant>,
    /// The timer thread (`supervise.rs`), once one is needed.
    timer: Option<JoinHandle<()>>,
    /// Until when the timer thread sleeps (`None`: it is awake, or sleeps with no deadline
    /// when `timer_idle`): a new deadline wakes it only if it is earlier.
    timer_wake: Option<Instant>,
    /// The timer thread sleeps with no deadline ahead.
    timer_idle: bool,
}

/// How many worker exits the history keeps.
const HISTORY: usize = 256;

/// A courier thread and whether it has finished (so that the list of handles stays short).
struct Courier {
    handle: JoinHandle<()>,
    finished: Arc<AtomicU8>,
}

/// Messages to send once the lock is released: to whom (the worker's pid), on which channel.
pub(crate) type Outbox = Vec<(i32, Arc<wire::Sender>, Vec<u8>)>;

/// How a victim's error begins when a worker died (Python's words).
const TERMINATED: &str =
    "A process in the process pool was terminated abruptly while the future was running or pending";
/// How it begins when the pool itself could not talk to a live worker.
const UNSERVED: &str = "The process pool could not serve the future, and killed its workers";

/// Futures to fail with `BrokenProcessPool` once the lock is released.
pub(crate) struct Victims {
    sinks: Vec<Box<dyn Sink>>,
    lead: &'static str,
    reason: String,
}

impl Victims {
    fn none() -> Victims {
        Victims {
            sinks: Vec::new(),
            lead: TERMINATED,
            reason: String::new(),
        }
    }

    pub(crate) fn fail(self) {
        for sink in self.sinks {
            // A new error per future, as Python 3.14.x does (gh-101267).
            let error = BrokenExecutor::new(
                BrokenKind::ProcessPool,
                format!("{}: {}", self.lead, self.reason),
            );
            // Completing drops the future's handle, maybe the last: a result's or a callback
            // payload's `Drop` must not skip the other victims or kill a courier.
            contain_panic("failing a future", || {
                sink.finish(Err(TaskError::Broken(error)))
            });
        }
    }
}

/// The state every handle of one pool shares with its courier threads.
pub(crate) struct Shared {
    pub(crate) config: Config,
    state: Mutex<State>,
    changed: Condvar,
    /// Wakes the timer thread (`supervise.rs`) when a deadline is added or the pool ends.
    tick: Condvar,
    /// This pool, for the stops that a cancelled future calls later.
    me: Weak<Shared>,
    next_id: AtomicU64,
    /// What a new courier thread runs: [`courier::run`] (a test puts a stand-in here to play
    /// the workers' part itself).
    courier: fn(Arc<Shared>),
}

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Shared> {
        Shared::with_courier(config, courier::run)
    }

    /// Bookkeeping whose launches run `courier` (the loom models and the unit tests put a
    /// stand-in here).
    pub(crate) fn with_courier(config: Config, courier: fn(Arc<Shared>)) -> Arc<Shared> {
        Arc::new_cyclic(|me| Shared {
            config,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            tick: Condvar::new(),
            me: me.clone(),
            next_id: AtomicU64::new(0),
            courier,
        })
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Fails like `submit` would: broken first, then shut down.
    pub(crate) fn check_open(&self) -> Result<(), SubmitError> {
        let st = self.lock();
        refuse(&st)
    }

    /// Queues `job`, sends it at once if a worker is free, and starts workers as needed.
    pub(crate) fn enqueue(self: &Arc<Self>, job: Job) -> Result<(), SubmitError> {
        let (outbox, launches) = {
            let mut st = self.lock();
            refuse(&st)?;
            if let Some((limit, policy)) = self.config.max_queue {
                st = self.wait_for_room(st, limit, policy)?;
            }
            st.queue.push_back(job);
            let outbox = self.dispatch(&mut st);
            (outbox, self.launches_needed(&mut st))
        };
        self.post(outbox);
        self.start_couriers(launches);
        Ok(())
    }

    /// With a bounded queue: returns once the queue has room (`Block`, waiting on `changed`
    /// until then), or refuses with `QueueFull` (`Reject`, `CallerRuns` — the pool then runs the
    /// task in the caller — or `Block`'s timeout), or with the pool's error once it shuts down or
    /// breaks. Every step that shortens the queue or closes the pool does so under the lock and
    /// notifies `changed` (`dispatch`, `shutdown`, and every caller of `break_pool`), so a
    /// waiter, which checks under the same lock, cannot miss it.
    #[cold]
    fn wait_for_room<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        limit: usize,
        policy: QueueFullPolicy,
    ) -> Result<MutexGuard<'a, State>, SubmitError> {
        // A done-callback runs on one of this pool's couriers, the only threads that make
        // room: a submit from there never waits (nor is refused); it is queued beyond the
        // bound, as a scope's task is on the thread pool.
        if courier::is_courier_of(self) {
            return Ok(st);
        }
        let deadline = match policy {
            QueueFullPolicy::Block { timeout } => Deadline::after(timeout),
            QueueFullPolicy::Reject | QueueFullPolicy::CallerRuns => {
                Deadline::after(Some(Duration::ZERO))
            }
        };
        // Jobs that a worker can start at once (an idle worker, or one the pool may still
        // start) do not count against the bound: the bound is for jobs that must wait (Java's
        // pool, too, starts a thread before it refuses).
        let bound = |st: &State| {
            let busy = st
                .workers
                .iter()
                .filter(|w| !w.in_flight.is_empty() || w.stop.is_some())
                .count();
            limit.saturating_add(self.config.max_workers.saturating_sub(busy))
        };
        while st.queue.len() >= bound(&st) {
            if deadline.is_past() {
                return Err(SubmitError::QueueFull { bound: limit });
            }
            st = match deadline.instant() {
                None => self.changed.wait(st),
                Some(at) => self.changed.wait_until(st, at),
            };
            refuse(&st)?;
        }
        Ok(st)
    }

    /// Moves queued jobs to workers with room, in order; a cancelled job is dropped here.
    fn dispatch(&self, st: &mut State) -> Outbox {
        let queued = st.queue.len();
        let outbox = self.dispatch_queued(st);
        // Room in a bounded queue: wake the submitters waiting for it.
        if self.config.max_queue.is_some() && st.queue.len() < queued {
            self.changed.notify_all();
        }
        outbox
    }

    fn dispatch_queued(&self, st: &mut State) -> Outbox {
        let mut outbox = Outbox::new();
        let max_tasks = self.config.max_tasks;
        let no_more_workers = st.workers.len() >= self.config.max_workers;
        // A job is sent behind another only if neither has a time limit (whose clock starts
        // when the job starts) and no supervision needs to know which job a worker runs.
        let pipelining = !self.config.supervision.one_job_per_worker();
        while let Some(next) = st.queue.front() {
            let behind = |s: &Slot| {
                pipelining
                    && next.timeout.is_none()
                    && s.in_flight.len() < DEPTH
                    && s.in_flight.iter().all(|f| f.timeout.is_none())
            };
            let chosen = st
                .workers
                .iter()
                .position(|s| s.open(max_tasks) && s.in_flight.is_empty())
                .or_else(|| {
                    no_more_workers
                        .then(|| {
                            st.workers
                                .iter()
                                .position(|s| s.open(max_tasks) && behind(s))
                        })
                        .flatten()
                });
            let Some(index) = chosen else { break };
            let job = st.queue.pop_front().expect("checked non-empty");
            // In one step: a `cancel()` made as soon as the future runs must find its stop.
            let started = if self.config.supervision.cancel_running {
                job.sink.start_stoppable(self.stop_on_cancel(job.id))
            } else {
                job.sink.start()
            };
            if !started {
                continue;
            }
            let slot = &mut st.workers[index];
            slot.sent += 1;
            if slot.in_flight.is_empty() {
                slot.since = Instant::now();
            }
            if let Some(due) = job.timeout.and_then(|limit| slot.since.checked_add(limit)) {
                self.need_timer(st, due);
            }
            let slot = &mut st.workers[index];
            slot.in_flight.push_back(Flight {
                id: job.id,
                sink: job.sink,
                timeout: job.timeout,
            });
            let tasks = slot.tasks.clone().expect("chosen slots are open");
            outbox.push((slot.pid, tasks, job.message));
        }
        close_idle(st, max_tasks, &mut outbox);
        outbox
    }

    /// How many workers to start for the queued jobs (counted as launching).
    fn launches_needed(&self, st: &mut State) -> usize {
        if st.broken.is_some() || st.forced {
            return 0;
        }
        // Each worker being started will take one queued job.
        let live = st.workers.len() + st.launching;
        let uncovered = st.queue.len().saturating_sub(st.launching);
        let n = uncovered.min(self.config.max_workers.saturating_sub(live));
        st.launching += n;
        n
    }

    fn start_couriers(self: &Arc<Self>, n: usize) {
        for _ in 0..n {
            let shared = Arc::clone(self);
            let run = self.courier;
            let finished = Arc::new(AtomicU8::new(0));
            let done = Arc::clone(&finished);
            let spawned =
                shim_thread::spawn_named("concurrent-futures-courier".into(), move || {
                    run(shared);
                    done.store(1, Ordering::Release);
                });
            match spawned {
                Ok(handle) => {
                    let mut st = self.lock();
                    st.couriers
                        .retain(|c| c.finished.load(Ordering::Acquire) == 0);
                    st.couriers.push(Courier { handle, finished });
                }
                Err(e) => self.launch_failed(LaunchError::Start(sys::describe(&e))),
            }
        }
    }

    /// A worker could not be started. The pool breaks if no worker is left to run its work,
    /// or if a worker hung before connecting (every later start would hang the same way).
    pub(crate) fn launch_failed(&self, error: LaunchError) {
        let victims = {
            let mut st = self.lock();
            st.launching -= 1;
            let stranded = st.workers.is_empty() && st.launching == 0 && !st.queue.is_empty();
            let hung = matches!(error, LaunchError::TimedOut { .. });
            let error = launch::describe(&error);
            let victims = if hung && st.broken.is_none() {
                break_pool(&mut st, error.clone())
            } else if stranded && st.broken.is_none() {
                break_pool(
                    &mut st,
                    format!(
                        "a worker process could not be started, leaving the pool without workers to \
                     run the remaining work ({error})"
                    ),
                )
            } else {
                Victims::none()
            };
            self.changed.notify_all();
            victims
        };
        victims.fail();
    }

    /// A new worker connected: it takes queued jobs at once.
    pub(crate) fn worker_ready(&self, pid: i32, tasks: Arc<wire::Sender>) {
        let outbox = {
            let mut st = self.lock();
            st.launching -= 1;
            st.started += 1;
            st.workers.push(Slot {
                pid,
                tasks: Some(tasks),
                in_flight: VecDeque::new(),
                sent: 0,
                finished: 0,
                init_failure: None,
                since: Instant::now(),
                stop: None,
                recycle: None,
                ready: !self.config.has_initializer,
            });
            if st.broken.is_some() {
                st.workers.last_mut().expect("just pushed").tasks = None;
            }
            if let Some(idle) = self.config.supervision.idle_timeout
                && let Some(due) = Instant::now().checked_add(idle)
            {
                self.need_timer(&mut st, due);
            }
            self.changed.notify_all();
            self.dispatch(&mut st)
        };
        self.post(outbox);
    }

    /// Task `id` of worker `pid` finished.
    pub(crate) fn task_done(&self, pid: i32, id: u64, outcome: Result<&[u8], TaskError>) {
        // Read before locking: a file read is too slow to hold the lock for.
        let memory = self
            .config
            .supervision
            .max_memory
            .and_then(|limit| Some((limit, sys::resident_memory(pid)?)));
        let (sink, outbox) = {
            let mut st = self.lock();
            let sink = st
                .workers
                .iter_mut()
                .find(|s| s.pid == pid)
                .and_then(|slot| {
                    let at = slot.in_flight.iter().position(|f| f.id == id)?;
                    let flight = slot.in_flight.remove(at)?;
                    slot.finished += 1;
                    // The next job in flight starts now, or the worker is idle from now.
                    slot.since = Instant::now();
                    if let Some((limit, used)) = memory
                        && used > limit
                        && slot.recycle.is_none()
                    {
                        slot.recycle = Some(ExitReason::RecycledForMemory { resident: used });
                    }
                    Some((flight.sink, slot.since))
                });
            let sink = sink.map(|(sink, since)| {
                // A worker that became idle now has an idle deadline (the job that starts next
                // in a worker was sent without a time limit).
                if let Some(idle) = self.config.supervision.idle_timeout
                    && let Some(due) = since.checked_add(idle)
                {
                    self.need_timer(&mut st, due);
                }
                sink
            });
            st.finished += sink.is_some() as u64;
            (sink, self.dispatch(&mut st))
        };
        self.post(outbox);
        if let Some(sink) = sink {
            // On a courier, which must live on to reap its worker: contain a panicking `Drop`
            // (of a result nobody holds any more, say).
            contain_panic("completing a future", || sink.finish(outcome));
        }
    }

    /// Worker `pid`'s initializer returned: the job it was sent meanwhile starts now.
    pub(crate) fn worker_initialized(&self, pid: i32) {
        let mut st = self.lock();
        let Some(slot) = st.workers.iter_mut().find(|s| s.pid == pid) else {
            return;
        };
        slot.ready = true;
        let now = Instant::now();
        let due = match slot.in_flight.front() {
            Some(flight) => {
                slot.since = now;
                flight.timeout.and_then(|limit| now.checked_add(limit))
            }
            None => {
                slot.since = now;
                None
            }
        };
        if let Some(due) = due {
            self.need_timer(&mut st, due);
        }
    }

    /// Worker `pid`'s initializer failed; it is about to exit. The log gets the remote
    /// traceback, as Python's does; the pool's error, one line, gets the message.
    pub(crate) fn init_failed(&self, pid: i32, text: String, traceback: &str) {
        let separator = if traceback.is_empty() { "" } else { "\n" };
        log::error!(
            target: "concurrent_futures",
            "Exception in initializer of worker process {pid}: {text}{separator}{traceback}"
        );
        let mut st = self.lock();
        if let Some(slot) = st.workers.iter_mut().find(|s| s.pid == pid) {
            slot.init_failure = Some(text);
        }
    }

    /// Worker `pid` is gone (its channel closed and it was reaped). If the pool did not ask it
    /// to leave, the pool breaks, unless the pool stopped it on purpose or isolates crashes
    /// (`supervise.rs`): then only its task fails and a new worker takes its place. Otherwise a
    /// replacement starts if work is waiting.
    pub(crate) fn worker_exited(self: &Arc<Self>, pid: i32, cause: sys::ExitCause) {
        let (victims, stopped, launches) = {
            let mut st = self.lock();
            let Some(at) = st.workers.iter().position(|s| s.pid == pid) else {
                return;
            };
            let mut slot = st.workers.swap_remove(at);
            let asked_to_leave = slot.tasks.is_none() || slot.retiring(self.config.max_tasks);
            let expected = asked_to_leave
                && slot.in_flight.is_empty()
                && slot.init_failure.is_none()
                && slot.stop.is_none();
            let task = slot.in_flight.front().map(|f| f.id);
            let in_flight = slot.in_flight.len() as u64;
            let mut launches = 0;
            let mut stopped = Vec::new();
            let (victims, reason) = if st.broken.is_some() {
                let victims = Victims {
                    sinks: slot.in_flight.drain(..).map(|f| f.sink).collect(),
                    lead: TERMINATED,
                    reason: format!("worker process {pid} {cause}"),
                };
                (victims, ExitReason::Crashed)
            } else if let Some(stop) = slot.stop.take() {
                // The pool stopped it: only its own jobs fail, and the pool carries on.
                stopped = supervise::fail_stopped(&mut slot, &stop, cause);
                launches = self.replace_worker(&mut st);
                (Victims::none(), stop.exit_reason())
            } else if !expected {
                match self.isolate_death(&mut st, &mut slot, cause) {
                    Some(lost) => {
                        stopped = lost;
                        launches = self.replace_worker(&mut st);
                        (Victims::none(), ExitReason::Crashed)
                    }
                    None => {
                        let reason = match (&slot.init_failure, st.forced) {
                            (Some(text), _) => format!(
                                "worker process {pid} failed in its initializer and {cause}: {text}"
                            ),
                            (None, true) => format!(
                                "worker process {pid} {cause} while the pool was being forcefully \
                                 shut down"
                            ),
                            (None, false) => format!("worker process {pid} {cause}"),
                        };
                        let storm = std::mem::take(&mut st.storm);
                        let reason = match storm {
                            Some(storm) => format!("{reason}; {storm}"),
                            None => reason,
                        };
                        let mut victims = break_pool(&mut st, reason);
                        victims
                            .sinks
                            .extend(slot.in_flight.drain(..).map(|f| f.sink));
                        let why = if slot.init_failure.is_some() {
                            ExitReason::InitializerFailed
                        } else {
                            ExitReason::Crashed
                        };
                        (victims, why)
                    }
                }
            } else {
                launches = self.launches_needed(&mut st);
                let why = slot.recycle.take().unwrap_or(ExitReason::Retired);
                (Victims::none(), why)
            };
            // Jobs the pool stopped, or lost with isolation on, are done: count them finished.
            st.finished += in_flight.min(stopped.len() as u64);
            supervise::record_exit(&mut st, pid, cause, reason, task);
            self.changed.notify_all();
            if st.shutdown {
                // The timer ends with the last worker.
                self.tick.notify_one();
            }
            (victims, stopped, launches)
        };
        victims.fail();
        supervise::fail_sinks(stopped);
        self.start_couriers(launches);
    }

    /// `shutdown(false, true)` that says how many queued jobs it cancelled.
    pub(crate) fn shutdown_cancelling(&self) -> usize {
        self.close(true)
    }

    /// No new jobs; idle workers are asked to leave; with `cancel_futures`, every queued job
    /// is cancelled (returns how many).
    fn close(&self, cancel_futures: bool) -> usize {
        let mut outbox = Outbox::new();
        let cancelled: Vec<Job> = {
            let mut st = self.lock();
            st.shutdown = true;
            // Submitters waiting for room in a bounded queue leave with `Shutdown`.
            self.changed.notify_all();
            let cancelled = if cancel_futures {
                st.queue.drain(..).collect()
            } else {
                Vec::new()
            };
            close_idle(&mut st, self.config.max_tasks, &mut outbox);
            cancelled
        };
        self.post(outbox);
        let count = cancelled.len();
        for job in cancelled {
            contain_panic("cancelling a future", || job.sink.cancel());
        }
        count
    }

    /// Python's `shutdown(wait, cancel_futures)`.
    pub(crate) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.close(cancel_futures);
        // A done-callback running on one of this pool's couriers cannot wait for that courier.
        if !wait || courier::is_courier_of(self) {
            return;
        }
        let mut st = self.lock();
        while !(st.workers.is_empty() && st.launching == 0) {
            st = self.changed.wait(st);
        }
        let couriers = std::mem::take(&mut st.couriers);
        let timer = st.timer.take();
        st.joiners += 1;
        self.tick.notify_one();
        drop(st);
        for courier in couriers {
            let _ = courier.handle.join();
        }
        if let Some(timer) = timer {
            let _ = timer.join();
        }
        let mut st = self.lock();
        st.joiners -= 1;
        self.changed.notify_all();
        while st.joiners > 0 {
            st = self.changed.wait(st);
        }
    }

    /// The pool cannot talk to a live worker (a message it could not send, or one it could
    /// not receive): it breaks, every queued and running future fails with `reason`, and every
    /// worker is killed (its courier then reaps it).
    pub(crate) fn fail_pool(&self, reason: String) {
        let victims = {
            let mut st = self.lock();
            let victims = if st.broken.is_none() {
                Victims {
                    lead: UNSERVED,
                    ..break_pool(&mut st, reason)
                }
            } else {
                Victims::none()
            };
            self.changed.notify_all();
            victims
        };
        victims.fail();
    }

    /// Sends the outbox. No send blocks: each worker has at most [`DEPTH`] messages unread, and
    /// large ones travel in shared memory (see [`wire::Envelope`]).
    fn post(&self, outbox: Outbox) {
        for (pid, tasks, message) in outbox {
            match wire::send(&tasks, message) {
                // A closed channel means a dead worker: its courier sees that and reports it.
                Ok(()) | Err(wire::SendError::Gone) => {}
                // The worker is alive and would wait forever for a task its future runs.
                Err(wire::SendError::Local(why)) => self.fail_pool(format!(
                    "the pool could not send a message to worker process {pid}: {why}"
                )),
            }
        }
    }

    /// Marks a forced shutdown and returns the pids to signal.
    pub(crate) fn force(&self) -> Vec<i32> {
        let mut st = self.lock();
        st.forced = true;
        st.workers.iter().map(|s| s.pid).collect()
    }

    pub(crate) fn broken(&self) -> Option<BrokenExecutor> {
        self.lock().broken.clone()
    }

    /// The counts of `stats()`, under one short lock.
    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.lock();
        PoolStats {
            pending: st.queue.len(),
            running: st.workers.iter().map(|s| s.in_flight.len()).sum(),
            finished: st.finished,
            workers: st.workers.len(),
        }
    }

    /// Each worker's state now (its memory is read by the caller, outside the lock).
    pub(crate) fn workers(&self) -> Vec<WorkerInfo> {
        let st = self.lock();
        let now = Instant::now();
        st.workers
            .iter()
            .map(|slot| {
                let state = match slot.in_flight.front() {
                    _ if slot.stop.is_some() => WorkerState::Stopping,
                    Some(flight) => WorkerState::Running {
                        task: flight.id,
                        elapsed: now.saturating_duration_since(slot.since),
                    },
                    None if !slot.open(self.config.max_tasks) => WorkerState::Leaving,
                    None => WorkerState::Idle,
                };
                WorkerInfo {
                    pid: slot.pid as u32,
                    state,
                    tasks_run: slot.finished,
                    resident_memory: None,
                }
            })
            .collect()
    }

    pub(crate) fn exit_history(&self) -> Vec<WorkerExit> {
        self.lock().history.iter().cloned().collect()
    }

    pub(crate) fn workers_started(&self) -> u64 {
        self.lock().started
    }

    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        self.lock().workers.iter().map(|s| s.pid as u32).collect()
    }
}

fn refuse(st: &State) -> Result<(), SubmitError> {
    if let Some(broken) = &st.broken {
        return Err(SubmitError::Broken(broken.clone()));
    }
    if st.shutdown {
        return Err(SubmitError::Shutdown);
    }
    Ok(())
}

/// After shutdown, once nothing is queued, asks every worker with nothing in flight to leave
/// and closes its channel; a worker that reached `max_tasks_per_child` is closed as soon as it
/// is idle (it leaves by itself).
fn close_idle(st: &mut State, max_tasks: Option<u64>, outbox: &mut Outbox) {
    let draining = st.shutdown && st.queue.is_empty();
    for slot in &mut st.workers {
        if slot.in_flight.is_empty()
            && (draining || slot.retiring(max_tasks))
            && let Some(tasks) = slot.tasks.take()
        {
            outbox.push((slot.pid, tasks, wire::encode_exit()));
        }
    }
}

/// Breaks the pool (Python's `terminate_broken`): every queued and running job is a victim,
/// every other worker is killed (its state may be corrupt), and `submit` refuses from now on.
/// Logged (at error level, on target `concurrent_futures`) with the reason.
fn break_pool(st: &mut State, reason: String) -> Victims {
    log::error!(target: "concurrent_futures", "BrokenProcessPool: {reason}");
    st.broken = Some(BrokenExecutor::new(BrokenKind::ProcessPool, NOT_USABLE));
    st.shutdown = true;
    let mut sinks: Vec<Box<dyn Sink>> = st.queue.drain(..).map(|job| job.sink).collect();
    for slot in &mut st.workers {
        sinks.extend(slot.in_flight.drain(..).map(|f| f.sink));
        slot.tasks = None;
        sys::signal(slot.pid, nix::sys::signal::Signal::SIGKILL);
    }
    Victims {
        sinks,
        lead: TERMINATED,
        reason,
    }
}

#[cfg(test)]
mod tests {
    //! The pool's bookkeeping against its rules, with the workers played by the test: random
    //! submits, cancels, worker arrivals, completions, exits, crashes and shutdowns, checked
    //! after every step against a plain model of what each job's future must be.
    use super::*;
    use crate::sys::ExitCause;
    use concurrent_futures_core::State as FutureState;
    use concurrent_futures_remote::call::CallSite;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Submit,
        Cancel(usize),
        WorkerArrives,
        TaskDone(usize),
        WorkerExits(usize),
        WorkerCrashes,
        Shutdown { cancel_futures: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Submit),
            1 => any::<usize>().prop_map(Op::Cancel),
            2 => Just(Op::WorkerArrives),
            4 => any::<usize>().prop_map(Op::TaskDone),
            1 => any::<usize>().prop_map(Op::WorkerExits),
            1 => Just(Op::WorkerCrashes),
            1 => any::<bool>().prop_map(|cancel_futures| Op::Shutdown { cancel_futures }),
        ]
    }

    fn id(x: u64) -> u64 {
        x
    }

    /// What the test sees of the state.
    #[derive(Debug)]
    struct Snapshot {
        queue: Vec<u64>,
        slots: Vec<(i32, bool, bool, Vec<u64>, u64)>,
        launching: usize,
        shutdown: bool,
        broken: bool,
    }

    fn snapshot(shared: &Shared) -> Snapshot {
        let st = shared.lock();
        Snapshot {
            queue: st.queue.iter().map(|j| j.id).collect(),
            slots: st
                .workers
                .iter()
                .map(|s| {
                    let ids = s.in_flight.iter().map(|f| f.id).collect();
                    (
                        s.pid,
                        s.tasks.is_some(),
                        s.retiring(shared.config.max_tasks),
                        ids,
                        s.sent,
                    )
                })
                .collect(),
            launching: st.launching,
            shutdown: st.shutdown,
            broken: st.broken.is_some(),
        }
    }

    fn run(max_workers: usize, max_tasks: Option<u64>, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let config = Config {
            max_workers,
            method: StartMethod::Fork,
            key: CallKey::generate().unwrap(),
            init: Vec::new(),
            has_initializer: false,
            max_tasks,
            handshake_timeout: std::time::Duration::from_secs(1),
            max_queue: None,
            supervision: Default::default(),
        };
        let shared = Shared::with_courier(config, |_| {});
        // Accepted jobs, in submit order.
        let mut futures: Vec<(u64, Future<u64>)> = Vec::new();
        let mut receivers = Vec::new();
        let mut next_pid = 1000;
        for op in ops {
            let before = snapshot(&shared);
            match op {
                Op::Submit => {
                    let id = shared.next_id();
                    let future = Future::new();
                    let site = shared.config.key.seal(CallSite::of(super::tests::id));
                    let message = wire::encode_task(id, site, &id).unwrap();
                    let job = Job {
                        id,
                        message,
                        sink: Box::new(FutureSink(future.clone())),
                        timeout: None,
                    };
                    let refused = shared.enqueue(job).is_err();
                    prop_assert_eq!(refused, before.shutdown || before.broken);
                    if !refused {
                        futures.push((id, future));
                    }
                }
                Op::Cancel(k) if !futures.is_empty() => {
                    let future = &futures[k % futures.len()].1;
                    let was_pending = future.state() == FutureState::Pending;
                    prop_assert_eq!(future.cancel(), was_pending || future.cancelled());
                }
                Op::WorkerArrives if before.launching > 0 => {
                    let (tx, rx) = wire::channel().unwrap();
                    receivers.push(rx);
                    shared.worker_ready(next_pid, Arc::new(tx));
                    next_pid += 1;
                }
                Op::TaskDone(k) => {
                    let running: Vec<(i32, u64)> = before
                        .slots
                        .iter()
                        .flat_map(|(pid, _, _, ids, _)| ids.iter().map(move |id| (*pid, *id)))
                        .collect();
                    if let Some(&(pid, id)) = running.get(k % running.len().max(1)) {
                        let bytes = postcard::to_allocvec(&id).unwrap();
                        shared.task_done(pid, id, Ok(&bytes));
                        prop_assert_eq!(future_of(&futures, id).result(None).unwrap(), id);
                    }
                }
                // A worker leaves when asked (closed, or at its task limit) and idle.
                Op::WorkerExits(k) => {
                    let leaving: Vec<i32> = before
                        .slots
                        .iter()
                        .filter(|(_, open, retiring, ids, _)| {
                            (!open || *retiring) && ids.is_empty()
                        })
                        .map(|(pid, ..)| *pid)
                        .collect();
                    if let Some(&pid) = leaving.get(k % leaving.len().max(1)) {
                        shared.worker_exited(pid, ExitCause::Code(0));
                        prop_assert!(!snapshot(&shared).broken || before.broken);
                    }
                }
                Op::WorkerCrashes => {
                    if let Some((pid, ..)) = before.slots.first() {
                        let busy: Vec<u64> =
                            before.slots.iter().flat_map(|s| s.3.clone()).collect();
                        let asked = !before.slots[0].1 && before.slots[0].3.is_empty();
                        shared.worker_exited(*pid, ExitCause::Signal(9));
                        let after = snapshot(&shared);
                        if !asked {
                            prop_assert!(after.broken);
                            // Every job that was running failed with BrokenProcessPool.
                            for id in busy {
                                let broken = matches!(
                                    future_of(&futures, id).exception(None),
                                    Ok(Some(TaskError::Broken(_)))
                                );
                                prop_assert!(broken);
                            }
                        }
                    }
                }
                Op::Shutdown { cancel_futures } => {
                    shared.shutdown(false, cancel_futures);
                    if cancel_futures {
                        prop_assert!(snapshot(&shared).queue.is_empty());
                    }
                }
                _ => {}
            }
            check(&shared, &futures)?;
            // A second job goes to a busy worker only when no more workers can start.
            let after = snapshot(&shared);
            for (pid, _, _, ids, _) in &after.slots {
                let had = before
                    .slots
                    .iter()
                    .find(|sl| sl.0 == *pid)
                    .map_or(0, |sl| sl.3.len());
                if ids.len() == DEPTH && had < DEPTH {
                    prop_assert!(
                        after.slots.len() >= max_workers,
                        "pipelined early: {after:?}"
                    );
                }
            }
        }
        Ok(())
    }

    fn future_of(futures: &[(u64, Future<u64>)], id: u64) -> &Future<u64> {
        &futures
            .iter()
            .find(|(i, _)| *i == id)
            .expect("an accepted job")
            .1
    }

    /// The rules that hold between any two steps.
    fn check(shared: &Shared, futures: &[(u64, Future<u64>)]) -> Result<(), TestCaseError> {
        let s = snapshot(shared);
        let max = shared.config.max_workers;
        prop_assert!(s.slots.len() + s.launching <= max, "{s:?}");
        for (_, open, _, ids, sent) in &s.slots {
            prop_assert!(ids.len() <= DEPTH, "{s:?}");
            if let Some(limit) = shared.config.max_tasks {
                prop_assert!(*sent <= limit, "{s:?}");
            }
            if s.shutdown && s.queue.is_empty() && ids.is_empty() {
                prop_assert!(!open, "an idle worker stays open after shutdown: {s:?}");
            }
        }
        if !s.queue.is_empty() && !s.broken {
            let idle_open = s
                .slots
                .iter()
                .any(|(_, open, retiring, ids, _)| *open && !retiring && ids.is_empty());
            prop_assert!(!idle_open, "work waits beside an idle worker: {s:?}");
            prop_assert!(
                s.slots.len() + s.launching > 0,
                "work waits with no worker coming: {s:?}"
            );
        }
        if s.broken {
            prop_assert!(
                s.queue.is_empty() && s.slots.iter().all(|sl| sl.3.is_empty()),
                "{s:?}"
            );
        }
        // The plain model: each future's state follows from where its job is.
        let in_flight: Vec<u64> = s.slots.iter().flat_map(|sl| sl.3.clone()).collect();
        for (id, future) in futures {
            let id = *id;
            let queued = s.queue.contains(&id);
            let running = in_flight.contains(&id);
            prop_assert!(!(queued && running));
            match future.state() {
                FutureState::Pending => prop_assert!(queued, "pending job {id} is lost: {s:?}"),
                FutureState::Running => prop_assert!(running, "running job {id} is nowhere: {s:?}"),
                _ => prop_assert!(!running, "finished job {id} still in flight: {s:?}"),
            }
        }
        // First in, first out: no job started while an earlier one still waits.
        let first_waiting = futures
            .iter()
            .position(|(_, f)| f.state() == FutureState::Pending);
        if let Some(first) = first_waiting {
            let started_later = futures[first..]
                .iter()
                .any(|(_, f)| f.state() == FutureState::Running);
            prop_assert!(!started_later, "job {first} was overtaken: {s:?}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn bookkeeping_follows_the_rules(
            max_workers in 1usize..4,
            max_tasks in prop_oneof![Just(None), (1u64..4).prop_map(Some)],
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            run(max_workers, max_tasks, ops)?;
        }
    }
}
