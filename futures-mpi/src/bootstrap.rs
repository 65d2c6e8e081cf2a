//! The first line of `main`: a worker serves and exits here; any other process goes on.
//! [`bootstrap_with`] takes what a worker serves; the crate's [`bootstrap`](crate::bootstrap)
//! serves the pool's tasks with it.

use crate::backoff::Backoff;
use crate::link::WorkerLink;
use crate::role::Role;
use crate::sys::{self, Comm, SendMode, tag};
use crate::{MpiError, Rank, runtime};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether the launcher's worker ranks were asked to leave (by a pool's shutdown).
pub(crate) static LAUNCHER_DISMISSED: AtomicBool = AtomicBool::new(false);

/// A worker's wait between `MPI_Init` and its hello (see `test_support::delay_worker_hello`).
#[cfg(feature = "test-support")]
pub(crate) static HELLO_DELAY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// How long rank 0 waits for the worker ranks to take its announcement (under recovery), and
/// gives each to take its leave message when no pool was started.
const DISMISS_LIMIT: Duration = Duration::from_secs(10);

/// Call on the first line of `main`, before any other thread exists: in a worker role (a rank
/// above 0 under `mpirun`, or a process a pool spawned) it says hello to the pool, runs `serve`
/// on the link, says goodbye, finalizes MPI and exits the process with `serve`'s code; in a plain
/// program or rank 0 it returns a [`Session`] to keep until the end of `main`.
///
/// Why first: a pool spawns copies of this very program, which must serve instead of running
/// `main` (the analogue of Python's `if __name__ == "__main__":`); and Open MPI reads the
/// settings this function puts in the environment only at init (if other threads exist already,
/// it leaves the environment alone, since changing it under them is undefined behaviour; then
/// one spawned worker's death takes its siblings with it). A plain program does not initialise
/// MPI here: only when it starts workers.
pub fn bootstrap_with<F>(serve: F) -> Result<Session, MpiError>
where
    F: FnOnce(&mut WorkerLink) -> i32,
{
    runtime::apply_settings();
    let role = runtime::decide_role()?;
    let comm = match role {
        Role::LauncherRoot { size } => {
            announce_presence(size);
            return Ok(Session { role });
        }
        Role::Singleton => return Ok(Session { role }),
        Role::Spawned { .. } => Comm::parent().ok_or(MpiError::WorkerRole)?,
        Role::LauncherWorker { .. } => Comm::world(),
    };
    comm.errors_return();
    #[cfg(feature = "test-support")]
    if let Some(delay) = HELLO_DELAY.get() {
        std::thread::sleep(*delay);
    }
    let mut link = WorkerLink::new(comm, comm.rank());
    let code = match link.hello() {
        Ok(()) => {
            link.wait_for_welcome();
            serve(&mut link)
        }
        Err(_) => 1,
    };
    if link.pool_died() {
        // No one to say goodbye to, and MPI_Finalize with a dead rank 0 can wait for good (the
        // spike): leave at once.
        std::process::exit(code);
    }
    let _ = link.goodbye(code);
    if let Role::Spawned { .. } = role {
        // Nothing uses the parent intercommunicator any more; the parent disconnects too once
        // it has our goodbye.
        let _ = link.comm().disconnect();
    }
    let _ = runtime::finalize();
    std::process::exit(code)
}

/// Rank 0 of a launcher job tells the worker ranks its pid and host, so that those on its
/// host leave if it dies before it starts a pool (under `mpirun --enable-recovery` nothing
/// else would end them; without recovery, `mpirun` ends the job on a death).
///
/// Under recovery each announcement is a matched send, and all of them are waited for (up to
/// [`DISMISS_LIMIT`]): a plain send of a small message is done once queued in this process,
/// so a rank 0 that died right after `bootstrap` returned lost it about 1 run in 15, and its
/// worker ranks waited for a welcome for good. A worker rank matches it in its wait for the
/// welcome, which it reaches at once after its hello. A rank that has not matched it by the
/// deadline counts as lost (it died, or never reached `bootstrap`): no rank of the job
/// finalizes MPI then (see [`runtime::JOB_LOST_A_RANK`]), as its fence could wait for it.
fn announce_presence(size: i32) {
    let deadline = Instant::now() + DISMISS_LIMIT;
    let recovery = runtime::recovery_at_start();
    let mode = if recovery {
        SendMode::Matched
    } else {
        SendMode::Standard
    };
    let presence = crate::hello::encode(&sys::processor_name());
    let mut under_way: Vec<sys::Sending> = (1..size)
        .filter_map(|rank| {
            sys::start_send_as(mode, Comm::world(), rank, tag::PRESENCE, presence.clone())
                .ok()
                .flatten()
        })
        .collect();
    let mut backoff = Backoff::default();
    while !under_way.is_empty() && Instant::now() < deadline {
        // A failed test drops the send (its buffer leaked): that rank is lost to MPI anyway.
        under_way.retain_mut(|sending| matches!(sending.test(), Ok(false)));
        if !under_way.is_empty() {
            backoff.snooze();
        }
    }
    if recovery && !under_way.is_empty() {
        let missing: Vec<Rank> = under_way.iter().map(sys::Sending::dest).collect();
        log::warn!(
            target: "concurrent_futures",
            "MPI ranks {missing:?} did not take rank 0's announcement within {DISMISS_LIMIT:?}: \
             counted as lost, so no rank will finalize MPI"
        );
        runtime::JOB_LOST_A_RANK.store(true, Ordering::Release);
    }
}

/// What [`bootstrap`](crate::bootstrap) returns to a process that runs `main`; keep it until the end of `main`.
///
/// Dropping it finalizes MPI if this process initialised it (and no pool is alive, and no MPI
/// call was abandoned by a deadline). Under a launcher, rank 0 first asks the worker ranks to
/// leave if no pool did, so that the job ends instead of waiting for them.
#[derive(Debug)]
#[must_use = "MPI is finalized when the session drops: keep it until the end of main"]
pub struct Session {
    role: Role,
}

impl Session {
    /// This process's role.
    pub fn role(&self) -> Role {
        self.role
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Role::LauncherRoot { size } = self.role
            && !LAUNCHER_DISMISSED.swap(true, Ordering::AcqRel)
        {
            let deadline = Instant::now() + DISMISS_LIMIT;
            // `[1]`: a rank was lost, so the others must not finalize either.
            let lost = runtime::JOB_LOST_A_RANK.load(Ordering::Acquire);
            for rank in 1..size {
                let _ = sys::send(
                    Comm::world(),
                    rank,
                    tag::LEAVE,
                    vec![u8::from(lost)],
                    || Instant::now() > deadline,
                );
            }
        }
        let _ = runtime::finalize();
    }
}

/// Python's `if __name__ == "__main__":` for the MPI pool: call it on the first line of `main`.
/// In a worker role (a rank above 0 under `mpirun`, or a copy of this program a pool spawned)
/// it serves the pool's tasks (the remote-call member's serve loop) and exits the process; in
/// a plain program or rank 0 it returns the [`Session`] to keep until the end of `main`.
///
/// # Examples
///
/// ```no_run
/// // The first line of `main`:
/// let _session = concurrent_futures_mpi::bootstrap().expect("MPI");
/// // ... then build an `MpiPoolExecutor` and use it.
/// ```
pub fn bootstrap() -> Result<Session, MpiError> {
    bootstrap_with(|link| concurrent_futures_remote::serve(link).exit_code())
}

impl concurrent_futures_remote::WorkerLink for WorkerLink {
    fn recv(&mut self) -> Option<Vec<u8>> {
        WorkerLink::recv(self)
    }

    fn send(&mut self, message: Vec<u8>) -> bool {
        WorkerLink::send(self, message)
    }
}
