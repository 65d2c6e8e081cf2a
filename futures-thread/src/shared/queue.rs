//! The task queue: a fixed ring (crossbeam's `ArrayQueue`) with an unbounded overflow (a
//! `VecDeque` under a lock) behind it.
//!
//! Why not crossbeam's `SegQueue`, as before: it allocates a block every 31 pushes and frees
//! it in the popping thread, so at full speed the submitter's allocations and the workers'
//! frees meet on the allocator's locks (measured on 2 cores, `cargo xtask bench thread` row
//! (a): 2.1–2.3M tasks/s with the `SegQueue` alone, 3.9M with the ring in front of it). The
//! ring is allocated once, with the pool (4096 slots, a task and a stamp each: 128 KiB).
//!
//! **The overflow** takes the pushes while the ring is full (a submitter more than 4096 tasks
//! ahead of the workers), and any push while it holds tasks. A worker that finds the ring
//! empty and the overflow not takes the overflow's oldest task and moves the next ones, up to
//! half a ring, into the ring, under the overflow's lock: the workers then pop from the ring
//! again, and a long queue costs one lock per half ring on their side. Its buffer is kept for
//! reuse (no allocation per task), up to a limit once it empties.
//!
//! **Order.** Tasks leave in the order one submitter queued them (a one-worker pool runs them
//! in that order, as Python's does):
//! * A push goes to the ring only while the overflow is empty (`spilled == 0`), so every task
//!   in the overflow was pushed after every ring task its submitter pushed before it.
//!   `spilled` counts the overflow's tasks *and* those being moved to the ring: it drops to 0
//!   only once a move is done, so a push cannot overtake the tasks in transit.
//! * A pop looks at `spilled` *before* it tries the ring, and goes to the overflow only if it
//!   was non-zero then and the ring is empty now; under the lock it tries the ring once more.
//!   Had it looked after, a ring that was empty, then filled and spilled while this worker was
//!   preempted, would let it take a spilled task before the ring's older ones.
//!
//! A pop returns `None` only after it found the ring empty and then the overflow empty, so a
//! task pushed before the pop began is never missed (unless another worker takes it). The pool's
//! protocol (the `queued` count in the state word) covers pushes still in flight, as before.
//! Loom sees each push and pop as one step: nothing here is a loom primitive, so a model never
//! switches threads inside one (and never finds the lock held). What loom cannot see by itself
//! is that a pop happens after the push of the task it returns (the ring's release and acquire
//! of the slot's stamp, the lock): a loom build adds one read-modify-write of a loom atomic on
//! each side (`handoff`), so that a task's content written before its push is seen, in the
//! model too, by the worker that pops it.

use crate::task::Task;
use crossbeam_queue::ArrayQueue;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Tasks the ring holds before pushes spill into the overflow.
const RING_SLOTS: usize = 4096;

/// The most tasks a worker moves from the overflow to the ring at once.
const REFILL: usize = RING_SLOTS / 2;

/// The overflow's buffer, once empty, is shrunk to `RING_SLOTS` if it holds more than this.
const KEEP_CAPACITY: usize = 16 * RING_SLOTS;

pub(super) struct TaskQueue {
    ring: ArrayQueue<Task>,
    /// Tasks in the overflow, plus those a worker is moving from it to the ring.
    spilled: AtomicUsize,
    overflow: Mutex<VecDeque<Task>>,
    /// Loom's view of the push-to-pop hand-off (see the module docs).
    #[cfg(loom)]
    handoff: concurrent_futures_core::shim::sync::atomic::AtomicUsize,
}

impl TaskQueue {
    pub(super) fn new() -> TaskQueue {
        TaskQueue {
            ring: ArrayQueue::new(RING_SLOTS),
            spilled: AtomicUsize::new(0),
            overflow: Mutex::new(VecDeque::new()),
            #[cfg(loom)]
            handoff: concurrent_futures_core::shim::sync::atomic::AtomicUsize::new(0),
        }
    }

    #[inline]
    pub(super) fn push(&self, task: Task) {
        #[cfg(loom)]
        self.handoff.fetch_add(1, Ordering::AcqRel);
        let task = if self.spilled.load(Ordering::Acquire) == 0 {
            match self.ring.push(task) {
                Ok(()) => return,
                Err(task) => task,
            }
        } else {
            task
        };
        self.spill(task);
    }

    #[cold]
    fn spill(&self, task: Task) {
        let mut overflow = self.overflow();
        overflow.push_back(task);
        self.spilled.fetch_add(1, Ordering::AcqRel);
    }

    #[inline]
    pub(super) fn pop(&self) -> Option<Task> {
        let task = self.pop_task();
        #[cfg(loom)]
        if task.is_some() {
            self.handoff.fetch_add(0, Ordering::AcqRel);
        }
        task
    }

    #[inline]
    fn pop_task(&self) -> Option<Task> {
        let spilled = self.spilled.load(Ordering::Acquire) != 0;
        if let Some(task) = self.ring.pop() {
            return Some(task);
        }
        if !spilled && self.spilled.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.pop_spilled()
    }

    /// The ring was empty and the overflow was not (or has become non-empty since): take
    /// the oldest task, ring first, and refill the ring from the overflow.
    #[cold]
    fn pop_spilled(&self) -> Option<Task> {
        let mut overflow = self.overflow();
        if let Some(task) = self.ring.pop() {
            return Some(task);
        }
        let task = overflow.pop_front()?;
        let mut moved = 0;
        while moved < REFILL {
            let Some(next) = overflow.pop_front() else {
                break;
            };
            if let Err(next) = self.ring.push(next) {
                overflow.push_front(next);
                break;
            }
            moved += 1;
        }
        // The task taken and those moved leave `spilled` only now, after the move.
        self.spilled.fetch_sub(1 + moved, Ordering::AcqRel);
        if overflow.is_empty() && overflow.capacity() > KEEP_CAPACITY {
            overflow.shrink_to(RING_SLOTS);
        }
        Some(task)
    }

    /// The overflow, locked. (No code panics while holding it, but a poisoned lock would
    /// still hold a consistent queue.)
    fn overflow(&self) -> MutexGuard<'_, VecDeque<Task>> {
        self.overflow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
