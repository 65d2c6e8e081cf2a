//! Spawning `n` copies of this program as workers, with the raw `MPI_Comm_spawn` (rsmpi's
//! `spawn` passes no info keys and ignores the return code) under a watchdog.

use crate::sys::{Comm, check};
use crate::{MpiError, watchdog};
use mpi::ffi;
use std::ffi::{CString, c_char, c_int};
use std::time::Duration;

/// Spawns `n` workers running this executable with this process's arguments; returns the
/// intercommunicator to them. Oversubscription is allowed (`map_by=:OVERSUBSCRIBE`): a
/// singleton otherwise has one slot per core, one of them its own.
pub(crate) fn spawn(n: usize, limit: Duration) -> Result<Comm, MpiError> {
    let program = std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .map_err(|e| MpiError::Init(format!("cannot find this executable: {e}")))?
        .to_string_lossy()
        .into_owned();
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|arg| CString::new(arg.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let count = c_int::try_from(n).map_err(|_| MpiError::Init(format!("{n} workers")))?;
    let path =
        CString::new(program.clone()).map_err(|_| MpiError::Init("a NUL in the path".into()))?;
    let spawned = watchdog::with_deadline("cf-mpi-spawn", limit, move || {
        spawn_now(&path, &args, count)
    });
    spawned.unwrap_or(Err(MpiError::SpawnTimedOut {
        program,
        after: limit,
    }))
}

/// The call itself, on the watchdog's thread.
fn spawn_now(path: &CString, args: &[CString], count: c_int) -> Result<Comm, MpiError> {
    let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    argv.push(std::ptr::null_mut());
    let (key, value) = (c"map_by", c":OVERSUBSCRIBE");
    // SAFETY: reading extern constants of the MPI library.
    let (mut info, mut inter) = (unsafe { ffi::RSMPI_INFO_NULL }, unsafe {
        ffi::RSMPI_COMM_NULL
    });
    // SAFETY: a valid out-pointer.
    check("MPI_Info_create", unsafe {
        ffi::MPI_Info_create(&mut info)
    })?;
    // SAFETY: `info` was just created; the key and value are NUL-terminated.
    unsafe { ffi::MPI_Info_set(info, key.as_ptr(), value.as_ptr()) };
    let mut errcodes = vec![0 as c_int; count as usize];
    // SAFETY: `argv` is NULL-terminated and its strings outlive the call; `errcodes` has room for
    // `count` codes; MPI_COMM_SELF returns errors (set at init) instead of aborting.
    let code = unsafe {
        ffi::MPI_Comm_spawn(
            path.as_ptr(),
            argv.as_mut_ptr(),
            count,
            info,
            0,
            ffi::RSMPI_COMM_SELF,
            &mut inter,
            errcodes.as_mut_ptr(),
        )
    };
    // SAFETY: `info` is ours and no longer needed.
    unsafe { ffi::MPI_Info_free(&mut info) };
    check("MPI_Comm_spawn", code)?;
    let inter = Comm(inter);
    inter.errors_return();
    Ok(inter)
}
