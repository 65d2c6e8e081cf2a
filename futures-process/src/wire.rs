//! The messages between the pool and a worker as ipc-channel carries them: the new worker's
//! hello, and each message's envelope. What the messages say, and their byte layout, is the
//! wire format of `concurrent_futures_remote::wire`, re-exported here.

use concurrent_futures_remote::auth::Version;
use ipc_channel::ipc::{self, IpcReceiver, IpcSender, IpcSharedMemory};
use serde::{Deserialize, Serialize};

pub(crate) use concurrent_futures_remote::wire::*;

/// The first message of a new worker, sent to the pool's one-shot server: which protocol and
/// build it speaks, who it is, and the pool's ends of its two channels. A `channels` of `None`
/// is the sentinel the launcher sends itself when the child died before connecting.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// First, so that whatever else a future protocol changes, this is still read.
    pub(crate) version: Version,
    pub(crate) token: u64,
    pub(crate) pid: i32,
    pub(crate) channels: Option<(Sender, Receiver)>,
}

/// A message as it travels: small ones inline, large ones in a shared-memory region.
///
/// ipc-channel splits a message over ≈212 KB across a second socket whose reading end it
/// keeps open in the *sender* until the whole message is written, so a send to a worker that
/// dies mid-message blocks forever. A shared-memory region is passed as one descriptor in a
/// small message instead (and is faster from ≈256 KiB on), so no send here is ever split.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Envelope {
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    Shared(IpcSharedMemory),
}

/// Messages above this size travel in shared memory.
const SHARED_FROM: usize = 64 * 1024;

impl Envelope {
    pub(crate) fn wrap(bytes: Vec<u8>) -> Envelope {
        if bytes.len() > SHARED_FROM {
            Envelope::Shared(IpcSharedMemory::from_bytes(&bytes))
        } else {
            Envelope::Inline(bytes)
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Envelope::Inline(bytes) => bytes,
            Envelope::Shared(region) => region,
        }
    }
}

/// One direction of a worker's channel pair.
pub(crate) type Sender = IpcSender<Envelope>;
/// The other end.
pub(crate) type Receiver = IpcReceiver<Envelope>;

/// A channel pair.
pub(crate) fn channel() -> std::io::Result<(Sender, Receiver)> {
    ipc::channel()
}

/// Why a message was not sent.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The other side closed its end: it is gone (or going), and its own reader sees that.
    Gone,
    /// This side failed (most often for want of a descriptor for a shared-memory region):
    /// the other side is alive and will never get the message.
    Local(String),
}

/// Sends `bytes`. Never panics: ipc-channel's panics (it asserts that a shared-memory region
/// could be created) are this side's failure.
pub(crate) fn send(to: &Sender, bytes: Vec<u8>) -> Result<(), SendError> {
    let sent = crate::sys::guarded(|| {
        let envelope = Envelope::wrap(bytes);
        Ok::<_, std::convert::Infallible>(to.send(envelope))
    });
    match sent {
        Ok(Ok(())) => Ok(()),
        Ok(Err(ipc_channel::IpcError::Disconnected)) => Err(SendError::Gone),
        Ok(Err(ipc_channel::IpcError::Io(e)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(SendError::Gone)
        }
        Ok(Err(e)) => Err(SendError::Local(crate::sys::explain(e.to_string()))),
        Err(why) => Err(SendError::Local(why)),
    }
}
