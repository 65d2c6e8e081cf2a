//! Starting a worker process: the three start methods, and the hand-shake that gives the pool
//! the worker's channels.
//!
//! A forked worker simply inherits its channels. A spawned one, or one the fork server forked,
//! connects to a one-shot server the pool made for it and sends its [`Hello`]. `accept` on that
//! server has no time-out, and a child that dies before connecting (or never connects) would
//! leave it blocked forever; so a guard thread watches the child's pidfd meanwhile and, if the
//! child ends first or the hand-shake's time limit passes (it then kills the child), connects
//! itself with a sentinel hello.

use crate::forkserver;
use crate::sys::{self, ExitCause};
use crate::wire;
use crate::wire::Hello;
use concurrent_futures_remote::auth::Version;
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How worker processes are started: Python's `mp_context` start methods.
///
/// # Examples
///
/// ```
/// use concurrent_futures_process::StartMethod;
///
/// assert_eq!(StartMethod::default(), StartMethod::ForkServer);
/// assert_eq!(StartMethod::Spawn.name(), "spawn");
/// ```
///
/// # Differences from Python
///
/// Python chooses it with `mp_context` (`multiprocessing.get_context("spawn")`); here it is a
/// builder option. Both default to the fork server on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartMethod {
    /// Fork each worker from a fork server that [`bootstrap`](crate::bootstrap) started while
    /// the program was single-threaded: fast and safe. Python 3.14's default on Linux.
    #[default]
    ForkServer,
    /// Run the program's own executable again (`/proc/self/exe`), which becomes a worker in
    /// [`bootstrap`](crate::bootstrap). The slowest start, and the most isolated.
    Spawn,
    /// Fork the pool's process itself. Fastest, and needs no [`bootstrap`](crate::bootstrap),
    /// but see the hazard below. As with Python's `fork`, the worker inherits the program's
    /// open descriptors, and `max_tasks_per_child` is refused.
    ///
    /// # Hazard: forking a multi-threaded process
    ///
    /// The pool forks from one of its own threads, so the process always has other threads
    /// when it forks (the caller's, the pool's, and any the program started). The worker is a
    /// copy of the process with only the forking thread: every lock another thread held at
    /// that instant stays locked in the worker, forever. The pool prepares the locks its own
    /// worker code takes, but your tasks run in that copy: a task that takes a lock another
    /// thread of your program held at the fork (a `Mutex` or `OnceLock` of yours or of a
    /// library, a logger, a connection pool; std's own backtrace lock, taken when a task
    /// panics, if another thread was panicking) hangs, and the pool can only see the hang as a
    /// task that never ends. It cannot corrupt memory: a thread that never runs again is a
    /// state that Rust code must already tolerate. Python warns of the same
    /// (`DeprecationWarning` since 3.12), and Python 3.14 made `forkserver` the default on
    /// POSIX for exactly this reason; the pool logs a warning when the process has other
    /// threads at `build`. Prefer [`StartMethod::ForkServer`], whose fork server was forked
    /// while the program had one thread.
    Fork,
}

impl StartMethod {
    /// Python's name for this method.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::ForkServer => "forkserver",
            StartMethod::Spawn => "spawn",
            StartMethod::Fork => "fork",
        }
    }
}

/// The environment variable that tells a re-executed program to be a worker.
pub(crate) const WORKER_ENV: &str = "CONCURRENT_FUTURES_WORKER";

/// A started worker process, not yet connected.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: i32,
    method: StartMethod,
}

impl Child {
    /// Waits for the process to end and says how it ended. Called exactly once per child, so
    /// no child is left a zombie.
    pub(crate) fn reap(&self) -> ExitCause {
        match self.method {
            StartMethod::ForkServer => match forkserver::get() {
                Some(Ok(server)) => server.wait_exit(self.pid),
                _ => ExitCause::Unknown,
            },
            StartMethod::Spawn | StartMethod::Fork => sys::wait_child(self.pid),
        }
    }
}

/// The accept guard's thread name: short enough (15 bytes) to show whole in `ps` and in
/// `/proc/<pid>/task/<tid>/comm`, where tests look for it.
pub(crate) const ACCEPT_GUARD_NAME: &str = "cf-accept-guard";

/// Kills and reaps a child if dropped (armed while a launch that started it may unwind).
struct KillOnUnwind<'a>(&'a Child);

impl Drop for KillOnUnwind<'_> {
    fn drop(&mut self) {
        sys::signal(self.0.pid, nix::sys::signal::Signal::SIGKILL);
        self.0.reap();
    }
}

/// A connected worker: the pool's ends of its channels.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) tasks: wire::Sender,
    pub(crate) results: wire::Receiver,
}

/// Why a worker could not be started.
///
/// Its `Display` never repeats its [`source`](std::error::Error::source); [`describe`] gives
/// the whole chain in one line.
#[derive(Debug)]
pub(crate) enum LaunchError {
    /// The process could not be created, or the pool could not prepare its channels; the
    /// reason in words (naming the descriptor limit when that is the cause).
    Start(String),
    /// It was created but never connected; `cause` is how it ended.
    Died { pid: i32, cause: ExitCause },
    /// It connected speaking another protocol, or as another build of this crate (a second
    /// copy of it in the program); it was killed and reaped.
    Version {
        pid: i32,
        ours: Version,
        theirs: Version,
    },
    /// It did not connect within the hand-shake's time limit, so the pool killed it.
    TimedOut {
        pid: i32,
        after: Duration,
        cause: ExitCause,
    },
    /// It connected, but its channels could not be received (`why`), so the pool killed it.
    Unconnected {
        pid: i32,
        why: String,
        cause: ExitCause,
    },
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::Start(why) => write!(f, "a worker process could not be started: {why}"),
            LaunchError::Died { pid, cause } => {
                write!(
                    f,
                    "worker process {pid} {cause} before it connected to the pool"
                )
            }
            LaunchError::Version { pid, ours, theirs } => write!(
                f,
                "worker process {pid} was refused: it speaks {theirs}, the pool {ours}; two \
                 copies of concurrent-futures-process in one program cannot share workers"
            ),
            LaunchError::TimedOut { pid, after, cause } => write!(
                f,
                "worker process {pid} did not connect to the pool within the hand-shake time \
                 limit of {after:?} (does its `main` block before `bootstrap()`?), so the pool \
                 killed it: it {cause}"
            ),
            LaunchError::Unconnected { pid, why, cause } => write!(
                f,
                "the pool could not receive the channels of worker process {pid} ({why}), so \
                 it killed it: it {cause}"
            ),
        }
    }
}

/// Its causes are words inside its own message (`Start`'s reason names the descriptor limit
/// when that is the cause), so it has no `source()`.
impl std::error::Error for LaunchError {}

/// `error` and its sources, joined by ": " (for a log line or a reason that is text).
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// How the hand-shake with a spawned or fork-server worker went wrong.
enum Handshake {
    /// The time limit passed; the guard killed the child.
    TimedOut,
    /// The pool's side failed (no descriptor to spare, most often).
    Failed(String),
}

/// Starts one worker with `method` and, unless it was forked here, waits until it connects,
/// for at most `handshake`.
///
/// Called on the worker's courier thread. A child's parent-death signal fires when the
/// *thread* that created it ends, and the courier ends only after its worker has ended, so
/// the signal never fires early; and no extra thread hop delays the start.
pub(crate) fn launch(
    method: StartMethod,
    handshake: Duration,
) -> Result<(Child, Connected), LaunchError> {
    launch_expecting(method, handshake, Version::ours())
}

/// [`launch`], refusing a worker whose hello is not of `version`.
pub(crate) fn launch_expecting(
    method: StartMethod,
    handshake: Duration,
    version: Version,
) -> Result<(Child, Connected), LaunchError> {
    // Normally done already on the thread that built the pool; if that found no descriptor
    // to spare, try again now rather than let ipc-channel's first use fail here.
    warm_up_ipc_channel().map_err(LaunchError::Start)?;
    if method == StartMethod::Fork {
        return fork_worker();
    }
    // Held back for the guard's sentinel hello: the one descriptor that must exist to unblock
    // `accept` however short of descriptors the process is by then.
    let reserve =
        std::fs::File::open("/dev/null").map_err(|e| LaunchError::Start(sys::describe(&e)))?;
    let (server, name) =
        sys::guarded(IpcOneShotServer::<Hello>::new).map_err(LaunchError::Start)?;
    let token = sys::random_token();
    let pid = match method {
        StartMethod::ForkServer => match forkserver::get() {
            Some(Ok(fs)) => fs.fork_worker(&name, token),
            _ => Err(io::Error::other("no fork server is running")),
        },
        StartMethod::Spawn => spawn_worker(&name, token),
        StartMethod::Fork => unreachable!("forked above, without a hand-shake"),
    }
    .map_err(|e| LaunchError::Start(sys::describe(&e)))?;
    let child = Child { pid, method };
    // From here on the child exists: whatever unwinds out of the hand-shake, it is killed and
    // reaped rather than left behind as a zombie.
    let unwinding = KillOnUnwind(&child);
    let outcome = accept_guarded(&child, server, name, reserve, handshake);
    std::mem::forget(unwinding);
    let failed = match outcome {
        Ok(Hello {
            version: theirs,
            token: t,
            pid: p,
            channels: Some((tasks, results)),
        }) if t == token && p == pid => {
            if theirs == version {
                return Ok((child, Connected { tasks, results }));
            }
            Some(Err(theirs))
        }
        Ok(_) => None,
        Err(handshake) => Some(Ok(handshake)),
    };
    // Dead, stuck, foreign, of another version, or its channels lost: make sure it is gone,
    // and reap it.
    sys::signal(pid, nix::sys::signal::Signal::SIGKILL);
    let cause = child.reap();
    Err(match failed {
        Some(Err(theirs)) => LaunchError::Version {
            pid,
            ours: version,
            theirs,
        },
        Some(Ok(Handshake::TimedOut)) => LaunchError::TimedOut {
            pid,
            after: handshake,
            cause,
        },
        Some(Ok(Handshake::Failed(why))) => LaunchError::Unconnected { pid, why, cause },
        None => LaunchError::Died { pid, cause },
    })
}

fn spawn_worker(server: &str, token: u64) -> io::Result<i32> {
    use std::os::unix::process::CommandExt;
    let parent = sys::pid();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    }
    command.env(WORKER_ENV, format!("{server}\t{token}"));
    // SAFETY: the closure runs in the child between `fork` and `exec` and calls only
    // async-signal-safe functions (`setpgid`, `prctl`, `getppid`, `_exit`, `close_range`,
    // `fcntl`); it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            sys::become_worker(parent);
            sys::close_on_exec_from_3();
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The pid is reaped by `Child::reap`; std's handle never reaps on drop.
    Ok(child.id() as i32)
}

/// Descriptors that must be free before ipc-channel is first used: its first use opens a
/// socket pair and panics if it cannot (after which every later use in the process panics
/// too), and the warm-up below holds a few more at once.
const WARM_UP_DESCRIPTORS: usize = 8;

/// Runs, once, every ipc-channel path a worker takes (connect, send, a shared-memory message),
/// so that its lazily initialized statics are initialized on this thread and before any fork:
/// a static whose initialization another thread had in progress at the moment of the fork
/// would block the child forever, and one whose initialization panics (for want of a
/// descriptor) panics on every later use in the process.
///
/// Called where a pool is built and again before each launch. It first makes sure that
/// [`WARM_UP_DESCRIPTORS`] descriptors are free and refuses, with the descriptor limit named,
/// if they are not; it is tried again next time, so a passing shortage is harmless.
pub(crate) fn warm_up_ipc_channel() -> Result<(), String> {
    static WARM: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut warm = WARM.lock().unwrap_or_else(|e| e.into_inner());
    if *warm {
        return Ok(());
    }
    let spare: Vec<std::fs::File> = (0..WARM_UP_DESCRIPTORS)
        .map(|_| std::fs::File::open("/dev/null"))
        .collect::<io::Result<_>>()
        .map_err(|e| format!("ipc-channel cannot be set up: {}", sys::describe(&e)))?;
    drop(spare);
    sys::guarded(|| {
        ipc_channel::platform::OsIpcSender::get_max_fragment_size();
        let (server, name) = IpcOneShotServer::<wire::Envelope>::new()?;
        let connecting = std::thread::spawn(move || {
            let tx = IpcSender::<wire::Envelope>::connect(name)?;
            tx.send(wire::Envelope::wrap(vec![0; 1]))
        });
        let accepted = server.accept();
        let sent = connecting
            .join()
            .map_err(|_| io::Error::other("the connecting thread panicked"))?;
        accepted?;
        sent?;
        let (tx, rx) = wire::channel()?;
        tx.send(wire::Envelope::wrap(vec![0; 1]))?;
        tx.send(wire::Envelope::wrap(vec![0; 128 * 1024]))?;
        rx.recv()?;
        rx.recv()?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })
    .map_err(|why| format!("ipc-channel cannot be set up: {why}"))?;
    *warm = true;
    Ok(())
}

/// Forks a worker that inherits its channels: no server, no hand-shake, nothing to wait for
/// (a child that dies at once is seen as its results channel closing, like any death).
///
/// The child keeps every descriptor it inherits, as Python's `fork` does, because it cannot
/// tell ipc-channel's apart; what would go wrong is handled instead: the pool asks a worker to
/// leave with a message rather than by closing its channel (a later fork may hold a copy of
/// that channel), and the fork lock makes sure no other worker's fork can copy this worker's
/// results sender, whose closing is how its death is seen.
fn fork_worker() -> Result<(Child, Connected), LaunchError> {
    static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let parent = sys::pid();
    concurrent_futures_remote::install_panic_capture();
    // Read here, before the fork, or every forked worker would read it again.
    concurrent_futures_remote::call::CodeMap::get().map_err(LaunchError::Start)?;
    let forking = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let described = |e: io::Error| LaunchError::Start(sys::describe(&e));
    let (tasks, tasks_rx) = wire::channel().map_err(described)?;
    let (results_tx, results) = wire::channel().map_err(described)?;
    // Like `pthread_atfork` handlers: hold the locks the worker may take (stdout, stderr) so
    // that no other thread holds them at the moment of the fork; the child's one thread is this
    // thread, so it owns them (they are reentrant) and can print.
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    // SAFETY: this process has other threads, so the child is a copy of it in which every
    // thread but this one is stopped forever. Safe Rust must already tolerate a thread that
    // never runs again (no guarantee of the language rests on another thread's progress), so
    // the worst the child can meet is a lock that stays locked: a hang, never undefined
    // behaviour. The worker's own code meets none: the allocator's locks are made consistent
    // by libc's fork handlers; stdout and stderr are held across the fork by this thread,
    // which is the child's thread; the panic hook, the code map and ipc-channel's lazy statics
    // were set up before the fork (`launch_expecting` warms ipc-channel up); the child drops
    // only the pool's two channel ends and leaves with `_exit`, running no other destructor.
    // What a user's task may meet is the hazard documented on `StartMethod::Fork`.
    match unsafe { nix::unistd::fork() }.map_err(|e| described(io::Error::from(e)))? {
        nix::unistd::ForkResult::Child => {
            drop((tasks, results));
            sys::become_worker(parent);
            crate::worker::serve_channels(tasks_rx, results_tx)
        }
        nix::unistd::ForkResult::Parent { child } => {
            // Also from this side, so that the group exists before any task is sent.
            let _ = nix::unistd::setpgid(child, child);
            drop((tasks_rx, results_tx));
            drop((stdout, stderr, forking));
            let child = Child {
                pid: child.as_raw(),
                method: StartMethod::Fork,
            };
            Ok((child, Connected { tasks, results }))
        }
    }
}

/// `server.accept()`, for at most `limit`: a guard thread watches the child's pidfd meanwhile
/// and, if the child ends first or the limit passes (it then kills the child), unblocks
/// `accept` by connecting itself with a sentinel hello. `reserve` is a descriptor the guard
/// closes just before it connects, so that it can connect even when the process has no
/// descriptor to spare.
fn accept_guarded(
    child: &Child,
    server: IpcOneShotServer<Hello>,
    name: String,
    reserve: std::fs::File,
    limit: Duration,
) -> Result<Hello, Handshake> {
    let pidfd = sys::pidfd_open(child.pid).map_err(|e| Handshake::Failed(sys::describe(&e)))?;
    let (stop_rx, stop_tx) = std::io::pipe().map_err(|e| Handshake::Failed(sys::describe(&e)))?;
    let pid = child.pid;
    // A limit too far away to be a point in time (`Duration::MAX`) means no limit.
    let deadline = Instant::now().checked_add(limit);
    let guard = std::thread::Builder::new()
        .name(ACCEPT_GUARD_NAME.into())
        .spawn(move || {
            let mut fds = [
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop_rx.as_fd(), PollFlags::POLLIN),
            ];
            let timed_out = loop {
                let timeout = match deadline {
                    None => PollTimeout::NONE,
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        // Rounded up, so that the wait never ends before the deadline.
                        let ms = left.as_micros().div_ceil(1000);
                        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                    }
                };
                match poll(&mut fds, timeout) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(0) if deadline.is_none_or(|d| Instant::now() < d) => continue,
                    Ok(0) => break true,
                    Err(_) | Ok(_) => break false,
                }
            };
            let stopped = fds[1].revents().is_some_and(|r| !r.is_empty());
            if stopped && !timed_out {
                return false;
            }
            if timed_out {
                sys::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
            drop(reserve);
            let _ = sys::guarded(|| {
                IpcSender::<Hello>::connect(name)?.send(Hello {
                    version: Version {
                        protocol: 0,
                        build: 0,
                    },
                    token: 0,
                    pid: 0,
                    channels: None,
                })
            });
            timed_out
        });
    let guard = match guard {
        Ok(guard) => guard,
        Err(e) => return Err(Handshake::Failed(sys::describe(&e))),
    };
    let accepted = sys::guarded(|| server.accept().map(|(_, hello)| hello));
    // Stop the guard with a byte, not just by closing our end: a worker forked meanwhile by a
    // `Fork` pool holds a copy of every descriptor, this one too, so the pipe would not hang up
    // and the guard would kill our connected worker when the limit passed.
    let _ = std::io::Write::write_all(&mut &stop_tx, &[1]);
    drop(stop_tx);
    let timed_out = guard.join().unwrap_or(false);
    match accepted {
        _ if timed_out => Err(Handshake::TimedOut),
        Ok(hello) => Ok(hello),
        Err(why) => Err(Handshake::Failed(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BuildError;
    use crate::wire::Failure;
    use concurrent_futures_core::{PayloadError, PayloadStage};
    use concurrent_futures_remote::RefusalReason;
    use std::error::Error;

    /// Every error this crate makes, one of each kind.
    fn every_error() -> Vec<Box<dyn Error>> {
        let version = Version {
            protocol: 1,
            build: 2,
        };
        vec![
            Box::new(BuildError::MaxWorkers),
            Box::new(BuildError::MaxTasksPerChild),
            Box::new(BuildError::NotBootstrapped(StartMethod::Spawn)),
            Box::new(BuildError::Bootstrap("3 threads".into())),
            Box::new(BuildError::InterruptHandler("no pipe".into())),
            Box::new(BuildError::Initializer(PayloadError::new(
                PayloadStage::EncodeArgument,
                "unsupported type",
            ))),
            Box::new(BuildError::Randomness(io::ErrorKind::Unsupported)),
            Box::new(LaunchError::Start("no more processes".into())),
            Box::new(LaunchError::Died {
                pid: 9,
                cause: ExitCause::Signal(9),
            }),
            Box::new(LaunchError::Version {
                pid: 9,
                ours: version,
                theirs: Version {
                    protocol: 3,
                    ..version
                },
            }),
            // A `CallRefused`, as a future holds it.
            Box::new(
                Failure::Refused {
                    reason: RefusalReason::Malformed,
                    detail: "truncated".into(),
                }
                .into_task_error(),
            ),
        ]
    }

    #[test]
    fn no_error_repeats_its_source() {
        for error in every_error() {
            let mut current: &dyn Error = &*error;
            while let Some(source) = current.source() {
                let (outer, inner) = (current.to_string(), source.to_string());
                assert!(
                    !outer.contains(&inner),
                    "{outer:?} repeats its source {inner:?}: a reporter would print it twice"
                );
                current = source;
            }
        }
    }

    /// Rust errors print one line with `{}` (and `describe`, which joins a chain, too); what
    /// `unwrap()` prints of a build error is that line and its source's.
    #[test]
    fn every_error_displays_on_one_line() {
        let mut errors = every_error();
        errors.extend([
            Box::new(LaunchError::TimedOut {
                pid: 9,
                after: Duration::from_secs(10),
                cause: ExitCause::Signal(9),
            }) as Box<dyn Error>,
            Box::new(LaunchError::Unconnected {
                pid: 9,
                why: "EMFILE".into(),
                cause: ExitCause::Code(70),
            }),
        ]);
        for error in errors {
            for text in [error.to_string(), describe(&*error)] {
                assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
            }
        }
        let initializer = BuildError::Initializer(PayloadError::new(
            PayloadStage::EncodeArgument,
            "unsupported type",
        ));
        assert_eq!(format!("{initializer:?}"), describe(&initializer));
    }

    #[test]
    fn describe_gives_the_whole_chain_once() {
        let error = LaunchError::Start("no more processes".into());
        assert_eq!(
            describe(&error),
            "a worker process could not be started: no more processes"
        );
    }
}
