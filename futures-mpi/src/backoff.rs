//! How a loop waits for MPI without blocking in it.
//!
//! A blocking MPI call towards a dead peer never returns (the spike: Open MPI reports no death),
//! and a rank blocked in `MPI_Recv` spins a core. So every wait for a message polls: about a
//! thousand yields first (well under a millisecond), for the fast answers of a busy pool, then
//! pauses that double up to a millisecond, which costs an idle rank next to no CPU and delays an
//! answer by at most that millisecond. A message already under way is not waited for this way:
//! MPI moves it along only inside its calls, so its polls only yield (a 256 MiB answer then
//! came in 0.46 s instead of 0.55 s, and a 256 MiB round trip took 0.73 s instead of 0.93 s:
//! one run each, on 2 cores). (With 64 yields, `cargo xtask bench mpi` row (b), `map` over 10,000
//! ints with chunksize 1, ran at 17k items/s; with 1,024, at 25k, on 2 cores.)

use std::time::Duration;

/// The longest pause between two polls.
const MAX_PAUSE: Duration = Duration::from_millis(1);
/// Polls that only yield before the first pause.
const YIELDS: u32 = 1024;

/// The state of one polling wait; [`Backoff::reset`] after each success.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    polls: u32,
}

impl Backoff {
    /// How long to wait before the next poll (zero: just yield).
    pub(crate) fn next_pause(&mut self) -> Duration {
        self.polls = self.polls.saturating_add(1);
        if self.polls <= YIELDS {
            return Duration::ZERO;
        }
        let doublings = (self.polls - YIELDS).min(7);
        (Duration::from_micros(10) * (1 << doublings)).min(MAX_PAUSE)
    }

    /// Waits the next pause (the caller has nothing to watch meanwhile).
    pub(crate) fn snooze(&mut self) {
        match self.next_pause() {
            Duration::ZERO => std::thread::yield_now(),
            pause => std::thread::sleep(pause),
        }
    }

    /// Starts over after progress.
    pub(crate) fn reset(&mut self) {
        self.polls = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_at_zero_and_never_exceed_a_millisecond() {
        let mut backoff = Backoff::default();
        let polls = YIELDS as usize + 1000;
        let pauses: Vec<Duration> = (0..polls).map(|_| backoff.next_pause()).collect();
        assert!(pauses[..YIELDS as usize].iter().all(|p| p.is_zero()));
        assert!(!pauses[YIELDS as usize].is_zero());
        assert!(pauses.iter().all(|p| *p <= MAX_PAUSE));
        assert_eq!(pauses[polls - 1], MAX_PAUSE);
        backoff.reset();
        assert!(backoff.next_pause().is_zero());
    }
}
