//! The raw MPI calls the transport makes, each with its return code checked (rsmpi's own
//! wrappers ignore them, and have no non-blocking probe with a matched receive).

use crate::{MpiError, Rank};
use mpi::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::ManuallyDrop;

/// Message tags. Every message is a byte string; the tag says what it is.
pub(crate) mod tag {
    /// A payload for the pool or the worker.
    pub(crate) const DATA: i32 = 1;
    /// A worker's first message: its pid and host.
    pub(crate) const HELLO: i32 = 2;
    /// The pool asks a worker to leave (empty).
    pub(crate) const LEAVE: i32 = 3;
    /// A worker's last message: its exit code.
    pub(crate) const GOODBYE: i32 = 4;
    /// The pool's answer to the hellos: its own pid and host, so that a worker on its host can
    /// see it die.
    pub(crate) const WELCOME: i32 = 5;
    /// A heartbeat. The pool's carries its interval and the silence after which either side
    /// presumes the other dead (see the heartbeat module); a worker's is empty.
    pub(crate) const PULSE: i32 = 6;
    /// Rank 0 of a launcher job, at its start: its pid and host, so that the worker ranks on
    /// its host see it die even before it starts a pool.
    pub(crate) const PRESENCE: i32 = 7;
}

/// A communicator handle that threads may share: with `MPI_THREAD_MULTIPLE` (which the
/// transport requires at init) any thread may use it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comm(pub(crate) ffi::MPI_Comm);

// SAFETY: an MPI_Comm is an opaque handle; MPI_THREAD_MULTIPLE (checked at init) makes every MPI
// call on it thread-safe.
unsafe impl Send for Comm {}
// SAFETY: as above.
unsafe impl Sync for Comm {}

impl Comm {
    /// `MPI_COMM_WORLD`.
    pub(crate) fn world() -> Comm {
        // SAFETY: reading an extern constant of the MPI library.
        Comm(unsafe { ffi::RSMPI_COMM_WORLD })
    }

    /// This process's parent intercommunicator, if it was spawned.
    pub(crate) fn parent() -> Option<Comm> {
        // SAFETY: reading extern constants of the MPI library.
        let (mut parent, null) = (unsafe { ffi::RSMPI_COMM_NULL }, unsafe {
            ffi::RSMPI_COMM_NULL
        });
        // SAFETY: MPI is initialised (callers), and `parent` is a valid out-pointer.
        unsafe { ffi::MPI_Comm_get_parent(&mut parent) };
        (parent != null).then_some(Comm(parent))
    }

    /// Our rank in the communicator.
    pub(crate) fn rank(self) -> Rank {
        let mut rank = 0;
        // SAFETY: a valid communicator and out-pointer.
        unsafe { ffi::MPI_Comm_rank(self.0, &mut rank) };
        rank
    }

    /// The size of the local group.
    pub(crate) fn size(self) -> i32 {
        let mut size = 0;
        // SAFETY: a valid communicator and out-pointer.
        unsafe { ffi::MPI_Comm_size(self.0, &mut size) };
        size
    }

    /// `MPI_Comm_disconnect`: collective over an intercommunicator (both sides call it), and
    /// the handle is invalid afterwards. Call only once nothing else uses it.
    pub(crate) fn disconnect(self) -> Result<(), MpiError> {
        let mut raw = self.0;
        // SAFETY: a valid communicator; callers promise nothing uses it any more.
        check("MPI_Comm_disconnect", unsafe {
            ffi::MPI_Comm_disconnect(&mut raw)
        })
    }

    /// Makes MPI errors on this communicator return codes instead of aborting the process.
    pub(crate) fn errors_return(self) {
        // SAFETY: a valid communicator and MPI's predefined handler.
        unsafe { ffi::MPI_Comm_set_errhandler(self.0, ffi::RSMPI_ERRORS_RETURN) };
    }
}

/// `Err` with Open MPI's text unless `code` is `MPI_SUCCESS`.
pub(crate) fn check(call: &'static str, code: c_int) -> Result<(), MpiError> {
    if code == 0 {
        return Ok(());
    }
    let mut buf = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters and a terminator.
    unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr(), &mut len) };
    // SAFETY: MPI_Error_string wrote a NUL-terminated string into `buf`.
    let message = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Err(MpiError::Call {
        call,
        code,
        message,
    })
}

/// This host's name as MPI reports it (`MPI_Get_processor_name`).
pub(crate) fn processor_name() -> String {
    let mut buf = vec![0 as c_char; ffi::MPI_MAX_PROCESSOR_NAME as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_PROCESSOR_NAME characters and a terminator.
    unsafe { ffi::MPI_Get_processor_name(buf.as_mut_ptr(), &mut len) };
    // SAFETY: MPI wrote a NUL-terminated string into `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// One message received, if one from `source` (or any source: `None`) with `tag` (or any tag:
/// `None`) is waiting: its sender, tag and bytes. Never blocks towards a dead peer: a large
/// message (sent by rendezvous) is tested until it has all come or `gone(sender, length)`
/// says the sender is dead, frozen or out of time; then the error is [`MpiError::WorkerGone`] and the
/// buffer is leaked (MPI may still write into it).
pub(crate) fn try_receive(
    comm: Comm,
    source: Option<Rank>,
    tag: Option<i32>,
    mut gone: impl FnMut(Rank, usize) -> bool,
) -> Result<Option<(Rank, i32, Vec<u8>)>, MpiError> {
    let Some(mut incoming) = start_receive(comm, source, tag)? else {
        return Ok(None);
    };
    loop {
        if incoming.test()? {
            return Ok(Some(incoming.take()));
        }
        if gone(incoming.sender, incoming.len()) {
            return Err(MpiError::WorkerGone(incoming.sender));
        }
        // No pause: MPI moves the message along only inside its calls (see `crate::backoff`).
        std::thread::yield_now();
    }
}

/// A non-blocking MPI call under way (a send or a receive), and the buffer MPI reads or
/// writes, which must stay put until the call completes. Dropped before that (the peer died,
/// or MPI failed), it leaks the buffer rather than free it under MPI.
#[derive(Debug)]
struct Transfer {
    request: ffi::MPI_Request,
    bytes: ManuallyDrop<Vec<u8>>,
    done: bool,
}

// SAFETY: an MPI_Request is an opaque handle; MPI_THREAD_MULTIPLE (checked at init) lets any
// thread test it, and only the owner of the `Transfer` does.
unsafe impl Send for Transfer {}

impl Transfer {
    /// A transfer of `bytes`, for the caller to start with `request` as the out-handle.
    fn new(bytes: Vec<u8>) -> Transfer {
        Transfer {
            // SAFETY: an all-zero MPI_Request is a valid out-value for MPI to overwrite.
            request: unsafe { std::mem::zeroed() },
            bytes: ManuallyDrop::new(bytes),
            done: false,
        }
    }

    /// Whether MPI has finished with it. Not to be called again once it said yes.
    fn test(&mut self) -> Result<bool, MpiError> {
        let mut done: c_int = 0;
        // SAFETY: `request` is the live request of this transfer: it has not completed
        // (callers stop testing once it has).
        let code = unsafe { ffi::MPI_Test(&mut self.request, &mut done, ffi::RSMPI_STATUS_IGNORE) };
        check("MPI_Test", code)?;
        self.done = done != 0;
        Ok(self.done)
    }

    /// The bytes of a transfer that has completed.
    fn take(mut self) -> Vec<u8> {
        assert!(
            self.done,
            "a buffer taken from MPI before the call completed"
        );
        std::mem::take(&mut *self.bytes)
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if self.done {
            // SAFETY: MPI has finished with the buffer, and it is dropped only here, once.
            unsafe { ManuallyDrop::drop(&mut self.bytes) };
        }
    }
}

/// A message matched and being received, with its sender and tag.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) sender: Rank,
    pub(crate) tag: i32,
    transfer: Transfer,
}

impl Incoming {
    /// Whether the whole message has come. Not to be called again once it said yes.
    pub(crate) fn test(&mut self) -> Result<bool, MpiError> {
        let done = self.transfer.test()?;
        #[cfg(feature = "test-support")]
        if !done {
            crate::test_support::note_coming(self.len());
        }
        Ok(done)
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.transfer.bytes.len()
    }

    /// The sender, tag and bytes of a message that has all come.
    pub(crate) fn take(self) -> (Rank, i32, Vec<u8>) {
        (self.sender, self.tag, self.transfer.take())
    }
}

/// Matches one message from `source` (or any) with `tag` (or any), if one is waiting, and
/// starts receiving it; never blocks. A small message has usually all come on the first
/// [`Incoming::test`].
pub(crate) fn start_receive(
    comm: Comm,
    source: Option<Rank>,
    tag: Option<i32>,
) -> Result<Option<Incoming>, MpiError> {
    // SAFETY: reading extern constants of the MPI library.
    let source = source.unwrap_or(unsafe { ffi::RSMPI_ANY_SOURCE });
    // SAFETY: as above.
    let tag = tag.unwrap_or(unsafe { ffi::RSMPI_ANY_TAG });
    let mut flag: c_int = 0;
    // SAFETY: an all-zero MPI_Message/MPI_Status is a valid out-value for MPI to overwrite.
    let (mut message, mut status): (ffi::MPI_Message, ffi::MPI_Status) =
        unsafe { std::mem::zeroed() };
    // SAFETY: a valid communicator, and out-pointers that live through the call.
    let code =
        unsafe { ffi::MPI_Improbe(source, tag, comm.0, &mut flag, &mut message, &mut status) };
    check("MPI_Improbe", code)?;
    if flag == 0 {
        return Ok(None);
    }
    let mut count: c_int = 0;
    // SAFETY: `status` was filled by the matching probe.
    check("MPI_Get_count", unsafe {
        ffi::MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut count)
    })?;
    let mut incoming = Incoming {
        sender: status.MPI_SOURCE,
        tag: status.MPI_TAG,
        transfer: Transfer::new(vec![0u8; count.max(0) as usize]),
    };
    let transfer = &mut incoming.transfer;
    // SAFETY: the buffer holds exactly `count` bytes, the matched message's length, and is
    // never freed while the receive may still write into it (see `Transfer`); its heap block
    // does not move when `incoming` does. `message` is the handle the probe matched, which
    // only this call receives.
    let code = unsafe {
        ffi::MPI_Imrecv(
            transfer.bytes.as_mut_ptr() as *mut c_void,
            count,
            ffi::RSMPI_UINT8_T,
            &mut message,
            &mut transfer.request,
        )
    };
    check("MPI_Imrecv", code)?;
    Ok(Some(incoming))
}

/// A send MPI has not finished yet, and where it goes.
#[derive(Debug)]
pub(crate) struct Sending {
    dest: Rank,
    transfer: Transfer,
}

impl Sending {
    /// The rank it goes to.
    pub(crate) fn dest(&self) -> Rank {
        self.dest
    }

    /// Whether MPI has finished with it (the buffer is released when it is dropped). Not to be
    /// called again once it said yes.
    pub(crate) fn test(&mut self) -> Result<bool, MpiError> {
        self.transfer.test()
    }
}

/// When MPI counts a send as finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendMode {
    /// `MPI_Isend`: once MPI no longer needs the buffer. A small message is then usually only
    /// queued in this process, and lost if it ends at once.
    Standard,
    /// `MPI_Issend`: once the receiver has matched the message, so that it has arrived even if
    /// this process ends right after.
    Matched,
}

/// Starts sending `bytes` with `tag` to `dest` and never blocks: `None` if MPI finished at once
/// (a small message goes eagerly), or the send still under way, for the caller to
/// [`test`](Sending::test) until done (or drop, leaking its buffer, if the peer is gone).
pub(crate) fn start_send(
    comm: Comm,
    dest: Rank,
    tag: i32,
    bytes: Vec<u8>,
) -> Result<Option<Sending>, MpiError> {
    start_send_as(SendMode::Standard, comm, dest, tag, bytes)
}

/// [`start_send`] in `mode`.
pub(crate) fn start_send_as(
    mode: SendMode,
    comm: Comm,
    dest: Rank,
    tag: i32,
    bytes: Vec<u8>,
) -> Result<Option<Sending>, MpiError> {
    #[cfg(feature = "test-support")]
    crate::test_support::note_send(tag);
    let count = c_int::try_from(bytes.len()).map_err(|_| MpiError::TooLarge(bytes.len()))?;
    let mut sending = Sending {
        dest,
        transfer: Transfer::new(bytes),
    };
    let transfer = &mut sending.transfer;
    let buf = transfer.bytes.as_ptr() as *const c_void;
    let request = &mut transfer.request;
    let (call, code) = match mode {
        // SAFETY: the buffer is owned by the returned `Sending`'s transfer (its heap block does
        // not move), which frees it only once the request has completed (see `Transfer`).
        SendMode::Standard => ("MPI_Isend", unsafe {
            ffi::MPI_Isend(buf, count, ffi::RSMPI_UINT8_T, dest, tag, comm.0, request)
        }),
        // SAFETY: as above.
        SendMode::Matched => ("MPI_Issend", unsafe {
            ffi::MPI_Issend(buf, count, ffi::RSMPI_UINT8_T, dest, tag, comm.0, request)
        }),
    };
    if let Err(e) = check(call, code) {
        // MPI did not take the buffer: it can go.
        sending.transfer.done = true;
        return Err(e);
    }
    Ok((!sending.test()?).then_some(sending))
}

/// Sends `bytes` with `tag` to `dest` and waits until MPI has finished, without ever blocking
/// towards a dead peer: the send is tested until it completes or `gone()` says the peer is dead
/// or out of time (then its buffer is leaked: MPI may still read it).
pub(crate) fn send(
    comm: Comm,
    dest: Rank,
    tag: i32,
    bytes: Vec<u8>,
    mut gone: impl FnMut() -> bool,
) -> Result<(), MpiError> {
    let Some(mut sending) = start_send(comm, dest, tag, bytes)? else {
        return Ok(());
    };
    loop {
        if sending.test()? {
            return Ok(());
        }
        if gone() {
            return Err(MpiError::WorkerGone(dest));
        }
        // No pause: MPI moves the message along only inside its calls (see `crate::backoff`).
        std::thread::yield_now();
    }
}
