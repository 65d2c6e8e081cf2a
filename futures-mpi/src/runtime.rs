//! MPI's one life in a process: the settings it needs before init, init itself, and finalize.
//!
//! MPI can be initialised once per process, ever. The settings below are read by Open MPI's
//! runtime at init, so they are put in the environment before (the spike's findings):
//! - `OMPI_MCA_orte_enable_recovery=1`: one dead worker does not abort its siblings (without
//!   it Open MPI kills every worker spawned with the dead one; under `mpirun` it must be passed
//!   to `mpirun` itself, `--enable-recovery`, or the whole job dies with any rank; with it,
//!   a process of a job that lost a rank exits without finalizing);
//! - `OMPI_MCA_rmaps_base_oversubscribe=1`: a singleton may spawn more workers than it has free
//!   cores (also set per spawn by the `map_by` info key).
//!
//! A value the user set already is kept.

use crate::role::{self, Role};
use crate::sys::{Comm, check};
use crate::{MpiError, watchdog};
use mpi::ffi;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The settings put in the environment before init, unless already there.
const SETTINGS: [(&str, &str); 2] = [
    ("OMPI_MCA_orte_enable_recovery", "1"),
    ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
];

/// The role, once decided (by [`bootstrap`](crate::bootstrap) (or [`bootstrap_with`](crate::transport::bootstrap_with))).
static ROLE: OnceLock<Role> = OnceLock::new();
/// Whether this process initialised MPI (and has not finalized it): `Some(Ok)` once done.
static INIT: Mutex<Option<Result<(), MpiError>>> = Mutex::new(None);
/// Live [`Workers`](crate::Workers): MPI is not finalized under them.
pub(crate) static LIVE_POOLS: AtomicUsize = AtomicUsize::new(0);
/// Whether a rank of this `mpirun` job died (seen by rank 0's pool, or told by it to a worker
/// rank). Under `mpirun --enable-recovery`, `MPI_Finalize`, whose fence spans the whole job,
/// can then wait for the dead rank for good (seen with Open MPI 4.1, about one run in fifteen),
/// so it is skipped and the process just exits. Without recovery it is not: `mpirun` is
/// aborting the job and kills a rank waiting there, whereas a rank that exits without
/// finalizing could be reported as the job's failure instead of the dead rank.
pub(crate) static JOB_LOST_A_RANK: AtomicBool = AtomicBool::new(false);
/// Whether Open MPI's recovery was on in the environment this process started with: under
/// `mpirun`, whether `mpirun` runs with it (`--enable-recovery` passes it to every rank). Read
/// before [`apply_settings`] puts its own value there.
static RECOVERY_AT_START: OnceLock<bool> = OnceLock::new();

/// See [`RECOVERY_AT_START`].
pub(crate) fn recovery_at_start() -> bool {
    *RECOVERY_AT_START.get_or_init(|| {
        std::env::var("OMPI_MCA_orte_enable_recovery").is_ok_and(|value| {
            !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        })
    })
}

/// Puts [`SETTINGS`] in the environment if this thread is the process's only one (changing the
/// environment while another thread may read it is undefined behaviour in glibc).
pub(crate) fn apply_settings() {
    recovery_at_start();
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.count())
        .unwrap_or(0);
    if threads != 1 {
        return;
    }
    for (name, value) in SETTINGS {
        if std::env::var_os(name).is_none() {
            // SAFETY: this is the process's only thread (counted just above; only it could start
            // another), so nothing reads the environment concurrently.
            unsafe { std::env::set_var(name, value) };
        }
    }
}

/// Initialises MPI with `MPI_THREAD_MULTIPLE` unless done; the same answer on every call.
pub(crate) fn ensure_init() -> Result<(), MpiError> {
    let mut init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(result) = init.as_ref() {
        return result.clone();
    }
    let result = match mpi::initialize_with_threading(mpi::Threading::Multiple) {
        None => Err(MpiError::Init(
            "MPI was initialised already, outside this crate".into(),
        )),
        Some((universe, granted)) => {
            // Finalized by `finalize` below, not by rsmpi's drop: the universe would have to
            // live in a static, which is never dropped.
            std::mem::forget(universe);
            if granted == mpi::Threading::Multiple {
                Comm::world().errors_return();
                // SAFETY: reading an extern constant of the MPI library.
                Comm(unsafe { ffi::RSMPI_COMM_SELF }).errors_return();
                Ok(())
            } else {
                Err(MpiError::Init(format!(
                    "MPI_THREAD_MULTIPLE was not granted (got {granted:?})"
                )))
            }
        }
    };
    *init = Some(result.clone());
    result
}

/// Decides (once) and returns the role, initialising MPI if a launcher started this process.
pub(crate) fn decide_role() -> Result<Role, MpiError> {
    if let Some(role) = ROLE.get() {
        return Ok(*role);
    }
    let role = if role::launched() {
        ensure_init()?;
        role::after_init()
    } else {
        Role::Singleton
    };
    Ok(*ROLE.get_or_init(|| role))
}

/// The role, if [`bootstrap`](crate::bootstrap) (or [`bootstrap_with`](crate::transport::bootstrap_with)) decided it.
pub(crate) fn role() -> Option<Role> {
    ROLE.get().copied()
}

/// Finalizes MPI if this process initialised it, no pool is alive, no MPI call was abandoned
/// on a stuck thread (finalizing under it could hang as well) and no rank of a job running with
/// recovery died (see [`JOB_LOST_A_RANK`]). Call from the initialising thread (MPI's rule).
pub(crate) fn finalize() -> Result<(), MpiError> {
    let mut init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if !matches!(init.as_ref(), Some(Ok(())))
        || watchdog::abandoned()
        || (JOB_LOST_A_RANK.load(Ordering::Acquire) && recovery_at_start())
    {
        return Ok(());
    }
    if LIVE_POOLS.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    *init = Some(Err(MpiError::Init("MPI was finalized already".into())));
    // SAFETY: MPI is initialised and nothing of ours uses it any more (no live pool).
    check("MPI_Finalize", unsafe { ffi::MPI_Finalize() })
}
