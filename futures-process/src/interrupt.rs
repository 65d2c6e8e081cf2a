//! Ctrl-C for pools built with
//! [`stop_on_interrupt`](crate::ProcessPoolBuilder::stop_on_interrupt): one `SIGINT` stops
//! their queued and running work.
//!
//! The first such pool installs a `SIGINT` handler for the process, keeping the one that was
//! there. The handler only writes a byte to a pipe (async-signal-safe), then calls the
//! program's own handler, if it had one. A watcher thread reads the pipe and, for each pool
//! still alive, shuts it down cancelling its queue and stops its running workers (their
//! futures fail with [`StopReason::Interrupted`]). If the program had left `SIGINT` at its
//! default (end the program), the watcher then restores that default and raises `SIGINT`
//! again, once the pools' workers are gone: the program still ends as Ctrl-C would end it.
//!
//! [`StopReason::Interrupted`]: concurrent_futures_core::StopReason::Interrupted

use crate::shared::Shared;
use nix::libc;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock, Weak};

/// The pools to stop on `SIGINT`.
static POOLS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
/// The pipe's write end, for the handler (-1 until installed).
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// The `SIGINT` action the program had before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Adds `pool` to the pools a `SIGINT` stops, installing the handler on first use.
pub(crate) fn watch(pool: Weak<Shared>) -> Result<(), String> {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|p| p.strong_count() > 0);
    pools.push(pool);
    if PREVIOUS.get().is_none() {
        install()?;
    }
    Ok(())
}

fn install() -> Result<(), String> {
    // SAFETY: reads the current action into the zeroed struct we own.
    let current = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current);
        current
    };
    if current.sa_sigaction == libc::SIG_IGN {
        // The program ignores Ctrl-C: so do its pools (and what it execs keeps ignoring it).
        let _ = PREVIOUS.set(current);
        return Ok(());
    }
    // The write end does not block: the handler must never wait (if the pipe is full, an
    // interrupt is pending already).
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("could not make the interrupt pipe: {e}"))?;
    nix::fcntl::fcntl(
        &write,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| format!("could not make the interrupt pipe: {e}"))?;
    std::thread::Builder::new()
        .name("concurrent-futures-interrupt".into())
        .spawn(move || watch_pipe(read))
        .map_err(|e| format!("could not start the interrupt thread: {e}"))?;
    WAKE.store(write.as_raw_fd(), Ordering::Release);
    // The write end lives as long as the process: the handler may run at any time.
    std::mem::forget(write);
    // SAFETY: `sigaction` reads the fully initialized action we pass and writes the previous
    // one into the zeroed struct we own. The handler calls only async-signal-safe functions
    // (`write`) and the program's previous handler, which the program installed for this
    // signal, so it is as safe to call here as it was before.
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, std::ptr::null(), &mut previous);
        let _ = PREVIOUS.set(previous);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
            return Err(format!(
                "could not install the SIGINT handler: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

extern "C" fn on_sigint(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let fd = WAKE.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: `__errno_location` and `write` are async-signal-safe; `write` reads one byte
        // from a live local. errno is put back, as the interrupted code may be reading it.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, [1u8].as_ptr().cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return;
    }
    // SAFETY: the program installed this handler for `SIGINT` with these flags: it expects
    // exactly these arguments (three with `SA_SIGINFO`, one without).
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(signal);
        }
    }
}

/// The watcher thread: stops the pools on each interrupt.
fn watch_pipe(read: OwnedFd) {
    // SAFETY: we own `read`, and the `File` takes it over.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(read)) };
    let mut byte = [0u8; 1];
    loop {
        match pipe.read(&mut byte) {
            Ok(1) => {}
            // Another signal handler, installed without `SA_RESTART`, ran on this thread.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return,
        }
        let pools: Vec<_> = POOLS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for pool in &pools {
            pool.interrupt();
        }
        let default = PREVIOUS
            .get()
            .is_some_and(|p| p.sa_sigaction == libc::SIG_DFL);
        if default {
            for pool in &pools {
                pool.shutdown(true, true);
            }
            drop(pools);
            // SAFETY: plain integers; the program asked for Ctrl-C's default: to end.
            unsafe {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::raise(libc::SIGINT);
            }
        }
    }
}
