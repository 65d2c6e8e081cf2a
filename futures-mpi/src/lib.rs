//! The MPI transport of concurrent-futures' MPI engine (Python's `mpi4py.futures`): worker
//! ranks, started by spawning or by a launcher, and whole byte messages to and from them. Task
//! encoding and the `Executor` live elsewhere; this crate only moves bytes and watches ranks.
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
//! use concurrent_futures_mpi::{Event, Workers, WorkersConfig, bootstrap};
//!
//! fn main() {
//!     // Workers serve here and exit; the program itself goes on.
//!     let _session = bootstrap(|link| {
//!         while let Some(message) = link.recv() {
//!             if !link.send(message) { break; }
//!         }
//!         0
//!     })
//!     .expect("MPI");
//!     let (workers, events) = Workers::start(&WorkersConfig::default()).expect("workers");
//!     workers.send(workers.members()[0].rank, b"ping".to_vec()).unwrap();
//!     let (_rank, event) = events.recv().unwrap();
//!     assert_eq!(event, Event::Message(b"ping".to_vec()));
//! }
//! ```
//!
//! - **A plain program** (`cargo run`) spawns `workers` copies of itself, with the same
//!   arguments, with `MPI_Comm_spawn` (mpi4py's default).
//! - **Under a launcher** (`mpirun -n N program`), rank 0 runs `main` and ranks 1..N are the
//!   workers (mpi4py's `-m mpi4py.futures`). With `-n 1`, rank 0 spawns as a plain program does.
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
//! reporting [`Event::Died`] as soon as it ends; the workers on the pool's host watch the pool
//! the same way (its pid comes in a welcome message) and leave when it dies. Workers on other
//! hosts would need a heartbeat, which is not done yet: their deaths, and the pool's, go unseen.
//! A worker still busy at shutdown's deadline is killed if it is on the pool's host.
//!
//! What survives a death: with spawned workers, the others go on ([`bootstrap`] turns on Open
//! MPI's `orte_enable_recovery`; without it Open MPI kills every worker spawned with the dead
//! one, though not the pool). Under `mpirun`, the whole job is aborted unless `mpirun` itself
//! was given `--enable-recovery`; with it, the others go on, but `mpirun`'s exit status is 0
//! whatever happened.
#![deny(missing_docs)]
// Without the feature the items these docs link to do not exist; docs.rs builds with it.
#![cfg_attr(not(feature = "mpi"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "mpi")]
mod backoff;
#[cfg(feature = "mpi")]
mod bootstrap;
#[cfg(feature = "mpi")]
mod deathwatch;
#[cfg(feature = "mpi")]
mod error;
#[cfg(feature = "mpi")]
mod hello;
#[cfg(feature = "mpi")]
mod link;
#[cfg(feature = "mpi")]
mod receiver;
#[cfg(feature = "mpi")]
mod role;
#[cfg(feature = "mpi")]
mod runtime;
#[cfg(feature = "mpi")]
mod spawn;
#[cfg(feature = "mpi")]
mod sys;
#[cfg(feature = "mpi")]
mod watchdog;
#[cfg(feature = "mpi")]
mod workers;

#[cfg(feature = "mpi")]
pub use bootstrap::{Session, bootstrap};
#[cfg(feature = "mpi")]
pub use deathwatch::wait_for_exit;
#[cfg(feature = "mpi")]
pub use error::MpiError;
#[cfg(feature = "mpi")]
pub use hello::WorkerInfo;
#[cfg(feature = "mpi")]
pub use link::WorkerLink;
#[cfg(feature = "mpi")]
pub use receiver::Event;
#[cfg(feature = "mpi")]
pub use role::Role;
#[cfg(feature = "mpi")]
pub use workers::{Workers, WorkersConfig};

/// A worker's rank in the communicator that joins it to the pool.
#[cfg(feature = "mpi")]
pub type Rank = i32;
