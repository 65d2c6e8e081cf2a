//! `MpiPoolExecutor`: concurrent-futures' third engine, Python's `mpi4py.futures` — the same
//! `Executor` over MPI worker ranks, on one machine or across a cluster (`mpirun --hostfile`).
//!
//! Tasks are the process pool's: an `fn(A) -> R` found by its place in the program (every rank
//! runs the same executable), with serde payloads, a panic coming back as the task's error and
//! a payload that fails to (de)serialize failing that task only. The encoding, its
//! authentication and the workers' serve loop are the remote-call member's, shared with the
//! process pool; this crate adds the MPI transport under them ([`transport`]).
//!
//! # Enabling it
//!
//! Everything here needs the crate feature `mpi` (off by default: without it this crate is just
//! these docs, so the workspace builds on machines without MPI) and a system MPI. On Debian or
//! Ubuntu: `apt-get install libopenmpi-dev openmpi-bin libclang-dev`, then
//! `cargo build --features mpi` (or the facade's feature `mpi`).
//!
//! # Two ways to start
//!
//! ```ignore
//! use concurrent_futures_mpi::MpiPoolExecutor;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() {
//!     // A worker rank serves here and exits; the program itself goes on.
//!     let _session = concurrent_futures_mpi::bootstrap().expect("MPI");
//!     let pool = MpiPoolExecutor::new().expect("workers");
//!     assert_eq!(pool.submit(square, 7).unwrap().result(None).unwrap(), 49);
//! }
//! ```
//!
//! - **A plain program** (`cargo run`) spawns `max_workers` copies of itself, with the same
//!   arguments, with `MPI_Comm_spawn` (mpi4py's default).
//! - **Under a launcher** (`mpirun -n N program`), rank 0 runs `main` and ranks 1..N are the
//!   workers (mpi4py's `-m mpi4py.futures`); one pool per job. With `-n 1`, rank 0 spawns as a
//!   plain program does.
//!
//! [`bootstrap`] on the first line of `main` makes a worker serve instead of running `main`.
//! Forgetting it is an error, never a hang: [`MpiError::NotBootstrapped`] in the program, and
//! [`MpiError::NoHello`] or [`MpiError::SpawnTimedOut`] when the workers themselves lack it.
//!
//! # Death
//!
//! Open MPI 4.1 reports no dead peer (no error code, no PMIx event, no ULFM), and a blocking
//! receive from a dead rank never returns. So nothing here blocks in MPI: sends and receives are
//! non-blocking and polled, and the pool watches each worker on its own host with a pidfd,
//! reporting [`Event::Died`](transport::Event::Died) as soon as it ends; the workers on the
//! pool's host watch the pool the same way (its pid comes in a welcome message) and leave when
//! it dies. Across hosts, heartbeats tell: the pool and every worker send one from a thread of
//! their own, ten times per heartbeat timeout (30 s by default), and a worker silent that long
//! is reported as [`Event::Silent`](transport::Event::Silent) (and killed if it is on the
//! pool's host: a frozen process), while a worker that hears nothing from the pool that long
//! leaves. A sender whose large message is still coming is given one second more per 100 MB
//! of it (its pulses queue up behind the message on the wire). A worker still busy at shutdown's deadline is killed if it is on the pool's host.
//!
//! What survives a death (Open MPI 4.1):
//! - **Spawned workers**: the pool and the other workers go on ([`bootstrap`] turns on Open
//!   MPI's `orte_enable_recovery`; without it Open MPI kills every worker spawned with the dead
//!   one, though not the pool).
//! - **`mpirun --enable-recovery`**: the job goes on. Rank 0's pool breaks (below), its
//!   shutdown returns, the surviving ranks leave, and `mpirun` returns once every rank has
//!   ended. After a death no rank finalizes MPI (its job-wide fence could wait for the dead
//!   rank for good): each just exits. `mpirun`'s exit status is then 0 whatever happened, even
//!   if rank 0 itself failed: judge the run by the program's own output.
//! - **Plain `mpirun`** (recovery off, Open MPI's default): one rank's abnormal end aborts the
//!   whole job. `mpirun` kills every other rank, rank 0 included, and returns non-zero (the
//!   dead rank's status as a shell reports it: 134 for an abort). Rank 0's pool may see the
//!   death and fail the futures first, but nothing in rank 0 is sure to run after it.
//!
//! - **A death in the middle of a large transfer to the worker** (a task over 64 KiB, Open
//!   MPI's eager limit, still on its way): Open MPI's TCP transport deadlocks the pool's
//!   process inside MPI (the failed write closes the connection while holding its lock, then
//!   sends on it). Left alone, the pool would hang for good. So while the workers run, only
//!   the pool's receiving thread and its heartbeat thread call MPI for that pool (every other
//!   send is handed to the receiving thread; another pool's start or stop makes its own
//!   calls), and a thread that never calls MPI watches both: once the receiving thread has
//!   ended no round, or the heartbeat thread has been in one call, for the heartbeat timeout
//!   (at least 5 s), MPI counts as wedged. The pool breaks, naming the dead worker (the
//!   others get [`MpiError::Stuck`]), and its shutdown makes no MPI call: it kills the workers
//!   on its host, and those on other hosts leave when its heartbeat stops. The stuck threads
//!   are left behind, MPI is not finalized, and no later pool starts in this process
//!   ([`MpiError::Stuck`]): exit it. (With `btl_tcp_flags` set without `put`, Open MPI aborts
//!   the pool's process instead.)
//! - **The pool's death in the middle of a large transfer from a worker** (a result over
//!   64 KiB on its way over TCP: from another host, or from a spawned worker): the same
//!   deadlock takes the worker, whose checks of the pool then never run. So a worker's threads that call MPI mark when they
//!   entered it, a thread that never calls MPI reads the marks, and a worker that has been
//!   inside one MPI call for the same stall limit writes a line to standard error and exits at
//!   once with code 70, running nothing at exit. Without that it would outlive its pool, and
//!   `mpirun --enable-recovery` would wait for it for good.
//!
//! A death breaks the pool, as a dead process breaks Python's process pool: the tasks in flight
//! and every queued one fail with a `BrokenExecutor` naming the rank and its host.
#![deny(missing_docs)]
// Without the feature the items these docs link to do not exist; docs.rs builds with it.
#![cfg_attr(not(feature = "mpi"), allow(rustdoc::broken_intra_doc_links))]

// The pool: tasks as the remote-call member encodes them, over the transport below.
#[cfg(feature = "mpi")]
mod pool;

// The transport: roles, start-up, worker ranks and whole byte messages.
#[cfg(feature = "mpi")]
mod backoff;
#[cfg(feature = "mpi")]
mod bootstrap;
#[cfg(feature = "mpi")]
mod deathwatch;
#[cfg(feature = "mpi")]
mod doorbell;
#[cfg(feature = "mpi")]
mod error;
#[cfg(feature = "mpi")]
mod heartbeat;
#[cfg(feature = "mpi")]
mod hello;
#[cfg(feature = "mpi")]
mod link;
#[cfg(feature = "mpi")]
mod progresswatch;
#[cfg(feature = "mpi")]
mod receiver;
#[cfg(feature = "mpi")]
mod role;
#[cfg(feature = "mpi")]
mod runtime;
#[cfg(feature = "mpi")]
mod spawn;
#[cfg(feature = "mpi")]
mod stuckwatch;
#[cfg(feature = "mpi")]
mod sys;
#[cfg(feature = "mpi")]
mod watchdog;
#[cfg(feature = "mpi")]
mod workers;

// Fault injection for this crate's own tests (feature `test-support`); not part of the API.
#[cfg(all(feature = "mpi", feature = "test-support"))]
#[doc(hidden)]
pub mod test_support;

#[cfg(feature = "mpi")]
pub use bootstrap::{Session, bootstrap};
#[cfg(feature = "mpi")]
pub use error::MpiError;
#[cfg(feature = "mpi")]
pub use pool::{MpiPoolBuilder, MpiPoolExecutor};
#[cfg(feature = "mpi")]
pub use role::Role;

/// The layer under [`MpiPoolExecutor`]: worker ranks and whole byte messages, for a program
/// that speaks its own protocol to its workers. The pool is built on exactly this.
#[cfg(feature = "mpi")]
pub mod transport {
    pub use crate::bootstrap::bootstrap_with;
    pub use crate::deathwatch::wait_for_exit;
    pub use crate::hello::WorkerInfo;
    pub use crate::link::WorkerLink;
    pub use crate::receiver::Event;
    pub use crate::workers::{Outbox, Workers, WorkersConfig};

    /// A worker's rank in the communicator that joins it to the pool.
    pub type Rank = i32;
}

#[cfg(feature = "mpi")]
use transport::Rank;
