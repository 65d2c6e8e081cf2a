//! The one error type of the transport: what went wrong, which rank, and what to do about it.

use crate::Rank;
use std::fmt;
use std::time::Duration;

/// Why starting, talking to or stopping MPI workers failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MpiError {
    /// The pool was used in a process whose `main` did not call [`bootstrap`](crate::bootstrap)
    /// first: its workers (copies of this program) could not know that they are workers.
    NotBootstrapped,
    /// This process is a worker rank; only a plain program or rank 0 under a launcher starts
    /// workers.
    WorkerRole,
    /// Workers were already started in this launcher job: its ranks serve one pool only.
    AlreadyStarted,
    /// `MPI_Init_thread` failed, or did not grant `MPI_THREAD_MULTIPLE`.
    Init(String),
    /// An MPI call returned an error code.
    Call {
        /// The MPI function.
        call: &'static str,
        /// Its return code.
        code: i32,
        /// Open MPI's text for the code.
        message: String,
    },
    /// `MPI_Comm_spawn` did not return in time: the most common cause is a worker program that
    /// exits (or crashes) before it reaches `MPI_Init`, which Open MPI never reports. Open MPI
    /// 4.1 built over an external PMIx 4 (as Debian and Ubuntu package it) also hangs in a
    /// spawn now and then for no reason of the program's (openpmix issue 2735; seen once in
    /// about 250 spawns on one machine). This process can no longer finalize MPI cleanly and
    /// should exit; a new process may spawn again.
    SpawnTimedOut {
        /// The program spawned.
        program: String,
        /// How long the spawn was given.
        after: Duration,
    },
    /// These workers did not send their hello in time: does their `main` call
    /// [`bootstrap`](crate::bootstrap) first, before anything that may fail or block?
    NoHello {
        /// The silent ranks.
        missing: Vec<Rank>,
        /// How long they were given.
        after: Duration,
    },
    /// A worker's first message was not a well-formed hello (another program at that rank?).
    BadHello(Rank),
    /// No worker has this rank.
    NoSuchWorker(Rank),
    /// The worker has died (or has left after shutdown): nothing can be sent to it.
    WorkerGone(Rank),
    /// A message longer than MPI's count type (2 GiB - 1 bytes).
    TooLarge(usize),
    /// An MPI call did not return in time and was abandoned on its thread; this process can no
    /// longer finalize MPI cleanly.
    Stuck {
        /// The MPI function.
        call: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// Shutdown's deadline passed with these workers neither gone nor dead; those on this host
    /// were killed.
    Stragglers(Vec<Rank>),
    /// A setting the pool cannot work with (Python's `ValueError`).
    InvalidArgument(&'static str),
    /// The initializer's argument could not be serialized.
    InitializerArgument(String),
}

impl fmt::Display for MpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpiError::NotBootstrapped => write!(
                f,
                "MPI workers used without bootstrap: call concurrent_futures_mpi::bootstrap() \
                 on the first line of main, so that spawned copies of this program serve"
            ),
            MpiError::WorkerRole => write!(
                f,
                "this process is an MPI worker rank; it cannot start workers"
            ),
            MpiError::AlreadyStarted => write!(
                f,
                "the launcher's worker ranks already served a pool in this job; start one pool per mpirun"
            ),
            MpiError::Init(why) => write!(f, "MPI could not be initialised: {why}"),
            MpiError::Call {
                call,
                code,
                message,
            } => write!(f, "{call} failed ({code}): {message}"),
            MpiError::SpawnTimedOut { program, after } => write!(
                f,
                "MPI_Comm_spawn of {program} did not return within {after:?}: the workers probably \
                 exited before MPI_Init (is bootstrap() the first line of main?); exit this process, \
                 MPI cannot be finalized cleanly now"
            ),
            MpiError::NoHello { missing, after } => write!(
                f,
                "MPI worker ranks {missing:?} sent no hello within {after:?}: call \
                 concurrent_futures_mpi::bootstrap() on the first line of main"
            ),
            MpiError::BadHello(rank) => write!(f, "MPI rank {rank} sent a malformed hello"),
            MpiError::NoSuchWorker(rank) => write!(f, "no MPI worker has rank {rank}"),
            MpiError::WorkerGone(rank) => write!(f, "MPI worker rank {rank} has died or left"),
            MpiError::TooLarge(len) => write!(
                f,
                "a message of {len} bytes exceeds MPI's 2 GiB count limit"
            ),
            MpiError::Stuck { call, after } => write!(
                f,
                "{call} did not return within {after:?} and was abandoned; exit this process, MPI \
                 cannot be finalized cleanly now"
            ),
            MpiError::InvalidArgument(why) => f.write_str(why),
            MpiError::InitializerArgument(why) => {
                write!(f, "the initializer's argument cannot be serialized: {why}")
            }
            MpiError::Stragglers(ranks) => write!(
                f,
                "MPI worker ranks {ranks:?} neither left nor died before shutdown's deadline (those \
                 on this host were killed)"
            ),
        }
    }
}

impl std::error::Error for MpiError {}
