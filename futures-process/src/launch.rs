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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartMethod {
    /// Fork each worker from a fork server that [`bootstrap`](crate::bootstrap) started while
    /// the program was single-threaded: fast and safe. Python 3.14's default on Linux.
    #[default]
    ForkServer,
    /// Run the program's own executable again (`/proc/self/exe`), which becomes a worker in
    /// [`bootstrap`](crate::bootstrap). The slowest start, and the most isolated.
    Spawn,
    /// Fork the pool's process itself. Fastest, but a fork of a multi-threaded process may
    /// deadlock in the child if another thread held a lock (Python warns of the same); the
    /// pool logs a warning when it forks a process that already had other threads. As with
    /// Python's `fork`, the worker inherits the program's open descriptors.
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
#[derive(Debug)]
pub(crate) enum LaunchError {
    /// The process could not be created, or the pool could not prepare its channels; the
    /// reason in words (naming the descriptor limit when that is the cause).
    Start(String),
    /// It was created but never connected; `cause` is how it ended.
    Died { pid: i32, cause: ExitCause },
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
    let outcome = accept_guarded(&child, server, name, reserve, handshake);
    let failed = match outcome {
        Ok(Hello {
            token: t,
            pid: p,
            channels: Some((tasks, results)),
        }) if t == token && p == pid => return Ok((child, Connected { tasks, results })),
        Ok(_) => None,
        Err(handshake) => Some(handshake),
    };
    // Dead, stuck, foreign, or its channels lost: make sure it is gone, and reap it.
    sys::signal(pid, nix::sys::signal::Signal::SIGKILL);
    let cause = child.reap();
    Err(match failed {
        Some(Handshake::TimedOut) => LaunchError::TimedOut {
            pid,
            after: handshake,
            cause,
        },
        Some(Handshake::Failed(why)) => LaunchError::Unconnected { pid, why, cause },
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
    // SAFETY: the closure only calls async-signal-safe functions (`prctl`, `getppid`, `_exit`).
    unsafe {
        command.pre_exec(move || {
            sys::die_with_parent(parent);
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
    crate::worker::install_panic_capture();
    // Read here, before the fork, or every forked worker would read it again.
    crate::call::CodeMap::get().map_err(LaunchError::Start)?;
    let forking = FORK.lock().unwrap_or_else(|e| e.into_inner());
    let described = |e: io::Error| LaunchError::Start(sys::describe(&e));
    let (tasks, tasks_rx) = wire::channel().map_err(described)?;
    let (results_tx, results) = wire::channel().map_err(described)?;
    // Like `pthread_atfork` handlers: hold the locks the worker may take (stdout, stderr) so
    // that no other thread holds them at the moment of the fork; the child's one thread is this
    // thread, so it owns them (they are reentrant) and can print.
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    // SAFETY: the child drops the pool's ends, sets its parent-death signal and runs the
    // worker loop, which takes no lock of this process; the builder warned if other threads
    // of the program were running (see `StartMethod::Fork`).
    match unsafe { nix::unistd::fork() }.map_err(|e| described(io::Error::from(e)))? {
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
    let deadline = Instant::now() + limit;
    let guard = std::thread::Builder::new()
        .name("concurrent-futures-accept-guard".into())
        .spawn(move || {
            let mut fds = [
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop_rx.as_fd(), PollFlags::POLLIN),
            ];
            let timed_out = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up, so that the wait never ends before the deadline.
                let ms = left.as_micros().div_ceil(1000);
                let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, timeout) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(0) if Instant::now() < deadline => continue,
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
    drop(stop_tx);
    let timed_out = guard.join().unwrap_or(false);
    match accepted {
        _ if timed_out => Err(Handshake::TimedOut),
        Ok(hello) => Ok(hello),
        Err(why) => Err(Handshake::Failed(why)),
    }
}
