//! What the pool does beyond Python's, all off by default: stopping a worker (`SIGTERM` to its
//! process group, a grace period, then `SIGKILL`), the timer thread that keeps the time limits,
//! grace periods and idle timeouts, crash isolation with its restart-storm guard, and shutdown
//! with a time limit.
//!
//! A stopped worker is seen to end as any other is, by its courier (its channel closes, it is
//! reaped); `worker_exited` then finds the [`Stop`] on its slot and fails only that worker's
//! jobs, with [`TaskError::Stopped`], and starts a replacement.
//!
//! The timer thread starts with the first deadline (a job with a time limit sent, a worker to
//! stop, a worker that may idle out) and ends with the pool. It sleeps on `tick` until the
//! nearest deadline; each step that adds one notifies `tick` under the lock.

use super::{Flight, HISTORY, Outbox, Shared, Sink, Slot, State, close_idle, shim_thread, sys};
use crate::workers::{ExitReason, ShutdownReport, WorkerExit};
use concurrent_futures_core::shim::time::Instant;
use concurrent_futures_core::{StopReason, TaskError, TaskStopped, contain_panic};
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The supervision settings ([`ProcessPoolBuilder`](crate::ProcessPoolBuilder)'s options
/// beyond Python's).
#[derive(Debug, Clone)]
pub(crate) struct Supervision {
    /// A worker that dies mid-task fails only its task, and is replaced.
    pub(crate) isolate_crashes: bool,
    /// With isolation: more than this many unexpected deaths within the window break the pool.
    pub(crate) max_restarts: (usize, Duration),
    /// Every task's time limit, unless its submit gave one.
    pub(crate) task_timeout: Option<Duration>,
    /// Between `SIGTERM` and `SIGKILL` when a worker is stopped.
    pub(crate) grace: Duration,
    /// `cancel()` of a running task stops its worker.
    pub(crate) cancel_running: bool,
    /// A worker whose resident memory is above this after a task is recycled.
    pub(crate) max_memory: Option<u64>,
    /// A worker idle this long is recycled.
    pub(crate) idle_timeout: Option<Duration>,
}

impl Supervision {
    /// The restart-storm guard's default: more than 16 unexpected deaths within a minute.
    pub(crate) const MAX_RESTARTS: (usize, Duration) = (16, Duration::from_secs(60));
    /// The default grace period between `SIGTERM` and `SIGKILL`.
    pub(crate) const GRACE: Duration = Duration::from_secs(1);

    /// Whether each worker must hold only the job it runs: when a worker's death or stop must
    /// fail one job, a job queued behind it in that worker would be lost with it.
    pub(crate) fn one_job_per_worker(&self) -> bool {
        self.isolate_crashes || self.cancel_running
    }
}

impl Default for Supervision {
    fn default() -> Supervision {
        Supervision {
            isolate_crashes: false,
            max_restarts: Supervision::MAX_RESTARTS,
            task_timeout: None,
            grace: Supervision::GRACE,
            cancel_running: false,
            max_memory: None,
            idle_timeout: None,
        }
    }
}

/// Why the pool stops a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopCause {
    /// Its task ran past this time limit.
    Timeout(Duration),
    /// Its running task was cancelled.
    Cancel,
    /// A shutdown's time limit passed.
    ShutdownLimit(Duration),
    /// An interrupt.
    Interrupt,
}

/// A worker the pool is stopping: `SIGTERM` was sent to its group; `SIGKILL` follows at
/// `kill_at` unless it has ended by then (`None`: a grace period too long to count, never).
#[derive(Debug)]
pub(super) struct Stop {
    cause: StopCause,
    kill_at: Option<Instant>,
    killed: bool,
}

impl Stop {
    pub(super) fn exit_reason(&self) -> ExitReason {
        match self.cause {
            StopCause::Timeout(_) => ExitReason::TimedOut,
            StopCause::Cancel => ExitReason::Cancelled,
            StopCause::ShutdownLimit(_) => ExitReason::ShutdownTimedOut,
            StopCause::Interrupt => ExitReason::Interrupted,
        }
    }

    fn stop_reason(&self) -> StopReason {
        match self.cause {
            StopCause::Timeout(limit) => StopReason::TimedOut(limit),
            // Its future is cancelled already and refuses this error.
            StopCause::Cancel => StopReason::WorkerDied,
            StopCause::ShutdownLimit(limit) => StopReason::ShutdownTimedOut(limit),
            StopCause::Interrupt => StopReason::Interrupted,
        }
    }
}

/// Jobs to fail once the lock is released, each with its own error.
pub(super) type Failures = Vec<(Box<dyn Sink>, TaskError)>;

fn failures(slot: &mut Slot, reason: StopReason, cause: sys::ExitCause) -> Failures {
    let ended: Arc<str> = cause.to_string().into();
    slot.in_flight
        .drain(..)
        .map(|Flight { id, sink, .. }| {
            let stopped = TaskStopped::new(reason, id, slot.pid as u32, Arc::clone(&ended));
            (sink, TaskError::Stopped(stopped))
        })
        .collect()
}

/// The jobs of a worker the pool stopped, with their errors.
pub(super) fn fail_stopped(slot: &mut Slot, stop: &Stop, cause: sys::ExitCause) -> Failures {
    failures(slot, stop.stop_reason(), cause)
}

/// Fails each job with its error (outside the lock; a panicking `Drop` is contained).
pub(super) fn fail_sinks(failed: Failures) {
    for (sink, error) in failed {
        contain_panic("failing a future", || sink.finish(Err(error)));
    }
}

/// Adds a worker's exit to the history.
pub(super) fn record_exit(
    st: &mut State,
    pid: i32,
    cause: sys::ExitCause,
    reason: ExitReason,
    task: Option<u64>,
) {
    if st.history.len() == HISTORY {
        st.history.pop_front();
    }
    st.history.push_back(WorkerExit {
        pid: pid as u32,
        reason,
        ended: cause.to_string(),
        at: SystemTime::now(),
        task,
    });
}

impl Shared {
    /// A new deadline `due` (under the lock): starts the timer thread if it is not running,
    /// and wakes it if it sleeps past `due`. (Deadlines that move later need no wake-up: the
    /// timer finds nothing due at the old one and sleeps again.)
    pub(super) fn need_timer(&self, st: &mut State, due: Instant) {
        if st.timer.is_some() {
            if st.timer_idle || st.timer_wake.is_some_and(|wake| due < wake) {
                self.tick.notify_one();
            }
            return;
        }
        let Some(shared) = self.me.upgrade() else {
            return;
        };
        match shim_thread::spawn_named("concurrent-futures-timer".into(), move || {
            shared.keep_time()
        }) {
            Ok(handle) => st.timer = Some(handle),
            Err(e) => log::error!(
                target: "concurrent_futures",
                "the process pool could not start its timer thread, so time limits and idle \
                 timeouts are not kept: {e}"
            ),
        }
    }

    /// The timer thread: acts on every deadline that passed, then sleeps until the next one,
    /// until the pool has shut down and every worker has ended.
    fn keep_time(&self) {
        let mut st = self.lock();
        loop {
            let mut outbox = Outbox::new();
            let next = self.timer_step(&mut st, Instant::now(), &mut outbox);
            if !outbox.is_empty() {
                drop(st);
                self.post(outbox);
                st = self.lock();
                continue;
            }
            if st.shutdown && st.workers.is_empty() && st.launching == 0 {
                return;
            }
            st.timer_wake = next;
            st.timer_idle = next.is_none();
            st = match next {
                Some(at) => self.tick.wait_until(st, at),
                None => self.tick.wait(st),
            };
            st.timer_wake = None;
            st.timer_idle = false;
        }
    }

    /// One pass over the workers at `now`: starts the stops whose time came, kills the
    /// stopped workers whose grace period ended, retires the workers idle too long. Returns
    /// the nearest deadline still ahead.
    fn timer_step(&self, st: &mut State, now: Instant, outbox: &mut Outbox) -> Option<Instant> {
        let supervision = &self.config.supervision;
        let mut next: Option<Instant> = None;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        let draining = st.shutdown;
        for slot in &mut st.workers {
            if let Some(stop) = &mut slot.stop {
                let Some(kill_at) = stop.kill_at.filter(|_| !stop.killed) else {
                    continue;
                };
                if now >= kill_at {
                    sys::signal_group(slot.pid, Signal::SIGKILL);
                    stop.killed = true;
                } else {
                    soonest(kill_at);
                }
            } else if let Some(limit) = slot.in_flight.front().and_then(|f| f.timeout)
                && slot.ready
            {
                let Some(due) = slot.since.checked_add(limit) else {
                    continue;
                };
                if now >= due {
                    if let Some(kill_at) = self.begin_stop(slot, StopCause::Timeout(limit), now) {
                        soonest(kill_at);
                    }
                } else {
                    soonest(due);
                }
            } else if let Some(idle) = supervision.idle_timeout
                && !draining
                && slot.in_flight.is_empty()
                && slot.open(self.config.max_tasks)
            {
                let Some(due) = slot.since.checked_add(idle) else {
                    continue;
                };
                if now >= due {
                    slot.recycle = Some(ExitReason::RecycledWhenIdle);
                } else {
                    soonest(due);
                }
            }
        }
        close_idle(st, self.config.max_tasks, outbox);
        next
    }

    /// Starts stopping `slot`'s worker: `SIGTERM` to its group (and `SIGCONT`, so that a
    /// stopped worker can act on it), `SIGKILL` after the grace period. No job is sent to it
    /// any more.
    /// Returns when the `SIGKILL` is due (`None`: never, or sent already).
    pub(super) fn begin_stop(
        &self,
        slot: &mut Slot,
        cause: StopCause,
        now: Instant,
    ) -> Option<Instant> {
        let grace = self.config.supervision.grace;
        let killed = grace.is_zero();
        if killed {
            sys::signal_group(slot.pid, Signal::SIGKILL);
        } else {
            sys::signal_group(slot.pid, Signal::SIGTERM);
            sys::signal_group(slot.pid, Signal::SIGCONT);
        }
        let kill_at = now.checked_add(grace);
        slot.stop = Some(Stop {
            cause,
            kill_at,
            killed,
        });
        kill_at.filter(|_| !killed)
    }

    /// What `cancel()` of running job `id` calls: stops its worker, if it still runs it.
    pub(super) fn stop_on_cancel(&self, id: u64) -> Box<dyn FnOnce() + Send> {
        let pool = self.me.clone();
        Box::new(move || {
            if let Some(pool) = pool.upgrade() {
                let mut st = pool.lock();
                let slot = st
                    .workers
                    .iter_mut()
                    .find(|s| s.in_flight.front().is_some_and(|f| f.id == id));
                if let Some(slot) = slot
                    && slot.stop.is_none()
                    && let Some(due) = pool.begin_stop(slot, StopCause::Cancel, Instant::now())
                {
                    pool.need_timer(&mut st, due);
                }
            }
        })
    }

    /// After a worker the pool stopped, or lost with isolation on: a new one starts, for the
    /// queued jobs or, if none wait, to keep the pool's size. Returns the launches to start.
    pub(super) fn replace_worker(&self, st: &mut State) -> usize {
        let needed = self.launches_needed(st);
        let live = st.workers.len() + st.launching;
        if needed == 0
            && !st.shutdown
            && st.broken.is_none()
            && !st.forced
            && live < self.config.max_workers
        {
            st.launching += 1;
            return 1;
        }
        needed
    }

    /// A worker died unasked. With isolation on (and not in its initializer, nor in a forced
    /// shutdown), only its jobs fail, unless the restart-storm guard trips; `None` means the
    /// pool breaks (and `st.storm` says why if the guard tripped).
    pub(super) fn isolate_death(
        &self,
        st: &mut State,
        slot: &mut Slot,
        cause: sys::ExitCause,
    ) -> Option<Failures> {
        let supervision = &self.config.supervision;
        if !supervision.isolate_crashes || slot.init_failure.is_some() || st.forced {
            return None;
        }
        let (max, window) = supervision.max_restarts;
        let now = Instant::now();
        st.deaths.push_back(now);
        while st
            .deaths
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > window)
        {
            st.deaths.pop_front();
        }
        if st.deaths.len() > max {
            st.storm = Some(format!(
                "the restart-storm guard broke the pool: {} worker processes died within {window:?} \
                 (more than max_restarts = {max})",
                st.deaths.len()
            ));
            return None;
        }
        Some(failures(slot, StopReason::WorkerDied, cause))
    }

    /// A `SIGINT` reached a pool built with `stop_on_interrupt` (`interrupt.rs`): shut down,
    /// cancelling what is queued, and stop every worker running a task.
    pub(crate) fn interrupt(&self) {
        self.close(true);
        let mut st = self.lock();
        let now = Instant::now();
        let mut kill_at = None;
        for slot in &mut st.workers {
            if slot.stop.is_none() && !slot.in_flight.is_empty() {
                kill_at = kill_at.or(self.begin_stop(slot, StopCause::Interrupt, now));
            }
        }
        if let Some(due) = kill_at {
            self.need_timer(&mut st, due);
        }
    }

    /// `shutdown_timeout(limit)`: Python's `shutdown(wait=True, cancel_futures=True)` that
    /// waits at most `limit`, then stops the workers still running tasks, and returns once
    /// every worker has ended (within the grace period after the limit).
    pub(crate) fn shutdown_timeout(&self, limit: Duration) -> ShutdownReport {
        let deadline = Instant::now().checked_add(limit);
        let cancelled = self.shutdown_cancelling();
        let mut report = ShutdownReport {
            cancelled,
            stopped: Vec::new(),
        };
        if super::courier::is_courier_of(self) {
            return report;
        }
        let mut st = self.lock();
        while !(st.workers.is_empty() && st.launching == 0) {
            st = match deadline {
                // A limit too long to count is no limit.
                None => self.changed.wait(st),
                Some(at) if Instant::now() < at => self.changed.wait_until(st, at),
                Some(_) => break,
            };
        }
        if !st.workers.is_empty() {
            let now = Instant::now();
            let mut kill_at = None;
            for slot in &mut st.workers {
                if slot.stop.is_none() && !slot.in_flight.is_empty() {
                    report.stopped.extend(slot.in_flight.iter().map(|f| f.id));
                    kill_at =
                        kill_at.or(self.begin_stop(slot, StopCause::ShutdownLimit(limit), now));
                }
            }
            if let Some(due) = kill_at {
                self.need_timer(&mut st, due);
            }
        }
        drop(st);
        self.shutdown(true, false);
        report
    }
}
