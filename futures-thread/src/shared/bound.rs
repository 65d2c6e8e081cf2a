//! The bounded submit queue (`max_queue(n)` with a [`QueueFullPolicy`]).
//!
//! The bound counts what the state word already counts, `queued`: tasks submitted and not yet
//! taken by a worker. A bounded submit reserves its place with a compare-and-swap that refuses
//! to go past the bound (and, like the unbounded `fetch_add`, sees the flags in the same
//! step). The unbounded pool never comes here: `submit` tests `config.max_queue` once.
//!
//! **Waiting for room** (`Block`) is a sleeper protocol on the same word. A submitter that
//! finds the queue full locks `room.lock`, sets `ROOM_WAITED` with one `fetch_or` — which also
//! returns the word — and waits on `room.made` only if that word is still full and open; it
//! holds the lock from the `fetch_or` until it waits. Every step that makes room or closes the
//! pool is a read-modify-write of the word too: a worker taking a task (`took`) and `drain`
//! release with `fetch_sub`, shutdown and breakage set their flag with `fetch_or`. The two
//! steps are ordered on the one location, so either the submitter's `fetch_or` sees the room
//! (or the flag) and does not wait, or the other side's step sees `ROOM_WAITED` (a closing pool
//! wakes unconditionally) and calls `room_made`, which takes `room.lock` — not before the
//! submitter is inside `wait` — clears the flag and wakes every waiter. No wake-up is lost;
//! `tests/loom_pool.rs` checks both wake-ups. Waiters woken for one freed place that another
//! submitter took set the flag again and wait again.

use super::{CLOSED, QUEUED_ONE, ROOM_WAITED, Shared, queued};
use crate::task::Task;
use crate::unwind::contain;
use concurrent_futures_core::shim::sync::atomic::Ordering;
use concurrent_futures_core::shim::sync::{Arc, Condvar, Mutex};
use concurrent_futures_core::{Deadline, QueueFullPolicy, SubmitError};

/// `max_queue(limit)` and what a submit does when the queue is full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub(crate) limit: usize,
    pub(crate) policy: QueueFullPolicy,
}

/// Where submitters wait for room.
pub(super) struct Room {
    lock: Mutex<()>,
    made: Condvar,
}

impl Room {
    pub(super) fn new() -> Room {
        Room {
            lock: Mutex::new(()),
            made: Condvar::new(),
        }
    }
}

impl Shared {
    /// A submit to a bounded pool: reserves a place if there is one, else applies `policy`.
    #[cold]
    pub(super) fn submit_bounded(
        this: &Arc<Shared>,
        task: Task,
        policy: QueueFullPolicy,
    ) -> Result<(), SubmitError> {
        let me: &Shared = this;
        let limit = me.config.max_queue.map_or(usize::MAX, |b| b.limit) as u64;
        let deadline = match policy {
            QueueFullPolicy::Block { timeout } => Deadline::after(timeout),
            _ => Deadline::never(),
        };
        let mut word = me.word.load(Ordering::Acquire);
        loop {
            if word & CLOSED != 0 {
                return Err(me.refusal());
            }
            // Tasks that a worker can start at once (a free worker, or one the pool may still
            // start) do not count against the bound: the bound is for tasks that must wait
            // (Java's pool, too, starts a thread before it refuses). A worker blocked in a wait
            // is busy, but its place is free: the pool starts a spare for it
            // (`shared/spare.rs`).
            let idle_capacity =
                me.capacity(word)
                    .saturating_sub(me.busy.load(Ordering::Acquire)) as u64;
            if queued(word) < limit.saturating_add(idle_capacity) {
                let room = me.free_workers();
                match me.word.compare_exchange(
                    word,
                    word.wrapping_add(QUEUED_ONE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(prev) => return Shared::push_reserved(this, task, prev, room),
                    Err(now) => {
                        word = now;
                        continue;
                    }
                }
            }
            match policy {
                QueueFullPolicy::Reject => return Err(me.full()),
                QueueFullPolicy::CallerRuns => {
                    // Its future completes here; a panic from a `Drop` is logged, as on a worker.
                    contain("a task run by its submitter", || task.run(&|| {}));
                    return Ok(());
                }
                QueueFullPolicy::Block { .. } => {
                    if !me.wait_for_room(limit, deadline) {
                        return Err(me.full());
                    }
                    word = me.word.load(Ordering::Acquire);
                }
            }
        }
    }

    /// Sleeps until a worker makes room, the pool closes, or `deadline` passes (`false`). May
    /// return `true` spuriously: the caller tries again.
    fn wait_for_room(&self, limit: u64, deadline: Deadline) -> bool {
        if deadline.is_past() {
            return false;
        }
        let guard = self.room.lock.lock();
        let prev = self.word.fetch_or(ROOM_WAITED, Ordering::AcqRel);
        if queued(prev) < limit || prev & CLOSED != 0 {
            return true;
        }
        let guard = match deadline.instant() {
            None => self.room.made.wait(guard),
            Some(at) => self.room.made.wait_until(guard, at),
        };
        drop(guard);
        true
    }

    /// Room was made (or the pool closed): wake every submitter waiting for it.
    #[cold]
    pub(super) fn room_made(&self) {
        let _guard = self.room.lock.lock();
        self.word.fetch_and(!ROOM_WAITED, Ordering::AcqRel);
        self.room.made.notify_all();
    }

    fn full(&self) -> SubmitError {
        SubmitError::QueueFull {
            bound: self.config.max_queue.map_or(usize::MAX, |b| b.limit),
        }
    }

    /// Why a closed pool refuses a submit.
    pub(super) fn refusal(&self) -> SubmitError {
        match self.broken() {
            Some(broken) => SubmitError::Broken(broken),
            None => SubmitError::Shutdown,
        }
    }

    /// A scoped task: never waits for room and is never refused for a full queue — it runs in
    /// the spawning thread instead (see `Scope::spawn`), so a scope on a pool worker cannot
    /// block on a queue that only that worker could drain.
    pub(crate) fn submit_scoped(this: &Arc<Shared>, task: Task) -> Result<(), SubmitError> {
        match this.config.max_queue {
            None => Shared::submit(this, task),
            Some(_) => Shared::submit_bounded(this, task, QueueFullPolicy::CallerRuns),
        }
    }
}
