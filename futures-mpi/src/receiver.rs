//! The pool's one progress thread: every message from any worker, and every local worker's
//! death, handed to the pool's event handler as [`Event`]s in the order they happened; and
//! every send still under way, tested until MPI has finished it.
//!
//! It never blocks on one rank (a receive from a dead rank never returns): it probes for a
//! message from any source, tests the sends under way, and between polls waits on the local
//! workers' pidfds, so that a death wakes it at once. The handler runs on this thread, so that
//! a result reaches its future with no hand-off between threads.

use crate::backoff::Backoff;
use crate::deathwatch::{self, DeathWatch};
use crate::heartbeat::{Hearing, Heartbeat};
use crate::sys::{self, tag};
use crate::workers::{Outbox, Shared, Standing};
use crate::{MpiError, Rank};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the thread hands each event to, with the outbox to answer through.
pub(crate) type Handler = Box<dyn FnMut(&Outbox, Rank, Event) + Send>;

/// What happened to a worker, as the receiving thread saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole message the worker sent.
    Message(Vec<u8>),
    /// The worker's process ended without a goodbye (seen on this host only: see the
    /// [crate docs](crate#death)).
    Died {
        /// Its host.
        host: String,
        /// Its process id.
        pid: u32,
        /// Its exit status when the pool can learn it. Always `None` so far: spawned workers
        /// are children of Open MPI's daemon, not of the pool, so only their end is seen.
        status: Option<i32>,
    },
    /// The worker sent nothing, not even a heartbeat, for the configured heartbeat timeout: its
    /// host died or was cut off, or its process is frozen. It counts as dead from then on; on
    /// this host its process is killed, so that it cannot come back.
    Silent {
        /// Its host.
        host: String,
        /// Its process id.
        pid: u32,
        /// How long it had been silent.
        after: Duration,
    },
    /// The worker said goodbye (after being asked to leave, or because its serve closure
    /// returned): its exit code.
    Left {
        /// The serve closure's return value.
        code: i32,
    },
    /// MPI failed talking to this worker: a receive (the receiving thread has then stopped,
    /// and every worker gets this event) or a send to it. The worker counts as dead from then
    /// on.
    Failed(MpiError),
}

/// The thread's body: runs until the pool stops it.
pub(crate) fn run(shared: Arc<Shared>, watch: DeathWatch, heartbeat: Heartbeat, handler: Handler) {
    let mut receiving = Receiving {
        hearing: shared
            .alive()
            .into_iter()
            .map(|rank| (rank, Hearing::new()))
            .collect(),
        checked: Instant::now(),
        delivery: Delivery {
            handler,
            outbox: Outbox::new(Arc::clone(&shared)),
        },
        shared,
        watch,
        heartbeat,
    };
    receiving.run();
}

/// The receiving thread's state.
struct Receiving {
    shared: Arc<Shared>,
    watch: DeathWatch,
    heartbeat: Heartbeat,
    delivery: Delivery,
    /// What was heard of each worker.
    hearing: HashMap<Rank, Hearing>,
    /// When silences were last checked.
    checked: Instant,
}

/// The handler and the outbox it answers through.
struct Delivery {
    handler: Handler,
    outbox: Outbox,
}

impl Delivery {
    /// Hands one event to the handler; a panic there is logged and contained, so that the
    /// thread goes on delivering the others.
    fn deliver(&mut self, rank: Rank, event: Event) {
        let Delivery { handler, outbox } = self;
        if std::panic::catch_unwind(AssertUnwindSafe(|| handler(outbox, rank, event))).is_err() {
            log::error!(target: "concurrent_futures", "an MPI event handler panicked (rank {rank})");
        }
    }
}

impl Receiving {
    fn run(&mut self) {
        let mut backoff = Backoff::default();
        let mut idle: u32 = 0;
        while !self.shared.stop.load(Ordering::Acquire) {
            let received = match self.receive_one(None) {
                Ok(received) => received,
                Err(error) => {
                    for rank in self.shared.alive() {
                        self.shared.set(rank, Standing::Dead);
                        self.delivery.deliver(rank, Event::Failed(error.clone()));
                    }
                    return;
                }
            };
            let sent = self.progress_sends();
            if self.checked.elapsed() >= self.heartbeat.interval {
                self.check_silences();
            }
            if received | sent {
                backoff.reset();
                continue;
            }
            let pause = backoff.next_pause();
            idle = idle.wrapping_add(1);
            let ended = if pause.is_zero() {
                // A poll of the pidfds does not give up the core: on a machine with more ranks
                // than cores, the worker this thread waits for may need it. So the yields come
                // first, and the pidfds are polled only every 16th time.
                std::thread::yield_now();
                if idle & 15 == 0 {
                    self.watch.wait(pause)
                } else {
                    Vec::new()
                }
            } else {
                self.watch.wait(pause)
            };
            for rank in ended {
                // What it sent before it died may be waiting still: deliver that first.
                self.drain(rank);
                self.gone(rank, true);
            }
        }
    }

    /// Receives and delivers one message from `source` (or any worker) if one is waiting;
    /// `Ok(false)` if none was. A sender that dies, or stops pulsing, while its message comes
    /// is counted out here (a receive that waits for it would wait for good); one that goes on
    /// pulsing is waited for, however long its message takes.
    fn receive_one(&mut self, source: Option<Rank>) -> Result<bool, MpiError> {
        let comm = self.shared.comm;
        let limit = self.heartbeat.limit;
        let watch = &mut self.watch;
        let mut died = false;
        let mut pulsed = Instant::now();
        let received = sys::try_receive(comm, source, None, |sender| {
            if drain_pulses(comm, sender) {
                pulsed = Instant::now();
            }
            died |= watch.has_ended(sender);
            died || pulsed.elapsed() > limit
        });
        let (rank, tag, bytes) = match received {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(false),
            Err(MpiError::WorkerGone(rank)) => {
                self.gone(rank, died);
                return Ok(true);
            }
            Err(error) => return Err(error),
        };
        self.hearing
            .entry(rank)
            .or_insert_with(Hearing::new)
            .heard();
        match tag {
            tag::DATA => self.delivery.deliver(rank, Event::Message(bytes)),
            tag::GOODBYE => {
                let code = bytes
                    .first_chunk::<4>()
                    .map_or(0, |b| i32::from_le_bytes(*b));
                self.shared.set(rank, Standing::Left);
                self.delivery.deliver(rank, Event::Left { code });
            }
            _ => {}
        }
        Ok(true)
    }

    /// Receives everything waiting from `rank`, probing until a few probes in a row find
    /// nothing (MPI moves a waiting message along only as it is probed); whether anything came.
    fn drain(&mut self, rank: Rank) -> bool {
        let mut found = false;
        let mut empty = 0;
        while empty < EMPTY_PROBES {
            match self.receive_one(Some(rank)) {
                Ok(true) => {
                    found = true;
                    empty = 0;
                }
                Ok(false) => {
                    empty += 1;
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
        found
    }

    /// Counts worker `rank` out, unless it is already: [`Event::Died`] if its process ended,
    /// else [`Event::Silent`] (and, on this host, its process is killed: presumed dead, made
    /// so, so that a frozen process cannot wake up to serve a pool that counted it out, nor
    /// outlive the pool).
    fn gone(&mut self, rank: Rank, died: bool) {
        if self.shared.standing(rank) != Some(Standing::Alive) {
            return;
        }
        self.shared.set(rank, Standing::Dead);
        let member = self.shared.member(rank);
        let event = if died {
            Event::Died {
                host: member.host,
                pid: member.pid,
                status: None,
            }
        } else {
            if member.host == self.shared.here {
                deathwatch::kill(member.pid);
            }
            let after = self
                .hearing
                .get(&rank)
                .map_or(Duration::ZERO, Hearing::silent_for);
            Event::Silent {
                host: member.host,
                pid: member.pid,
                after,
            }
        };
        self.delivery.deliver(rank, event);
    }

    /// Counts out each living worker silent past the heartbeat: nothing from it for longer
    /// than the limit, and nothing found by probing it for a whole interval since.
    fn check_silences(&mut self) {
        self.checked = Instant::now();
        for rank in self.shared.alive() {
            let overdue = self
                .hearing
                .get(&rank)
                .is_none_or(|hearing| hearing.silent_for() > self.heartbeat.limit);
            if !overdue {
                continue;
            }
            // Its pulses may have queued up while this thread was busy (a slow callback).
            if self.drain(rank) {
                continue;
            }
            let hearing = self.hearing.entry(rank).or_insert_with(Hearing::new);
            hearing.found_nothing();
            if hearing.is_silent(self.heartbeat) {
                self.gone(rank, false);
            }
        }
    }

    /// Tests the sends under way; `true` if one finished. A send to a worker that is no longer
    /// alive is given up (its buffer leaked: MPI may hold it for good); one that fails is
    /// reported as its worker's [`Event::Failed`].
    fn progress_sends(&mut self) -> bool {
        let shared = &self.shared;
        let mut failed = Vec::new();
        let mut finished = false;
        shared.sending().retain_mut(|send| {
            if shared.standing(send.dest()) != Some(Standing::Alive) {
                return false;
            }
            match send.test() {
                Ok(done) => {
                    finished |= done;
                    !done
                }
                Err(error) => {
                    failed.push((send.dest(), error));
                    false
                }
            }
        });
        for (rank, error) in failed {
            self.shared.set(rank, Standing::Dead);
            self.delivery.deliver(rank, Event::Failed(error));
        }
        finished
    }
}

/// Receives the pulses waiting from `rank` (tiny, so each comes whole at once); whether any
/// did. A pulse may be matched ahead of an earlier, larger message that is still coming.
pub(crate) fn drain_pulses(comm: sys::Comm, rank: Rank) -> bool {
    let mut any = false;
    while let Ok(Some(_)) = sys::try_receive(comm, Some(rank), Some(tag::PULSE), |_| false) {
        any = true;
    }
    any
}

/// Empty probes in a row after which nothing more is waiting from a worker.
const EMPTY_PROBES: u32 = 16;
