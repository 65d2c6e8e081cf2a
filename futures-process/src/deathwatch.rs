//! Seeing a worker process end even while another process holds its channel open.
//!
//! A courier learns that its worker ended when the worker's result channel closes. A process
//! the worker's task forked (without `exec`) holds a copy of that channel, so the channel stays
//! open after the worker dies, and the courier would wait forever. One thread per program
//! watches every live worker's pidfd instead (in an epoll set); when a worker ends, it kills
//! the worker's process group, which takes the forked copies (and every other process the task
//! left in the group) down, so the channel closes and the courier goes on as usual.
//!
//! The courier stops watching its worker ([`Watched`]'s `Drop`) before it reaps it: until then
//! the dead worker is an unreaped zombie whose pid (and so its group id) no other process can
//! take, so the kill reaches only the worker's own group. Each watch has its own number in the
//! epoll set, so an event read just before a watch ended is not taken for a later watch of a
//! process that got the same pid.

use crate::sys;
use nix::libc;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The watched workers, by watch number: pid and pidfd.
type Watchlist = HashMap<u64, (i32, OwnedFd)>;

struct DeathWatch {
    /// The epoll set of the watched pidfds.
    epoll: OwnedFd,
    list: Mutex<(u64, Watchlist)>,
}

static WATCH: OnceLock<Option<DeathWatch>> = OnceLock::new();

impl DeathWatch {
    fn lock(&self) -> MutexGuard<'_, (u64, Watchlist)> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops watching number `id` (under the lock): out of the epoll set, then closed.
    fn forget(&self, list: &mut Watchlist, id: u64) {
        if let Some((_, fd)) = list.remove(&id) {
            // SAFETY: `epoll_ctl` with plain descriptors; deleting needs no event struct.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
    }
}

/// The watcher, started on first use; `None` if it could not be (no descriptor, no thread):
/// workers are then seen to end by their channel alone, as before.
fn get() -> Option<&'static DeathWatch> {
    static RUNNING: OnceLock<bool> = OnceLock::new();
    let watch = WATCH
        .get_or_init(|| {
            // SAFETY: a plain syscall; it returns a new descriptor or -1.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            (fd >= 0).then(|| DeathWatch {
                // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
                epoll: unsafe { OwnedFd::from_raw_fd(fd) },
                list: Mutex::new((0, HashMap::new())),
            })
        })
        .as_ref()?;
    let running = RUNNING.get_or_init(|| {
        std::thread::Builder::new()
            .name("cf-deathwatch".into())
            .spawn(move || run(watch))
            .is_ok()
    });
    running.then_some(watch)
}

/// A worker being watched, until dropped.
pub(crate) struct Watched(u64);

/// Watches worker `pid` (a live, unreaped process of this pool); `None` if its pidfd could
/// not be opened (the courier then relies on its channel alone).
pub(crate) fn watch(pid: i32) -> Option<Watched> {
    let watch = get()?;
    let fd = sys::pidfd_open(pid).ok()?;
    let mut list = watch.lock();
    let id = list.0;
    list.0 += 1;
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: id,
    };
    // SAFETY: `epoll_ctl` reads the event struct we own; both descriptors are open.
    let added = unsafe {
        libc::epoll_ctl(
            watch.epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            &mut event,
        )
    };
    if added != 0 {
        return None;
    }
    list.1.insert(id, (pid, fd));
    Some(Watched(id))
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(watch) = get() {
            let mut list = watch.lock();
            watch.forget(&mut list.1, self.0);
        }
    }
}

/// The watcher thread: waits on the epoll set; a readable pidfd is a worker that ended.
fn run(watch: &DeathWatch) {
    // SAFETY: an all-zero `epoll_event` is a valid value (plain integers).
    let mut events = [unsafe { std::mem::zeroed::<libc::epoll_event>() }; 16];
    loop {
        // SAFETY: `epoll_wait` writes at most `events.len()` events into the array we own.
        let n = unsafe {
            libc::epoll_wait(
                watch.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                -1,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let mut list = watch.lock();
        for event in &events[..n as usize] {
            let id = event.u64;
            // Still watched, so not yet reaped: its group id is still the worker's.
            if let Some(&(pid, _)) = list.1.get(&id) {
                sys::kill_group(pid);
                watch.forget(&mut list.1, id);
            }
        }
    }
}
