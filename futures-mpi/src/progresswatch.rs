//! Watching the receiving thread itself: a thread that never calls MPI sees it stop moving.
//!
//! Every MPI call of the receiving thread is non-blocking and returns in microseconds, so its
//! rounds follow each other at least every millisecond or so. They stop only when a call never
//! returns, and one case is known: with Open MPI 4.1, when a worker dies while a large message
//! to it is under way on the TCP transport, the failed write closes the connection while
//! holding its lock, and the completion run from there sends on the same connection, waiting
//! for that lock for good. The receiving thread is then stuck inside MPI: it judges no death
//! and no silence, and delivers nothing.
//!
//! The deadlock takes whichever thread runs Open MPI's progress at the failure; so while the
//! workers run, the receiving thread and the heartbeat thread (tiny pulses, which must not
//! wait for the receiving thread) are the only ones that call MPI (every other send is posted
//! to the receiving thread). A caller of `Workers::send` holding the pool's own lock, or the
//! event thread, stuck inside MPI, could not have acted on the verdict.
//!
//! So a small thread counts the receiving thread's rounds, and times the heartbeat thread's MPI
//! calls. When the receiving thread has ended no round, or the heartbeat thread has been in one
//! call, for the stall limit, MPI is declared wedged in this process: every worker still counted alive is reported
//! (as [`Event::Died`] if it was on this host and its process has ended, otherwise as
//! [`Event::Failed`] with [`MpiError::Stuck`]), nothing more is delivered, sends are refused,
//! and the workers' shutdown makes no MPI call: it kills those on this host, and those on
//! other hosts leave once they stop hearing the pool's heartbeat. MPI is not finalized
//! afterwards, and no later pool starts in this process.

use crate::deathwatch;
use crate::receiver::Event;
use crate::watchdog;
use crate::workers::{Events, Shared, Standing};
use crate::{MpiError, Rank};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The call named in the [`MpiError::Stuck`] of a wedged receiving thread.
pub(crate) const STUCK_CALL: &str = "an MPI call of the pool's receiving thread (Open MPI's TCP transport, after a worker died \
     in the middle of a transfer)";

/// The shortest stall limit: longer than any pause a loaded machine gives a running thread.
const MIN_STALL_LIMIT: Duration = Duration::from_secs(5);

/// Set once MPI was declared wedged in this process: no pool starts after that.
static WEDGED: AtomicBool = AtomicBool::new(false);
/// The stall limit of that verdict, in milliseconds (for the error of a later start).
static WEDGED_AFTER_MS: AtomicU64 = AtomicU64::new(0);

/// The error for a start after MPI was declared wedged in this process, if it was.
pub(crate) fn refusal() -> Option<MpiError> {
    WEDGED.load(Ordering::Acquire).then(|| MpiError::Stuck {
        call: STUCK_CALL,
        after: Duration::from_millis(WEDGED_AFTER_MS.load(Ordering::Acquire)),
    })
}

/// How long the receiving thread may end no round before MPI counts as wedged: the heartbeat
/// timeout (a silence that long counts a worker dead too), and at least 5 s.
pub(crate) fn stall_limit(heartbeat_timeout: Duration) -> Duration {
    heartbeat_timeout.max(MIN_STALL_LIMIT)
}

/// The watching thread; [`ProgressWatch::stop`] (or dropping it) ends it.
#[derive(Debug)]
pub(crate) struct ProgressWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressWatch {
    /// Starts watching `shared.rounds`; a verdict goes to `events`, as the receiving thread's
    /// own events do.
    pub(crate) fn start(
        shared: Arc<Shared>,
        events: Events,
        limit: Duration,
    ) -> std::io::Result<ProgressWatch> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_there = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("cf-mpi-progress".into())
            .spawn(move || watch(&shared, &stop_there, &events, limit))?;
        Ok(ProgressWatch {
            stop,
            thread: Some(thread),
        })
    }

    /// Ends the thread and waits for it; it never calls MPI, so this returns at once.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for ProgressWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's body: wakes ten times per limit until told to stop.
fn watch(shared: &Shared, stop: &AtomicBool, events: &Events, limit: Duration) {
    let mut seen = shared.rounds.load(Ordering::Acquire);
    let mut moved = Instant::now();
    // A receiving thread that ended is not stuck. Once the receiving thread has ended (stopped, or after an MPI error it reported to every
    // worker), the watch ends too, and lets go of its end of the events' channel.
    while !stop.load(Ordering::Acquire) && !shared.receiving_ended.load(Ordering::Acquire) {
        std::thread::park_timeout(limit / 10);
        let rounds = shared.rounds.load(Ordering::Acquire);
        if rounds != seen {
            seen = rounds;
            moved = Instant::now();
        }
        let receiving_stuck =
            moved.elapsed() >= limit && !shared.receiving_ended.load(Ordering::Acquire);
        let beater_stuck = shared.beater_in_mpi.stuck_for().is_some_and(|t| t >= limit);
        if (receiving_stuck || beater_stuck) && !stop.load(Ordering::Acquire) {
            declare_wedged(shared, events, limit);
            return;
        }
    }
}

/// The verdict: see the module's docs.
fn declare_wedged(shared: &Shared, events: &Events, limit: Duration) {
    // No event of the receiving thread's after these reports (see `Delivery::deliver`).
    let _delivering = shared.delivering();
    WEDGED_AFTER_MS.store(limit.as_millis() as u64, Ordering::Release);
    WEDGED.store(true, Ordering::Release);
    // Finalizing under the stuck call could hang too.
    watchdog::abandon();
    shared.wedged.store(true, Ordering::Release);
    log::error!(
        target: "concurrent_futures",
        "the MPI receiving thread made no progress for {limit:?}: MPI is wedged in this process"
    );
    let mut reports: Vec<(Rank, Event)> = Vec::new();
    for rank in shared.alive() {
        // Counted out first: the receiving thread delivers nothing from a dead rank, should it
        // come back after all.
        shared.set(rank, Standing::Dead);
        let member = shared.member(rank);
        let ended =
            member.host == shared.here && deathwatch::wait_for_exit(member.pid, Duration::ZERO);
        let event = if ended {
            Event::Died {
                host: member.host,
                pid: member.pid,
                status: None,
            }
        } else {
            Event::Failed(MpiError::Stuck {
                call: STUCK_CALL,
                after: limit,
            })
        };
        reports.push((rank, event));
    }
    // The deaths first: the pool breaks with the first reason it gets, and a death is the cause.
    reports.sort_by_key(|(_, event)| !matches!(event, Event::Died { .. }));
    for (rank, event) in reports {
        events.send(rank, event);
    }
}
