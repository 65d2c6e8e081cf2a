//! The pool's side: start the workers (spawned, or the launcher's ranks), send to one, and shut
//! them all down so that no rank is left behind.

use crate::bootstrap::LAUNCHER_DISMISSED;
use crate::deathwatch::{self, DeathWatch};
use crate::doorbell::Doorbell;
use crate::heartbeat::{Beater, Heartbeat};
use crate::hello::{self, WorkerInfo};
use crate::progresswatch::{self, ProgressWatch};
use crate::receiver::{self, Event, Handler};
use crate::role::Role;
use crate::stuckwatch::InMpi;
use crate::sys::{self, Comm, tag};
use crate::{MpiError, Rank, runtime, spawn, watchdog};
use std::collections::{HashMap, VecDeque};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether this launcher job's ranks were taken by a pool (they serve one).
static LAUNCHER_TAKEN: AtomicBool = AtomicBool::new(false);

/// How to start and stop workers.
#[derive(Debug, Clone)]
pub struct WorkersConfig {
    /// How many to spawn (a plain program, or `mpirun -n 1`). Under a launcher with more ranks,
    /// every rank above 0 is a worker and this is ignored.
    pub workers: usize,
    /// How long `MPI_Comm_spawn` may take (it never returns if the workers die before
    /// `MPI_Init`).
    pub spawn_timeout: Duration,
    /// How long every worker has to say hello once started.
    pub hello_timeout: Duration,
    /// How long shutdown waits for the goodbyes before killing the workers on this host.
    pub shutdown_timeout: Duration,
    /// How long a worker may send nothing, not even the heartbeat its own thread sends ten
    /// times in this span, before it is presumed dead ([`Event::Silent`]); the workers presume
    /// the pool dead after the same silence from it. This is how a death on another host, or a
    /// frozen process, is seen. At least 100 ms: [`Workers::start`] refuses less.
    pub heartbeat_timeout: Duration,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            workers: 2,
            spawn_timeout: Duration::from_secs(30),
            hello_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
        }
    }
}

/// The shortest heartbeat timeout: pulses go every tenth of it, and at least every 10 ms.
const MIN_HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(100);

/// Where a worker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Alive,
    Left,
    Dead,
}

/// What the pool and its receiving thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) comm: Comm,
    /// How long the receiving thread may end no round: see [`crate::progresswatch`].
    stall_limit: Duration,
    /// This host's name.
    pub(crate) here: String,
    members: Vec<WorkerInfo>,
    standings: Mutex<HashMap<Rank, Standing>>,
    changed: Condvar,
    /// Messages for the receiving thread to send, in the order they were posted. Besides the
    /// heartbeat thread's pulses, only that thread calls MPI while the workers run: a caller
    /// of [`Workers::send`] (the pool's dispatch, under the pool's own lock) or the event
    /// thread can never be caught inside MPI by the deadlock the progress watch judges, and
    /// so they can always act on its verdict. The lock is never held across an MPI call.
    outgoing: Mutex<VecDeque<Outgoing>>,
    /// Wakes the receiving thread from its pause when a message is posted.
    pub(crate) doorbell: Doorbell,
    /// Set (under the `outgoing` lock) once the receiving thread has ended: no post after.
    closed: AtomicBool,
    pub(crate) stop: AtomicBool,
    /// Rounds of the receiving thread, for [`ProgressWatch`].
    pub(crate) rounds: AtomicU64,
    /// Set by the receiving thread as it ends (then its rounds stop for a reason).
    pub(crate) receiving_ended: AtomicBool,
    /// When the heartbeat thread entered the MPI call it is in (see [`InMpi`]): it sends its
    /// pulses itself, so that they go out even while the receiving thread spends long in one
    /// call moving a large message along (a worker sending 1 GiB under a 1 s heartbeat
    /// presumed the pool dead when the pulses waited for the receiving thread).
    pub(crate) beater_in_mpi: InMpi,
    /// Set when a thread was found stuck inside MPI: see [`crate::progresswatch`].
    pub(crate) wedged: AtomicBool,
    /// Held while the receiving thread hands over an event, and while the verdict that MPI is
    /// wedged is given: no event follows the verdict's reports.
    delivering: Mutex<()>,
}

/// A message posted for the receiving thread to send.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) rank: Rank,
    pub(crate) tag: i32,
    pub(crate) bytes: Vec<u8>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Rank, Standing>> {
        self.standings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn outgoing(&self) -> std::sync::MutexGuard<'_, VecDeque<Outgoing>> {
        self.outgoing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts `bytes` with `tag` to worker `rank`, for the receiving thread to send
    /// ([`Workers::send`]).
    pub(crate) fn post(&self, rank: Rank, tag: i32, bytes: Vec<u8>) -> Result<(), MpiError> {
        match self.standing(rank) {
            None => return Err(MpiError::NoSuchWorker(rank)),
            Some(Standing::Alive) => {}
            Some(_) => return Err(MpiError::WorkerGone(rank)),
        }
        // MPI counts in `int`s: said now, rather than by the receiving thread later.
        if c_int::try_from(bytes.len()).is_err() {
            return Err(MpiError::TooLarge(bytes.len()));
        }
        if self.wedged.load(Ordering::Acquire) {
            return Err(self.stuck());
        }
        {
            let mut outgoing = self.outgoing();
            // Once the receiving thread is told to stop, or has ended, nothing more goes.
            if self.closed.load(Ordering::Acquire) || self.stop.load(Ordering::Acquire) {
                return Err(MpiError::WorkerGone(rank));
            }
            outgoing.push_back(Outgoing { rank, tag, bytes });
        }
        self.doorbell.ring();
        Ok(())
    }

    /// Refuses every later post and drops what was posted and not sent.
    pub(crate) fn close_outgoing(&self) {
        let mut outgoing = self.outgoing();
        self.closed.store(true, Ordering::Release);
        outgoing.clear();
    }

    /// The lock under which events are handed over and the verdict is given.
    pub(crate) fn delivering(&self) -> std::sync::MutexGuard<'_, ()> {
        self.delivering.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error of a send or a shutdown once MPI is wedged.
    fn stuck(&self) -> MpiError {
        MpiError::Stuck {
            call: progresswatch::STUCK_CALL,
            after: self.stall_limit,
        }
    }

    pub(crate) fn standing(&self, rank: Rank) -> Option<Standing> {
        self.lock().get(&rank).copied()
    }

    pub(crate) fn set(&self, rank: Rank, standing: Standing) {
        self.lock().insert(rank, standing);
        self.changed.notify_all();
    }

    pub(crate) fn alive(&self) -> Vec<Rank> {
        let standings = self.lock();
        let mut ranks: Vec<Rank> = standings
            .iter()
            .filter(|(_, s)| **s == Standing::Alive)
            .map(|(r, _)| *r)
            .collect();
        ranks.sort_unstable();
        ranks
    }

    /// Whether a worker died (rather than left).
    fn any_dead(&self) -> bool {
        self.lock().values().any(|s| *s == Standing::Dead)
    }

    pub(crate) fn member(&self, rank: Rank) -> WorkerInfo {
        self.members
            .iter()
            .find(|m| m.rank == rank)
            .cloned()
            .expect("a member's rank")
    }

    /// Waits until no worker is alive or `deadline` passes.
    fn wait_all_gone(&self, deadline: Instant) {
        let mut standings = self.lock();
        while standings.values().any(|s| *s == Standing::Alive) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            standings = self
                .changed
                .wait_timeout(standings, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Sends to running workers from any thread: see [`Workers::outbox`].
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    pub(crate) fn new(shared: Arc<Shared>) -> Outbox {
        Outbox { shared }
    }

    /// [`Workers::send`]: one whole message to worker `rank`, never blocking.
    pub fn send(&self, rank: Rank, message: Vec<u8>) -> Result<(), MpiError> {
        self.shared.post(rank, tag::DATA, message)
    }
}

/// A set of running workers: spawned by this process, or the ranks above 0 of its `mpirun`
/// job. Their messages and deaths arrive on the channel [`Workers::start`] returns, or at the
/// handler given to [`Workers::start_with`]. Dropping it shuts them down.
#[derive(Debug)]
pub struct Workers {
    shared: Arc<Shared>,
    receiver: Option<JoinHandle<()>>,
    /// The thread that runs the handler given to [`Workers::start_with`].
    handling: Option<JoinHandle<()>>,
    /// The pool's pulses to the workers.
    beater: Option<Beater>,
    /// The watch on the receiving thread's progress.
    progress: Option<ProgressWatch>,
    spawned: bool,
    shutdown_timeout: Duration,
}

impl Workers {
    /// Starts the workers and waits for each one's hello; returns them and the channel of
    /// their events. Needs [`bootstrap`](crate::bootstrap) (or
    /// [`bootstrap_with`](crate::transport::bootstrap_with)) first in `main`.
    pub fn start(config: &WorkersConfig) -> Result<(Workers, Receiver<(Rank, Event)>), MpiError> {
        let (events, receiving) = mpsc::channel();
        let workers = Workers::launch(config, Handling::Channel(events))?;
        Ok((workers, receiving))
    }

    /// Starts the workers as [`start`](Workers::start) does, but hands each event to
    /// `on_event`, called on a thread of the transport's (in the order the events happened).
    ///
    /// That thread only handles events: while `on_event` runs (a slow done-callback, say),
    /// receiving, sending and judging the workers' silences go on, and the events that
    /// happen meanwhile wait their turn. A panic in it is logged and contained. It may answer
    /// at once through the [`Outbox`] it gets (sends never block); it may drop or
    /// [`shutdown`](Workers::shutdown) the workers, which then stop on a thread of their own
    /// (their goodbyes are handled on this one).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use concurrent_futures_mpi::transport::{Event, Outbox, Workers, WorkersConfig};
    ///
    /// let _session = concurrent_futures_mpi::bootstrap().unwrap();
    /// // Echo every message back to the worker that sent it, from the event thread.
    /// let workers = Workers::start_with(&WorkersConfig::default(), |outbox: &Outbox, rank, event| {
    ///     if let Event::Message(bytes) = event {
    ///         let _ = outbox.send(rank, bytes);
    ///     }
    /// })
    /// .unwrap();
    /// # drop(workers);
    /// ```
    pub fn start_with(
        config: &WorkersConfig,
        on_event: impl FnMut(&Outbox, Rank, Event) + Send + 'static,
    ) -> Result<Workers, MpiError> {
        Workers::launch(config, Handling::Thread(Box::new(on_event)))
    }

    /// As [`start_with`](Workers::start_with), but each event goes first to `on_receiving`,
    /// on the receiving thread itself, which hands on to the event thread (`on_event`) what it
    /// does not handle, and what is left of what it does ([`Handled`]). The pool completes a
    /// future there the moment its result comes, without waking another thread first, and
    /// leaves the done-callbacks to the event thread.
    pub(crate) fn start_split(
        config: &WorkersConfig,
        on_receiving: impl FnMut(Rank, Event) -> Handled + Send + 'static,
        on_event: impl FnMut(&Outbox, Rank, Event) + Send + 'static,
    ) -> Result<Workers, MpiError> {
        Workers::launch(
            config,
            Handling::Split {
                on_receiving: Box::new(on_receiving),
                on_event: Box::new(on_event),
            },
        )
    }

    /// [`start`](Workers::start), [`start_with`](Workers::start_with) and
    /// [`start_split`](Workers::start_split).
    fn launch(config: &WorkersConfig, handling: Handling) -> Result<Workers, MpiError> {
        if config.heartbeat_timeout < MIN_HEARTBEAT_TIMEOUT {
            return Err(MpiError::InvalidArgument(
                "heartbeat_timeout must be at least 100 ms",
            ));
        }
        let role = runtime::role().ok_or(MpiError::NotBootstrapped)?;
        if role.is_worker() {
            return Err(MpiError::WorkerRole);
        }
        if let Some(wedged) = progresswatch::refusal() {
            return Err(wedged);
        }
        runtime::ensure_init()?;
        let (comm, ranks, spawned) = match role {
            Role::LauncherRoot { size } if size > 1 => {
                if LAUNCHER_TAKEN.swap(true, Ordering::AcqRel) {
                    return Err(MpiError::AlreadyStarted);
                }
                (Comm::world(), (1..size).collect(), false)
            }
            _ => {
                let comm = spawn::spawn(config.workers, config.spawn_timeout)?;
                (comm, (0..config.workers as Rank).collect::<Vec<_>>(), true)
            }
        };
        let welcomed = collect_hellos(comm, &ranks, config.hello_timeout)
            .and_then(|members| welcome(comm, &members, config).map(|()| members));
        let members = match welcomed {
            Ok(members) => members,
            Err(e) => {
                if spawned {
                    dismiss_unstarted(comm, &ranks);
                }
                return Err(e);
            }
        };
        let here = sys::processor_name();
        let heartbeat = Heartbeat::with_limit(config.heartbeat_timeout);
        let mut watch = DeathWatch::default();
        for member in members.iter().filter(|m| m.host == here) {
            watch.watch(member.rank, member.pid);
        }
        let shared = Arc::new(Shared {
            comm,
            stall_limit: progresswatch::stall_limit(config.heartbeat_timeout),
            here: here.clone(),
            standings: Mutex::new(members.iter().map(|m| (m.rank, Standing::Alive)).collect()),
            members,
            changed: Condvar::new(),
            outgoing: Mutex::new(VecDeque::new()),
            doorbell: Doorbell::new(),
            closed: AtomicBool::new(false),
            beater_in_mpi: InMpi::new(),
            stop: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
            receiving_ended: AtomicBool::new(false),
            wedged: AtomicBool::new(false),
            delivering: Mutex::new(()),
        });
        let (events, handling, mut on_receiving) = match handling {
            Handling::Channel(events) => (Events::Channel(events), None, None),
            Handling::Thread(on_event) => {
                let (events, thread) =
                    spawn_event_thread(Outbox::new(Arc::clone(&shared)), on_event)?;
                (events, Some(thread), None)
            }
            Handling::Split {
                on_receiving,
                on_event,
            } => {
                let (events, thread) =
                    spawn_event_thread(Outbox::new(Arc::clone(&shared)), on_event)?;
                (events, Some(thread), Some(on_receiving))
            }
        };
        let progress =
            ProgressWatch::start(Arc::clone(&shared), events.clone(), shared.stall_limit)
                .map_err(|e| MpiError::Init(format!("cannot start the progress watch: {e}")))?;
        let handler: Handler = Box::new(move |_, rank, event| {
            let event = match on_receiving.as_mut() {
                None => event,
                Some(on_receiving) => match on_receiving(rank, event) {
                    Handled::Pass(event) => event,
                    Handled::Later(work) => return events.later(work),
                    Handled::Done => return,
                },
            };
            events.send(rank, event);
        });
        let thread_shared = Arc::clone(&shared);
        let receiver = std::thread::Builder::new()
            .name(receiver::THREAD_NAME.into())
            .spawn(move || receiver::run(thread_shared, watch, heartbeat, handler))
            .map_err(|e| MpiError::Init(format!("cannot start the receiving thread: {e}")))?;
        runtime::LIVE_POOLS.fetch_add(1, Ordering::AcqRel);
        let pulse = heartbeat.encode();
        let beat_shared = Arc::clone(&shared);
        // The pulses go from the heartbeat thread itself (see `Shared::beater_in_mpi`); one
        // MPI has not finished at once (they are tiny: it always has) is tested at the next
        // beat, and given up once its worker is no longer alive.
        let mut unfinished: Vec<sys::Sending> = Vec::new();
        let beater = Beater::start(heartbeat.interval, move |_| {
            if beat_shared.wedged.load(Ordering::Acquire)
                || beat_shared.stop.load(Ordering::Acquire)
            {
                // Silence from here on: the workers on other hosts leave after their timeout.
                return;
            }
            unfinished.retain_mut(|send| {
                beat_shared.standing(send.dest()) == Some(Standing::Alive)
                    && matches!(beat_shared.beater_in_mpi.around(|| send.test()), Ok(false))
            });
            for rank in beat_shared.alive() {
                let started = beat_shared
                    .beater_in_mpi
                    .around(|| sys::start_send(beat_shared.comm, rank, tag::PULSE, pulse.clone()));
                if let Ok(Some(sending)) = started {
                    unfinished.push(sending);
                }
            }
        });
        let mut workers = Workers {
            shared,
            receiver: Some(receiver),
            handling,
            beater: None,
            progress: Some(progress),
            spawned,
            shutdown_timeout: config.shutdown_timeout,
        };
        // Dropped on failure, the workers stop at once.
        workers.beater = Some(
            beater
                .map_err(|e| MpiError::Init(format!("cannot start the heartbeat thread: {e}")))?,
        );
        Ok(workers)
    }

    /// The workers, as their hellos described them, by rank.
    pub fn members(&self) -> &[WorkerInfo] {
        &self.shared.members
    }

    /// Sends one whole message to worker `rank`, in order after the ones sent to it before,
    /// and never blocks: the message is handed to the receiving thread, which starts sending it
    /// within a round (waking from its pause for it) and tests it until MPI has finished (a
    /// large one goes by rendezvous, once the worker starts to receive it). This thread makes
    /// no MPI call, so it cannot be caught inside MPI (the crate docs' "Death").
    ///
    /// Fails with [`MpiError::WorkerGone`] if the worker is known to have died or left, and
    /// with [`MpiError::TooLarge`] past MPI's `int` count; a send still under way when the
    /// worker dies is given up, and one that MPI fails is reported as the worker's
    /// [`Event::Failed`]. Once MPI is wedged in this process, fails with [`MpiError::Stuck`].
    pub fn send(&self, rank: Rank, message: Vec<u8>) -> Result<(), MpiError> {
        self.shared.post(rank, tag::DATA, message)
    }

    /// A handle that sends to these workers as [`send`](Workers::send) does, from any thread,
    /// for as long as they run (afterwards it fails with [`MpiError::WorkerGone`]). The handler
    /// given to [`start_with`](Workers::start_with) gets one with each event.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Asks every worker to leave, waits (up to the configured shutdown timeout) for each one's
    /// goodbye or death, kills those on this host that are still there, then disconnects from
    /// spawned workers. Every event before the goodbyes is delivered first.
    ///
    /// Called from the handler given to [`start_with`](Workers::start_with), it returns at once
    /// (`Ok`): the goodbyes arrive on the handler's thread, so the stop goes on on a thread of
    /// its own, which logs its error if it has one.
    pub fn shutdown(mut self) -> Result<(), MpiError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), MpiError> {
        let Some(receiver) = self.receiver.take() else {
            return Ok(());
        };
        let here = std::thread::current().id();
        let on_handler = self
            .handling
            .as_ref()
            .is_some_and(|h| h.thread().id() == here);
        // The receiving thread never stops the workers itself; should it come to (a panic
        // dropping them there), it must not wait for itself either.
        if on_handler || receiver.thread().id() == here {
            // Called from the event handler: the goodbyes are handled on this very thread,
            // which must go on, so the stop goes on on a thread of its own.
            let (shared, spawned, shutdown_timeout, beater, progress, handling) = (
                Arc::clone(&self.shared),
                self.spawned,
                self.shutdown_timeout,
                self.beater.take(),
                self.progress.take(),
                self.handling.take(),
            );
            let stopping = std::thread::Builder::new()
                .name("cf-mpi-stop".into())
                .spawn(move || {
                    let workers = Workers {
                        shared,
                        receiver: Some(receiver),
                        handling,
                        beater,
                        progress,
                        spawned,
                        shutdown_timeout,
                    };
                    // No caller is left to take the result.
                    if let Err(e) = workers.shutdown() {
                        log::warn!(target: "concurrent_futures", "stopping the MPI workers: {e}");
                    }
                });
            return match stopping {
                Ok(_) => Ok(()),
                Err(e) => {
                    // The receiving thread ends; the workers are left to MPI's own end.
                    self.shared.stop.store(true, Ordering::Release);
                    runtime::LIVE_POOLS.fetch_sub(1, Ordering::AcqRel);
                    Err(MpiError::Init(format!(
                        "cannot start a thread to stop the workers: {e}"
                    )))
                }
            };
        }
        let shared = Arc::clone(&self.shared);
        if !self.spawned {
            LAUNCHER_DISMISSED.store(true, Ordering::Release);
        }
        if shared.wedged.load(Ordering::Acquire) {
            return self.stop_wedged(receiver);
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        // A launcher rank that died: the survivors, and rank 0, must not finalize (see
        // `runtime::JOB_LOST_A_RANK`); the leave message tells the workers.
        let lost = !self.spawned && shared.any_dead();
        if lost {
            runtime::JOB_LOST_A_RANK.store(true, Ordering::Release);
        }
        for rank in shared.alive() {
            if shared.wedged.load(Ordering::Acquire) {
                return self.stop_wedged(receiver);
            }
            let member = shared.member(rank);
            if member.host == shared.here && deathwatch::wait_for_exit(member.pid, Duration::ZERO) {
                // Dead, and maybe not reported yet: a send to a dead worker can wedge Open
                // MPI's TCP transport (see `progresswatch`); the receiving thread reports it.
                continue;
            }
            // After every message posted before; a worker that dies meanwhile is counted out,
            // and its send given up, by the receiving thread.
            let _ = shared.post(rank, tag::LEAVE, vec![u8::from(lost)]);
        }
        shared.wait_all_gone(deadline);
        // The workers that were to leave have: no pulse may reach one that finalizes.
        if let Some(beater) = self.beater.take() {
            beater.stop_unless(|| shared.wedged.load(Ordering::Acquire));
        }
        if shared.wedged.load(Ordering::Acquire) {
            return self.stop_wedged(receiver);
        }
        let stragglers = shared.alive();
        let here = shared.here.clone();
        let mut unreachable = false;
        for rank in &stragglers {
            let member = shared.member(*rank);
            if member.host == here {
                // The receiving thread had not seen it end a moment ago, so the pid is still
                // its (a pid taken again so soon is unlikely; the pidfd pins it from then on).
                deathwatch::kill(member.pid);
                unreachable |= !deathwatch::wait_for_exit(member.pid, Duration::from_secs(5));
            } else {
                unreachable = true;
            }
        }
        shared.wait_all_gone(Instant::now() + Duration::from_secs(1));
        shared.stop.store(true, Ordering::Release);
        if !self.spawned && shared.any_dead() {
            // One that died after the leave messages went: rank 0 at least does not finalize.
            runtime::JOB_LOST_A_RANK.store(true, Ordering::Release);
        }
        // It ends within a round, unless it is stuck inside MPI: the progress watch tells.
        while !receiver.is_finished() {
            if shared.wedged.load(Ordering::Acquire) {
                return self.stop_wedged(receiver);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = receiver.join();
        if let Some(mut progress) = self.progress.take() {
            progress.stop();
        }
        // Every event handled (the receiving thread's end closed their channel).
        if let Some(handling) = self.handling.take() {
            let _ = handling.join();
        }
        // What was posted and not sent goes to workers that are gone or were killed (the
        // receiving thread gave up its sends under way as it ended); and nothing may be posted
        // once the communicator is let go.
        shared.close_outgoing();
        let mut result = if stragglers.is_empty() {
            Ok(())
        } else {
            Err(MpiError::Stragglers(stragglers))
        };
        if self.spawned && !unreachable {
            match disconnect(shared.comm) {
                // A worker counted out in the middle of a message leaves that receive (or
                // send) pending for good, and Open MPI then calls the communicator invalid:
                // that worker was reported already, and the next pool is not affected.
                Err(e) if shared.any_dead() => log::warn!(
                    target: "concurrent_futures",
                    "disconnecting from MPI workers after one died: {e}"
                ),
                other => result = result.and(other),
            }
        }
        // A spawned worker that said goodbye still disconnects and finalizes before its process
        // ends; wait for that on this host, so that the workers are gone when shutdown returns
        // (a spawn made while the last pool's workers were still exiting hung Open MPI's
        // spawn). Launcher ranks are not waited for: their finalize waits for rank 0's. The
        // wait has the shutdown's own bound: a worker whose disconnect stalls on a peer that
        // was killed is killed in turn.
        let last = Instant::now() + self.shutdown_timeout;
        let spawned_here = shared
            .members
            .iter()
            .filter(|m| self.spawned && m.host == here);
        for member in spawned_here {
            let left = last.saturating_duration_since(Instant::now());
            if !deathwatch::wait_for_exit(member.pid, left) {
                deathwatch::kill(member.pid);
                let _ = deathwatch::wait_for_exit(member.pid, Duration::from_secs(5));
            }
        }
        runtime::LIVE_POOLS.fetch_sub(1, Ordering::AcqRel);
        result
    }
}

impl Workers {
    /// [`Workers::stop`] once MPI is wedged (see [`crate::progresswatch`]): no MPI call, as any
    /// could hang. The workers on this host are killed; those on other hosts leave once the
    /// pool's heartbeat stops; the threads that may be stuck inside MPI are left behind.
    fn stop_wedged(&mut self, receiver: JoinHandle<()>) -> Result<(), MpiError> {
        let shared = Arc::clone(&self.shared);
        shared.stop.store(true, Ordering::Release);
        // The stuck receiving thread holds `shared` for good: what was posted would be leaked
        // with it.
        shared.close_outgoing();
        if !self.spawned {
            // A rank 0 that cannot finalize: neither may the others (see `JOB_LOST_A_RANK`).
            runtime::JOB_LOST_A_RANK.store(true, Ordering::Release);
        }
        if let Some(mut progress) = self.progress.take() {
            progress.stop();
        }
        if let Some(beater) = self.beater.take() {
            beater.abandon();
        }
        for member in shared.members.iter().filter(|m| m.host == shared.here) {
            deathwatch::kill(member.pid);
            let _ = deathwatch::wait_for_exit(member.pid, Duration::from_secs(5));
        }
        // Left running: the receiving thread may never come back from MPI, and the event
        // thread waits on a channel that thread holds.
        drop(receiver);
        drop(self.handling.take());
        runtime::LIVE_POOLS.fetch_sub(1, Ordering::AcqRel);
        Err(shared.stuck())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Where the receiving thread and the progress watch hand the events: the channel of
/// [`Workers::start`], or the event thread's.
#[derive(Clone)]
pub(crate) enum Events {
    /// To the caller of [`Workers::start`].
    Channel(mpsc::Sender<(Rank, Event)>),
    /// To the event thread.
    EventThread(mpsc::Sender<Handover>),
}

impl Events {
    /// Hands `event` over (dropped if the other end has gone: nobody is listening).
    pub(crate) fn send(&self, rank: Rank, event: Event) {
        let _ = match self {
            Events::Channel(events) => events.send((rank, event)).map_err(drop),
            Events::EventThread(events) => events.send(Handover::Event(rank, event)).map_err(drop),
        };
    }

    /// Hands `work` to the event thread, to run in turn with the events; with no event thread
    /// it runs here.
    fn later(&self, work: Work) {
        let Events::EventThread(events) = self else {
            unreachable!("only the event thread's channel carries work")
        };
        if let Err(mpsc::SendError(Handover::Later(work))) = events.send(Handover::Later(work)) {
            // The event thread has gone (it cannot, short of a panic escaping its containment):
            // nothing may be lost, and nothing may run on the receiving thread.
            let running = std::thread::Builder::new()
                .name("cf-mpi-later".into())
                .spawn(move || run_contained(work));
            if let Err(e) = running {
                log::error!(target: "concurrent_futures", "MPI events' work lost: no thread to run it ({e})");
            }
        }
    }
}

/// What the event thread runs for the receiving thread: see [`Handled::Later`].
pub(crate) type Work = Box<dyn FnOnce() + Send>;

/// What a [`ReceivingHandler`] did with an event.
pub(crate) enum Handled {
    /// Handled; what is left (completing futures' callbacks, user code) runs on the event
    /// thread, in turn with the events.
    Later(Work),
    /// Not handled: the event thread's handler gets it.
    Pass(Event),
    /// Handled, nothing left.
    Done,
}

/// A handler that runs on the receiving thread itself (see [`Workers::start_split`]): it must
/// be quick and must run no user code, which goes to the event thread as [`Handled::Later`].
pub(crate) type ReceivingHandler = Box<dyn FnMut(Rank, Event) -> Handled + Send>;

/// What goes over the event thread's channel.
pub(crate) enum Handover {
    /// An event, for the event thread's handler.
    Event(Rank, Event),
    /// Work a [`ReceivingHandler`] left for the event thread.
    Later(Work),
}

/// Where the receiving thread hands the events.
enum Handling {
    /// To the caller of [`Workers::start`], over a channel.
    Channel(mpsc::Sender<(Rank, Event)>),
    /// To the handler given to [`Workers::start_with`], on a thread of its own.
    Thread(Handler),
    /// To the handlers given to [`Workers::start_split`]: first the one on the receiving
    /// thread, then what it passes or leaves to the other, on the event thread.
    Split {
        on_receiving: ReceivingHandler,
        on_event: Handler,
    },
}

/// Runs `work`, logging and containing a panic (and one from the panic's own payload).
fn run_contained(work: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        log::error!(target: "concurrent_futures", "an MPI event handler panicked");
        concurrent_futures_core::drop_panic_payload(payload);
    }
}

/// Starts the thread that runs `on_event` for each event sent on the returned channel (and the
/// work left for it), until the channel closes; a panic in either is logged and contained.
fn spawn_event_thread(
    outbox: Outbox,
    mut on_event: Handler,
) -> Result<(Events, JoinHandle<()>), MpiError> {
    let (events, to_handle) = mpsc::channel::<Handover>();
    let thread = std::thread::Builder::new()
        .name("cf-mpi-events".into())
        .spawn(move || {
            while let Some(handover) = next_handover(&to_handle) {
                match handover {
                    Handover::Event(rank, event) => {
                        run_contained(|| on_event(&outbox, rank, event));
                    }
                    Handover::Later(work) => run_contained(work),
                }
            }
        })
        .map_err(|e| MpiError::Init(format!("cannot start the event thread: {e}")))?;
    Ok((Events::EventThread(events), thread))
}

/// The next event or work, or `None` once the channel has closed. A busy pool's results come
/// a few microseconds apart: the thread yields for a while before it sleeps, since waking it
/// would cost more than that.
fn next_handover(handovers: &Receiver<Handover>) -> Option<Handover> {
    for _ in 0..EVENT_YIELDS {
        match handovers.try_recv() {
            Ok(handover) => return Some(handover),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Disconnected) => return None,
        }
    }
    handovers.recv().ok()
}

/// How many times the event thread yields before it sleeps.
const EVENT_YIELDS: u32 = 256;

/// Sends each worker the pool's welcome: the heartbeat first (the worker starts its own pulses
/// on reading it), then the pool's pid and host.
fn welcome(comm: Comm, members: &[WorkerInfo], config: &WorkersConfig) -> Result<(), MpiError> {
    let deadline = Instant::now() + config.hello_timeout;
    let mut welcome = Heartbeat::with_limit(config.heartbeat_timeout).encode();
    welcome.extend_from_slice(&hello::encode(&sys::processor_name()));
    for member in members {
        // Small enough to be sent eagerly: it completes even towards a worker now dead.
        sys::send(comm, member.rank, tag::WELCOME, welcome.clone(), || {
            Instant::now() > deadline
        })?;
    }
    Ok(())
}

/// Lets go of spawned workers whose start failed (a hello missing or bad): each is asked to
/// leave (those waiting for a welcome do, and disconnect), then this side disconnects, under a
/// deadline (a worker that never reached `bootstrap` does not).
fn dismiss_unstarted(comm: Comm, ranks: &[Rank]) {
    let deadline = Instant::now() + Duration::from_secs(1);
    for &rank in ranks {
        let _ = sys::send(comm, rank, tag::LEAVE, Vec::new(), || {
            Instant::now() > deadline
        });
    }
    // Everything they send is received before the disconnect, their goodbyes last: a message
    // left unreceived on a communicator let go crashed this process's next spawn (SIGSEGV).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = 0;
    let mut backoff = crate::backoff::Backoff::default();
    while left < ranks.len() && Instant::now() < deadline {
        match sys::try_receive(comm, None, None, |_, _| Instant::now() > deadline) {
            Ok(Some((_, tag::GOODBYE, _))) => left += 1,
            Ok(Some(_)) => backoff.reset(),
            Ok(None) => backoff.snooze(),
            Err(_) => break,
        }
    }
    if let Err(e) = disconnect(comm) {
        log::warn!(target: "concurrent_futures", "letting go of MPI workers that did not start: {e}");
    }
}

/// Waits for a hello from each of `ranks` on `comm`.
fn collect_hellos(
    comm: Comm,
    ranks: &[Rank],
    limit: Duration,
) -> Result<Vec<WorkerInfo>, MpiError> {
    let deadline = Instant::now() + limit;
    let mut members: Vec<WorkerInfo> = Vec::with_capacity(ranks.len());
    let mut backoff = crate::backoff::Backoff::default();
    while members.len() < ranks.len() {
        if Instant::now() > deadline {
            let missing = ranks
                .iter()
                .filter(|r| !members.iter().any(|m| m.rank == **r))
                .copied()
                .collect();
            return Err(MpiError::NoHello {
                missing,
                after: limit,
            });
        }
        match sys::try_receive(comm, None, None, |_, _| Instant::now() > deadline)? {
            Some((rank, tag::HELLO, bytes)) => {
                members.push(hello::decode(rank, &bytes).ok_or(MpiError::BadHello(rank))?);
                backoff.reset();
            }
            Some(_) => {}
            None => backoff.snooze(),
        }
    }
    members.sort_by_key(|m| m.rank);
    Ok(members)
}

/// Disconnects from spawned workers (collective: each does the same after its goodbye), under a
/// deadline.
fn disconnect(comm: Comm) -> Result<(), MpiError> {
    let limit = Duration::from_secs(10);
    // The receiving thread has stopped: nothing uses the communicator any more.
    let done = watchdog::with_deadline("cf-mpi-disconnect", limit, move || comm.disconnect());
    done.unwrap_or(Err(MpiError::Stuck {
        call: "MPI_Comm_disconnect",
        after: limit,
    }))
}
