//! A spawned worker that never connects (its `main` blocks before `bootstrap()`) must not hang
//! the pool: once the hand-shake's time limit passes, the pool kills and reaps the child and
//! breaks, naming the pid and the cause.
//!
//! The test runs this test binary again as a child program (the `scenario_*` test, ignored
//! unless asked for) with [`BLOCK_ENV`] set. Its spawned workers inherit that variable, and
//! this binary's own constructor (in place of `bootstrap_before_main!()`) makes a spawned
//! worker block forever before it reaches `bootstrap()`.

use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use std::process::Command;
use std::time::Duration;
mod common;

/// Set in the child program: its spawned workers block before `bootstrap()`.
const BLOCK_ENV: &str = "CF_HANDSHAKE_BLOCK_SPAWNED";
/// What the engine sets in a worker it spawns (its `WORKER_ENV`).
const WORKER_ENV: &str = "CONCURRENT_FUTURES_WORKER";

/// This binary's `bootstrap_before_main!()`, with a stall in front of it for spawned workers
/// of the child program.
extern "C" fn before_main() {
    if std::env::var_os(BLOCK_ENV).is_some() && std::env::var_os(WORKER_ENV).is_some() {
        loop {
            nix::unistd::pause();
        }
    }
    if let Some(fifo) = std::env::var_os(STALL_ENV)
        && std::env::var_os(WORKER_ENV).is_some()
    {
        // Blocks until the test opens the FIFO for writing, then until it closes it.
        let mut stall = std::fs::File::open(fifo).expect("open the stall FIFO");
        let _ = std::io::Read::read_to_end(&mut stall, &mut Vec::new());
    }
    concurrent_futures_process::bootstrap();
}

/// Set in the child program to a FIFO: its spawned workers connect only once the test has
/// opened and closed it.
const STALL_ENV: &str = "CF_HANDSHAKE_STALL_FIFO";

#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn() = before_main;

fn double(x: u32) -> u32 {
    2 * x
}

/// The child program's part: a one-worker spawn pool with a short hand-shake limit; its
/// worker never connects. Prints the future's error, then whether the worker is reaped.
#[test]
#[ignore = "run by a_spawned_worker_that_never_connects_is_killed_reaped_and_breaks_the_pool"]
fn scenario_spawned_worker_blocks_before_bootstrap() {
    if std::env::var_os(BLOCK_ENV).is_none() {
        return;
    }
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(30), || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Spawn)
            .handshake_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let future = pool.submit(double, 21).unwrap();
        let reason = common::broken_reason(future.result(None));
        println!("REASON {reason}");
        drop(pool);
        println!("DROPPED");
        let pid = pid_in(&reason);
        // Reaped: no longer a child of this process (a zombie would still be one).
        let waited = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        println!("WAITPID {waited:?}");
    });
}

/// The pid in "worker process <pid> …".
fn pid_in(reason: &str) -> i32 {
    reason
        .split("worker process ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {reason:?}"))
}

#[test]
fn a_spawned_worker_that_never_connects_is_killed_reaped_and_breaks_the_pool() {
    concurrent_futures_testkit::watchdog(|| {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "scenario_spawned_worker_blocks_before_bootstrap",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(BLOCK_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{output:?}");
        let line = |tag: &str| {
            stdout
                .lines()
                .find_map(|l| l.split_once(tag).map(|(_, rest)| rest))
                .unwrap_or_else(|| panic!("no {tag:?} line in {stdout}"))
                .to_owned()
        };
        let reason = line("REASON ");
        let pid = pid_in(&reason);
        assert!(
            reason.contains("did not connect to the pool within the hand-shake time limit"),
            "{reason}"
        );
        assert!(reason.contains("killed by signal 9 (SIGKILL)"), "{reason}");
        assert_eq!(line("DROPPED"), "");
        assert_eq!(
            line("WAITPID "),
            "Err(ECHILD)",
            "worker {pid} was not reaped"
        );
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} still exists"
        );
    });
}

/// Whether a thread of this process is the accept guard of a hand-shake in progress.
fn accept_guard_running() -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .any(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == "cf-accept-guard")
        })
}

fn wait_on_gate(
    (arrived, gate): (
        concurrent_futures_testkit::ArrivalKey,
        concurrent_futures_testkit::GateKey,
    ),
) -> u32 {
    arrived.arrive();
    gate.wait();
    0
}

/// The child program's part: pool B (spawn) is in its hand-shake, its worker stalled, when
/// pool A (fork) forks a worker, which inherits every descriptor of the process, among them
/// B's accept guard's stop pipe. Then B's worker connects. Prints B's result.
#[test]
#[ignore = "run by a_fork_pools_worker_never_makes_another_pools_handshake_time_out"]
fn scenario_fork_during_another_pools_handshake() {
    let Some(fifo) = std::env::var_os(STALL_ENV) else {
        return;
    };
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(30), move || {
        let b = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Spawn)
            .handshake_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let answer = b.submit(double, 21).unwrap();
        while !accept_guard_running() {
            std::thread::yield_now();
        }
        let a = common::pool(StartMethod::Fork, 1);
        let (arrivals, gate) = (
            concurrent_futures_testkit::Arrivals::new(),
            concurrent_futures_testkit::ProcessGate::new(),
        );
        let blocked = a
            .submit(wait_on_gate, (arrivals.key(), gate.key()))
            .unwrap();
        // A's worker is forked (and holds its copy of B's stop pipe).
        arrivals.wait_for(1);
        drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        println!("ANSWER {:?}", answer.result(None));
        gate.open();
        blocked.result(None).unwrap();
    });
}

/// Before the fix the guard learnt that the hand-shake was over only from its stop pipe hanging
/// up, which a fork pool's worker prevented by holding a copy: the guard then killed B's
/// connected worker when the limit passed and broke B.
#[test]
fn a_fork_pools_worker_never_makes_another_pools_handshake_time_out() {
    concurrent_futures_testkit::watchdog(|| {
        let fifo = std::env::temp_dir().join(format!("cf-stall-{}", std::process::id()));
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "scenario_fork_during_another_pools_handshake",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(STALL_ENV, &fifo)
            .output();
        std::fs::remove_file(&fifo).unwrap();
        let output = output.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{output:?}");
        assert!(stdout.contains("ANSWER Ok(42)"), "{stdout}");
    });
}

/// A limit too large to add to the clock means no limit (it used to panic on the courier).
#[test]
fn an_unbounded_handshake_timeout_is_no_limit() {
    concurrent_futures_testkit::watchdog(|| {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Spawn)
            .handshake_timeout(Duration::MAX)
            .build()
            .unwrap();
        assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
    });
}
