//! Workers die with the pool's process, and so do the processes their tasks started (each
//! worker's parent-death signal takes its process group down). The test runs this test binary
//! again as a child program (the `scenario_*` test, ignored unless asked for) that starts a
//! pool, runs a blocking task on each worker that starts a `sleep` of its own, prints the pids
//! of the workers and of those grandchildren, and aborts; the test asserts the child died of
//! `SIGABRT`, then waits on a pidfd of each printed process until it is gone. The child's temporary files go to a directory of
//! its own, removed afterwards, so that the test leaves nothing in `$TMPDIR`.

use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
mod common;

use concurrent_futures_testkit::{ArrivalKey, Arrivals, GateKey, ProcessGate};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

concurrent_futures_process::bootstrap_before_main!();

const SCENARIO_ENV: &str = "CF_PARENT_DEATH_SCENARIO";

/// Starts a `sleep` (a grandchild of the pool), reports its arrival, then waits for the gate.
fn spawn_child_then_wait((arrived, gate): (ArrivalKey, GateKey)) {
    let child = Command::new("sleep").arg("1000").spawn().unwrap();
    std::mem::forget(child);
    arrived.arrive();
    gate.wait();
}

/// The child program's part: start two workers, each running a task with a child process of
/// its own, print their pids, die.
#[test]
#[ignore = "run by parent_death_kills_the_workers, in a child process"]
fn scenario_parent_aborts() {
    let Ok(method) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    let method = match method.as_str() {
        "forkserver" => StartMethod::ForkServer,
        "spawn" => StartMethod::Spawn,
        _ => StartMethod::Fork,
    };
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .unwrap();
    // Two tasks that stay running, so both workers are busy when this process dies.
    let (arrivals, gate) = (Arrivals::new(), ProcessGate::new());
    let _running: Vec<_> = (0..2)
        .map(|_| {
            pool.submit(spawn_child_then_wait, (arrivals.key(), gate.key()))
                .unwrap()
        })
        .collect();
    arrivals.wait_for(2);
    let mut pids = pool.worker_pids();
    let grandchildren: Vec<u32> = pids
        .iter()
        .flat_map(|&w| concurrent_futures_testkit::procfs::children_of(w))
        .collect();
    assert_eq!(grandchildren.len(), 2, "each task started its child");
    pids.extend(grandchildren);
    println!(
        "WORKERS {}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::process::abort();
}

/// Blocks until process `pid` has ended (at most 30 s); `false` if it is still alive then.
fn wait_gone(pid: u32) -> bool {
    // SAFETY: a plain syscall; it returns a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as i32, 0) };
    if fd < 0 {
        return true; // no such process any more
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(30_000u16)).is_ok_and(|n| n == 1)
}

#[test]
fn parent_death_kills_the_workers() {
    concurrent_futures_testkit::watchdog(|| {
        for method in ["forkserver", "spawn", "fork"] {
            // The child dies before its gate and arrivals socket can remove their files: give
            // it a temporary directory of its own, removed once it and its workers are gone.
            let tmp = std::env::temp_dir()
                .join(format!("cf-parent-death-{}-{method}", std::process::id()));
            std::fs::create_dir(&tmp).unwrap();
            let output = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "scenario_parent_aborts",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(SCENARIO_ENV, method)
                .env("TMPDIR", &tmp)
                .output()
                .unwrap();
            assert_eq!(
                output.status.signal(),
                Some(nix::libc::SIGABRT),
                "{method}: {output:?}"
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .find_map(|l| l.split_once("WORKERS ").map(|(_, pids)| pids))
                .expect("the child printed its workers");
            let workers: Vec<u32> = line.split(' ').map(|p| p.parse().unwrap()).collect();
            assert_eq!(workers.len(), 4, "two workers and their two children");
            for pid in workers {
                assert!(
                    wait_gone(pid),
                    "{method}: process {pid} (a worker or its task's child) outlived its pool's \
                     process"
                );
            }
            std::fs::remove_dir_all(&tmp).unwrap();
        }
    });
}

/// The test above leaves nothing in `$TMPDIR` (it left six files per run before its child got
/// a directory of its own): run it again with a fresh `$TMPDIR` and look.
#[test]
fn parent_death_test_leaves_no_files_in_tmpdir() {
    concurrent_futures_testkit::watchdog(|| {
        let tmp = std::env::temp_dir().join(format!("cf-tmpdir-check-{}", std::process::id()));
        std::fs::create_dir(&tmp).unwrap();
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "parent_death_kills_the_workers"])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        std::fs::remove_dir_all(&tmp).unwrap();
        assert!(output.status.success(), "{output:?}");
        assert!(left.is_empty(), "left in $TMPDIR: {left:?}");
    });
}
