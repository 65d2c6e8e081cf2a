//! The worker's end: whole messages to and from the pool (rank 0 of the communicator that joins
//! them), with the shape of the remote crate's `WorkerLink` trait.

use crate::backoff::Backoff;
use crate::sys::{self, Comm, tag};
use crate::{MpiError, Rank};

/// The pool's rank on the worker's communicator (the spawning parent, or world rank 0).
const POOL: Rank = 0;

/// A worker's connection to its pool, handed to the serve closure by
/// [`bootstrap`](crate::bootstrap).
///
/// Waiting polls (see the crate docs: a blocking MPI receive spins a core and never returns if
/// the pool dies). If the pool's process dies, Open MPI kills spawned workers; launcher ranks
/// run with `--enable-recovery` would wait for good (no watch on the pool yet).
#[derive(Debug)]
pub struct WorkerLink {
    comm: Comm,
    rank: Rank,
    closed: bool,
}

impl WorkerLink {
    pub(crate) fn new(comm: Comm, rank: Rank) -> WorkerLink {
        WorkerLink {
            comm,
            rank,
            closed: false,
        }
    }

    /// This worker's rank, as the pool numbers it.
    pub fn rank(&self) -> Rank {
        self.rank
    }

    /// The next whole message from the pool, or `None` once the pool has closed its end (asked
    /// this worker to leave) or MPI failed.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut backoff = Backoff::default();
        while !self.closed {
            match sys::try_receive(self.comm, Some(POOL)) {
                Ok(Some((_, tag::DATA, bytes))) => return Some(bytes),
                Ok(Some((_, tag::LEAVE, _))) | Err(_) => self.closed = true,
                Ok(Some(_)) => backoff.reset(),
                Ok(None) => backoff.snooze(),
            }
        }
        None
    }

    /// Sends one whole message to the pool; `false` if the pool is gone (has asked this worker
    /// to leave) or MPI failed.
    pub fn send(&mut self, message: Vec<u8>) -> bool {
        !self.closed && sys::send(self.comm, POOL, tag::DATA, message, || false).is_ok()
    }

    /// The first message: this worker's pid and host.
    pub(crate) fn hello(&self) -> Result<(), MpiError> {
        sys::send(
            self.comm,
            POOL,
            tag::HELLO,
            crate::hello::encode(&sys::processor_name()),
            || false,
        )
    }

    /// The last message: the serve closure's exit code.
    pub(crate) fn goodbye(&self, code: i32) -> Result<(), MpiError> {
        sys::send(
            self.comm,
            POOL,
            tag::GOODBYE,
            code.to_le_bytes().to_vec(),
            || false,
        )
    }

    pub(crate) fn comm(&self) -> Comm {
        self.comm
    }
}
