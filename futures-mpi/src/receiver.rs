//! The pool's one receiving thread: every message from any worker, and every local worker's
//! death, delivered as [`Event`]s over a channel in the order they happened.
//!
//! It never blocks on one rank (a receive from a dead rank never returns): it probes for a
//! message from any source, and between probes waits on the local workers' pidfds, so that a
//! death wakes it at once.

use crate::backoff::Backoff;
use crate::deathwatch::DeathWatch;
use crate::sys::{self, tag};
use crate::workers::{Shared, Standing};
use crate::{MpiError, Rank};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;

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
    /// The worker said goodbye (after being asked to leave, or because its serve closure
    /// returned): its exit code.
    Left {
        /// The serve closure's return value.
        code: i32,
    },
    /// MPI failed in the receiving thread, which has stopped: nothing more will come from this
    /// worker.
    Failed(MpiError),
}

/// The thread's body: runs until the pool stops it.
pub(crate) fn run(shared: Arc<Shared>, mut watch: DeathWatch, events: Sender<(Rank, Event)>) {
    let mut backoff = Backoff::default();
    while !shared.stop.load(Ordering::Acquire) {
        match receive_one(&shared, &events) {
            Ok(true) => {
                backoff.reset();
                continue;
            }
            Ok(false) => {}
            Err(error) => {
                for rank in shared.alive() {
                    shared.set(rank, Standing::Dead);
                    let _ = events.send((rank, Event::Failed(error.clone())));
                }
                return;
            }
        }
        for rank in watch.wait(backoff.next_pause()) {
            // What it sent before it died may be waiting still: deliver that first.
            while let Ok(true) = receive_one(&shared, &events) {}
            if shared.standing(rank) == Some(Standing::Alive) {
                shared.set(rank, Standing::Dead);
                let member = shared.member(rank);
                let _ = events.send((
                    rank,
                    Event::Died {
                        host: member.host,
                        pid: member.pid,
                        status: None,
                    },
                ));
            }
        }
    }
}

/// Receives and delivers one message if one is waiting; `Ok(false)` if none was.
fn receive_one(shared: &Shared, events: &Sender<(Rank, Event)>) -> Result<bool, MpiError> {
    let Some((rank, tag, bytes)) = sys::try_receive(shared.comm, None)? else {
        return Ok(false);
    };
    match tag {
        tag::DATA => {
            let _ = events.send((rank, Event::Message(bytes)));
        }
        tag::GOODBYE => {
            let code = bytes
                .first_chunk::<4>()
                .map_or(0, |b| i32::from_le_bytes(*b));
            shared.set(rank, Standing::Left);
            let _ = events.send((rank, Event::Left { code }));
        }
        _ => {}
    }
    Ok(true)
}
