//! The transport-independent half of the engines of concurrent-futures whose workers are
//! other processes running the same program: Python's `_process_worker` and `_ResultItem`,
//! without the pipe. The process engine (`concurrent-futures-process`, over ipc-channel) is
//! built on it; an engine over another transport (MPI) supplies a [`WorkerLink`] and reuses
//! the rest.
//!
//! * [`call`] — a plain `fn(A) -> R` carried by its place in the executable ([`CallSite`]),
//!   and the check that a place lies in the executable's code ([`CodeMap`]).
//! * [`auth`] — the pool's secret [`CallKey`] that seals its call sites, so that a worker runs
//!   only calls its own pool made; the [`Version`] both sides must agree on.
//! * [`wire`] — the messages between a pool and a worker, as bytes.
//! * [`serve`] — the worker's loop over a [`WorkerLink`]; it returns a [`ServeEnd`] with the
//!   exit code to leave with, and never exits the process itself.
//! * [`CallRefused`] — a worker's answer to a task it cannot vouch for.
//!
//! # Examples
//!
//! A worker served over an in-memory link: the pool's settings, one sealed task, and the
//! request to leave.
//!
//! ```
//! use concurrent_futures_remote::auth::{CallKey, Version};
//! use concurrent_futures_remote::call::CallSite;
//! use concurrent_futures_remote::wire::{self, FromWorker, Init};
//! use concurrent_futures_remote::{ServeEnd, WorkerLink, serve};
//! use std::collections::VecDeque;
//!
//! struct Memory {
//!     to_worker: VecDeque<Vec<u8>>,
//!     from_worker: Vec<Vec<u8>>,
//! }
//!
//! impl WorkerLink for Memory {
//!     fn recv(&mut self) -> Option<Vec<u8>> {
//!         self.to_worker.pop_front()
//!     }
//!     fn send(&mut self, message: Vec<u8>) -> bool {
//!         self.from_worker.push(message);
//!         true
//!     }
//! }
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let key = CallKey::generate().unwrap();
//! let settings = Init { version: Version::ours(), key: key.clone(), initializer: None, max_tasks: None };
//! let task = wire::encode_task(1, key.seal(CallSite::of(square)), &7u64).unwrap();
//! let mut link = Memory {
//!     to_worker: VecDeque::from([wire::encode_init(&settings), task, wire::encode_exit()]),
//!     from_worker: Vec::new(),
//! };
//! assert_eq!(serve(&mut link), ServeEnd::Exit);
//! match wire::decode_from_worker(&link.from_worker[0]) {
//!     Some(FromWorker::Done { id: 1, outcome: Ok(bytes) }) => {
//!         assert_eq!(postcard::from_bytes::<u64>(bytes).unwrap(), 49)
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```
#![deny(missing_docs)]

pub mod auth;
pub mod call;
mod refused;
mod serve;
pub mod wire;

pub use auth::{CallKey, SealedSite, Verified, Version};
pub use call::{CallSite, CodeMap};
pub use refused::{CallRefused, RefusalReason};
pub use serve::{
    INITIALIZER_FAILED, ServeEnd, VERSION_MISMATCH, WorkerLink, install_panic_capture, serve,
};
