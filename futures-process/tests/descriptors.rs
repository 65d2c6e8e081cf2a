//! Descriptor exhaustion (`EMFILE`): every future resolves, with an error that names the
//! descriptor limit where it fails; dropping the pool returns; and once descriptors are free
//! again, a new pool works.
//!
//! Each test runs this test binary again as a fresh child program (the `scenario` test,
//! ignored unless asked for): ipc-channel's lazily initialized state and the code map are
//! per process, and what matters is the first time they are used. The child lowers its
//! `RLIMIT_NOFILE` to [`LIMIT`] and fills its descriptor table with `/dev/null` until `EMFILE`.

use concurrent_futures_core::{FutureError, SubmitError, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::fs::File;
use std::process::Command;
use std::time::Duration;

concurrent_futures_process::bootstrap_before_main!();

/// Which scenario the child program runs, and its parameter.
const SCENARIO_ENV: &str = "CF_DESCRIPTORS_SCENARIO";
/// The child's soft descriptor limit.
const LIMIT: u64 = 128;

fn double(x: u32) -> u32 {
    2 * x
}

/// A result too large to travel inline: it goes in a shared-memory region, whose descriptor
/// the receiving side must install.
fn large(n: usize) -> Vec<u8> {
    vec![7; n]
}

/// Over the engine's 64 KiB inline limit.
const LARGE: usize = 100_000;

/// Lowers the limit to [`LIMIT`] and opens `/dev/null` until `EMFILE`; returns the fillers.
fn fill_descriptor_table() -> Vec<File> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, LIMIT, hard).unwrap();
    let mut fillers = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(nix::libc::EMFILE) => return fillers,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

fn pool(method: StartMethod) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(method)
        .build()
        .unwrap()
}

/// The future's outcome: its value, or its error, which must name the descriptor limit.
fn value_or_limit_error<T: std::fmt::Debug>(outcome: Result<T, FutureError>) -> Option<T> {
    match outcome {
        Ok(value) => Some(value),
        Err(FutureError::Failed(error)) => {
            let text = match &error {
                TaskError::Broken(b) => b.reason().to_owned(),
                other => other.to_string(),
            };
            let named = format!("too many open files (RLIMIT_NOFILE = {LIMIT})");
            assert!(
                text.contains(&named),
                "the error does not name the limit: {text}"
            );
            None
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// Submits `double(0)` and `double(1)` and waits for each: its value, or `None` for an error
/// naming the limit. A submit refused because the first future's failure already broke the
/// pool counts as `None` too.
fn submit_two(pool: &ProcessPoolExecutor) -> Vec<Option<u32>> {
    let submitted: Vec<_> = (0..2).map(|x| pool.submit(double, x)).collect();
    let mut outcomes = Vec::new();
    for (i, future) in submitted.into_iter().enumerate() {
        match future {
            Ok(future) => outcomes.push(value_or_limit_error(future.result(None))),
            Err(SubmitError::Broken(_)) if i > 0 && outcomes[0].is_none() => outcomes.push(None),
            Err(e) => panic!("submit {i} refused: {e}"),
        }
    }
    outcomes
}

/// With the descriptors free again, a new pool runs a small and a large task.
fn works_again(method: StartMethod) {
    let pool = pool(method);
    assert_eq!(pool.submit(double, 4).unwrap().result(None).unwrap(), 8);
    assert_eq!(
        pool.submit(large, LARGE).unwrap().result(None).unwrap(),
        large(LARGE)
    );
}

/// (a) A fresh process, `spare` descriptors free: a fork-server pool is built and used.
fn first_use_with_spare_descriptors(spare: usize) {
    let mut fillers = fill_descriptor_table();
    fillers.truncate(fillers.len().saturating_sub(spare));
    let pool = pool(StartMethod::ForkServer);
    let outcomes = submit_two(&pool);
    if spare == 0 {
        assert_eq!(
            outcomes,
            [None, None],
            "nothing can run without descriptors"
        );
    }
    drop(pool);
    drop(fillers);
    works_again(StartMethod::ForkServer);
}

/// (b) A live worker's large result arrives when the pool has no descriptor for its
/// shared-memory region.
fn large_result_without_a_descriptor_for_it() {
    let pool = pool(StartMethod::ForkServer);
    assert_eq!(pool.submit(double, 1).unwrap().result(None).unwrap(), 2);
    let fillers = fill_descriptor_table();
    let future = pool.submit(large, LARGE).unwrap();
    assert_eq!(value_or_limit_error(future.result(None)), None);
    drop(pool);
    drop(fillers);
    works_again(StartMethod::ForkServer);
}

/// (c) A fork pool built while descriptors are free, first used when they are not: the code
/// map, read just before the first fork, cannot be read then.
fn fork_first_used_without_descriptors() {
    let pool = pool(StartMethod::Fork);
    let fillers = fill_descriptor_table();
    assert_eq!(submit_two(&pool), [None, None]);
    drop(pool);
    drop(fillers);
    works_again(StartMethod::Fork);
}

/// The child program's part: runs the scenario named in [`SCENARIO_ENV`], under a watchdog.
#[test]
#[ignore = "run by the other tests of this file, in a child process"]
fn scenario() {
    let Ok(which) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(30), move || {
        match which.split_once(':') {
            Some(("spare", n)) => first_use_with_spare_descriptors(n.parse().unwrap()),
            _ if which == "large" => large_result_without_a_descriptor_for_it(),
            _ if which == "fork" => fork_first_used_without_descriptors(),
            _ => panic!("unknown scenario {which}"),
        }
    });
    println!("SCENARIO DONE");
}

/// Runs `scenario` in a fresh child program and fails with its output unless it passed.
fn run_scenario(which: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "scenario",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_ENV, which)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("SCENARIO DONE"),
        "scenario {which}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// (a) ipc-channel's first use in the process happens with 0, 1, … 15 descriptors free: it
/// must never panic on a courier (stranding the launch and hanging Drop) nor poison itself.
#[test]
fn first_use_of_a_pool_under_descriptor_pressure_fails_its_futures_and_the_process_recovers() {
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(300), || {
        for spare in 0..16 {
            run_scenario(&format!("spare:{spare}"));
        }
    });
}

/// (b) A receive error is not a death: the pool must not wait to reap a live worker.
#[test]
fn a_result_whose_descriptor_cannot_be_installed_fails_the_pool_instead_of_hanging() {
    concurrent_futures_testkit::watchdog(|| run_scenario("large"));
}

/// (c) A failed read of `/proc/self/maps` must not be kept for the life of the process.
#[test]
fn a_fork_pool_works_again_once_descriptors_are_free() {
    concurrent_futures_testkit::watchdog(|| run_scenario("fork"));
}
