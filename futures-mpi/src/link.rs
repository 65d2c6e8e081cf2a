//! The worker's end: whole messages to and from the pool (rank 0 of the communicator that joins
//! them), with the shape of the remote crate's `WorkerLink` trait.

use crate::backoff::Backoff;
use crate::deathwatch::DeathWatch;
use crate::sys::{self, Comm, tag};
use crate::{MpiError, Rank};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The pool's rank on the worker's communicator (the spawning parent, or world rank 0).
const POOL: Rank = 0;

/// A worker's connection to its pool, handed to the serve closure by
/// [`bootstrap`](crate::bootstrap) (or [`bootstrap_with`](crate::transport::bootstrap_with)).
///
/// Waiting polls (see the crate docs: a blocking MPI receive spins a core and never returns if
/// the pool dies). A worker on the pool's host watches the pool's pidfd (from the pool's welcome
/// message) and sees the pool's end as the end of the link: that matters under `mpirun
/// --enable-recovery`, where nothing else would end a worker whose rank 0 died (spawned workers
/// are killed by Open MPI with their parent). A worker on another host does not see it (no
/// heartbeat yet).
#[derive(Debug)]
pub struct WorkerLink {
    comm: Comm,
    rank: Rank,
    closed: bool,
    pool: DeathWatch,
    pool_died: bool,
}

impl WorkerLink {
    pub(crate) fn new(comm: Comm, rank: Rank) -> WorkerLink {
        WorkerLink {
            comm,
            rank,
            closed: false,
            pool: DeathWatch::default(),
            pool_died: false,
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
                Ok(Some((_, tag::LEAVE, bytes))) => {
                    // Under a launcher, `[1]`: a rank of the job died.
                    if bytes.first() == Some(&1) {
                        crate::runtime::JOB_LOST_A_RANK.store(true, Ordering::Release);
                    }
                    self.closed = true;
                }
                Err(_) => self.closed = true,
                Ok(Some((_, tag::WELCOME, bytes))) => self.welcome(&bytes),
                Ok(Some(_)) => backoff.reset(),
                Ok(None) if self.pool_has_died() => self.closed = true,
                Ok(None) => backoff.snooze(),
            }
        }
        None
    }

    /// Watches the pool if it runs on this host.
    fn welcome(&mut self, bytes: &[u8]) {
        if let Some(pool) = crate::hello::decode(POOL, bytes)
            && pool.host == sys::processor_name()
        {
            self.pool.watch(POOL, pool.pid);
        }
    }

    /// Whether the pool's process has ended (as far as this host can see).
    fn pool_has_died(&mut self) -> bool {
        self.pool_died |= !self.pool.wait(Duration::ZERO).is_empty();
        self.pool_died
    }

    /// Whether the link ended because the pool's process died.
    pub(crate) fn pool_died(&self) -> bool {
        self.pool_died
    }

    /// Sends one whole message to the pool; `false` if the pool is gone (has asked this worker
    /// to leave) or MPI failed.
    pub fn send(&mut self, message: Vec<u8>) -> bool {
        if self.closed {
            return false;
        }
        let comm = self.comm;
        let sent = sys::send(comm, POOL, tag::DATA, message, || self.pool_has_died()).is_ok();
        self.closed |= !sent;
        sent
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
