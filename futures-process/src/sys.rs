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
    die_with_parent_by(parent, libc::SIGKILL);
}

fn die_with_parent_by(parent: i32, signal: i32) {
    // SAFETY: `prctl(PR_SET_PDEATHSIG)`, `getppid` and `_exit` take and return plain
    // integers and touch no memory of ours (`_exit` ends the process, running no destructor).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, signal);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
}

/// The signal a worker gets when its parent dies. Its default action ends the worker, as
/// `SIGKILL` would; once the worker is serving, [`take_group_down_with_worker`] makes it end
/// the worker's whole process group instead, so that what its tasks started dies too.
fn parent_gone_signal() -> i32 {
    // A real-time signal nothing else here uses (glibc keeps the first few for itself and
    // `SIGRTMIN()` already counts them).
    libc::SIGRTMIN() + 2
}

/// The first steps of a new worker process, in the child between `fork` and `exec` (or
/// instead of `exec`): it leads a new process group, so that the pool can stop it together
/// with every process its tasks start ([`signal_group`]), and dies when `parent` dies.
/// Async-signal-safe.
pub(crate) fn become_worker(parent: i32) {
    // SAFETY: `setpgid` takes plain integers; on failure (it cannot fail for a process making
    // itself a leader, short of already leading a session) the worker stays in its parent's
    // group and only its grandchildren's clean-up is lost.
    unsafe { libc::setpgid(0, 0) };
    die_with_parent_by(parent, parent_gone_signal());
}

/// In a serving worker: its parent's death ends the worker's whole process group (the worker
/// and every process its tasks started that stayed in the group), not only the worker; and
/// `SIGINT` is ignored, so that the pool's program decides what a Ctrl-C stops (as Python's
/// workers do: a terminal's Ctrl-C does not reach them anyway, since they lead their own
/// process groups).
pub(crate) fn take_group_down_with_worker() {
    extern "C" fn parent_gone(_: libc::c_int) {
        // SAFETY: `kill` is async-signal-safe and takes plain integers; 0 is this process's
        // own group, which this process leads.
        unsafe { libc::kill(0, libc::SIGKILL) };
    }
    // SAFETY: `sigaction` reads the fully initialized struct we pass; the handler only calls
    // `kill`, which is async-signal-safe; `signal(SIGINT, SIG_IGN)` takes plain integers.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = parent_gone as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(parent_gone_signal(), &action, std::ptr::null_mut());
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// In the fork server: it leads its own process group and ignores `SIGINT`, so that a Ctrl-C
/// at the terminal (sent to the program's foreground group) does not end it, and with it
/// every fork-server worker. It still dies with the program (its parent-death signal).
pub(crate) fn leave_the_terminals_signals() {
    // SAFETY: `setpgid` and `signal(SIGINT, SIG_IGN)` take plain integers.
    unsafe {
        libc::setpgid(0, 0);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// Sends `signal` to worker `pid`'s whole process group (the worker, which leads it, and what
/// its tasks started in it). A group that no longer exists is ignored. A group outlives its
/// leader while any member lives, and its id is not reused meanwhile, so this is also right
/// after the worker was reaped (unlike a signal to `pid` alone).
pub(crate) fn signal_group(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
}

/// Kills the process group of worker `pid` (the processes its tasks started that stayed in
/// it), with `killpg` only: once the worker is reaped, `pid` itself may belong to another
/// process, while a group id is not reused as long as the group has a member.
pub(crate) fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Process `pid`'s resident memory in bytes, from `/proc/<pid>/statm`; `None` if it cannot be
/// read (the process is gone).
pub(crate) fn resident_memory(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: `sysconf` takes a plain integer.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
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
