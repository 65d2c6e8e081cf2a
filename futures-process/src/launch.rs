//! Starting a worker process: the three start methods, and the hand-shake that gives the pool
//! the worker's channels.
//!
//! A forked worker simply inherits its channels. A spawned one, or one the fork server forked,
//! connects to a one-shot server the pool made for it and sends its [`Hello`]. `accept` on that
//! server has no time-out, and a child that dies before connecting would leave it blocked
//! forever; so a guard thread watches the child's pidfd meanwhile and, if the child ends first,
//! connects itself with a sentinel hello.

use crate::auth::Version;
use crate::forkserver;
use crate::sys::{self, ExitCause};
use crate::wire;
use crate::wire::Hello;
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io;
use std::os::fd::AsFd;

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
    /// The process could not be created at all.
    Start(io::Error),
    /// It was created but never connected; `cause` is how it ended.
    Died { pid: i32, cause: ExitCause },
    /// It connected speaking another protocol, or as another build of this crate (a second
    /// copy of it in the program); it was killed and reaped.
    Version {
        pid: i32,
        ours: Version,
        theirs: Version,
    },
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::Start(_) => f.write_str("a worker process could not be started"),
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
        }
    }
}

impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LaunchError::Start(e) => Some(e),
            LaunchError::Died { .. } | LaunchError::Version { .. } => None,
        }
    }
}

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

/// Starts one worker with `method` and, unless it was forked here, waits until it connects.
///
/// Called on the worker's courier thread. A child's parent-death signal fires when the
/// *thread* that created it ends, and the courier ends only after its worker has ended, so
/// the signal never fires early; and no extra thread hop delays the start.
pub(crate) fn launch(method: StartMethod) -> Result<(Child, Connected), LaunchError> {
    launch_expecting(method, Version::ours())
}

/// [`launch`], refusing a worker whose hello is not of `version`.
pub(crate) fn launch_expecting(
    method: StartMethod,
    version: Version,
) -> Result<(Child, Connected), LaunchError> {
    if method == StartMethod::Fork {
        return fork_worker().map_err(LaunchError::Start);
    }
    let (server, name) = IpcOneShotServer::<Hello>::new().map_err(LaunchError::Start)?;
    let token = sys::random_token();
    let pid = match method {
        StartMethod::ForkServer => match forkserver::get() {
            Some(Ok(fs)) => fs.fork_worker(&name, token),
            _ => Err(io::Error::other("no fork server is running")),
        },
        StartMethod::Spawn => spawn_worker(&name, token),
        StartMethod::Fork => unreachable!("forked above, without a hand-shake"),
    }
    .map_err(LaunchError::Start)?;
    let child = Child { pid, method };
    let hello = accept_guarded(&child, server, name);
    let refused = match hello {
        Ok(Hello {
            version: theirs,
            token: t,
            pid: p,
            channels: Some((tasks, results)),
        }) if t == token && p == pid => {
            if theirs == version {
                return Ok((child, Connected { tasks, results }));
            }
            Some(theirs)
        }
        _ => None,
    };
    // Dead, foreign, of another version, or failed to hand over its channels: make sure it
    // is gone.
    sys::signal(pid, nix::sys::signal::Signal::SIGKILL);
    let cause = child.reap();
    Err(match refused {
        Some(theirs) => LaunchError::Version {
            pid,
            ours: version,
            theirs,
        },
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
    // async-signal-safe functions (`prctl`, `getppid`, `_exit`, `close_range`, `fcntl`); it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            sys::die_with_parent(parent);
            sys::close_on_exec_from_3();
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The pid is reaped by `Child::reap`; std's handle never reaps on drop.
    Ok(child.id() as i32)
}

/// Runs, once, every ipc-channel path a worker takes (connect, send, a shared-memory message),
/// so that its lazily initialized statics are initialized before any fork: a static whose
/// initialization another thread had in progress at the moment of the fork would block the
/// child forever.
pub(crate) fn warm_up_ipc_channel() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let Ok((server, name)) = IpcOneShotServer::<wire::Envelope>::new() else {
            return;
        };
        let connecting = std::thread::spawn(move || {
            if let Ok(tx) = IpcSender::<wire::Envelope>::connect(name) {
                let _ = tx.send(wire::Envelope::wrap(vec![0; 1]));
            }
        });
        let _ = server.accept();
        let _ = connecting.join();
        if let Ok((tx, rx)) = wire::channel() {
            let _ = wire::send(&tx, vec![0; 1]);
            let _ = wire::send(&tx, vec![0; 128 * 1024]);
            let _ = rx.recv();
            let _ = rx.recv();
        }
    });
}

/// Forks a worker that inherits its channels: no server, no hand-shake, nothing to wait for
/// (a child that dies at once is seen as its results channel closing, like any death).
///
/// The child keeps every descriptor it inherits, as Python's `fork` does, because it cannot
/// tell ipc-channel's apart; what would go wrong is handled instead: the pool asks a worker to
/// leave with a message rather than by closing its channel (a later fork may hold a copy of
/// that channel), and the fork lock makes sure no other worker's fork can copy this worker's
/// results sender, whose closing is how its death is seen.
fn fork_worker() -> io::Result<(Child, Connected)> {
    static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let parent = sys::pid();
    crate::worker::install_panic_capture();
    crate::call::CodeMap::get();
    warm_up_ipc_channel();
    let forking = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let (tasks, tasks_rx) = wire::channel()?;
    let (results_tx, results) = wire::channel()?;
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
    // were set up above, before the fork; the child drops only the pool's two channel ends
    // and leaves with `_exit`, running no other destructor. What a user's task may meet is
    // the hazard documented on `StartMethod::Fork`.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop((tasks, results));
            sys::die_with_parent(parent);
            crate::worker::serve_channels(tasks_rx, results_tx)
        }
        nix::unistd::ForkResult::Parent { child } => {
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

/// `server.accept()`, unblocked by a sentinel hello if the child dies before connecting.
fn accept_guarded(
    child: &Child,
    server: IpcOneShotServer<Hello>,
    name: String,
) -> Result<Hello, ()> {
    let pidfd = sys::pidfd_open(child.pid).ok();
    let (stop_rx, stop_tx) = std::io::pipe().map_err(|_| ())?;
    let guard = std::thread::Builder::new()
        .name("concurrent-futures-accept-guard".into())
        .spawn(move || {
            let child_ended = match &pidfd {
                Some(fd) => {
                    let mut fds = [
                        PollFd::new(fd.as_fd(), PollFlags::POLLIN),
                        PollFd::new(stop_rx.as_fd(), PollFlags::POLLIN),
                    ];
                    loop {
                        match poll(&mut fds, PollTimeout::NONE) {
                            Err(nix::errno::Errno::EINTR) => continue,
                            Err(_) => break true,
                            Ok(_) => break fds[1].revents().is_none_or(|r| r.is_empty()),
                        }
                    }
                }
                // No pidfd: the child is already gone.
                None => true,
            };
            if child_ended && let Ok(sentinel) = IpcSender::<Hello>::connect(name) {
                let _ = sentinel.send(Hello {
                    version: Version {
                        protocol: 0,
                        build: 0,
                    },
                    token: 0,
                    pid: 0,
                    channels: None,
                });
            }
        });
    let accepted = server.accept().map(|(_, hello)| hello).map_err(|_| ());
    drop(stop_tx);
    if let Ok(guard) = guard {
        let _ = guard.join();
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BuildError;
    use crate::refused::{CallRefused, RefusalReason};
    use concurrent_futures_core::{PayloadError, PayloadStage};
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
            Box::new(BuildError::MaxTasksWithFork),
            Box::new(BuildError::NotBootstrapped(StartMethod::Spawn)),
            Box::new(BuildError::Bootstrap("3 threads".into())),
            Box::new(BuildError::Initializer(PayloadError::new(
                PayloadStage::EncodeArgument,
                "unsupported type",
            ))),
            Box::new(BuildError::Randomness(io::ErrorKind::Unsupported)),
            Box::new(LaunchError::Start(io::Error::other("no more processes"))),
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
            Box::new(CallRefused::new(
                RefusalReason::Malformed,
                "truncated".into(),
            )),
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

    #[test]
    fn describe_gives_the_whole_chain_once() {
        let error = LaunchError::Start(io::Error::other("no more processes"));
        assert_eq!(
            describe(&error),
            "a worker process could not be started: no more processes"
        );
    }
}
