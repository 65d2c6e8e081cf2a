//! Compensation: a spare thread while a worker's task blocks in a wait (Java's `ForkJoinPool`
//! and its `ManagedBlocker`), so that a task waiting on its own pool cannot starve it.
//!
//! Every sleeping wait of the workspace (a future's `result()` and friends, `into_result`, a
//! `Waiter` under `wait` and `as_completed`, the testkit's `block_on`) runs inside core's
//! `blocking`, which calls the hook each worker installs (`worker.rs`): [`Shared::worker_blocking`]
//! before the sleep, [`Shared::worker_unblocked`] after it.
//!
//! * **Blocked** workers are counted in the state word (`blocked`, bits 32..40; at most
//!   `config.max_spares`, itself at most [`MAX_SPARES`]). The pool may then serve with
//!   `capacity = max_workers + blocked` threads.
//! * **Who starts the spare.** A blocked worker needs a spare only if a task is queued that
//!   no free thread (`threads - busy`; a blocked worker is busy) will take. The blocker's
//!   compare-and-swap and a submitter's reservation are read-modify-writes of the one word, so
//!   one of them sees the other: the blocker compensates if it sees `queued > 0`, the
//!   submitter if it sees `blocked > 0`. `compensate` decides under `control`, where threads
//!   start and retire, so its count of threads cannot include one that is leaving.
//! * **Retiring.** Once the waits end, threads beyond `capacity` are surplus: a worker leaves
//!   when it finds `threads > capacity` — after a task (`retire`, under `control`), or instead
//!   of sleeping (in `search`, whose sleeper registration reads the word under `control`, with
//!   `queued == 0`). What is left is at least `capacity` threads, of which `blocked` block and
//!   at least `max_workers` run or look for tasks, so no queued task is stranded. The resuming
//!   worker wakes the sleepers when there is a surplus, so sleeping spares leave too.
//! * A retired spare leaves the books at once (under `control` and `joining`, while the pool
//!   is open, so before any joiner takes the handles): its id, slot (its finished count is
//!   kept) and join handle (dropped: the thread is detached, past its last task).
//!
//! `tests/loom_blocking.rs` models both orders of "block" and "queue", each wait of the
//! workspace, the bound of one spare per blocked worker, and retirement (also racing a new
//! block, which fails if `compensate` decides outside `control`).

use super::{BLOCKED_ONE, BROKEN, CLOSED, Control, Shared, blocked, queued_in, sleepers};
use concurrent_futures_core::shim::sync::atomic::Ordering;
use concurrent_futures_core::shim::sync::{Arc, MutexGuard};
use concurrent_futures_core::shim::thread;

/// The most spare threads a pool may run beyond `max_workers` (the width of `blocked` in the
/// state word).
pub(crate) const MAX_SPARES: usize = 255;

impl Shared {
    /// How many threads the pool may serve with, given its state word.
    pub(super) fn capacity(&self, word: u64) -> usize {
        self.config.max_workers + blocked(word) as usize
    }

    /// A task on one of this pool's workers is about to block in a wait. Returns whether it
    /// was counted (not when `max_spares` workers are blocked already, or compensation is off).
    #[cold]
    pub(crate) fn worker_blocking(this: &Arc<Shared>) -> bool {
        let max = this.config.max_spares as u64;
        if max == 0 {
            return false;
        }
        // Read before the word (see `queued_in`).
        let taken = this.taken.load(Ordering::Acquire);
        let mut word = this.word.load(Ordering::Acquire);
        loop {
            if blocked(word) >= max {
                return false;
            }
            match this.word.compare_exchange_weak(
                word,
                word + BLOCKED_ONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        // Queued work may be counting on this worker: see that a thread is there for it. (If
        // nothing is queued, the next submit sees `blocked` instead.)
        if queued_in(word, taken) > 0 {
            Shared::compensate(this);
        }
        true
    }

    /// The wait counted by `worker_blocking` ended: if that leaves more threads than the
    /// pool may keep, wake the sleepers, so the surplus retires.
    #[cold]
    pub(crate) fn worker_unblocked(&self) {
        let prev = self.word.fetch_sub(BLOCKED_ONE, Ordering::AcqRel);
        if sleepers(prev) > 0
            && self.threads.load(Ordering::Relaxed) > self.capacity(prev - BLOCKED_ONE)
        {
            let _control = self.control.lock();
            self.work_ready.notify_all();
        }
    }

    /// A task is queued and a worker blocked: start a spare if no free thread will take it.
    #[cold]
    pub(super) fn compensate(this: &Arc<Shared>) {
        let control = this.control.lock();
        let threads = this.threads.load(Ordering::Acquire);
        let free = threads - this.busy.load(Ordering::Acquire).min(threads);
        let taken = this.taken.load(Ordering::Acquire);
        let word = this.word.load(Ordering::Acquire);
        // After `shutdown` queued tasks still run (as in Python), so a blocked worker still gets
        // its spare; a blocked worker is alive, so no waited shutdown has finished joining, and
        // it joins the handles added meanwhile. Only a broken pool starts none.
        if queued_in(word, taken) > free as u64
            && threads < this.capacity(word)
            && word & BROKEN == 0
        {
            Shared::spawn_worker(this, control, threads);
        }
    }

    /// Retires this worker if the pool serves with more threads than it may keep; `true` if
    /// it has retired and must leave now.
    #[cold]
    pub(super) fn retire(&self) -> bool {
        let control = self.control.lock();
        let word = self.word.load(Ordering::Acquire);
        if word & CLOSED != 0 || self.threads.load(Ordering::Relaxed) <= self.capacity(word) {
            return false;
        }
        self.leave(&control);
        true
    }

    /// Takes this worker off the books (see the module docs). Called with `control` held and
    /// the pool open, so no joiner has taken the handles yet.
    pub(super) fn leave(&self, _control: &MutexGuard<'_, Control>) {
        self.threads.fetch_sub(1, Ordering::AcqRel);
        let me = thread::current().id();
        let mut joining = self.joining.lock();
        if let Some(i) = joining.workers.iter().position(|id| *id == me) {
            joining.workers.swap_remove(i);
            let slot = joining.slots.swap_remove(i);
            slot.retire();
            joining.retired_finished += slot.finished();
        }
        if let Some(i) = joining.handles.iter().position(|h| h.thread().id() == me) {
            // Detached: the thread ends by itself, right after this.
            drop(joining.handles.swap_remove(i));
        }
    }
}
