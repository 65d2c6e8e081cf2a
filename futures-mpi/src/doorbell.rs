//! Waking the receiving thread when there is something to send: an `eventfd` it polls beside
//! the local workers' pidfds while it pauses.
//!
//! Only a pausing thread is woken (a write is a syscall, and a busy thread starts the queued
//! sends within a round anyway): the receiving thread says it is about to pause, then looks at
//! the outgoing queue once more, under the queue's lock; a sender pushes under that lock, then
//! looks whether it pauses. Whichever comes second sees the other's step, so no message waits
//! for a whole pause. A lost ring would only cost that pause (a millisecond at most), never a
//! hang.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The `eventfd` and the flag that says whether to ring it.
#[derive(Debug)]
pub(crate) struct Doorbell {
    fd: Option<OwnedFd>,
    pausing: AtomicBool,
}

impl Doorbell {
    /// A new doorbell. Without an `eventfd` (descriptors exhausted), it never rings, and a
    /// queued send waits for the end of the receiving thread's pause.
    pub(crate) fn new() -> Doorbell {
        // SAFETY: a plain syscall; it returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        Doorbell {
            // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
            fd: (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }),
            pausing: AtomicBool::new(false),
        }
    }

    /// The descriptor to poll while pausing, if there is one.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The receiving thread is about to pause (call before its last look at the queue).
    pub(crate) fn pausing(&self) {
        self.pausing.store(true, Ordering::SeqCst);
    }

    /// The receiving thread's pause is over: clears the flag and any ring.
    pub(crate) fn resumed(&self) {
        self.pausing.store(false, Ordering::SeqCst);
        if let Some(fd) = &self.fd {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into a u64 from our own non-blocking eventfd; with no ring
            // pending it fails with EAGAIN, which is fine.
            let _ = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    (&mut count as *mut u64).cast::<libc::c_void>(),
                    8,
                )
            };
        }
    }

    /// Wakes the receiving thread if it pauses (call after pushing to the queue).
    pub(crate) fn ring(&self) {
        if !self.pausing.load(Ordering::SeqCst) {
            return;
        }
        if let Some(fd) = &self.fd {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a u64 to our own non-blocking eventfd; should its
            // counter be full (it never is: every pause ends by reading it), the write fails
            // harmlessly.
            let _ = unsafe {
                libc::write(
                    fd.as_raw_fd(),
                    (&one as *const u64).cast::<libc::c_void>(),
                    8,
                )
            };
        }
    }
}
