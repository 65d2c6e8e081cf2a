//! `stop_on_interrupt`'s watcher thread must survive a signal that interrupts its `read` (a
//! handler installed without `SA_RESTART`); before the fix it ended there, and every later
//! Ctrl-C was lost. One test in its own binary: it finds the watcher thread as the one thread
//! that building the first `stop_on_interrupt` pool adds to the process.

use concurrent_futures_core::{FutureError, StopReason, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use concurrent_futures_testkit::watchdog_for;
use nix::libc;
use std::collections::BTreeSet;
use std::time::Duration;

concurrent_futures_process::bootstrap_before_main!();

extern "C" fn noop(_: libc::c_int) {}

fn tasks() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn forever(_: ()) {
    loop {
        std::thread::park();
    }
}

/// Steps: the program has its own SIGINT handler (so Ctrl-C's default does not end this test
/// binary) and a SIGUSR1 handler without `SA_RESTART` (as `signal(2)`-style code installs
/// with `sigaction` and no flags). A SIGUSR1 lands on the watcher thread while it waits in
/// `read` on its pipe: `read` fails with `EINTR`, `watch_pipe`'s `while let Ok(1)` loop ends,
/// the thread exits and the read end closes. The next SIGINT's byte goes nowhere (`EPIPE`):
/// the running task is never stopped.
#[test]
fn a_signal_interrupting_the_watchers_read_does_not_disable_ctrl_c() {
    watchdog_for(Duration::from_secs(20), || {
        // SAFETY: both handlers do nothing; the structs are fully initialized.
        unsafe {
            libc::signal(libc::SIGINT, noop as *const () as libc::sighandler_t);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = noop as *const () as usize;
            action.sa_flags = 0; // no SA_RESTART
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
        }
        let before = tasks();
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Fork)
            .stop_on_interrupt(true)
            .grace_period(Duration::ZERO)
            .build()
            .unwrap();
        let added: Vec<i32> = tasks().difference(&before).copied().collect();
        assert_eq!(
            added.len(),
            1,
            "building the pool started the watcher only: {added:?}"
        );
        let watcher = added[0];
        // Once it sleeps in the kernel, it is blocked in `read()`.
        concurrent_futures_testkit::procfs::wait_until("the watcher blocks in read()", || {
            std::fs::read_to_string(format!("/proc/self/task/{watcher}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('S'))
                })
                .unwrap_or(false)
        });
        // SAFETY: tgkill takes plain integers; the target is a thread of this process.
        unsafe {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), watcher, libc::SIGUSR1);
        }
        let future = pool.submit(forever, ()).unwrap();
        while !future.running() {
            std::thread::yield_now();
        }
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).unwrap();
        match future.result(Duration::from_secs(5)) {
            Err(FutureError::Failed(TaskError::Stopped(s))) => {
                assert_eq!(s.reason(), StopReason::Interrupted)
            }
            other => {
                let watcher_alive = tasks().contains(&watcher);
                // Clean up: the worker runs forever otherwise.
                for pid in pool.worker_pids() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                panic!(
                    "SIGINT did not stop the running task ({other:?}); watcher thread alive: \
                     {watcher_alive}"
                )
            }
        }
    });
}
