//! The worker's end: whole messages to and from the pool (rank 0 of the communicator that joins
//! them), with the shape of the remote crate's `WorkerLink` trait.

use crate::backoff::Backoff;
use crate::deathwatch::DeathWatch;
use crate::heartbeat::{Beater, HEARTBEAT_BYTES, Hearing, Heartbeat};
use crate::progresswatch::stall_limit;
use crate::stuckwatch::StuckWatch;
use crate::sys::{self, Comm, tag};
use crate::{MpiError, Rank};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The pool's rank on the worker's communicator (the spawning parent, or world rank 0).
const POOL: Rank = 0;

/// How long the pool may be silent while a message from it comes, before its welcome names
/// the heartbeat's limit.
const DEFAULT_LIMIT: Duration = Duration::from_secs(30);

/// A worker's connection to its pool, handed to the serve closure by
/// [`bootstrap`](crate::bootstrap) (or [`bootstrap_with`](crate::transport::bootstrap_with)).
///
/// Waiting polls (see the crate docs: a blocking MPI receive spins a core and never returns if
/// the pool dies). The link ends when the pool is gone: a worker on the pool's host watches the
/// pool's pidfd (from the pool's welcome message), and every worker hears the pool's
/// heartbeats (and sends its own, from a thread of its own, from the welcome on) and presumes
/// the pool dead after the silence the welcome names. That matters under `mpirun --enable-recovery`, where
/// nothing else would end a worker whose rank 0 died, and on other hosts. A worker stuck
/// inside MPI, where none of that can run, exits (see the crate docs, "Death").
#[derive(Debug)]
pub struct WorkerLink {
    comm: Comm,
    rank: Rank,
    closed: bool,
    pool: DeathWatch,
    pool_died: bool,
    /// What was heard of the pool.
    hearing: Hearing,
    /// The pool's heartbeat, from its welcome.
    heartbeat: Option<Heartbeat>,
    /// This worker's own pulses. Declared before `stuck`, so that a dropped link stops (joins)
    /// the heartbeat thread while the watch still times its MPI calls.
    beater: Option<Beater>,
    /// Whether the pool's process is watched (see `pool`).
    watching_pool: bool,
    /// A task that came before the welcome (the pool sends the welcome first: never, so far).
    early: Option<Vec<u8>>,
    /// Ends this process if one of its MPI calls never returns (see [`crate::stuckwatch`]).
    stuck: StuckWatch,
}

impl WorkerLink {
    pub(crate) fn new(comm: Comm, rank: Rank) -> WorkerLink {
        WorkerLink {
            comm,
            rank,
            closed: false,
            pool: DeathWatch::default(),
            pool_died: false,
            hearing: Hearing::new(),
            heartbeat: None,
            beater: None,
            early: None,
            watching_pool: false,
            stuck: StuckWatch::start(rank, stall_limit(DEFAULT_LIMIT)),
        }
    }

    /// This worker's rank, as the pool numbers it.
    pub fn rank(&self) -> Rank {
        self.rank
    }

    /// The next whole message from the pool, or `None` once the pool has closed its end (asked
    /// this worker to leave) or MPI failed.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        if let Some(early) = self.early.take() {
            return Some(early);
        }
        let mut backoff = Backoff::default();
        while !self.closed {
            match self.receive(None) {
                Some((tag::DATA, bytes)) => return Some(bytes),
                Some((tag::LEAVE, bytes)) => self.leave(&bytes),
                Some((tag::WELCOME, bytes)) => self.welcome(&bytes),
                // Not progress for the backoff: an idle worker gets one every interval.
                Some((tag::PULSE, _)) => {}
                Some(_) => backoff.reset(),
                None if self.closed => {}
                // Probing finds nothing: a silence long enough is the pool's.
                None if self.pool_has_died() || self.pool_is_silent() => {
                    self.pool_died = true;
                    self.closed = true;
                }
                None => backoff.snooze(),
            }
        }
        None
    }

    /// Waits for the pool's welcome (or the link's end), so that this worker pulses from then
    /// on, whatever its serve closure does before its first [`recv`](Self::recv). Under a
    /// launcher, the welcome comes once rank 0 starts a pool; the leave, if it never does.
    pub(crate) fn wait_for_welcome(&mut self) {
        let mut backoff = Backoff::default();
        while !self.closed && self.heartbeat.is_none() {
            match self.receive(None) {
                Some((tag::WELCOME, bytes)) => self.welcome(&bytes),
                Some((tag::PRESENCE, bytes)) => self.watch_pool(&bytes),
                Some((tag::LEAVE, bytes)) => self.leave(&bytes),
                Some((tag::DATA, bytes)) => self.early = Some(bytes),
                Some(_) => {}
                None if self.pool_has_died() => {
                    self.pool_died = true;
                    self.closed = true;
                }
                None => backoff.snooze(),
            }
        }
    }

    /// The pool asked this worker to leave.
    fn leave(&mut self, bytes: &[u8]) {
        // Under a launcher, `[1]`: a rank of the job died.
        if bytes.first() == Some(&1) {
            crate::runtime::JOB_LOST_A_RANK.store(true, Ordering::Release);
        }
        self.closed = true;
    }

    /// One message from the pool with `tag` (or any), if one is waiting, noting what was heard.
    /// A large one from a pool that dies, or stops pulsing, while it comes ends the link, as
    /// does an MPI failure.
    fn receive(&mut self, tag: Option<i32>) -> Option<(i32, Vec<u8>)> {
        let comm = self.comm;
        let heartbeat = self
            .heartbeat
            .unwrap_or(Heartbeat::with_limit(DEFAULT_LIMIT));
        let pool = &self.pool;
        let clock = &self.stuck.clocks().serving;
        let mut pulsed = Instant::now();
        let received = clock.around(|| {
            sys::try_receive(comm, Some(POOL), tag, |_, len| {
                clock.returned();
                if crate::receiver::drain_pulses(comm, POOL) {
                    pulsed = Instant::now();
                }
                pool.has_ended(POOL) || pulsed.elapsed() > heartbeat.limit_while_coming(len)
            })
        });
        match received {
            Ok(Some((_, tag, bytes))) => {
                self.hearing.heard();
                Some((tag, bytes))
            }
            Ok(None) => {
                self.hearing.found_nothing();
                None
            }
            Err(MpiError::WorkerGone(_)) => {
                self.pool_died = true;
                self.closed = true;
                None
            }
            Err(_) => {
                self.closed = true;
                None
            }
        }
    }

    /// Whether the pool has been silent past its heartbeat's limit.
    fn pool_is_silent(&self) -> bool {
        self.heartbeat
            .is_some_and(|heartbeat| self.hearing.is_silent(heartbeat))
    }

    /// Whether the pool is gone, while a send to it waits: its death, or a silence once its
    /// waiting pulses are read (other messages wait for `recv`).
    fn pool_is_gone(&mut self) -> bool {
        while self.receive(Some(tag::PULSE)).is_some() {}
        self.pool_died |= self.pool_has_died() || self.pool_is_silent();
        self.pool_died
    }

    /// The pool's welcome: its heartbeat, which starts this worker's own, and its pid and
    /// host, to watch it if it runs on this host.
    fn welcome(&mut self, bytes: &[u8]) {
        let Some((heartbeat, pool)) = bytes.split_at_checked(HEARTBEAT_BYTES) else {
            return;
        };
        if let Some(heartbeat) = Heartbeat::decode(heartbeat) {
            self.heartbeat = Some(heartbeat);
            self.stuck.set_limit(stall_limit(heartbeat.limit));
            self.start_pulses(heartbeat.interval);
        }
        self.watch_pool(pool);
    }

    /// Watches the pool (or rank 0, before its pool) if it runs on this host, given its pid
    /// and host as a hello carries them.
    fn watch_pool(&mut self, bytes: &[u8]) {
        if self.watching_pool {
            return;
        }
        if let Some(pool) = crate::hello::decode(POOL, bytes)
            && pool.host == sys::processor_name()
        {
            self.watching_pool = self.pool.watch(POOL, pool.pid);
        }
    }

    /// Starts this worker's pulses to the pool, unless started.
    fn start_pulses(&mut self, interval: Duration) {
        if self.beater.is_some() {
            return;
        }
        let comm = self.comm;
        let clocks = Arc::clone(self.stuck.clocks());
        let beat = move |stop: &std::sync::atomic::AtomicBool| {
            let clock = &clocks.pulsing;
            let _ = clock.around(|| {
                sys::send(comm, POOL, tag::PULSE, Vec::new(), || {
                    clock.returned();
                    stop.load(Ordering::Acquire)
                })
            });
        };
        // Without the thread the pool would presume this worker dead: better to leave now.
        match Beater::start(interval, beat) {
            Ok(beater) => self.beater = Some(beater),
            Err(_) => self.closed = true,
        }
    }

    /// Whether the pool's process has ended (as far as this host can see).
    fn pool_has_died(&mut self) -> bool {
        self.pool_died |= !self.pool.wait(Duration::ZERO, None).is_empty();
        self.pool_died
    }

    /// Whether the link ended because the pool's process died.
    pub(crate) fn pool_died(&self) -> bool {
        self.pool_died
    }

    /// Sends one whole message to the pool; `false` if the pool is gone (has asked this worker
    /// to leave) or MPI failed.
    pub fn send(&mut self, message: Vec<u8>) -> bool {
        if self.closed {
            return false;
        }
        let comm = self.comm;
        let clocks = Arc::clone(self.stuck.clocks());
        let clock = &clocks.serving;
        let sent = clock
            .around(|| {
                sys::send(comm, POOL, tag::DATA, message, || {
                    clock.returned();
                    self.pool_is_gone()
                })
            })
            .is_ok();
        self.closed |= !sent;
        sent
    }

    /// The first message: this worker's pid and host.
    pub(crate) fn hello(&self) -> Result<(), MpiError> {
        let clock = &self.stuck.clocks().serving;
        clock.around(|| {
            sys::send(
                self.comm,
                POOL,
                tag::HELLO,
                crate::hello::encode(&sys::processor_name()),
                || {
                    clock.returned();
                    false
                },
            )
        })
    }

    /// The last message: the serve closure's exit code. This worker's pulses stop first, and
    /// the watch over its MPI calls after it (what follows, disconnecting and finalizing, may
    /// rightly wait for the pool for long). A tiny message, it completes at once unless the
    /// pool is gone, so its whole send is timed as one call: one that has not completed
    /// within the stall limit ends this worker as a stuck call does.
    pub(crate) fn goodbye(&mut self, code: i32) -> Result<(), MpiError> {
        self.stop_pulses();
        let clock = &self.stuck.clocks().serving;
        let said = clock.around(|| {
            sys::send(
                self.comm,
                POOL,
                tag::GOODBYE,
                code.to_le_bytes().to_vec(),
                || false,
            )
        });
        self.stuck.stop();
        said
    }

    pub(crate) fn comm(&self) -> Comm {
        self.comm
    }

    /// Stops this worker's pulses (before MPI is finalized: the thread calls MPI).
    pub(crate) fn stop_pulses(&mut self) {
        if let Some(mut beater) = self.beater.take() {
            beater.stop();
        }
    }
}
