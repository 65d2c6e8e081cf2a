//! The task queue: a fixed ring (crossbeam's `ArrayQueue`) with an unbounded overflow
//! (crossbeam's `SegQueue`) behind it.
//!
//! Why not the `SegQueue` alone: it allocates a block every 31 pushes and frees it in the
//! popping thread, so at full speed the submitter's allocations and the workers' frees meet on
//! the allocator's locks (measured on 2 cores, `cargo xtask bench thread` row (a): 2.1–2.3M
//! tasks/s with the `SegQueue` alone, 3.9M with the ring in front). The ring is allocated once,
//! with the pool (4096 slots, a task and a stamp each: 128 KiB); the overflow is used only
//! while the ring is full (a submitter more than 4096 tasks ahead of the workers).
//!
//! **Order.** Tasks leave in the order one submitter queued them (a one-worker pool runs them
//! in that order, as Python's does):
//! * A push goes to the ring only while the overflow is empty, so every task in the overflow
//!   was pushed after every ring task its submitter pushed before it.
//! * A pop looks at the overflow *before* it tries the ring, and takes from the overflow only
//!   if it was non-empty then and the ring is empty now. Had it looked after, a ring that was
//!   empty, then filled and spilled while this worker was preempted, would let it take a spilled
//!   task before the ring's older ones. If the overflow was empty and is not any more, it looks
//!   again, ring first.
//!
//! A pop returns `None` only after it found the ring empty and then the overflow empty, so a
//! task pushed before the pop began is never missed (unless another worker takes it). The pool's
//! protocol (the `queued` count in the state word) covers pushes still in flight, as before.
//! Loom sees each push and pop as one step (crossbeam's atomics are not loom's).

use crate::task::Task;
use crossbeam_queue::{ArrayQueue, SegQueue};

/// Tasks the ring holds before pushes spill into the overflow.
const RING_SLOTS: usize = 4096;

pub(super) struct TaskQueue {
    ring: ArrayQueue<Task>,
    overflow: SegQueue<Task>,
}

impl TaskQueue {
    pub(super) fn new() -> TaskQueue {
        TaskQueue {
            ring: ArrayQueue::new(RING_SLOTS),
            overflow: SegQueue::new(),
        }
    }

    #[inline]
    pub(super) fn push(&self, task: Task) {
        let task = if self.overflow.is_empty() {
            match self.ring.push(task) {
                Ok(()) => return,
                Err(task) => task,
            }
        } else {
            task
        };
        self.overflow.push(task);
    }

    #[inline]
    pub(super) fn pop(&self) -> Option<Task> {
        loop {
            let spilled = !self.overflow.is_empty();
            if let Some(task) = self.ring.pop() {
                return Some(task);
            }
            if spilled && let Some(task) = self.overflow.pop() {
                return Some(task);
            }
            // The ring was empty; the overflow was (or has become) empty too, or it has
            // spilled since we looked: look again, ring first.
            if self.overflow.is_empty() {
                return None;
            }
        }
    }
}
