//! What this process is in its MPI job, decided once.
//!
//! | | `MPI_Comm_get_parent` | world size | launcher variables in the environment |
//! |---|---|---|---|
//! | plain program ([`Role::Singleton`]) | NULL | 1 | absent |
//! | `mpirun` rank ([`Role::LauncherRoot`], [`Role::LauncherWorker`]) | NULL | N | set |
//! | spawned worker ([`Role::Spawned`]) | set | number spawned | set |
//!
//! The environment alone tells a plain program from everything else without initialising MPI
//! (so a plain program pays for MPI only when it starts workers); telling a spawned worker from
//! a launcher's rank needs `MPI_Comm_get_parent`, so those are decided after init.

use crate::Rank;
use crate::sys::Comm;

/// The part this process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A plain program: it spawns its workers with `MPI_Comm_spawn`.
    Singleton,
    /// Rank 0 under a launcher (`mpirun -n N`): it runs `main`; ranks 1..N are its workers (with
    /// `-n 1`, it spawns them instead).
    LauncherRoot {
        /// The job's world size.
        size: i32,
    },
    /// A rank above 0 under a launcher: it serves rank 0.
    LauncherWorker {
        /// Its world rank.
        rank: Rank,
    },
    /// A worker spawned by a pool: it serves its parent.
    Spawned {
        /// Its rank among the spawned workers (as the parent numbers them).
        rank: Rank,
    },
}

impl Role {
    /// Whether this role serves a pool instead of running `main`.
    pub fn is_worker(self) -> bool {
        matches!(self, Role::LauncherWorker { .. } | Role::Spawned { .. })
    }
}

/// Whether a launcher (or a spawning parent's runtime) started this process: Open MPI and PMIx
/// set these for every process they start.
pub(crate) fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK"]
        .iter()
        .any(|name| std::env::var_os(name).is_some())
}

/// The role of a process in which MPI is initialised.
pub(crate) fn after_init() -> Role {
    if Comm::parent().is_some() {
        // Our rank in our own world is the rank the parent sees in its intercommunicator.
        return Role::Spawned {
            rank: Comm::world().rank(),
        };
    }
    let world = Comm::world();
    match (world.size(), world.rank()) {
        (1, _) if !launched() => Role::Singleton,
        (size, 0) => Role::LauncherRoot { size },
        (_, rank) => Role::LauncherWorker { rank },
    }
}
