//! The messages between a pool and a worker, and their byte layout, whatever carries them.
//!
//! Task and result messages are hand-framed (a tag byte, a little-endian header, then the
//! postcard bytes of the argument or result), so the payload is encoded once, straight into
//! the message, and a payload that fails to decode is that task's error and nothing more.
//! The rare messages (the worker's start-up settings, failure reports) use serde.
//!
//! A transport carries each message whole; what a worker does with the messages it receives
//! is [`serve`](crate::serve).

use crate::auth::{CallKey, SealedSite, Version};
use crate::refused::{CallRefused, RefusalReason};
use concurrent_futures_core::{PayloadError, PayloadStage, TaskError};
use serde::{Deserialize, Serialize};
use std::fmt::Display;

/// A worker's settings, the first message the pool sends it, on the worker's private channel:
/// the only way the pool's key reaches a worker.
#[derive(Debug, Serialize, Deserialize)]
pub struct Init {
    /// First, so that whatever else a future protocol changes, this is still read: the
    /// worker leaves (with [`VERSION_MISMATCH`](crate::VERSION_MISMATCH)) if it is not its own.
    pub version: Version,
    /// The key the pool seals its call sites with.
    pub key: CallKey,
    /// The initializer and its encoded argument, run before the first task.
    pub initializer: Option<(SealedSite, Vec<u8>)>,
    /// How many tasks the worker runs before it leaves (`max_tasks_per_child`).
    pub max_tasks: Option<u64>,
}

const INIT: u8 = 0;
const TASK: u8 = 1;
const DONE: u8 = 2;
const INIT_FAILED: u8 = 3;
const EXIT: u8 = 4;
const READY: u8 = 5;

/// The message that asks a worker to leave (sent before the pool closes its channel, since a
/// forked worker's channel may also be held open by later forks).
pub fn encode_exit() -> Vec<u8> {
    vec![EXIT]
}
const TASK_HEADER: usize = 1 + 8 + 16;

/// Where a payload failed, as it travels (the core's `PayloadStage` is not serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The worker could not decode the argument.
    DecodeArgument,
    /// The worker could not encode the result.
    EncodeResult,
}

/// Why a task gave no result, as the worker reports it.
#[derive(Debug, Serialize, Deserialize)]
pub enum Failure {
    /// The task panicked: the message, and where and the backtrace as text.
    Panicked {
        /// The panic's message.
        message: String,
        /// Where it panicked, and the worker's backtrace if its environment asked for one.
        traceback: String,
    },
    /// The argument or result could not be (de)serialized.
    Payload {
        /// Which of the two.
        stage: Stage,
        /// serde's words.
        message: String,
    },
    /// The worker would not run the message (not a call site it can vouch for, or garbage).
    Refused {
        /// Why.
        reason: RefusalReason,
        /// More about it (may be empty).
        detail: String,
    },
    /// The pool could not read the worker's report of a failure.
    Unreadable {
        /// Why the report could not be read.
        message: String,
    },
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
    pub fn into_task_error(self) -> TaskError {
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
pub enum ToWorker<'a> {
    /// The worker's settings ([`encode_init`]).
    Init(Init),
    /// Run a call ([`encode_task`]).
    Task {
        /// The task's id, to report under.
        id: u64,
        /// What to call, sealed by the pool.
        site: SealedSite,
        /// The encoded argument.
        args: &'a [u8],
    },
    /// Leave ([`encode_exit`]).
    Exit,
}

/// A message from a worker, decoded.
#[derive(Debug)]
pub enum FromWorker<'a> {
    /// Task `id` finished: its result bytes, or why not.
    Done {
        /// The task's id.
        id: u64,
        /// The encoded result, or why there is none.
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

/// The settings message.
pub fn encode_init(init: &Init) -> Vec<u8> {
    let mut out = vec![INIT];
    postcard::to_io(init, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// A task message for `id`, with `arg` encoded in place after the header.
pub fn encode_task<A: Serialize>(
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

/// An initializer's argument, encoded as a task's is (for [`Init::initializer`]).
pub fn encode_argument<A: Serialize>(arg: &A) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(arg)
}

/// A message to a worker, or why it is not one.
pub fn decode_to_worker(message: &[u8]) -> Result<ToWorker<'_>, String> {
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
pub fn task_id(message: &[u8]) -> Option<u64> {
    match message {
        [TASK, rest @ ..] if rest.len() >= 8 => {
            Some(u64::from_le_bytes(rest[..8].try_into().unwrap()))
        }
        _ => None,
    }
}

/// The id of a task report ([`encode_done`]), if the message is one: for a transport that
/// could not send a report and tells the pool why in a smaller one instead.
pub fn done_id(message: &[u8]) -> Option<u64> {
    match message {
        [DONE, rest @ ..] if rest.len() >= 9 => {
            Some(u64::from_le_bytes(rest[..8].try_into().unwrap()))
        }
        _ => None,
    }
}

/// The report that task `id` finished: its encoded result, or why not.
pub fn encode_done(id: u64, outcome: Result<Vec<u8>, Failure>) -> Vec<u8> {
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

/// A task's result value from the bytes of its `Done` report (`FromWorker::Done`'s outcome).
/// Bytes that do not decode as an `R` — or whose decoding panics, in a `Deserialize` impl —
/// are that task's [`TaskError::Payload`] at [`PayloadStage::DecodeResult`], nothing more.
pub fn decode_result<R: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<R, TaskError> {
    let decoded = std::panic::catch_unwind(|| postcard::from_bytes::<R>(bytes));
    let message = match decoded {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            let message = format!(
                "panicked: {}",
                concurrent_futures_core::panic_message(&*panic)
            );
            concurrent_futures_core::drop_panic_payload(panic);
            message
        }
    };
    Err(TaskError::Payload(PayloadError::new(
        PayloadStage::DecodeResult,
        message,
    )))
}

/// The initializer returned.
pub fn encode_ready() -> Vec<u8> {
    vec![READY]
}

/// The initializer's failure: `message` and `traceback`, as one postcard pair.
pub fn encode_init_failed(message: &str, traceback: &str) -> Vec<u8> {
    let mut out = vec![INIT_FAILED];
    postcard::to_io(&(message, traceback), &mut out).expect("writing to a Vec cannot fail");
    out
}

/// A message from a worker, or `None` if it is not one.
pub fn decode_from_worker(message: &[u8]) -> Option<FromWorker<'_>> {
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
        assert_eq!(done_id(&message), None);
        assert_eq!(done_id(&encode_done(7, Ok(vec![1]))), Some(7));
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
