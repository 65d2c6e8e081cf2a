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
use crate::heartbeat::Heartbeat;
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
pub(crate) fn run(
    shared: Arc<Shared>,
    mut watch: DeathWatch,
    heartbeat: Heartbeat,
    handler: Handler,
) {
    let mut handler = Delivery {
        handler,
        outbox: Outbox::new(Arc::clone(&shared)),
    };
    let mut backoff = Backoff::default();
    let mut heard = Heard::new(&shared.alive());
    let mut idle: u32 = 0;
    while !shared.stop.load(Ordering::Acquire) {
        let received = match receive_one(&shared, &mut handler, &mut heard, None) {
            Ok(received) => received,
            Err(error) => {
                for rank in shared.alive() {
                    shared.set(rank, Standing::Dead);
                    deliver(&mut handler, rank, Event::Failed(error.clone()));
                }
                return;
            }
        };
        let sent = progress_sends(&shared, &mut handler);
        if heard.checked.elapsed() >= heartbeat.interval {
            check_silences(&shared, &mut handler, &mut heard, heartbeat.limit);
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
                watch.wait(pause)
            } else {
                Vec::new()
            }
        } else {
            watch.wait(pause)
        };
        for rank in ended {
            // What it sent before it died may be waiting still: deliver that first.
            while let Ok(true) = receive_one(&shared, &mut handler, &mut heard, Some(rank)) {}
            if shared.standing(rank) == Some(Standing::Alive) {
                shared.set(rank, Standing::Dead);
                let member = shared.member(rank);
                let died = Event::Died {
                    host: member.host,
                    pid: member.pid,
                    status: None,
                };
                deliver(&mut handler, rank, died);
            }
        }
    }
}

/// When each worker was last heard from, and when silences were last checked.
struct Heard {
    at: HashMap<Rank, Instant>,
    checked: Instant,
}

impl Heard {
    fn new(ranks: &[Rank]) -> Heard {
        let now = Instant::now();
        Heard {
            at: ranks.iter().map(|rank| (*rank, now)).collect(),
            checked: now,
        }
    }
}

/// Reports each living worker silent for longer than `limit` as [`Event::Silent`] (and kills
/// it if it runs on this host), once whatever it sent that is still waiting has been read.
fn check_silences(shared: &Shared, handler: &mut Delivery, heard: &mut Heard, limit: Duration) {
    heard.checked = Instant::now();
    for rank in shared.alive() {
        let since = heard.at.get(&rank).copied().unwrap_or(heard.checked);
        if since.elapsed() <= limit {
            continue;
        }
        // Its pulses may have queued up while this thread was busy (a slow done-callback).
        let mut fresh = false;
        while let Ok(true) = receive_one(shared, handler, heard, Some(rank)) {
            fresh = true;
        }
        if fresh || shared.standing(rank) != Some(Standing::Alive) {
            continue;
        }
        shared.set(rank, Standing::Dead);
        let member = shared.member(rank);
        if member.host == shared.here {
            // Presumed dead, made so: a frozen process must not wake up to serve a pool that
            // has counted it out, nor outlive the pool.
            deathwatch::kill(member.pid);
        }
        let silent = Event::Silent {
            host: member.host,
            pid: member.pid,
            after: since.elapsed(),
        };
        deliver(handler, rank, silent);
    }
}

/// The handler and the outbox it answers through.
pub(crate) struct Delivery {
    handler: Handler,
    outbox: Outbox,
}

/// Hands one event to the handler; a panic there is logged and contained, so that the thread
/// goes on delivering the others.
fn deliver(handler: &mut Delivery, rank: Rank, event: Event) {
    let Delivery { handler, outbox } = handler;
    if std::panic::catch_unwind(AssertUnwindSafe(|| handler(outbox, rank, event))).is_err() {
        log::error!(target: "concurrent_futures", "an MPI event handler panicked (rank {rank})");
    }
}

/// Receives and delivers one message from `source` (or any worker) if one is waiting;
/// `Ok(false)` if none was.
fn receive_one(
    shared: &Shared,
    handler: &mut Delivery,
    heard: &mut Heard,
    source: Option<Rank>,
) -> Result<bool, MpiError> {
    let Some((rank, tag, bytes)) = sys::try_receive(shared.comm, source, None)? else {
        return Ok(false);
    };
    heard.at.insert(rank, Instant::now());
    match tag {
        tag::DATA => deliver(handler, rank, Event::Message(bytes)),
        tag::GOODBYE => {
            let code = bytes
                .first_chunk::<4>()
                .map_or(0, |b| i32::from_le_bytes(*b));
            shared.set(rank, Standing::Left);
            deliver(handler, rank, Event::Left { code });
        }
        _ => {}
    }
    Ok(true)
}

/// Tests the sends under way; `true` if one finished. A send to a worker that is no longer
/// alive is given up (its buffer leaked: MPI may hold it for good); one that fails is reported
/// as its worker's [`Event::Failed`].
fn progress_sends(shared: &Shared, handler: &mut Delivery) -> bool {
    let mut failed = Vec::new();
    let mut finished = false;
    {
        let mut sending = shared.sending();
        sending.retain_mut(|send| {
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
    }
    for (rank, error) in failed {
        shared.set(rank, Standing::Dead);
        deliver(handler, rank, Event::Failed(error));
    }
    finished
}
