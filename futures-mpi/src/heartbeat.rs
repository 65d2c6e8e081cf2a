//! Heartbeats: how each side learns that the other is gone where no pidfd can tell it (another
//! host, or a process that is frozen rather than dead).
//!
//! The pool sends every worker a pulse each [`Heartbeat::interval`], and every worker sends the
//! pool one, each from a thread of its own, so that a long task, a slow done-callback or a long
//! MPI call moving a large message along does not silence its side. A side that hears nothing from the other (no pulse, no message) for
//! [`Heartbeat::limit`] presumes it dead. Silence is judged only after probing has found nothing
//! from the other side for a whole interval ([`Hearing`]): pulses that queued up while a side
//! was busy count as heard, even though a first probe after a long task can miss them (MPI moves
//! a waiting message along only as it is probed).
//!
//! The pool's welcome carries both durations, so a worker starts its pulses before its first
//! task (and the pool's pulses carry them again).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The slowest transfer a message still coming is allowed: its sender's pulses queue up behind
/// it on the wire (Open MPI's TCP transport sends a peer's messages in order), so a sender is
/// only counted out once a message of `len` bytes has taken the heartbeat's limit plus one
/// second per 100 MB ([`Heartbeat::limit_while_coming`]): a network slower than that needs a
/// longer heartbeat timeout for its largest messages.
const SLOWEST_TRANSFER: f64 = 100e6;

/// The length of an encoded [`Heartbeat`].
pub(crate) const HEARTBEAT_BYTES: usize = 16;

/// How often pulses go, and how long a silence means death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heartbeat {
    /// Between two pulses.
    pub(crate) interval: Duration,
    /// A silence this long presumes the other side dead.
    pub(crate) limit: Duration,
}

impl Heartbeat {
    /// Pulses ten times per `limit`, at most every 10 ms.
    pub(crate) fn with_limit(limit: Duration) -> Heartbeat {
        Heartbeat {
            interval: (limit / 10).max(Duration::from_millis(10)),
            limit,
        }
    }

    /// How long a sender may stay silent while a message of `len` bytes from it is still
    /// coming.
    pub(crate) fn limit_while_coming(self, len: usize) -> Duration {
        self.limit + Duration::from_secs_f64(len as f64 / SLOWEST_TRANSFER)
    }

    /// The pool's pulse: the interval and the limit, in milliseconds, 8 little-endian bytes
    /// each.
    pub(crate) fn encode(self) -> Vec<u8> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut bytes = millis(self.interval).to_le_bytes().to_vec();
        bytes.extend_from_slice(&millis(self.limit).to_le_bytes());
        bytes
    }

    /// The settings a pool's pulse carries, if `bytes` are one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Heartbeat> {
        let (interval, rest) = bytes.split_first_chunk::<8>()?;
        let limit = rest.first_chunk::<8>()?;
        Some(Heartbeat {
            interval: Duration::from_millis(u64::from_le_bytes(*interval)),
            limit: Duration::from_millis(u64::from_le_bytes(*limit)),
        })
    }
}

/// What one side has heard of the other.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hearing {
    /// When something last came.
    heard: Instant,
    /// Since when probes for it have found nothing, without a break.
    quiet_since: Option<Instant>,
}

impl Hearing {
    /// Heard just now.
    pub(crate) fn new() -> Hearing {
        Hearing {
            heard: Instant::now(),
            quiet_since: None,
        }
    }

    /// Something came.
    pub(crate) fn heard(&mut self) {
        *self = Hearing::new();
    }

    /// A probe found nothing.
    pub(crate) fn found_nothing(&mut self) {
        self.quiet_since.get_or_insert_with(Instant::now);
    }

    /// Whether the other side is presumed dead: nothing for longer than the limit, and nothing
    /// found by probing for a whole interval.
    pub(crate) fn is_silent(&self, heartbeat: Heartbeat) -> bool {
        self.heard.elapsed() > heartbeat.limit
            && self
                .quiet_since
                .is_some_and(|quiet| quiet.elapsed() >= heartbeat.interval)
    }

    /// How long since something came.
    pub(crate) fn silent_for(&self) -> Duration {
        self.heard.elapsed()
    }
}

/// A thread that calls `beat` every interval until stopped (or dropped).
#[derive(Debug)]
pub(crate) struct Beater {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Beater {
    /// Starts the thread; `beat` gets the stop flag, to give up a send once it is set.
    pub(crate) fn start(
        interval: Duration,
        mut beat: impl FnMut(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<Beater> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_there = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("cf-mpi-heartbeat".into())
            .spawn(move || {
                while !stop_there.load(Ordering::Acquire) {
                    beat(&stop_there);
                    std::thread::park_timeout(interval);
                }
            })?;
        Ok(Beater {
            stop,
            thread: Some(thread),
        })
    }

    /// Tells the thread to stop without waiting for it: it may be stuck in MPI for good (see
    /// [`crate::progresswatch`]).
    pub(crate) fn abandon(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
        }
    }

    /// Stops the thread and waits for it, unless `stuck` says it may be stuck in MPI for good
    /// (then it is left, as [`Beater::abandon`] leaves it).
    pub(crate) fn stop_unless(mut self, stuck: impl Fn() -> bool) {
        self.stop.store(true, Ordering::Release);
        let Some(thread) = self.thread.take() else {
            return;
        };
        thread.thread().unpark();
        while !thread.is_finished() {
            if stuck() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = thread.join();
    }

    /// Stops the thread and waits for it: no pulse goes after this returns.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Beater {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_pulse_carries_the_interval_and_the_limit() {
        let heartbeat = Heartbeat::with_limit(Duration::from_secs(3));
        assert_eq!(heartbeat.interval, Duration::from_millis(300));
        assert_eq!(Heartbeat::decode(&heartbeat.encode()), Some(heartbeat));
        assert_eq!(Heartbeat::decode(&[0; 15]), None);
    }

    #[test]
    fn the_interval_is_at_least_ten_milliseconds() {
        let heartbeat = Heartbeat::with_limit(Duration::from_millis(20));
        assert_eq!(heartbeat.interval, Duration::from_millis(10));
    }

    #[test]
    fn silence_needs_the_limit_and_a_whole_interval_of_empty_probes() {
        let heartbeat = Heartbeat {
            interval: Duration::from_millis(20),
            limit: Duration::from_millis(50),
        };
        let mut hearing = Hearing::new();
        hearing.found_nothing();
        assert!(!hearing.is_silent(heartbeat), "within the limit");
        // Past the limit, but the first probe after a long task found nothing: not yet.
        hearing.heard = Instant::now() - Duration::from_millis(60);
        hearing.quiet_since = None;
        hearing.found_nothing();
        assert!(
            !hearing.is_silent(heartbeat),
            "one empty probe is not silence"
        );
        hearing.quiet_since = Some(Instant::now() - Duration::from_millis(25));
        assert!(
            hearing.is_silent(heartbeat),
            "an interval of empty probes is"
        );
        hearing.heard();
        assert!(!hearing.is_silent(heartbeat), "heard again");
    }

    #[test]
    fn a_beater_beats_until_stopped_and_never_after() {
        let (beats, heard) = mpsc::channel();
        let mut beater = Beater::start(Duration::from_millis(1), move |_| {
            let _ = beats.send(());
        })
        .unwrap();
        for _ in 0..3 {
            heard
                .recv_timeout(Duration::from_secs(10))
                .expect("a beat within the watchdog");
        }
        beater.stop();
        while heard.try_recv().is_ok() {}
        // The thread is joined: its sender is gone, so the channel reports disconnection.
        assert_eq!(heard.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    }
}
