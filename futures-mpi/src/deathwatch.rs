//! Seeing a worker on this host die: MPI never reports it (the spike: no error code, no PMIx
//! event, no ULFM in Debian's Open MPI), so the pool watches each local worker's pidfd, which
//! becomes readable when the process ends.
//!
//! Workers on other hosts cannot be watched this way: the heartbeats see them.

use crate::Rank;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The pidfds of the watched workers.
#[derive(Debug, Default)]
pub(crate) struct DeathWatch {
    watched: Vec<(Rank, OwnedFd)>,
}

impl DeathWatch {
    /// Watches process `pid` as worker `rank`; `false` if it cannot be (not in our pid
    /// namespace, gone already, or a kernel without pidfds).
    pub(crate) fn watch(&mut self, rank: Rank, pid: u32) -> bool {
        // SAFETY: a plain syscall; it returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return false;
        }
        // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
        self.watched
            .push((rank, unsafe { OwnedFd::from_raw_fd(fd as i32) }));
        true
    }

    /// Whether watched worker `rank` has ended (it stays watched); `false` if it is not
    /// watched.
    pub(crate) fn has_ended(&self, rank: Rank) -> bool {
        let Some((_, fd)) = self.watched.iter().find(|(watched, _)| *watched == rank) else {
            return false;
        };
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and a zero timeout.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents != 0
    }

    /// Waits up to `pause` for a watched worker to end, or for `also` (another descriptor, if
    /// given) to become readable; returns (and stops watching) the workers that have ended.
    /// With nothing to watch, just waits.
    pub(crate) fn wait(&mut self, pause: Duration, also: Option<RawFd>) -> Vec<Rank> {
        let mut fds: Vec<libc::pollfd> = self
            .watched
            .iter()
            .map(|(_, fd)| fd.as_raw_fd())
            .chain(also)
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let timeout = libc::timespec {
            tv_sec: pause.as_secs() as libc::time_t,
            tv_nsec: pause.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds, and `timeout` a valid timespec.
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &timeout,
                std::ptr::null(),
            )
        };
        if ready <= 0 {
            return Vec::new();
        }
        let mut dead = Vec::new();
        let mut index = 0;
        self.watched.retain(|(rank, _)| {
            let ended = fds[index].revents != 0;
            index += 1;
            if ended {
                dead.push(*rank);
            }
            !ended
        });
        dead
    }
}

/// Waits up to `limit` for process `pid` to end; `true` if it has (or was never there).
pub fn wait_for_exit(pid: u32, limit: Duration) -> bool {
    let mut watch = DeathWatch::default();
    if !watch.watch(0, pid) {
        return true;
    }
    !watch.wait(limit, None).is_empty()
}

/// Sends SIGKILL to process `pid` through a pidfd, so that the signal cannot reach another
/// process that took the pid after this one ended (once the pidfd is open); `false` if the
/// process is gone already.
pub(crate) fn kill(pid: u32) -> bool {
    // SAFETY: a plain syscall; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: a plain syscall on our own pidfd, with no siginfo.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sent == 0
}
