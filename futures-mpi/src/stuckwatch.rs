//! A worker's watch over its own MPI calls: a worker stuck inside MPI exits.
//!
//! The deadlock that [`crate::progresswatch`] watches for in the pool's process takes a worker
//! too, the other way round. When the pool dies while a large message from the worker is on its
//! way to it over Open MPI 4.1's TCP transport (which joins ranks on different hosts, and a
//! pool to the workers it spawned), the worker's failed write closes the connection while holding its
//! lock, and the completion run from there sends on the same connection: the worker's serving
//! thread waits for that lock for good, and so does its heartbeat thread at its next pulse.
//! The worker's own judgements of the pool (its pidfd, the silence of its heartbeat) are made
//! by the stuck thread, so nothing would end it: under `mpirun --enable-recovery` it would
//! outlive its pool and hold `mpirun` up for good.
//!
//! So both threads of a worker that call MPI mark the time they entered MPI ([`InMpi`]), and
//! mark it again after each call of a transfer they poll; and a small thread that never calls
//! MPI checks both marks ten times per stall limit (the pool's heartbeat timeout, at least 5 s,
//! as in the pool's process; 30 s until the pool's welcome names its heartbeat). A mark older than the limit, found so at two checks in a row (a
//! worker just woken from `SIGSTOP` gets the time of one check to move on), means MPI is wedged
//! in this process. Nothing can be said to the pool (the stuck threads hold MPI's lock), and
//! nothing that runs at exit may call into MPI, so the worker writes one line to standard error
//! (given a second at most: nothing may stop the exit) and ends, with
//! `_exit(`[`STUCK_EXIT_CODE`]`)`. A pool still alive sees that as any
//! other death of a worker.

use crate::Rank;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A worker found stuck inside MPI exits with this code (`EX_SOFTWARE`).
pub(crate) const STUCK_EXIT_CODE: i32 = 70;

/// When one thread entered MPI, if it is inside: milliseconds since `start`, plus one, or 0
/// when it is in no MPI call. A watch judges a call that never returns.
#[derive(Debug)]
pub(crate) struct InMpi {
    since: AtomicU64,
    start: Instant,
}

impl InMpi {
    pub(crate) fn new() -> InMpi {
        InMpi {
            since: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Now, as a mark.
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// Runs `calls` (MPI calls, each non-blocking), marked as inside MPI meanwhile. Nested in
    /// another `around` of the same thread (a polled send that reads pulses between its
    /// tests), it leaves the outer one marked as of its own end.
    pub(crate) fn around<T>(&self, calls: impl FnOnce() -> T) -> T {
        /// Ends the mark, also when `calls` unwinds.
        struct Mark<'a> {
            clock: &'a InMpi,
            outer: u64,
        }
        impl Drop for Mark<'_> {
            fn drop(&mut self) {
                let after = if self.outer == 0 { 0 } else { self.clock.now() };
                self.clock.since.store(after, Ordering::Release);
            }
        }
        let outer = self.since.swap(self.now(), Ordering::AcqRel);
        let _mark = Mark { clock: self, outer };
        calls()
    }

    /// Between two calls of a transfer polled inside [`InMpi::around`]: the last one
    /// returned.
    pub(crate) fn returned(&self) {
        if self.since.load(Ordering::Acquire) != 0 {
            self.since.store(self.now(), Ordering::Release);
        }
    }

    /// The current mark (0: in no MPI call).
    fn mark(&self) -> u64 {
        self.since.load(Ordering::Acquire)
    }

    /// How long the thread has been in its current MPI call, if it is in one.
    pub(crate) fn stuck_for(&self) -> Option<Duration> {
        self.inside_for(self.mark())
    }

    /// How long ago `mark` was made, unless it says "in no MPI call".
    fn inside_for(&self, mark: u64) -> Option<Duration> {
        (mark != 0).then(|| {
            self.start
                .elapsed()
                .saturating_sub(Duration::from_millis(mark - 1))
        })
    }
}

/// What a worker's two MPI-calling threads mark, and what the watch reads.
#[derive(Debug)]
pub(crate) struct Clocks {
    /// The serving thread's (the one that runs `serve` over the link).
    pub(crate) serving: InMpi,
    /// The heartbeat thread's.
    pub(crate) pulsing: InMpi,
    /// The stall limit, in milliseconds.
    limit_ms: AtomicU64,
    stop: AtomicBool,
}

impl Clocks {
    fn set_limit(&self, limit: Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        self.limit_ms.store(ms, Ordering::Release);
    }
}

/// The watching thread; [`StuckWatch::stop`] (or dropping it) ends it.
#[derive(Debug)]
pub(crate) struct StuckWatch {
    clocks: Arc<Clocks>,
    thread: Option<JoinHandle<()>>,
}

impl StuckWatch {
    /// Starts watching worker `rank`'s clocks with the stall limit `limit`. If the thread
    /// cannot start, the clocks still tick, unwatched: the worker serves as it did before this
    /// watch existed.
    pub(crate) fn start(rank: Rank, limit: Duration) -> StuckWatch {
        let clocks = Arc::new(Clocks {
            serving: InMpi::new(),
            pulsing: InMpi::new(),
            limit_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        clocks.set_limit(limit);
        let watched = Arc::clone(&clocks);
        let thread = std::thread::Builder::new()
            .name("cf-mpi-stuck".into())
            .spawn(move || run(&watched, rank))
            .ok();
        StuckWatch { clocks, thread }
    }

    /// The clocks the worker's threads mark.
    pub(crate) fn clocks(&self) -> &Arc<Clocks> {
        &self.clocks
    }

    /// Sets the stall limit (the pool's welcome names its heartbeat).
    pub(crate) fn set_limit(&self, limit: Duration) {
        self.clocks.set_limit(limit);
    }

    /// Ends the thread and waits for it; it never calls MPI, so this returns at once.
    pub(crate) fn stop(&mut self) {
        self.clocks.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for StuckWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's body: checks the clocks ten times per limit until told to stop.
fn run(clocks: &Clocks, rank: Rank) {
    // The mark of each clock that was past the limit at the last check (0: none was).
    let mut suspects = [0u64; 2];
    while !clocks.stop.load(Ordering::Acquire) {
        let limit = Duration::from_millis(clocks.limit_ms.load(Ordering::Acquire));
        std::thread::park_timeout(limit / 10);
        if clocks.stop.load(Ordering::Acquire) {
            return;
        }
        for (clock, suspect) in [&clocks.serving, &clocks.pulsing]
            .into_iter()
            .zip(&mut suspects)
        {
            let mark = clock.mark();
            let past = clock.inside_for(mark).is_some_and(|t| t >= limit);
            if past && mark == *suspect {
                exit_stuck(rank, limit);
            }
            *suspect = if past { mark } else { 0 };
        }
    }
}

/// The verdict: see the module's docs.
fn exit_stuck(rank: Rank, limit: Duration) -> ! {
    let line = format!(
        "concurrent-futures: MPI worker rank {rank}: an MPI call has not returned for {limit:?}; \
         MPI is wedged in this process (most likely its pool died while a large message to it \
         was on its way): exiting with code {STUCK_EXIT_CODE}\n"
    );
    // Not `eprintln!`, which panics when standard error is a pipe whose reader has gone (likely
    // when the pool died), and waits for Rust's lock on it: one `write`, its outcome ignored,
    // on a thread of its own, given a second (a full pipe nobody reads would block it).
    let (written, wait) = std::sync::mpsc::channel();
    let writer = std::thread::Builder::new().spawn(move || {
        // SAFETY: `line` is valid for `line.len()` bytes for the length of the call; writing to
        // fd 2 touches no memory of ours, whatever fd 2 is (or is not).
        let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
        let _ = written.send(());
    });
    if writer.is_ok() {
        let _ = wait.recv_timeout(Duration::from_secs(1));
    }
    // SAFETY: `_exit` ends the process at once and touches no memory of ours. Unlike
    // `std::process::exit`, it runs no handler registered to run at exit: such a handler could
    // call into MPI and wait for the lock the stuck thread holds.
    unsafe { libc::_exit(STUCK_EXIT_CODE) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_lasts_while_inside_and_nesting_keeps_the_outer_one() {
        let clock = InMpi::new();
        assert_eq!(clock.stuck_for(), None);
        clock.around(|| {
            assert!(clock.stuck_for().is_some(), "marked inside");
            clock.around(|| assert!(clock.stuck_for().is_some()));
            assert!(
                clock.stuck_for().is_some(),
                "still marked after a nested call"
            );
            clock.returned();
            assert!(clock.stuck_for().is_some());
        });
        assert_eq!(clock.stuck_for(), None, "unmarked outside");
        clock.returned();
        assert_eq!(clock.stuck_for(), None, "`returned` outside marks nothing");
    }

    #[test]
    fn a_mark_ends_when_the_calls_unwind() {
        let clock = InMpi::new();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            clock.around(|| panic!("inside"));
        }));
        assert!(unwound.is_err());
        assert_eq!(clock.stuck_for(), None);
    }
}
