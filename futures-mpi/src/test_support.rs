//! Fault injection for this crate's own integration tests. Compiled only with the
//! `test-support` feature, which only the crate's dev-dependency on itself turns on; not part
//! of the API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Receiving threads running now (see [`sends_beside_the_receiving_thread`]).
static RECEIVING: AtomicUsize = AtomicUsize::new(0);
/// Sends of payloads started on another thread while a receiving thread ran.
static BESIDE: AtomicUsize = AtomicUsize::new(0);

/// The length from which a message still coming makes this process kill itself (0: never).
static KILL_AT_LEN: AtomicUsize = AtomicUsize::new(0);

/// Makes this process kill itself (`SIGKILL`) as soon as a message of at least `len` bytes
/// (not 0) is on its way to it and has not all come: a pool that dies while a worker's large
/// result is under way. Its receiving thread tests such a message as soon as it has matched it.
pub fn die_while_a_message_comes(len: usize) {
    KILL_AT_LEN.store(len, Ordering::SeqCst);
}

/// Called each time a message being received is tested and has not all come, with its length.
pub(crate) fn note_coming(len: usize) {
    let at = KILL_AT_LEN.load(Ordering::SeqCst);
    if at != 0 && len >= at {
        // SAFETY: kill(2) of this process by its own pid; no memory is involved.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

/// Makes this process, if it turns out a worker rank, wait `delay` after `MPI_Init` and before
/// its first MPI call (its hello): a rank that comes up late, which answers no connection in
/// the meantime. Call before [`bootstrap`](crate::bootstrap); only the first call counts.
pub fn delay_worker_hello(delay: Duration) {
    let _ = crate::bootstrap::HELLO_DELAY.set(delay);
}

/// How many MPI sends of a payload (tasks, and a transport user's messages) were started, in
/// this process, on a thread other than a pool's receiving thread while one ran: 0 when every
/// such send is handed to it, as the crate docs' "Death" requires (a thread caught inside MPI
/// by Open MPI's deadlock could not act on the progress watch's verdict). Pulses (from the
/// heartbeat thread, which the progress watch times) and the sends of a pool's start
/// (hellos, welcome: another pool may start while one runs) are not counted.
/// A receiving thread stuck inside MPI counts as running for good.
pub fn sends_beside_the_receiving_thread() -> usize {
    BESIDE.load(Ordering::SeqCst)
}

/// Called as every MPI send starts, with its tag.
pub(crate) fn note_send(tag: i32) {
    let on_receiver = std::thread::current().name() == Some(crate::receiver::THREAD_NAME);
    if tag == crate::sys::tag::DATA && !on_receiver && RECEIVING.load(Ordering::SeqCst) > 0 {
        BESIDE.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts a receiving thread for as long as it lives.
pub(crate) struct Receiving;

impl Receiving {
    /// Counts the calling receiving thread in.
    pub(crate) fn enter() -> Receiving {
        RECEIVING.fetch_add(1, Ordering::SeqCst);
        Receiving
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        RECEIVING.fetch_sub(1, Ordering::SeqCst);
    }
}
