//! The few Linux calls the engine needs that std does not offer, each wrapped once.

use nix::libc;
use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// How a worker process ended, decoded from a raw `waitpid` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCause {
    /// It called `exit(code)` (or returned from `main`).
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// Its status could not be learnt (it was not our child, or the fork server was gone).
    Unknown,
}

impl ExitCause {
    /// Decodes a raw status from `waitpid`.
    pub(crate) fn from_raw(status: i32) -> ExitCause {
        if libc::WIFEXITED(status) {
            ExitCause::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            ExitCause::Signal(libc::WTERMSIG(status))
        } else {
            ExitCause::Unknown
        }
    }
}

impl std::fmt::Display for ExitCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitCause::Code(code) => write!(f, "exited with code {code}"),
            ExitCause::Signal(signal) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => write!(f, "was killed by signal {signal} ({})", name.as_str()),
                Err(_) => write!(f, "was killed by signal {signal}"),
            },
            ExitCause::Unknown => f.write_str("exited (status unknown)"),
        }
    }
}

/// Waits for the child `pid` to end and returns its raw status, retrying on `EINTR`.
/// Every worker the parent started itself ends in this call, so none is left a zombie.
pub(crate) fn wait_child(pid: i32) -> ExitCause {
    loop {
        let mut status = 0;
        // SAFETY: `waitpid` only writes the status through the valid pointer we pass.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return ExitCause::from_raw(status);
        }
        if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return ExitCause::Unknown;
    }
}

/// A pidfd for `pid`: readable once the process has ended (Linux 5.3+). Works for processes
/// that are not our children, such as the fork server's workers.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Marks every descriptor from 3 up close-on-exec, in a child between `fork` and `exec`, so
/// that the program it becomes holds no copy of the pool's descriptors (another worker's
/// channel held open there would hide that worker's death). Async-signal-safe; closes nothing
/// itself, so no descriptor that code of this process image still owns is closed under it.
pub(crate) fn close_on_exec_from_3() {
    // SAFETY: `close_range` with `CLOSE_RANGE_CLOEXEC` (Linux 5.11+) takes plain integers and
    // only sets a flag on open descriptors; it touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        for fd in 3..1024 {
            // SAFETY: `fcntl(F_SETFD)` takes plain integers and only sets the descriptor's
            // flags (`FD_CLOEXEC` is its only one); on a descriptor that is not open it fails
            // with `EBADF` and does nothing.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// Asks the kernel to `SIGKILL` this process when its parent thread ends; exits at once if the
/// parent is already gone. Async-signal-safe: usable between `fork` and `exec`.
pub(crate) fn die_with_parent(parent: i32) {
    // SAFETY: `prctl(PR_SET_PDEATHSIG)`, `getppid` and `_exit` take and return plain
    // integers and touch no memory of ours (`_exit` ends the process, running no destructor).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
}

/// What `ps`, `top` and `/proc/<pid>/comm` show for a worker process.
pub(crate) const WORKER_NAME: &CStr = c"cf-worker";
/// What they show for the fork server.
pub(crate) const FORK_SERVER_NAME: &CStr = c"cf-forkserver";

/// Names the calling thread `name` (at most 15 bytes are kept): in a single-threaded process
/// (a worker, the fork server) that is the name `ps` and `top` show for the process.
/// Async-signal-safe.
pub(crate) fn set_process_name(name: &CStr) {
    // SAFETY: `prctl(PR_SET_NAME)` reads a NUL-terminated string through the pointer, which
    // `CStr` guarantees and which outlives the call; it copies at most 16 bytes of it.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Ends this process at once, without running `atexit` handlers or destructors (which may
/// hold locks another thread took before a `fork`). Flushes stdout first.
pub(crate) fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = io::stdout().flush();
    // SAFETY: `_exit` never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// This process's id.
pub(crate) fn pid() -> i32 {
    std::process::id() as i32
}

/// How many threads this process has, from `/proc/self/status` (`None` if it cannot be read).
pub(crate) fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub(crate) fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

/// A number no other process can guess, for the hand-shake of a new worker.
pub(crate) fn random_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_i32(pid());
    h.finish()
}

/// `error` in words; running out of descriptors is said so, with the limit named, since that
/// is the one a user can act on (close descriptors, or raise the limit).
pub(crate) fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EMFILE) => out_of_descriptors(),
        Some(libc::ENFILE) => "too many open files in the system (ENFILE)".to_owned(),
        _ => error.to_string(),
    }
}

/// `text`, followed by the descriptor limit if this process is (nearly) out of descriptors
/// right now. For errors that do not carry `EMFILE` themselves but follow from it: a
/// descriptor passed in a message that could not be installed (by the time the error is
/// seen, ipc-channel has closed the one or two it held), or a socket call on a descriptor that
/// could not be created.
pub(crate) fn explain(text: String) -> String {
    /// Fewer free descriptors than this is "out of descriptors" for the pool.
    const HEADROOM: usize = 4;
    let probe: io::Result<Vec<std::fs::File>> = (0..HEADROOM)
        .map(|_| std::fs::File::open("/dev/null"))
        .collect();
    match probe {
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
            format!("{text}; {}", out_of_descriptors())
        }
        _ => text,
    }
}

fn out_of_descriptors() -> String {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => format!("too many open files (RLIMIT_NOFILE = {soft})"),
        Err(_) => "too many open files (RLIMIT_NOFILE reached)".to_owned(),
    }
}

/// Runs `f`, an ipc-channel call, turning its error or its panic into words. ipc-channel
/// asserts where a descriptor cannot be created (a shared-memory region) and panics on its
/// first use if it cannot open a socket; neither may take down a thread of the pool.
pub(crate) fn guarded<T, E: std::fmt::Display>(
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(explain(e.to_string())),
        Err(panic) => Err(explain(format!(
            "ipc-channel panicked: {}",
            concurrent_futures_core::panic_message(&*panic)
        ))),
    }
}
