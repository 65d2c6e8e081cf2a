//! The messages between the pool and a worker, and their byte layout.
//!
//! Task and result messages are hand-framed (a tag byte, a little-endian header, then the
//! postcard bytes of the argument or result), so the payload is encoded once, straight into
//! the message, and a payload that fails to decode is that task's error and nothing more.
//! The rare messages (the worker's hello and its start-up settings) use serde.

use crate::auth::{CallKey, SealedSite, Version};
use crate::refused::{CallRefused, RefusalReason};
use concurrent_futures_core::{PayloadError, PayloadStage, TaskError};
use ipc_channel::ipc::{self, IpcReceiver, IpcSender, IpcSharedMemory};
use serde::{Deserialize, Serialize};
use std::fmt::Display;

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

/// A worker's settings, the first message the pool sends it, on the worker's private channel:
/// the only way the pool's key reaches a worker, whatever the start method.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Init {
    /// First, as in [`Hello`].
    pub(crate) version: Version,
    /// The key the pool seals its call sites with.
    pub(crate) key: CallKey,
    pub(crate) initializer: Option<(SealedSite, Vec<u8>)>,
    pub(crate) max_tasks: Option<u64>,
}

const INIT: u8 = 0;
const TASK: u8 = 1;
const DONE: u8 = 2;
const INIT_FAILED: u8 = 3;
const EXIT: u8 = 4;
const READY: u8 = 5;

/// The message that asks a worker to leave (sent before the pool closes its channel, since a
/// forked worker's channel may also be held open by later forks).
pub(crate) fn encode_exit() -> Vec<u8> {
    vec![EXIT]
}
const TASK_HEADER: usize = 1 + 8 + 16;

/// Where a payload failed, as it travels (the core's `PayloadStage` is not serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Stage {
    DecodeArgument,
    EncodeResult,
}

/// Why a task gave no result, as the worker reports it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// The task panicked: the message, and where and the backtrace as text.
    Panicked { message: String, traceback: String },
    /// The argument or result could not be (de)serialized.
    Payload { stage: Stage, message: String },
    /// The worker would not run the message (not a call site it can vouch for, or garbage).
    Refused {
        reason: RefusalReason,
        detail: String,
    },
    /// The pool could not read the worker's report of a failure.
    Unreadable { message: String },
}

impl Failure {
    pub(crate) fn payload(stage: PayloadStage, error: impl Display) -> Failure {
        let stage = match stage {
            PayloadStage::EncodeResult => Stage::EncodeResult,
            _ => Stage::DecodeArgument,
        };
        Failure::Payload {
            stage,
            message: error.to_string(),
        }
    }

    /// The future's error for this failure.
    pub(crate) fn into_task_error(self) -> TaskError {
        match self {
            Failure::Panicked { message, traceback } => TaskError::remote(message, traceback),
            Failure::Payload { stage, message } => {
                let stage = match stage {
                    Stage::DecodeArgument => PayloadStage::DecodeArgument,
                    Stage::EncodeResult => PayloadStage::EncodeResult,
                };
                TaskError::Payload(PayloadError::new(stage, message))
            }
            Failure::Refused { reason, detail } => {
                TaskError::custom(CallRefused::new(reason, detail))
            }
            Failure::Unreadable { message } => TaskError::remote(message, ""),
        }
    }
}

/// A message to a worker, decoded.
#[derive(Debug)]
pub(crate) enum ToWorker<'a> {
    Init(Init),
    Task {
        id: u64,
        site: SealedSite,
        args: &'a [u8],
    },
    Exit,
}

/// A message from a worker, decoded.
#[derive(Debug)]
pub(crate) enum FromWorker<'a> {
    /// Task `id` finished: its result bytes, or why not.
    Done {
        id: u64,
        outcome: Result<&'a [u8], Failure>,
    },
    /// The initializer returned: the worker's first task starts now (its time limit starts
    /// with it).
    Ready,
    /// The initializer failed; the worker exits next.
    InitFailed {
        /// One line: the panic message, or why the call could not be made.
        message: String,
        /// Where it panicked, and the worker's backtrace if its environment asked for one.
        traceback: String,
    },
}

pub(crate) fn encode_init(init: &Init) -> Vec<u8> {
    let mut out = vec![INIT];
    postcard::to_io(init, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// A task message for `id`, with `arg` encoded in place after the header.
pub(crate) fn encode_task<A: Serialize>(
    id: u64,
    site: SealedSite,
    arg: &A,
) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::with_capacity(64);
    out.push(TASK);
    out.extend_from_slice(&id.to_le_bytes());
    let site_bytes = postcard::to_allocvec(&site)?;
    out.extend_from_slice(&(site_bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(&site_bytes);
    postcard::to_io(arg, out)
}

pub(crate) fn decode_to_worker(message: &[u8]) -> Result<ToWorker<'_>, String> {
    match message.split_first() {
        Some((&EXIT, [])) => Ok(ToWorker::Exit),
        Some((&INIT, rest)) => postcard::from_bytes(rest)
            .map(ToWorker::Init)
            .map_err(|e| e.to_string()),
        Some((&TASK, rest)) if rest.len() >= 10 => {
            let id = u64::from_le_bytes(rest[..8].try_into().unwrap());
            let len = u16::from_le_bytes(rest[8..10].try_into().unwrap()) as usize;
            let rest = &rest[10..];
            if rest.len() < len {
                return Err("truncated task message".into());
            }
            let site = postcard::from_bytes(&rest[..len]).map_err(|e| e.to_string())?;
            Ok(ToWorker::Task {
                id,
                site,
                args: &rest[len..],
            })
        }
        _ => Err(format!("unknown message of {} bytes", message.len())),
    }
}

/// The id of a task message, if the message has one (to answer garbage by id where possible).
pub(crate) fn task_id(message: &[u8]) -> Option<u64> {
    match message {
        [TASK, rest @ ..] if rest.len() >= 8 => {
            Some(u64::from_le_bytes(rest[..8].try_into().unwrap()))
        }
        _ => None,
    }
}

pub(crate) fn encode_done(id: u64, outcome: Result<Vec<u8>, Failure>) -> Vec<u8> {
    let (ok, payload) = match outcome {
        Ok(bytes) => (1, bytes),
        Err(failure) => (
            0,
            postcard::to_allocvec(&failure).expect("a Failure always encodes"),
        ),
    };
    let mut out = Vec::with_capacity(TASK_HEADER + payload.len());
    out.push(DONE);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(ok);
    out.extend_from_slice(&payload);
    out
}

/// The initializer returned.
pub(crate) fn encode_ready() -> Vec<u8> {
    vec![READY]
}

/// The initializer's failure: `message` and `traceback`, as one postcard pair.
pub(crate) fn encode_init_failed(message: &str, traceback: &str) -> Vec<u8> {
    let mut out = vec![INIT_FAILED];
    postcard::to_io(&(message, traceback), &mut out).expect("writing to a Vec cannot fail");
    out
}

pub(crate) fn decode_from_worker(message: &[u8]) -> Option<FromWorker<'_>> {
    match message.split_first()? {
        (&DONE, rest) if rest.len() >= 9 => {
            let id = u64::from_le_bytes(rest[..8].try_into().unwrap());
            let payload = &rest[9..];
            let outcome = if rest[8] == 1 {
                Ok(payload)
            } else {
                Err(
                    postcard::from_bytes(payload).unwrap_or_else(|e| Failure::Unreadable {
                        message: format!("undecodable failure report: {e}"),
                    }),
                )
            };
            Some(FromWorker::Done { id, outcome })
        }
        (&READY, []) => Some(FromWorker::Ready),
        (&INIT_FAILED, rest) => {
            let (message, traceback) = postcard::from_bytes::<(String, String)>(rest)
                .unwrap_or_else(|e| (format!("undecodable failure report: {e}"), String::new()));
            Some(FromWorker::InitFailed { message, traceback })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallSite;

    fn id(x: u8) -> u8 {
        x
    }

    #[test]
    fn a_task_message_round_trips() {
        let site = CallKey::generate().unwrap().seal(CallSite::of(id));
        let message = encode_task(7, site, &(1u8, "two")).unwrap();
        match decode_to_worker(&message).unwrap() {
            ToWorker::Task { id, site: s, args } => {
                assert_eq!((id, s), (7, site));
                assert_eq!(
                    postcard::from_bytes::<(u8, &str)>(args).unwrap(),
                    (1, "two")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(task_id(&message), Some(7));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for garbage in [
            &[][..],
            &[9, 9, 9],
            &[TASK, 1, 2],
            &[TASK, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0],
        ] {
            assert!(decode_to_worker(garbage).is_err(), "{garbage:?}");
        }
        assert!(decode_from_worker(&[DONE, 1]).is_none());
    }

    #[test]
    fn a_failure_report_round_trips() {
        let message = encode_done(
            3,
            Err(Failure::Refused {
                reason: RefusalReason::Unauthenticated,
                detail: "no".into(),
            }),
        );
        match decode_from_worker(&message) {
            Some(FromWorker::Done {
                id: 3,
                outcome: Err(Failure::Refused { reason, detail }),
            }) => assert_eq!((reason, &*detail), (RefusalReason::Unauthenticated, "no")),
            other => panic!("{other:?}"),
        }
    }
}
