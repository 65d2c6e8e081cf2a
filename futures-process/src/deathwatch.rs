//! Seeing a worker process end even while another process holds its channel open.
//!
//! A courier learns that its worker ended when the worker's result channel closes. A process
//! the worker's task forked (without `exec`) holds a copy of that channel, so the channel stays
//! open after the worker dies, and the courier would wait forever. One thread per program
//! watches every live worker's pidfd instead; when a worker ends, it kills the worker's process
//! group, which takes the forked copies (and every other process the task left in the group)
//! down, so the channel closes and the courier goes on as usual.
//!
//! The courier stops watching its worker ([`Watched`]'s `Drop`) before it reaps it: until then
//! the dead worker is an unreaped zombie whose pid (and so its group id) no other process can
//! take, so the kill reaches only the worker's own group.

use crate::sys;
use nix::libc;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, OnceLock};

struct Watchlist {
    /// The watched workers' pidfds, by pid.
    live: HashMap<i32, OwnedFd>,
    /// Pidfds no longer watched, closed by the watcher thread once it is not polling them
    /// (closing one under `poll` could hand its number to an unrelated file meanwhile).
    retired: Vec<OwnedFd>,
}

struct DeathWatch {
    list: Mutex<Watchlist>,
    /// Written to wake the watcher thread when the list changes; read by it.
    wake: (OwnedFd, OwnedFd),
}

static WATCH: OnceLock<Option<DeathWatch>> = OnceLock::new();

impl DeathWatch {
    fn lock(&self) -> MutexGuard<'_, Watchlist> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        // A full pipe already holds a wake-up; nothing else can fail here.
        let _ = nix::unistd::write(&self.wake.1, &[1]);
    }
}

/// The watcher, started on first use; `None` if it could not be (no descriptor, no thread):
/// workers are then seen to end by their channel alone, as before.
fn get() -> Option<&'static DeathWatch> {
    WATCH
        .get_or_init(|| {
            let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
            let wake = nix::unistd::pipe2(flags).ok()?;
            let watch = DeathWatch {
                list: Mutex::new(Watchlist {
                    live: HashMap::new(),
                    retired: Vec::new(),
                }),
                wake,
            };
            Some(watch)
        })
        .as_ref()
        .filter(|_| start_thread())
}

/// Starts the watcher thread once; whether it runs.
fn start_thread() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("cf-deathwatch".into())
            .spawn(|| {
                if let Some(Some(watch)) = WATCH.get() {
                    run(watch)
                }
            })
            .is_ok()
    })
}

/// A worker being watched, until dropped.
pub(crate) struct Watched(i32);

/// Watches worker `pid` (a live, unreaped process of this pool); `None` if its pidfd could
/// not be opened (the courier then relies on its channel alone).
pub(crate) fn watch(pid: i32) -> Option<Watched> {
    let watch = get()?;
    let fd = sys::pidfd_open(pid).ok()?;
    watch.lock().live.insert(pid, fd);
    watch.wake();
    Some(Watched(pid))
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(watch) = get() {
            let mut list = watch.lock();
            if let Some(fd) = list.live.remove(&self.0) {
                list.retired.push(fd);
            }
            drop(list);
            watch.wake();
        }
    }
}

/// The watcher thread: polls the wake pipe and every watched pidfd; a readable pidfd is a
/// worker that ended.
fn run(watch: &DeathWatch) {
    let mut byte = [0u8; 64];
    loop {
        let fds: Vec<(i32, i32)> = {
            let mut list = watch.lock();
            list.retired.clear();
            list.live
                .iter()
                .map(|(&pid, fd)| (pid, fd.as_raw_fd()))
                .collect()
        };
        let mut polled: Vec<libc::pollfd> = std::iter::once(watch.wake.0.as_raw_fd())
            .chain(fds.iter().map(|&(_, fd)| fd))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `poll` reads and writes the `pollfd` array we own, of the length we pass.
        // Every descriptor in it stays open until the next pass: only this thread closes
        // watched pidfds (`retired`), and the wake pipe lives as long as the program.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        while nix::unistd::read(&watch.wake.0, &mut byte).is_ok_and(|n| n > 0) {}
        let mut list = watch.lock();
        for (&(pid, fd), p) in fds.iter().zip(&polled[1..]) {
            let ended = p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
            // Still watched (so not yet reaped: its group id is still the worker's).
            if ended && list.live.get(&pid).is_some_and(|f| f.as_raw_fd() == fd) {
                sys::kill_group(pid);
                if let Some(fd) = list.live.remove(&pid) {
                    list.retired.push(fd);
                }
            }
        }
    }
}
