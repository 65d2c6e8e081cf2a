//! `map`'s items without futures: each input and its result live in a slot of a shared
//! segment, and the task the pool queues is a pointer to its slot.
//!
//! A `map` caller never sees its items' futures, so an item needs none of what a future
//! offers (callbacks, waiters, clones, a lock): only a state, a place for the value and a way
//! to wake the one iterator waiting for it. A segment holds up to 64 items (fewer when they
//! are large, see `slots_per_segment`), so queuing an item allocates nothing, and completing
//! one takes no lock.
//!
//! **A slot's state** is one byte: the status (`QUEUED`, `RUNNING`, then one of `RETURNED`,
//! `FAILED`, `CANCELLED`) and the `WAITING` bit, set by the iterator before it sleeps on the
//! segment's condition variable. The pool's side ends a slot with one `swap` of the byte, and
//! wakes the iterator if the byte it replaced had `WAITING`: both sides change the one byte
//! by read-modify-writes, so one of them always sees the other and no wake-up is lost. The
//! wake is under the segment's lock, which the iterator holds from its check until it sleeps.
//!
//! **Who touches the content.** The iterator writes the input before the item is queued (the
//! queue publishes it); the worker that moves the slot from `QUEUED` to `RUNNING` takes the
//! input and writes the result before its `swap` publishes it; the iterator reads the result
//! once it saw a finished status with `Acquire`. A slot cancelled while queued keeps its input
//! until the segment is freed. Nobody else touches a slot's content.
//!
//! **Lifetime.** A segment counts its holders: one per slot (released by the slot's task once
//! it is done with the segment, or by the iterator for the slots it never filled) and one for
//! the iterator. The segment is created with all of them counted, so queuing an item changes
//! no count; whoever releases last frees it, dropping what its slots still hold (inputs of
//! cancelled items, results never read) with every `Drop` panic contained.

use crate::unwind::contain;
use concurrent_futures_core::shim::cell::UnsafeCell;
use concurrent_futures_core::shim::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use concurrent_futures_core::shim::sync::{Condvar, Mutex};
use concurrent_futures_core::shim::{hint, thread};
use concurrent_futures_core::{BrokenExecutor, Deadline, FutureId, TaskError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

/// The most items per segment.
const MAX_SLOTS: usize = 64;

/// The slots of a segment fill at most this much memory, unless one slot is larger.
const SEGMENT_BYTES: usize = 16 * 1024;

/// Items per segment for inputs `A` and results `R`: 64, or as many as fit in 16 KiB, at least
/// one. (A `map` of one large value allocates room for one, not for 64; `buffersize(1)` over
/// 1 MiB values holds 1 MiB per segment.)
const fn slots_per_segment<A, R>() -> usize {
    let fit = match SEGMENT_BYTES.checked_div(size_of::<Slot<A, R>>()) {
        Some(fit) => fit,
        None => MAX_SLOTS,
    };
    if fit > MAX_SLOTS {
        MAX_SLOTS
    } else if fit == 0 {
        1
    } else {
        fit
    }
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const RETURNED: u8 = 2;
const FAILED: u8 = 3;
const CANCELLED: u8 = 4;
const STATUS: u8 = 0x7;
/// The iterator sleeps, or is about to, until this slot finishes.
const WAITING: u8 = 0x80;

/// The function `map` calls on every input. (Immutable: a plain std `Arc`.)
pub(crate) type Call<A, R> = std::sync::Arc<dyn Fn(A) -> R + Send + Sync>;

/// What a slot holds.
enum Content<A, R> {
    Empty,
    Input(A),
    Output(R),
    Failed(Box<TaskError>),
}

/// One item. Not padded to a cache line: two workers finishing neighbouring items do write
/// the same line, but the iterator then reads several items per line, and on 2 cores
/// `cargo xtask bench thread` row (d) was no slower unpadded (4.6-5.3M items/s either way).
struct Slot<A, R> {
    state: AtomicU8,
    content: UnsafeCell<Content<A, R>>,
}

/// The part of a segment the pool reaches without knowing `A` and `R`.
struct Header {
    /// Holders (see the module docs).
    refs: AtomicUsize,
    /// Held by the iterator from its last check of a slot until it sleeps, and by the pool's
    /// side while it wakes it.
    lock: Mutex<()>,
    woken: Condvar,
    vtable: &'static VTable,
}

/// The typed operations on a slot (`index`) of a segment (`header`).
struct VTable {
    run: unsafe fn(NonNull<Header>, usize, &dyn Fn()),
    cancel: unsafe fn(NonNull<Header>, usize),
    fail: unsafe fn(NonNull<Header>, usize, &BrokenExecutor),
    free: unsafe fn(NonNull<Header>),
}

/// `slots_per_segment::<A, R>()` items and the function they share. The slots are a heap
/// slice of their own, built in place: a segment of large values is never made on the stack
/// first. `repr(C)`: the header comes first, so
/// a pointer to the segment is a pointer to its header.
#[repr(C)]
struct Segment<A, R> {
    header: Header,
    f: Call<A, R>,
    slots: Box<[Slot<A, R>]>,
}

// SAFETY: a segment is shared by the iterator and the workers. Its content cells are reached
// by one thread at a time, in the hand-offs the module docs list (each ordered by the queue or
// by the state byte's `Release`/`Acquire`); `A` and `R` move between threads (`Send`) but are
// never shared, so they need not be `Sync`.
unsafe impl<A: Send, R: Send> Sync for Segment<A, R> {}
// SAFETY: as above; the segment is freed by whichever thread releases it last.
unsafe impl<A: Send, R: Send> Send for Segment<A, R> {}

struct VTables<A, R>(std::marker::PhantomData<(A, R)>);

impl<A: Send + 'static, R: Send + 'static> VTables<A, R> {
    const VTABLE: VTable = VTable {
        run: run::<A, R>,
        cancel: cancel::<A, R>,
        fail: fail::<A, R>,
        free: free::<A, R>,
    };
}

/// A queued item: a slot of a segment, and one of the segment's holders.
pub(crate) struct ItemTask {
    header: NonNull<Header>,
    index: usize,
}

// SAFETY: the task reaches its slot as the module docs allow (the slot's input is `Send`), and
// owns one count of a segment that is `Send + Sync`.
unsafe impl Send for ItemTask {}

impl ItemTask {
    fn header(&self) -> &Header {
        // SAFETY: the task holds a count of its segment, which lives until released.
        unsafe { self.header.as_ref() }
    }

    /// Runs the item unless it was cancelled, then lets go of the segment; `finished_running`
    /// is called after the function returns (or at once, cancelled) and before the result is
    /// published, as for a pool task. A panic of the function is the item's error.
    pub(crate) fn run(self, finished_running: &dyn Fn()) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the vtable is the segment's own; the task is consumed, and `run` releases
        // its count.
        unsafe { (this.header().vtable.run)(this.header, this.index, finished_running) }
    }

    /// Cancels the item if it has not started (waking the iterator if it waits for it), then
    /// lets go of the segment.
    pub(crate) fn cancel(self) {
        // Dropping does exactly that.
        drop(self);
    }

    /// Fails the item with the pool's breakage, unless it was cancelled; then lets go of the
    /// segment.
    pub(crate) fn fail(self, error: &BrokenExecutor) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: as in `run`.
        unsafe { (this.header().vtable.fail)(this.header, this.index, error) }
    }

    /// An id for the pool's reports (the slot's address): no future of `map` is ever seen.
    pub(crate) fn id(&self) -> FutureId {
        FutureId::from_usize(self.header.as_ptr() as usize + 1 + self.index)
    }
}

impl Drop for ItemTask {
    fn drop(&mut self) {
        // A task dropped unrun (refused, or with the queue) is a cancelled one.
        // SAFETY: the vtable is the segment's own; `cancel` gives the task's count back.
        unsafe { (self.header().vtable.cancel)(self.header, self.index) }
    }
}

/// Moves a queued slot to `CANCELLED`; the byte it replaced, or `None` if the slot was not
/// queued (started, finished, or cancelled already).
fn cancel_queued(state: &AtomicU8) -> Option<u8> {
    let mut current = state.load(Ordering::Acquire);
    loop {
        if current & STATUS != QUEUED {
            return None;
        }
        match state.compare_exchange(current, CANCELLED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(prev) => return Some(prev),
            Err(now) => current = now,
        }
    }
}

/// Wakes the iterator sleeping on this segment.
fn wake(header: &Header) {
    let _lock = header.lock.lock();
    header.woken.notify_all();
}

/// Gives back `n` counts of the segment; frees it if they were the last.
///
/// # Safety
///
/// The caller holds `n` counts and uses the segment no more.
unsafe fn release(header: NonNull<Header>, n: usize) {
    // SAFETY: the caller still holds its counts here.
    let (refs, free) = unsafe {
        let h = header.as_ref();
        (&h.refs, h.vtable.free)
    };
    // `AcqRel`: every holder's use of the segment happens before the last one frees it.
    if refs.fetch_sub(n, Ordering::AcqRel) == n {
        // SAFETY: no count is left, so no one else reaches the segment.
        unsafe { free(header) };
    }
}

/// The typed segment behind `header`.
///
/// # Safety
///
/// `header` is the header of a live `Segment<A, R>`.
unsafe fn segment<'a, A, R>(header: NonNull<Header>) -> &'a Segment<A, R> {
    // SAFETY: `Segment` is `repr(C)` with the header first.
    unsafe { header.cast::<Segment<A, R>>().as_ref() }
}

/// Ends a started slot with `status` (its content written), waking the iterator if it waits.
fn publish(header: &Header, state: &AtomicU8, status: u8) {
    // `Release`: the content written before is visible to whoever sees the status.
    if state.swap(status, Ordering::AcqRel) & WAITING != 0 {
        wake(header);
    }
}

/// Moves a queued slot to `RUNNING`, keeping `WAITING`; `false` if it was cancelled.
fn start(state: &AtomicU8) -> bool {
    let mut current = state.load(Ordering::Acquire);
    loop {
        if current & STATUS != QUEUED {
            return false;
        }
        let running = RUNNING | (current & WAITING);
        match state.compare_exchange(current, running, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
}

/// `ItemTask::run` for a `Segment<A, R>`.
///
/// # Safety
///
/// `header` is a live `Segment<A, R>`'s, `index` a slot its task was made for; the task is
/// consumed and its count given back here.
unsafe fn run<A: Send + 'static, R: Send + 'static>(
    header: NonNull<Header>,
    index: usize,
    finished_running: &dyn Fn(),
) {
    // Gives the task's count back however this ends (a panic from `finished_running`).
    let _release = Release(header);
    // SAFETY: the caller's contract.
    let seg = unsafe { segment::<A, R>(header) };
    let slot = &seg.slots[index];
    if !start(&slot.state) {
        finished_running();
        return;
    }
    // SAFETY: this thread moved the slot to RUNNING, so it alone reaches the content now, and
    // the input was written before the task was queued.
    let input = slot
        .content
        .with_mut(|p| unsafe { std::mem::replace(&mut *p, Content::Empty) });
    let Content::Input(input) = input else {
        unreachable!("a queued slot holds its input")
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| (seg.f)(input)));
    finished_running();
    let (content, status) = match outcome {
        Ok(value) => (Content::Output(value), RETURNED),
        Err(panic) => {
            let error = TaskError::from_panic(&*panic);
            crate::unwind::drop_payload(panic);
            (Content::Failed(Box::new(error)), FAILED)
        }
    };
    // SAFETY: still this thread's alone (RUNNING); the slot held `Empty`, nothing to drop.
    slot.content.with_mut(|p| unsafe { p.write(content) });
    publish(&seg.header, &slot.state, status);
}

/// `ItemTask::cancel` (and a task's drop) for a `Segment<A, R>`.
///
/// # Safety
///
/// As for [`run`].
unsafe fn cancel<A: Send + 'static, R: Send + 'static>(header: NonNull<Header>, index: usize) {
    let _release = Release(header);
    // SAFETY: the caller's contract.
    let seg = unsafe { segment::<A, R>(header) };
    if let Some(prev) = cancel_queued(&seg.slots[index].state)
        && prev & WAITING != 0
    {
        wake(&seg.header);
    }
}

/// `ItemTask::fail` for a `Segment<A, R>`.
///
/// # Safety
///
/// As for [`run`].
unsafe fn fail<A: Send + 'static, R: Send + 'static>(
    header: NonNull<Header>,
    index: usize,
    error: &BrokenExecutor,
) {
    let _release = Release(header);
    // SAFETY: the caller's contract.
    let seg = unsafe { segment::<A, R>(header) };
    let slot = &seg.slots[index];
    if !start(&slot.state) {
        return;
    }
    let failed = Content::Failed(Box::new(TaskError::Broken(error.clone())));
    // SAFETY: RUNNING is this thread's: it alone reaches the content; the input goes.
    let input = slot
        .content
        .with_mut(|p| unsafe { std::mem::replace(&mut *p, failed) });
    publish(&seg.header, &slot.state, FAILED);
    contain("dropping a map input", || drop(input));
}

/// Frees a `Segment<A, R>`.
///
/// # Safety
///
/// `header` came from `Items::push`'s `Box::into_raw` of a `Segment<A, R>`, and no count of
/// it is left.
unsafe fn free<A: Send + 'static, R: Send + 'static>(header: NonNull<Header>) {
    // SAFETY: the caller's contract.
    let seg = unsafe { Box::from_raw(header.cast::<Segment<A, R>>().as_ptr()) };
    for slot in &seg.slots {
        // SAFETY: no count is left: this thread alone reaches the segment.
        let content = slot
            .content
            .with_mut(|p| unsafe { std::mem::replace(&mut *p, Content::Empty) });
        contain("dropping a map item", || drop(content));
    }
    contain("dropping map's function", || drop(seg));
}

/// Gives a task's count back when dropped.
struct Release(NonNull<Header>);

impl Drop for Release {
    fn drop(&mut self) {
        // SAFETY: made by a task's operation, which consumed the task and its count.
        unsafe { release(self.0, 1) }
    }
}

/// Spin steps the iterator takes, watching its next item, before it sleeps (as a future's
/// `result()` does: a short task finishes sooner than a sleeping thread can be woken).
const WAIT_SPINS: u32 = 200;

/// Of those, how many are pure `spin_loop` hints before it starts yielding its core.
const SPIN_BEFORE_YIELD: u32 = 50;

/// How an item ended, as the iterator reads it.
pub(crate) enum Outcome<R> {
    Returned(R),
    Failed(TaskError),
    Cancelled,
    /// The deadline passed first (the item was cancelled if it had not started).
    TimedOut,
}

/// The iterator's side: the segments it holds, oldest first, and which slots it filled and
/// read. Each segment is counted once for the iterator (and the back one, also for the slots
/// not filled yet).
pub(crate) struct Items<A, R> {
    segments: std::collections::VecDeque<NonNull<Header>>,
    /// The next slot to read, in the front segment.
    head: usize,
    /// Slots filled in the back segment.
    tail: usize,
    /// Filled and not read yet.
    pending: usize,
    f: Call<A, R>,
}

// SAFETY: the iterator's side reaches its segments' slots only as the module docs allow, and
// the segments are `Send + Sync` for `A, R: Send`.
unsafe impl<A: Send, R: Send> Send for Items<A, R> {}
// SAFETY: `&Items` reads only its own counts.
unsafe impl<A: Send, R: Send> Sync for Items<A, R> {}

impl<A: Send + 'static, R: Send + 'static> Items<A, R> {
    pub(crate) fn new(f: Call<A, R>) -> Self {
        Items {
            segments: std::collections::VecDeque::new(),
            head: 0,
            tail: slots_per_segment::<A, R>(),
            pending: 0,
            f,
        }
    }

    /// Puts `input` in the next slot: the task to queue for it.
    pub(crate) fn push(&mut self, input: A) -> ItemTask {
        if self.tail == slots_per_segment::<A, R>() {
            self.grow();
        }
        let header = *self.segments.back().expect("grown");
        let index = self.tail;
        // SAFETY: the iterator holds a count of its back segment.
        let seg = unsafe { segment::<A, R>(header) };
        // SAFETY: a slot not filled yet is the iterator's alone; it holds `Empty`.
        seg.slots[index]
            .content
            .with_mut(|p| unsafe { p.write(Content::Input(input)) });
        self.tail += 1;
        self.pending += 1;
        ItemTask { header, index }
    }

    #[cold]
    fn grow(&mut self) {
        let seg = Box::new(Segment::<A, R> {
            header: Header {
                refs: AtomicUsize::new(slots_per_segment::<A, R>() + 1),
                lock: Mutex::new(()),
                woken: Condvar::new(),
                vtable: &VTables::<A, R>::VTABLE,
            },
            f: std::sync::Arc::clone(&self.f),
            slots: (0..slots_per_segment::<A, R>())
                .map(|_| Slot {
                    state: AtomicU8::new(QUEUED),
                    content: UnsafeCell::new(Content::Empty),
                })
                .collect(),
        });
        let header = NonNull::from(Box::leak(seg)).cast::<Header>();
        if self.segments.is_empty() {
            self.head = 0;
        }
        self.segments.push_back(header);
        self.tail = 0;
    }

    /// The oldest item not read yet, waiting for it until `deadline`; `None` if there is none.
    pub(crate) fn next(&mut self, deadline: &Deadline) -> Option<Outcome<R>> {
        if self.pending == 0 {
            return None;
        }
        if self.head == slots_per_segment::<A, R>() {
            // Every slot of the front segment is read (so it is not the one being filled).
            let done = self.segments.pop_front().expect("a pending item's segment");
            // SAFETY: the iterator's count of it, given back once.
            unsafe { release(done, 1) };
            self.head = 0;
        }
        let header = *self.segments.front().expect("a pending item's segment");
        // SAFETY: the iterator holds a count of every segment in `segments`.
        let seg = unsafe { segment::<A, R>(header) };
        let slot = &seg.slots[self.head];
        let state = wait(&seg.header, &slot.state, deadline);
        let outcome = match state & STATUS {
            RETURNED | FAILED => {
                // SAFETY: a finished status, seen with `Acquire`: the worker wrote the content
                // before publishing it and touches it no more.
                let content = slot
                    .content
                    .with_mut(|p| unsafe { std::mem::replace(&mut *p, Content::Empty) });
                match content {
                    Content::Output(value) => Outcome::Returned(value),
                    Content::Failed(error) => Outcome::Failed(*error),
                    _ => unreachable!("a finished slot holds its outcome"),
                }
            }
            CANCELLED => Outcome::Cancelled,
            _ => {
                // Python's `_result_or_cancel`: an item not finished in time never starts.
                cancel_queued(&slot.state);
                return Some(Outcome::TimedOut);
            }
        };
        self.head += 1;
        self.pending -= 1;
        Some(outcome)
    }
}

impl<A, R> Items<A, R> {
    /// Items filled and not read yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Cancels every item not read yet that has not started (running ones finish; their
    /// results are dropped with the segment). Reading stops here: `pending` becomes 0.
    pub(crate) fn cancel_pending(&mut self) {
        let mut head = self.head;
        for (i, &header) in self.segments.iter().enumerate() {
            let filled = if i + 1 == self.segments.len() {
                self.tail
            } else {
                slots_per_segment::<A, R>()
            };
            // SAFETY: the iterator holds a count of it.
            let seg = unsafe { segment::<A, R>(header) };
            for slot in &seg.slots[head.min(filled)..filled] {
                cancel_queued(&slot.state);
            }
            head = 0;
        }
        self.pending = 0;
    }
}

impl<A, R> Drop for Items<A, R> {
    fn drop(&mut self) {
        // The items not read were cancelled by the iterator already (`cancel_pending`).
        let last = self.segments.len();
        for (i, header) in self.segments.drain(..).enumerate() {
            let unfilled = if i + 1 == last {
                slots_per_segment::<A, R>() - self.tail
            } else {
                0
            };
            // SAFETY: the iterator's count and those of the slots it never filled.
            unsafe { release(header, 1 + unfilled) };
        }
    }
}

/// Waits until the slot finishes or `deadline` passes; returns its state byte then.
fn wait(header: &Header, state: &AtomicU8, deadline: &Deadline) -> u8 {
    let done = |s: u8| s & STATUS >= RETURNED;
    let s = state.load(Ordering::Acquire);
    if done(s) || deadline.is_past() {
        return s;
    }
    for step in 0..hint::spin_limit(WAIT_SPINS) {
        let s = state.load(Ordering::Acquire);
        if done(s) {
            return s;
        }
        if step < SPIN_BEFORE_YIELD {
            hint::spin();
        } else {
            thread::yield_now();
        }
    }
    // Sleeping: tell this thread's pool, if it is a worker's (see core's `blocking`).
    concurrent_futures_core::blocking::blocking(|| {
        let mut lock = header.lock.lock();
        loop {
            let s = state.load(Ordering::Acquire);
            if done(s) {
                return s;
            }
            if s & WAITING == 0
                && state
                    .compare_exchange(s, s | WAITING, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            match deadline.instant() {
                None => lock = header.woken.wait(lock),
                Some(at) => {
                    if deadline.is_past() {
                        return s;
                    }
                    lock = header.woken.wait_until(lock, at);
                }
            }
        }
    })
}
