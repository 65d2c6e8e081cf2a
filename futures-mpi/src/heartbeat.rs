//! Heartbeats: how each side learns that the other is gone where no pidfd can tell it (another
//! host, or a process that is frozen rather than dead).
//!
//! The pool sends every worker a pulse each [`Heartbeat::interval`], and every worker sends the
//! pool one, each from a thread of its own, so that a long task or a slow done-callback does
//! not silence its side. A side that hears nothing from the other (no pulse, no message) for
//! [`Heartbeat::limit`] presumes it dead. Silence is judged only once everything waiting from
//! the other side has been read: pulses that queued up while a side was busy count as heard.
//!
//! The pool's pulse carries both durations, so a worker learns them from the first one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

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
