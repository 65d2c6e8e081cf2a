//! The pool's one progress thread, and, beside the heartbeat thread's pulses, its only thread
//! that calls MPI while the workers run: every message from any worker, and every local
//! worker's death, handed to the pool's event handler as [`Event`]s in the order they happened;
//! and every message posted to a worker (`Workers::send`, the `Outbox`, the leave messages),
//! sent in the order posted and tested until MPI has finished it.
//!
//! It never blocks on one rank (a receive from a dead rank never returns): it probes for a
//! message from any source, tests the receives and sends under way (a large message comes in
//! over many rounds, and a sender that dies or stops pulsing meanwhile is counted out), and
//! between polls waits on the local workers' pidfds, so that a death wakes it at once. It runs
//! no user code: events go over a channel (to the caller of `Workers::start`, or to the event
//! thread of `Workers::start_with`); the pool's own handler, which runs here first, completes
//! the futures of small results (their `Deserialize` is the one exception) and leaves their
//! callbacks to the event thread. Each round is counted, for the progress watch.

use crate::backoff::Backoff;
use crate::deathwatch::{self, DeathWatch};
use crate::heartbeat::{Hearing, Heartbeat};
use crate::sys::{self, tag};
use crate::workers::{Outbox, Shared, Standing};
use crate::{MpiError, Rank};
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The receiving thread's name.
pub(crate) const THREAD_NAME: &str = "cf-mpi-receiver";

/// What the thread hands each event to, with the outbox to answer through.
pub(crate) type Handler = Box<dyn FnMut(&Outbox, Rank, Event) + Send>;

/// What happened to a worker, as the receiving thread saw it. Its `Debug` shows a message's
/// length and first bytes, not all of them.
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Message(bytes) if bytes.len() > 32 => {
                write!(f, "Message({:?}.. {} bytes)", &bytes[..32], bytes.len())
            }
            Event::Message(bytes) => f.debug_tuple("Message").field(bytes).finish(),
            Event::Died { host, pid, status } => f
                .debug_struct("Died")
                .field("host", host)
                .field("pid", pid)
                .field("status", status)
                .finish(),
            Event::Silent { host, pid, after } => f
                .debug_struct("Silent")
                .field("host", host)
                .field("pid", pid)
                .field("after", after)
                .finish(),
            Event::Left { code } => f.debug_struct("Left").field("code", code).finish(),
            Event::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

/// The thread's body: runs until the pool stops it.
pub(crate) fn run(shared: Arc<Shared>, watch: DeathWatch, heartbeat: Heartbeat, handler: Handler) {
    #[cfg(feature = "test-support")]
    let _counted = crate::test_support::Receiving::enter();
    let mut receiving = Receiving {
        hearing: shared
            .alive()
            .into_iter()
            .map(|rank| (rank, Hearing::new()))
            .collect(),
        checked: Instant::now(),
        incoming: HashMap::new(),
        delivery: Delivery {
            shared: Arc::clone(&shared),
            handler,
            outbox: Outbox::new(Arc::clone(&shared)),
        },
        sending: Vec::new(),
        shared,
        watch,
        heartbeat,
    };
    receiving.run();
}

/// Tells the progress watch that the receiving thread has ended, however it ends.
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.receiving_ended.store(true, Ordering::Release);
        // No one is left to send what is posted: later posts are refused, not queued for good.
        self.0.close_outgoing();
    }
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
    /// Each worker's messages matched and still coming, in the order it sent them.
    incoming: HashMap<Rank, VecDeque<Coming>>,
    /// The sends MPI has not finished yet.
    sending: Vec<sys::Sending>,
}

/// A message still coming, and when its sender was last heard pulsing.
struct Coming {
    incoming: sys::Incoming,
    pulsed: Instant,
}

/// The handler and the outbox it answers through.
struct Delivery {
    shared: Arc<Shared>,
    handler: Handler,
    outbox: Outbox,
}

impl Delivery {
    /// Hands one event to the handler; a panic there is logged and contained, so that the
    /// thread goes on delivering the others.
    fn deliver(&mut self, rank: Rank, event: Event) {
        let Delivery {
            shared,
            handler,
            outbox,
        } = self;
        // Nothing after the progress watch's verdict, should a stuck call come back: its
        // reports were the last events (the check and the hand-off under the lock it takes).
        let _delivering = shared.delivering();
        if shared.wedged.load(Ordering::Acquire) {
            return;
        }
        if std::panic::catch_unwind(AssertUnwindSafe(|| handler(outbox, rank, event))).is_err() {
            log::error!(target: "concurrent_futures", "an MPI event handler panicked (rank {rank})");
        }
    }
}

impl Receiving {
    fn run(&mut self) {
        let shared = Arc::clone(&self.shared);
        let _ended = Ended(&shared);
        let mut backoff = Backoff::default();
        let mut idle: u32 = 0;
        // Once wedged (see `progresswatch`), the pool was told; should a stuck call come back
        // after all, this thread ends.
        while !self.shared.stop.load(Ordering::Acquire)
            && !self.shared.wedged.load(Ordering::Acquire)
        {
            self.shared.rounds.fetch_add(1, Ordering::Release);
            let posted = self.start_posted();
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
            let coming = match self.progress_incoming() {
                Ok(progress) => progress,
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
            if posted | received | coming | sent {
                backoff.reset();
                continue;
            }
            // A message under way moves along only inside MPI calls: while one comes or goes,
            // this thread yields between rounds but never pauses.
            let transferring =
                !self.sending.is_empty() || self.incoming.values().any(|q| !q.is_empty());
            let pause = if transferring {
                Duration::ZERO
            } else {
                backoff.next_pause()
            };
            idle = idle.wrapping_add(1);
            let ended = if pause.is_zero() {
                // A poll of the pidfds does not give up the core: on a machine with more ranks
                // than cores, the worker this thread waits for may need it. So the yields come
                // first, and the pidfds are polled only every 16th time.
                std::thread::yield_now();
                if idle & 15 == 0 {
                    self.watch.wait(pause, None)
                } else {
                    Vec::new()
                }
            } else {
                self.pause(pause)
            };
            for rank in ended {
                if self.shared.standing(rank) != Some(Standing::Alive) {
                    continue;
                }
                // What it sent before it died may be waiting still: deliver that first.
                self.drain(rank);
                self.gone(rank, true);
            }
        }
    }

    /// Waits up to `pause` for a local worker to end or a message to be posted (see
    /// [`crate::doorbell`]); the workers that ended.
    fn pause(&mut self, pause: Duration) -> Vec<Rank> {
        let doorbell = &self.shared.doorbell;
        doorbell.pausing();
        let ended = if self.shared.outgoing().is_empty() {
            self.watch.wait(pause, doorbell.fd())
        } else {
            Vec::new()
        };
        doorbell.resumed();
        ended
    }

    /// Starts sending what was posted, in order; `true` if anything was. A message to a worker
    /// no longer alive is dropped, and so is one to a worker on this host whose process has
    /// ended (it is counted out first): a send to a dead peer can wedge Open MPI's TCP
    /// transport (see [`crate::progresswatch`]), and a busy thread polls the pidfds seldom.
    /// One MPI fails to start is reported as its worker's [`Event::Failed`].
    fn start_posted(&mut self) -> bool {
        let posted = std::mem::take(&mut *self.shared.outgoing());
        if posted.is_empty() {
            return false;
        }
        let mut checked: Vec<Rank> = Vec::new();
        for message in posted {
            if !checked.contains(&message.rank) {
                checked.push(message.rank);
                if self.watch.has_ended(message.rank)
                    && self.shared.standing(message.rank) == Some(Standing::Alive)
                {
                    // What it sent before it died may be waiting still: deliver that first.
                    self.drain(message.rank);
                    self.gone(message.rank, true);
                }
            }
            if self.shared.standing(message.rank) != Some(Standing::Alive) {
                continue;
            }
            match sys::start_send(self.shared.comm, message.rank, message.tag, message.bytes) {
                Ok(Some(sending)) => self.sending.push(sending),
                Ok(None) => {}
                Err(error) => {
                    self.shared.set(message.rank, Standing::Dead);
                    self.delivery.deliver(message.rank, Event::Failed(error));
                }
            }
        }
        true
    }

    /// Takes one message from `source` (or any worker) if one is waiting, and delivers it once
    /// it has all come, after every earlier one from its sender; `Ok(false)` if none was
    /// waiting. A large message still coming is left to [`Self::progress_incoming`], so that
    /// one slow (or frozen) sender holds up no other.
    fn receive_one(&mut self, source: Option<Rank>) -> Result<bool, MpiError> {
        let Some(mut incoming) = sys::start_receive(self.shared.comm, source, None)? else {
            return Ok(false);
        };
        let sender = incoming.sender;
        // It was alive when it sent this.
        self.hearing
            .entry(sender)
            .or_insert_with(Hearing::new)
            .heard();
        let queue = self.incoming.entry(sender).or_default();
        if let Some(front) = queue.front_mut() {
            // Anything from the sender of a message still coming says it is alive.
            front.pulsed = Instant::now();
        }
        if incoming.tag == tag::PULSE {
            // Nothing to deliver; it comes whole at once (if not, it is leaked when dropped).
            let _ = incoming.test()?;
            return Ok(true);
        }
        if queue.is_empty() && incoming.test()? {
            let (rank, tag, bytes) = incoming.take();
            self.handle(rank, tag, bytes);
        } else {
            queue.push_back(Coming {
                incoming,
                pulsed: Instant::now(),
            });
        }
        Ok(true)
    }

    /// Hands a whole message to the handler, as the event its tag makes it; nothing from a
    /// worker already counted out (it was reported dead: nothing may follow that).
    fn handle(&mut self, rank: Rank, tag: i32, bytes: Vec<u8>) {
        if self.shared.standing(rank) == Some(Standing::Dead) {
            return;
        }
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
    }

    /// Delivers, in order, the messages from `rank` that have all come; `Ok(true)` if one did.
    fn flush(&mut self, rank: Rank) -> Result<bool, MpiError> {
        let mut delivered = false;
        loop {
            let Some(queue) = self.incoming.get_mut(&rank) else {
                return Ok(delivered);
            };
            let Some(front) = queue.front_mut() else {
                return Ok(delivered);
            };
            if !front.incoming.test()? {
                return Ok(delivered);
            }
            let coming = queue.pop_front().expect("a front");
            let (rank, tag, bytes) = coming.incoming.take();
            self.handle(rank, tag, bytes);
            delivered = true;
        }
    }

    /// Moves the large messages still coming along: delivers those that have all come, and
    /// counts out a sender that died, or stopped pulsing, while its message came (the message
    /// is given up, its buffer leaked); `Ok(true)` on progress.
    fn progress_incoming(&mut self) -> Result<bool, MpiError> {
        let senders: Vec<Rank> = self
            .incoming
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(rank, _)| *rank)
            .collect();
        let mut progress = false;
        for rank in senders {
            progress |= self.flush(rank)?;
            let comm = self.shared.comm;
            let Some(front) = self.incoming.get_mut(&rank).and_then(VecDeque::front_mut) else {
                continue;
            };
            // Its pulses come by as separate small messages, matched ahead of this one.
            if drain_pulses(comm, rank) {
                front.pulsed = Instant::now();
            }
            let died = self.watch.has_ended(rank);
            let limit = self.heartbeat.limit_while_coming(front.incoming.len());
            if died || front.pulsed.elapsed() > limit {
                self.gone(rank, died);
                progress = true;
            }
        }
        Ok(progress)
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
        // What has all come is delivered; the rest never will (leaked: see `Incoming`).
        let _ = self.flush(rank);
        self.incoming.remove(&rank);
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
            // A worker whose message is still coming is judged by `progress_incoming`, which
            // gives a large message its time (its pulses queue up behind it).
            let coming = self.incoming.get(&rank).is_some_and(|q| !q.is_empty());
            if !overdue || coming {
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
        self.sending.retain_mut(|send| {
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
    while let Ok(Some(_)) = sys::try_receive(comm, Some(rank), Some(tag::PULSE), |_, _| false) {
        any = true;
    }
    any
}

/// Empty probes in a row after which nothing more is waiting from a worker.
const EMPTY_PROBES: u32 = 16;
