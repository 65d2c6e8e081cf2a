//! The fork server: a process forked at [`bootstrap`](crate::bootstrap), while the program
//! is still single-threaded, that forks workers on request (Python's `forkserver`).
//!
//! Forking from it is safe where forking the pool's own, multi-threaded process is not: no
//! other thread can hold a lock at the moment of the fork. Its workers are its children, so it
//! reaps them and reports each exit status back; the pool learns of a death by the worker's
//! channel closing and then asks here how it ended.
//!
//! The control channel is a plain Unix stream socket with length-prefixed postcard frames.

use crate::sys::{self, ExitCause};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, OnceLock};

/// A request to the fork server.
#[derive(Debug, Serialize, Deserialize)]
struct ForkRequest {
    server: String,
    token: u64,
}

/// What the fork server reports.
#[derive(Debug, Serialize, Deserialize)]
enum Event {
    /// The last request was served: the new worker's pid, or the `errno` of a failed fork.
    Forked(Result<i32, i32>),
    /// A worker ended, with its raw wait status.
    Exited { pid: i32, status: i32 },
}

fn write_frame<T: Serialize>(stream: &mut UnixStream, value: &T) -> io::Result<()> {
    let body = postcard::to_allocvec(value).map_err(io::Error::other)?;
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame)
}

fn read_frame<T: DeserializeOwned>(stream: &mut UnixStream) -> io::Result<T> {
    let mut len = [0; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    postcard::from_bytes(&body).map_err(io::Error::other)
}

/// The server's loop, in the forked server process. Never returns.
pub(crate) fn serve(mut control: UnixStream, parent: i32) -> ! {
    sys::die_with_parent(parent);
    sys::leave_the_terminals_signals();
    sys::set_process_name(sys::FORK_SERVER_NAME);
    let server_pid = sys::pid();
    // Read once here, inherited by every worker forked from this server.
    // (If that fails, each worker reads it again itself.)
    let _ = concurrent_futures_remote::call::CodeMap::get();
    let mut children: Vec<(i32, OwnedFd)> = Vec::new();
    loop {
        let (control_ready, ended) = {
            let mut fds = vec![PollFd::new(control.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                children
                    .iter()
                    .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => sys::exit_now(1),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            let ended: Vec<usize> = (1..fds.len()).filter(|&i| ready(&fds[i])).collect();
            (ready(&fds[0]), ended)
        };
        for index in ended.into_iter().rev() {
            let (pid, _pidfd) = children.swap_remove(index - 1);
            let mut status = 0;
            // SAFETY: `waitpid` writes only through the valid pointer; `pid` is our child.
            unsafe { nix::libc::waitpid(pid, &mut status, 0) };
            if write_frame(&mut control, &Event::Exited { pid, status }).is_err() {
                sys::exit_now(0);
            }
        }
        if !control_ready {
            continue;
        }
        // The parent closing the channel (or dying) ends the server; its workers follow, by
        // their own parent-death signal.
        let Ok(request) = read_frame::<ForkRequest>(&mut control) else {
            sys::exit_now(0)
        };
        // SAFETY: this process is single-threaded (it was forked from the program's first
        // thread before any other existed), so the child may run anything.
        let event = match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                // The worker keeps none of the server's descriptors (its control stream, the
                // other workers' pidfds); what the program had open at `bootstrap` it keeps,
                // as the program's own code may still use those.
                drop(children);
                drop(control);
                sys::become_worker(server_pid);
                crate::worker::serve(&request.server, request.token)
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let _ = nix::unistd::setpgid(child, child);
                let pid = child.as_raw();
                match sys::pidfd_open(pid) {
                    Ok(fd) => children.push((pid, fd)),
                    Err(_) => sys::signal(pid, nix::sys::signal::Signal::SIGKILL),
                }
                Event::Forked(Ok(pid))
            }
            Err(errno) => Event::Forked(Err(errno as i32)),
        };
        if write_frame(&mut control, &event).is_err() {
            sys::exit_now(0);
        }
    }
}

/// The pool's side of the fork server: requests go out under `requests`; a reader thread
/// (started on first use) files the replies.
#[derive(Debug)]
pub(crate) struct ForkServer {
    requests: Mutex<UnixStream>,
    reader: Mutex<Option<UnixStream>>,
    events: Mutex<Events>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Events {
    forked: VecDeque<Result<i32, i32>>,
    exited: HashMap<i32, i32>,
    gone: bool,
}

static SERVER: OnceLock<Result<ForkServer, String>> = OnceLock::new();

/// Forks the fork server from this (single-threaded) process. Called once, by `bootstrap`.
pub(crate) fn start() {
    SERVER.get_or_init(|| {
        let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
        let parent = sys::pid();
        // SAFETY: `bootstrap` checked that this process has one thread, so the child may run
        // anything; it never returns into the caller's code.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                drop(ours);
                serve(theirs, parent)
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => {
                drop(theirs);
                let reader = ours.try_clone().map_err(|e| e.to_string())?;
                Ok(ForkServer {
                    requests: Mutex::new(ours),
                    reader: Mutex::new(Some(reader)),
                    events: Mutex::new(Events::default()),
                    changed: Condvar::new(),
                })
            }
            Err(e) => Err(format!("fork failed: {e}")),
        }
    });
}

/// Records why no fork server runs, for the error a pool then gives.
pub(crate) fn unavailable(why: String) {
    let _ = SERVER.set(Err(why));
}

/// The fork server, or why there is none (`None`: `bootstrap` was never called).
pub(crate) fn get() -> Option<Result<&'static ForkServer, &'static str>> {
    SERVER.get().map(|r| r.as_ref().map_err(String::as_str))
}

impl ForkServer {
    fn lock_events(&self) -> std::sync::MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start_reader(&'static self) {
        let Some(mut stream) = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("concurrent-futures-forkserver".into())
            .spawn(move || {
                while let Ok(event) = read_frame::<Event>(&mut stream) {
                    let mut events = self.lock_events();
                    match event {
                        Event::Forked(result) => events.forked.push_back(result),
                        Event::Exited { pid, status } => {
                            events.exited.insert(pid, status);
                        }
                    }
                    self.changed.notify_all();
                }
                self.lock_events().gone = true;
                self.changed.notify_all();
            });
        if spawned.is_err() {
            self.lock_events().gone = true;
        }
    }

    /// Forks a worker that will connect to `server` with `token`; returns its pid.
    pub(crate) fn fork_worker(&'static self, server: &str, token: u64) -> io::Result<i32> {
        self.start_reader();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(
            &mut requests,
            &ForkRequest {
                server: server.to_owned(),
                token,
            },
        )?;
        let mut events = self.lock_events();
        loop {
            if let Some(result) = events.forked.pop_front() {
                return result.map_err(io::Error::from_raw_os_error);
            }
            if events.gone {
                return Err(io::Error::other("the fork server has exited"));
            }
            events = self.changed.wait(events).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until the fork server reports how worker `pid` ended.
    pub(crate) fn wait_exit(&self, pid: i32) -> ExitCause {
        let mut events = self.lock_events();
        loop {
            if let Some(status) = events.exited.remove(&pid) {
                return ExitCause::from_raw(status);
            }
            if events.gone {
                return ExitCause::Unknown;
            }
            events = self.changed.wait(events).unwrap_or_else(|e| e.into_inner());
        }
    }
}
