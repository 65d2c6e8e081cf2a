//! The pool's protocol: a queue (lock-free while it holds at most 4096 tasks, see
//! `shared/queue.rs`), one state word, idle-worker accounting, shutdown and breakage.
//!
//! Every atomic and lock here comes from core's std/loom shim, so the loom models in
//! `tests/loom_pool.rs` check this very code — except the queue itself (`shared/queue.rs`:
//! crossbeam's ring and a std lock), each of whose pushes and pops loom sees as one step.
//!
//! * **The state word** packs what submitters and sleeping workers must see consistently:
//!   the reservations (each task is counted *before* its push), `sleepers`, and the
//!   `SHUTDOWN` and `BROKEN` flags. A submitter reserves with one `fetch_add` that also tells
//!   it about the flags and the sleepers; a worker about to sleep registers with one
//!   `fetch_add` that also tells it about the reservations. Being one location, the two always
//!   see each other: no wake-up is lost, and no task is accepted after shutdown.
//! * **Releases off the word.** A worker that pops a task releases its reservation *after* the
//!   pop — in an unbounded pool not in the word but in `taken`, a counter of its own line that
//!   only workers write, so that the word's line stays with the submitter (on 2 cores this made
//!   `cargo xtask bench thread` rows (a) and (d) about 1.3x and 1.5x faster). Tasks queued are
//!   then `queued_in(word, taken)`, always computed from a `taken` read *before* the word:
//!   every release it counts is then of a reservation the word holds, so it may count a task
//!   just taken as still queued, never the other way round. A worker about to sleep thus
//!   sleeps only if every task reserved before its registration was taken before it looked —
//!   reading `taken` after would let a task taken meanwhile, reserved *after* the registration,
//!   hide one reserved before it, and a sleeper could leave a task queued. `taken` mirrors
//!   `BROKEN`, so a worker's release tells it, in the same step as before, that the pool broke.
//!   A bounded pool releases in the word itself, where a submitter waiting for room must see
//!   it (`shared/bound.rs`); its `taken` count stays 0.
//! * **Idle accounting** (Python 3.8's idle semaphore, made exact): `busy` counts workers
//!   between taking a task and its closure returning; a worker leaves `busy` *before* it
//!   completes the future, so a caller that wakes from `result()` and submits again finds it
//!   free. `submit` starts a thread only if more tasks are queued than workers are free
//!   (`threads - busy`), and never more than `max_workers`.
//! * **Searching**: workers awake and looking for work. While one is, a submit does not wake a
//!   sleeper: that worker registers as a sleeper only after it stops searching, and then sees
//!   the task in the word. A worker woken from its search passes the baton: if more tasks are
//!   queued and another worker sleeps with nobody searching, it wakes one (a batch from
//!   `submit_all` wakes one worker only).
//! * **Shutdown** sets `SHUTDOWN`; workers leave once it is set and nothing is queued, so queued
//!   tasks still run. **Joining** (`shutdown(wait)`): each caller takes the join handles not
//!   yet taken, releases the lock, joins them, then waits until every other joiner is done too,
//!   so concurrent `shutdown(wait)`s all return after every worker has exited. A call from one
//!   of the pool's own workers does not wait at all: it cannot wait for its own thread, and
//!   waiting for the others could wait for a worker that is joining it. **Breakage** (a failed
//!   initializer) sets `BROKEN`: queued tasks fail.
//!   Both flags change, and sleepers are woken, under `control`, which a worker holds from its
//!   sleeper registration until it waits — so the wake-up cannot fall in between.
//! * **The bounded queue** (`max_queue`, in `shared/bound.rs`), **stopping** (`stats`,
//!   `shutdown_timeout`, in `shared/stop.rs`) and **compensation** for workers blocked in a
//!   wait (spare threads, in `shared/spare.rs`) are described in their own files.

mod bound;
mod queue;
mod spare;
mod stop;

pub(crate) use bound::Bound;
pub(crate) use spare::MAX_SPARES;
pub use stop::ShutdownReport;
pub(crate) use stop::WorkerSlot;

use crate::task::Task;
use crate::unwind::contain;
use crate::worker;
use concurrent_futures_core::shim::hint;
use concurrent_futures_core::shim::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use concurrent_futures_core::shim::sync::{Arc, Condvar, Mutex, MutexGuard};
use concurrent_futures_core::shim::thread::{self, JoinHandle, ThreadId};
use concurrent_futures_core::{BrokenExecutor, BrokenKind, SubmitError};
use crossbeam_utils::CachePadded;
use std::fmt;

/// Spin steps an idle worker takes, watching the queue, before it sleeps (see the crate docs).
const WORKER_SPINS: u32 = 200;

/// Of those, how many are pure `spin_loop` hints before the worker starts yielding its core.
const SPIN_BEFORE_YIELD: u32 = 50;

/// Python's message for a pool whose initializer failed.
pub(crate) const BROKEN_MESSAGE: &str =
    "A thread initializer failed, the thread pool is not usable anymore";

/// The state word, low bits first: the flags `BROKEN`, `SHUTDOWN` and `ROOM_WAITED`;
/// `blocked` (workers blocked in a wait, see `shared/spare.rs`) in bits 3..11; `sleepers` in
/// bits 11..27; and the reservation count in the top 37 bits (see `queued_in`). The count is
/// on top so that, counting every task ever submitted, it wraps around without carrying into
/// the other fields.
const BROKEN: u64 = 1 << 0;
const SHUTDOWN: u64 = 1 << 1;
/// A submitter waits for room in the bounded queue (see `shared/bound.rs`).
const ROOM_WAITED: u64 = 1 << 2;
const CLOSED: u64 = SHUTDOWN | BROKEN;
const BLOCKED_SHIFT: u32 = 3;
const BLOCKED_ONE: u64 = 1 << BLOCKED_SHIFT;
const BLOCKED_MASK: u64 = ((1 << 8) - 1) << BLOCKED_SHIFT;
const SLEEPERS_SHIFT: u32 = 11;
const SLEEPER_ONE: u64 = 1 << SLEEPERS_SHIFT;
const SLEEPERS_MASK: u64 = ((1 << 16) - 1) << SLEEPERS_SHIFT;
const QUEUED_SHIFT: u32 = 27;
const QUEUED_ONE: u64 = 1 << QUEUED_SHIFT;
/// The width of the reservation count: more than a hundred billion tasks queued at once.
const COUNT_MASK: u64 = (1 << (64 - QUEUED_SHIFT)) - 1;

/// The word's reservation count. In a bounded pool, workers release reservations from the
/// word itself, so this is the number of tasks queued; in an unbounded one it only grows, and
/// the tasks queued are `queued_in(word, taken)`.
fn queued(word: u64) -> u64 {
    word >> QUEUED_SHIFT
}

/// Tasks queued: reservations in `word` less the releases counted in `taken` (the workers'
/// counter, with the same layout), modulo the count's width. A caller reads `taken` *before*
/// the word, so that every release it counts is of a reservation the word already holds: the
/// result may count a task just taken as still queued, never the other way around.
fn queued_in(word: u64, taken: u64) -> u64 {
    queued(word).wrapping_sub(taken >> QUEUED_SHIFT) & COUNT_MASK
}

fn sleepers(word: u64) -> u64 {
    (word & SLEEPERS_MASK) >> SLEEPERS_SHIFT
}

fn blocked(word: u64) -> u64 {
    (word & BLOCKED_MASK) >> BLOCKED_SHIFT
}

/// A worker's start-up hook: `Err` (or a panic) breaks the pool. (Immutable configuration,
/// not part of the protocol: a plain std `Arc`, which can hold a `dyn Fn`.)
pub(crate) type Initializer = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the pool was built with.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) name_prefix: String,
    pub(crate) initializer: Option<Initializer>,
    /// `max_queue` and its policy; `None`: unbounded (no check on the submit path).
    pub(crate) max_queue: Option<Bound>,
    /// The most workers counted blocked at once, so the most spare threads (at most
    /// `MAX_SPARES`); 0: no compensation.
    pub(crate) max_spares: usize,
}

pub(crate) struct Shared {
    queue: queue::TaskQueue,
    word: CachePadded<AtomicU64>,
    /// An unbounded pool's releases: workers count the reservations of the tasks they take
    /// here, in the word's count field, instead of in the word (see the module docs); `BROKEN`
    /// is mirrored here too. Unused by a bounded pool, except for the `BROKEN` mirror.
    taken: CachePadded<AtomicU64>,
    /// Workers between taking a task and its closure returning.
    busy: CachePadded<AtomicUsize>,
    /// Workers awake and looking for a task.
    searching: CachePadded<AtomicUsize>,
    /// Worker threads serving: started, and not retired (see `shared/spare.rs`); written with
    /// `control` locked. At most `max_workers`, plus one spare per blocked worker.
    threads: AtomicUsize,
    /// Serialises thread starts, flag changes and the sleep/wake hand-off.
    control: Mutex<Control>,
    /// Sleeping workers wait here.
    work_ready: Condvar,
    /// The worker threads' join handles and who is joining them (see the module docs).
    joining: Mutex<Joining>,
    /// Woken when the last of the joiners has finished.
    all_joined: Condvar,
    /// Where submitters wait for room in a bounded queue.
    room: bound::Room,
    pub(crate) config: Config,
}

/// A pool that may still start threads, as a submit saw it before its reservation.
#[derive(Clone, Copy)]
struct Room {
    /// Workers not busy.
    free: usize,
    /// `taken`, read before the reservation.
    taken: u64,
}

struct Control {
    broken: Option<BrokenExecutor>,
    /// Threads started so far (their names count them).
    started: usize,
}

/// The state of `shutdown(wait)`'s joins.
struct Joining {
    /// Handles no joiner has taken yet.
    handles: Vec<JoinHandle<()>>,
    /// Every worker thread's id: a `shutdown(wait)` from a task must not wait.
    workers: Vec<ThreadId>,
    /// `shutdown(wait)` calls joining the handles they took, now.
    joiners: usize,
    /// Every worker's slot (its current task, its count), beside its id in `workers`.
    slots: Vec<std::sync::Arc<WorkerSlot>>,
    /// Workers whose thread has ended its loop (retired spares are removed instead).
    exited: usize,
    /// Tasks finished by retired spares (their slots are gone).
    retired_finished: u64,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            queue: queue::TaskQueue::new(),
            word: CachePadded::new(AtomicU64::new(0)),
            taken: CachePadded::new(AtomicU64::new(0)),
            busy: CachePadded::new(AtomicUsize::new(0)),
            searching: CachePadded::new(AtomicUsize::new(0)),
            threads: AtomicUsize::new(0),
            control: Mutex::new(Control {
                broken: None,
                started: 0,
            }),
            work_ready: Condvar::new(),
            joining: Mutex::new(Joining {
                handles: Vec::new(),
                workers: Vec::new(),
                joiners: 0,
                slots: Vec::new(),
                exited: 0,
                retired_finished: 0,
            }),
            all_joined: Condvar::new(),
            room: bound::Room::new(),
            config,
        })
    }

    /// Queues `task`, waking an idle worker or starting a new one. (An associated function:
    /// loom's `Arc` cannot be a method receiver.)
    pub(crate) fn submit(this: &Arc<Shared>, task: Task) -> Result<(), SubmitError> {
        if let Some(bound) = &this.config.max_queue {
            return Shared::submit_bounded(this, task, bound.policy);
        }
        let me: &Shared = this;
        let room = me.free_workers();
        let prev = me.word.fetch_add(QUEUED_ONE, Ordering::AcqRel);
        Shared::push_reserved(this, task, prev, room)
    }

    /// Queues `tasks` (emptying it) as one reservation: `map`'s submits, each a step of the
    /// word fewer. The same protocol as `n` submits whose reservations fall together: one
    /// `fetch_add` of `n`, then the pushes; one wake-up (a woken worker passes the baton, see
    /// `took`); as many thread starts as `n` single submits could have made. A bounded pool
    /// submits one by one (each task against the bound). All or none are queued.
    pub(crate) fn submit_all(this: &Arc<Shared>, tasks: &mut Vec<Task>) -> Result<(), SubmitError> {
        if this.config.max_queue.is_some() {
            for task in tasks.drain(..) {
                Shared::submit(this, task)?;
            }
            return Ok(());
        }
        let me: &Shared = this;
        let n = tasks.len() as u64;
        if n == 0 {
            return Ok(());
        }
        let room = me.free_workers();
        let prev = me.word.fetch_add(n * QUEUED_ONE, Ordering::AcqRel);
        if prev & CLOSED != 0 {
            me.word.fetch_sub(n * QUEUED_ONE, Ordering::AcqRel);
            tasks.clear();
            return Err(me.refusal());
        }
        for task in tasks.drain(..) {
            me.queue.push(task);
        }
        if sleepers(prev) > 0 && me.searching.load(Ordering::Acquire) == 0 {
            let _control = me.control.lock();
            me.work_ready.notify_one();
        }
        if let Some(Room { free, taken }) = room {
            // Each of `n` submits would have started one thread if the tasks queued then
            // outnumbered the free workers.
            let wanted = (queued_in(prev, taken) + n).saturating_sub(free as u64);
            let room = me
                .config
                .max_workers
                .saturating_sub(me.threads.load(Ordering::Acquire));
            for _ in 0..wanted.min(room as u64) {
                Shared::start_worker(this);
            }
        } else if blocked(prev) > 0 {
            Shared::compensate(this);
        }
        Ok(())
    }

    /// Free workers, counted *before* the task is visible: once it is, a worker may take it
    /// and look busy, which would make this submit start a thread for nothing; and `taken`,
    /// read before the reservation (see `queued_in`). `None` once the pool has all its
    /// threads: a full pool skips the workers' counters.
    #[inline(always)]
    fn free_workers(&self) -> Option<Room> {
        let threads = self.threads.load(Ordering::Acquire);
        if threads >= self.config.max_workers {
            return None;
        }
        let taken = self.taken.load(Ordering::Acquire);
        let free = threads - self.busy.load(Ordering::Acquire).min(threads);
        Some(Room { free, taken })
    }

    /// Tasks queued now, at most a few too many (see `queued_in`).
    fn queued_now(&self) -> u64 {
        let taken = self.taken.load(Ordering::Acquire);
        queued_in(self.word.load(Ordering::Acquire), taken)
    }

    /// The rest of a submit, once its place is reserved in the word (`prev` is the word before).
    #[inline(always)]
    fn push_reserved(
        this: &Arc<Shared>,
        task: Task,
        prev: u64,
        room: Option<Room>,
    ) -> Result<(), SubmitError> {
        let me: &Shared = this;
        if prev & CLOSED != 0 {
            me.word.fetch_sub(QUEUED_ONE, Ordering::AcqRel);
            return Err(me.refusal());
        }
        me.queue.push(task);
        if sleepers(prev) > 0 && me.searching.load(Ordering::Acquire) == 0 {
            let _control = me.control.lock();
            me.work_ready.notify_one();
        }
        if let Some(Room { free, taken }) = room
            && queued_in(prev, taken) + 1 > free as u64
        {
            Shared::start_worker(this);
        } else if blocked(prev) > 0 {
            // A worker is blocked: it may have counted on no thread for this task.
            Shared::compensate(this);
        }
        Ok(())
    }

    #[cold]
    fn start_worker(this: &Arc<Shared>) {
        let control = this.control.lock();
        let threads = this.threads.load(Ordering::Acquire);
        // Under `control`: once shutdown began, a thread starts only for tasks still queued
        // (a submit that raced the shutdown, with no thread yet to run it: as in Python, it
        // runs); a waited shutdown joins the handles added meanwhile, and one that has
        // returned leaves such a thread to drain the queue and exit. None starts once the pool
        // is broken. Blocked workers make room for spares (`shared/spare.rs`).
        let taken = this.taken.load(Ordering::Acquire);
        let word = this.word.load(Ordering::Acquire);
        let closed = word & BROKEN != 0 || (word & SHUTDOWN != 0 && queued_in(word, taken) == 0);
        if threads >= this.capacity(word) || closed {
            return;
        }
        Shared::spawn_worker(this, control, threads);
    }

    /// Starts a worker thread; `threads` were serving (read under `control`, held here).
    fn spawn_worker(this: &Arc<Shared>, mut control: MutexGuard<'_, Control>, threads: usize) {
        let name = format!("{}_{}", this.config.name_prefix, control.started);
        let shared = Arc::clone(this);
        let slot = std::sync::Arc::new(WorkerSlot::new());
        let mine = std::sync::Arc::clone(&slot);
        match thread::spawn_named(name, move || worker::run(&shared, &mine)) {
            Ok(handle) => {
                control.started += 1;
                this.threads.store(threads + 1, Ordering::Release);
                let mut joining = this.joining.lock();
                joining.slots.push(slot);
                joining.workers.push(handle.thread().id());
                joining.handles.push(handle);
            }
            Err(e) if threads == 0 => {
                // No thread will ever run what is queued: fail it (the pool itself is not
                // broken; a later submit tries again).
                drop(control);
                let error = BrokenExecutor::new(
                    BrokenKind::ThreadPool,
                    format!("cannot start a worker thread: {e}"),
                );
                for task in this.drain() {
                    contain("failing a task", || task.fail(&error));
                }
            }
            // The running workers will take the task.
            Err(e) => {
                log::warn!(target: "concurrent_futures", "cannot start another worker thread: {e}");
            }
        }
    }

    /// The next task for a worker; `None` once the pool is shut down and drained, or broken,
    /// or once this worker is a spare that no blocked worker needs any more (it has retired).
    pub(crate) fn next_task(&self) -> Option<Task> {
        // More threads than `max_workers` only while workers block (`shared/spare.rs`).
        if self.threads.load(Ordering::Relaxed) > self.config.max_workers && self.retire() {
            return None;
        }
        // Under load a task is usually waiting: take it without announcing a search.
        if let Some(task) = self.queue.pop()
            && let Some(task) = self.took(task, false)
        {
            return Some(task);
        }
        self.searching.fetch_add(1, Ordering::AcqRel);
        let spins = hint::spin_limit(WORKER_SPINS);
        let mut spun = 0;
        while spun < spins && self.queued_now() == 0 {
            // Spin briefly, then yield: on a machine with few cores the submitter may need
            // this core to produce the work we are waiting for.
            if spun < SPIN_BEFORE_YIELD {
                hint::spin();
            } else {
                thread::yield_now();
            }
            spun += 1;
        }
        self.search()
    }

    /// Takes a task, or sleeps until there is one, or finds the pool closed and drained
    /// (`None`). Called with this worker counted in `searching`; returns with it uncounted.
    fn search(&self) -> Option<Task> {
        let mut searching = true;
        let stop_searching = |searching: &mut bool| {
            if std::mem::take(searching) {
                self.searching.fetch_sub(1, Ordering::AcqRel);
            }
        };
        loop {
            if let Some(task) = self.queue.pop() {
                stop_searching(&mut searching);
                match self.took(task, true) {
                    Some(task) => return Some(task),
                    None => continue,
                }
            }
            let taken = self.taken.load(Ordering::Acquire);
            let word = self.word.load(Ordering::Acquire);
            if queued_in(word, taken) > 0 {
                // Reserved but not pushed yet (or popped but not released): moments away.
                thread::yield_now();
                continue;
            }
            stop_searching(&mut searching);
            if word & CLOSED != 0 {
                return None;
            }
            let control = self.control.lock();
            let taken = self.taken.load(Ordering::Acquire);
            let prev = self.word.fetch_add(SLEEPER_ONE, Ordering::AcqRel);
            if queued_in(prev, taken) > 0 || prev & CLOSED != 0 {
                self.word.fetch_sub(SLEEPER_ONE, Ordering::AcqRel);
                continue;
            }
            if self.threads.load(Ordering::Relaxed) > self.capacity(prev) {
                // A spare nobody needs (nothing is queued): retire instead of sleeping.
                self.word.fetch_sub(SLEEPER_ONE, Ordering::AcqRel);
                self.leave(&control);
                return None;
            }
            let control = self.work_ready.wait(control);
            self.word.fetch_sub(SLEEPER_ONE, Ordering::AcqRel);
            drop(control);
        }
    }

    /// Books a popped task: releases its reservation and counts this worker busy — or fails
    /// the task if the pool broke meanwhile (`None`). `searched`: the worker comes from
    /// `search` (it may have been woken for a batch), so it passes the baton on.
    #[inline]
    fn took(&self, task: Task, searched: bool) -> Option<Task> {
        // Busy *before* the reservation is released: a bounded submit counts the tasks that
        // must wait as `queued` beyond what free workers (`max_workers - busy`) can take, so a
        // popped task must never be counted in neither.
        self.busy.fetch_add(1, Ordering::AcqRel);
        let (broken, more) = self.release_reservation();
        if broken {
            self.busy.fetch_sub(1, Ordering::AcqRel);
            contain("failing a task", || self.fail(task));
            return None;
        }
        // More work and nobody looking for it: pass the baton to a sleeper.
        if searched || more.is_some() {
            // Tasks queued besides this one.
            let (word, others) = match more {
                Some(word) => (word, queued(word).saturating_sub(1)),
                None => {
                    let taken = self.taken.load(Ordering::Acquire);
                    let word = self.word.load(Ordering::Acquire);
                    (word, queued_in(word, taken))
                }
            };
            if others > 0 && sleepers(word) > 0 && self.searching.load(Ordering::Acquire) == 0 {
                let _control = self.control.lock();
                self.work_ready.notify_one();
            }
        }
        Some(task)
    }

    /// Releases the reservation of a task just popped; returns whether the pool is broken
    /// and, for a bounded pool, the word before the release. An unbounded pool counts the
    /// release in `taken`, off the word that every submit writes (see the module docs); a
    /// bounded pool releases in the word itself, where a submitter waiting for room sees it
    /// (`shared/bound.rs`).
    #[inline]
    fn release_reservation(&self) -> (bool, Option<u64>) {
        if self.config.max_queue.is_none() {
            let prev = self.taken.fetch_add(QUEUED_ONE, Ordering::AcqRel);
            return (prev & BROKEN != 0, None);
        }
        let prev = self.word.fetch_sub(QUEUED_ONE, Ordering::AcqRel);
        if prev & ROOM_WAITED != 0 {
            self.room_made();
        }
        (prev & BROKEN != 0, Some(prev))
    }

    fn fail(&self, task: Task) {
        match self.broken() {
            Some(broken) => task.fail(&broken),
            None => unreachable!("BROKEN is set only after the reason is stored"),
        }
    }

    /// A worker's task closure returned (called before its future is completed).
    pub(crate) fn finished_running(&self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// A worker blocks in a wait outside a task's closure (a done-callback): it counts itself
    /// busy for the wait (`true`), then no more (`false`).
    pub(crate) fn busy_while_waiting(&self, waiting: bool) {
        if waiting {
            self.busy.fetch_add(1, Ordering::AcqRel);
        } else {
            self.busy.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Sets `flag` and wakes every sleeper (under `control`, see the module docs).
    fn close(&self, flag: u64) {
        let control = self.control.lock();
        self.word.fetch_or(flag, Ordering::AcqRel);
        self.work_ready.notify_all();
        drop(control);
        // Submitters waiting for room leave with the error (after the flag, see bound.rs).
        self.room_made();
    }

    /// Pops every queued task (releasing its reservation).
    fn drain(&self) -> Vec<Task> {
        let mut drained = Vec::new();
        while let Some(task) = self.queue.pop() {
            self.release_reservation();
            drained.push(task);
        }
        drained
    }

    /// Python's `shutdown(wait, cancel_futures)`.
    pub(crate) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.close(SHUTDOWN);
        if cancel_futures {
            // Cancelling runs the futures' callbacks, in this thread; one task's panicking
            // `Drop` must not leave the rest uncancelled.
            for task in self.drain() {
                contain("cancelling a task", || task.cancel());
            }
        }
        if wait {
            self.join_workers();
        }
    }

    /// `shutdown(wait)`'s joins: returns once every worker has exited, or at once when called
    /// from a worker (see the module docs). The lock is never held across a join.
    fn join_workers(&self) {
        let me = thread::current().id();
        let mut joining = self.joining.lock();
        if joining.workers.contains(&me) {
            return;
        }
        loop {
            let taken = std::mem::take(&mut joining.handles);
            if taken.is_empty() {
                if joining.joiners == 0 {
                    return;
                }
                joining = self.all_joined.wait(joining);
                continue;
            }
            joining.joiners += 1;
            drop(joining);
            for handle in taken {
                // Workers contain every panic, so a join never reports one.
                let _ = handle.join();
            }
            joining = self.joining.lock();
            joining.joiners -= 1;
            if joining.joiners == 0 {
                self.all_joined.notify_all();
            }
        }
    }

    /// The initializer failed: break the pool and fail every queued future.
    pub(crate) fn break_pool(&self, why: &str) {
        let error =
            BrokenExecutor::new(BrokenKind::ThreadPool, format!("{BROKEN_MESSAGE} ({why})"));
        {
            let mut control = self.control.lock();
            if control.broken.is_none() {
                log::debug!(target: "concurrent_futures", "BrokenThreadPool: {error}");
                control.broken = Some(error);
            }
        }
        // Workers of an unbounded pool see the flag in `taken`, as they release (see `took`).
        self.taken.fetch_or(BROKEN, Ordering::AcqRel);
        self.close(BROKEN);
        let error = self.broken().expect("just stored");
        // Fail what is queued, including tasks whose submit reserved a place before the flag
        // and pushes just after (workers fail those too, but this worker may be the only one).
        loop {
            for task in self.drain() {
                contain("failing a task", || task.fail(&error));
            }
            if self.queued_now() == 0 {
                break;
            }
            thread::yield_now();
        }
    }

    /// Why the pool is broken, if it is.
    pub(crate) fn broken(&self) -> Option<BrokenExecutor> {
        self.control.lock().broken.clone()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word.load(Ordering::Relaxed);
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.config.max_workers)
            .field("max_queue", &self.config.max_queue.map(|b| b.limit))
            .field("threads", &self.threads.load(Ordering::Relaxed))
            .field("queued", &self.queued_now())
            .field("sleeping", &sleepers(word))
            .field("blocked", &blocked(word))
            .field("busy", &self.busy.load(Ordering::Relaxed))
            .field("shutdown", &(word & SHUTDOWN != 0))
            .field("broken", &(word & BROKEN != 0))
            .finish()
    }
}
