//! Ctrl-C (`beyond.md` row 12): with `stop_on_interrupt`, one `SIGINT` to the program stops
//! its queued and running work: queued futures are cancelled, running ones fail with
//! `Interrupted`, the workers and the processes their tasks started are gone, and the
//! program's own handler still runs; with `SIGINT` left at its default, the program still
//! ends, leaving no process behind.
//!
//! A signal is process-wide, so each case runs this test binary again as a child program (the
//! ignored `scenario_*` tests), with the start method in [`METHOD_ENV`].

use concurrent_futures_core::{FutureError, StopReason, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod, WorkerState};
use concurrent_futures_testkit::procfs::{children_of, is_gone, wait_until};
use concurrent_futures_testkit::{ArrivalKey, Arrivals};
use nix::libc;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

concurrent_futures_process::bootstrap_before_main!();

/// The start method of the child program's pool.
const METHOD_ENV: &str = "CF_INTERRUPT_METHOD";

static OWN_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

extern "C" fn own_handler(_: libc::c_int) {
    OWN_HANDLER_RAN.store(true, Ordering::SeqCst);
}

/// Starts a `sleep` child, reports its arrival, then never returns.
fn spawn_grandchild_then_block(arrived: ArrivalKey) {
    let child = Command::new("sleep").arg("1000").spawn().unwrap();
    std::mem::forget(child);
    arrived.arrive();
    loop {
        std::thread::park();
    }
}

fn method() -> Option<StartMethod> {
    match std::env::var(METHOD_ENV).ok()?.as_str() {
        "fork" => Some(StartMethod::Fork),
        "forkserver" => Some(StartMethod::ForkServer),
        "spawn" => Some(StartMethod::Spawn),
        other => panic!("unknown method {other}"),
    }
}

/// A pool of two busy workers (each with a child process) and ten queued tasks; prints the
/// pids of the workers and their children, one per line, before it returns.
fn busy_pool(
    method: StartMethod,
) -> (
    ProcessPoolExecutor,
    Vec<concurrent_futures_core::Future<()>>,
    Vec<u32>,
) {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .stop_on_interrupt(true)
        .grace_period(Duration::from_millis(100))
        .build()
        .unwrap();
    let arrivals = Arrivals::new();
    let futures: Vec<_> = (0..12)
        .map(|_| {
            pool.submit(spawn_grandchild_then_block, arrivals.key())
                .unwrap()
        })
        .collect();
    arrivals.wait_for(2);
    let mut pids = Vec::new();
    for worker in pool.workers() {
        assert!(matches!(worker.state, WorkerState::Running { .. }));
        let mut children = Vec::new();
        wait_until("the task started its child", || {
            children = children_of(worker.pid);
            !children.is_empty()
        });
        pids.push(worker.pid);
        pids.extend(children);
    }
    for pid in &pids {
        println!("pid {pid}");
    }
    (pool, futures, pids)
}

#[test]
#[ignore = "run by ctrl_c_stops_the_work_and_the_programs_handler_still_runs"]
fn scenario_program_with_its_own_handler() {
    let Some(method) = method() else { return };
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(60), move || {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(libc::SIGINT, own_handler as *const () as libc::sighandler_t) };
        let (pool, futures, pids) = busy_pool(method);
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).unwrap();
        let mut cancelled = 0;
        for future in &futures {
            match future.result(None) {
                Err(FutureError::Cancelled(_)) => cancelled += 1,
                Err(FutureError::Failed(TaskError::Stopped(s))) => {
                    assert_eq!(s.reason(), StopReason::Interrupted)
                }
                other => panic!("{other:?}"),
            }
        }
        // Ten were queued; up to two of them had been sent to a worker behind its running task
        // (and fail with it).
        assert!((8..=10).contains(&cancelled), "{cancelled}");
        for pid in pids {
            wait_until("every worker and its child are gone", || is_gone(pid));
        }
        assert!(OWN_HANDLER_RAN.load(Ordering::SeqCst));
        assert!(pool.submit(|x: u8| x, 1).is_err(), "the pool is shut down");
        println!("interrupted cleanly");
    });
}

#[test]
#[ignore = "run by ctrl_c_with_the_default_action_ends_the_program_and_leaves_no_process"]
fn scenario_program_with_the_default_action() {
    let Some(method) = method() else { return };
    let (_pool, _futures, _pids) = busy_pool(method);
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).unwrap();
    // The watcher thread ends the program; this thread waits for it.
    loop {
        std::thread::park();
    }
}

fn run_scenario(name: &str, method: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(METHOD_ENV, method)
        .output()
        .unwrap()
}

const METHODS: [&str; 3] = ["fork", "forkserver", "spawn"];

#[test]
fn ctrl_c_stops_the_work_and_the_programs_handler_still_runs() {
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(120), || {
        for method in METHODS {
            let out = run_scenario("scenario_program_with_its_own_handler", method);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("interrupted cleanly"),
                "{method}: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

#[test]
fn ctrl_c_with_the_default_action_ends_the_program_and_leaves_no_process() {
    use std::os::unix::process::ExitStatusExt;
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(120), || {
        for method in METHODS {
            let out = run_scenario("scenario_program_with_the_default_action", method);
            assert_eq!(out.status.signal(), Some(libc::SIGINT), "{method}: {out:?}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let pids: Vec<u32> = stdout
                .lines()
                .filter_map(|l| l.rsplit_once("pid ").map(|(_, pid)| pid))
                .map(|p| p.parse().unwrap())
                .collect();
            assert_eq!(pids.len(), 4, "two workers, two children: {stdout}");
            for pid in pids {
                wait_until("every worker and its child are gone", || is_gone(pid));
            }
        }
    });
}
