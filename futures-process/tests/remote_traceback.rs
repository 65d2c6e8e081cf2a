//! A worker captures a backtrace only when its environment asks for one, as std's
//! `Backtrace::capture` does. The environment a worker reads is the program's at start (the fork
//! server is forked before `main`), so the test runs this test binary again as a child program
//! (the `scenario_*` test, ignored unless asked for) with `RUST_BACKTRACE` set or not, and reads
//! the remote error it prints.

use concurrent_futures_core::{FutureError, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use std::process::Command;

concurrent_futures_process::bootstrap_before_main!();

const SCENARIO_ENV: &str = "CF_REMOTE_TRACEBACK_SCENARIO";

fn fail(_: ()) -> u8 {
    panic!("the task failed on purpose")
}

/// The child program's part: one failing task on each start method, its error printed with
/// `{}` and `{:#}` between markers.
#[test]
#[ignore = "run by the tests below, in a child process"]
fn scenario_print_a_remote_panic() {
    if std::env::var_os(SCENARIO_ENV).is_none() {
        return;
    }
    for method in [
        StartMethod::ForkServer,
        StartMethod::Spawn,
        StartMethod::Fork,
    ] {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(method)
            .build()
            .unwrap();
        match pool.submit(fail, ()).unwrap().result(None) {
            Err(FutureError::Failed(error @ TaskError::Remote { .. })) => {
                println!("SHORT {}: {error}", method.name());
                println!("LONG {}: {error:#}\nEND", method.name());
            }
            other => panic!("expected a remote panic, got {other:?}"),
        }
    }
}

/// Runs the scenario with `RUST_BACKTRACE` set to `backtrace` (or unset), and returns what it
/// printed: per method, the short and the long form.
fn run_scenario(backtrace: Option<&str>) -> Vec<(String, String)> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "scenario_print_a_remote_panic",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_ENV, "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("RUST_BACKTRACE");
    if let Some(value) = backtrace {
        command.env("RUST_BACKTRACE", value);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut printed = Vec::new();
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        // The harness prints its "test … ..." before the first line, on the same line.
        if let Some((_, short)) = line.split_once("SHORT ") {
            let first = lines.next().expect("the long form follows");
            let first = first.strip_prefix("LONG ").expect("the long form");
            let mut long = first.to_owned();
            for rest in lines.by_ref().take_while(|l| *l != "END") {
                long.push('\n');
                long.push_str(rest);
            }
            printed.push((short.to_owned(), long));
        }
    }
    assert_eq!(printed.len(), 3, "one per start method: {stdout}");
    printed
}

#[test]
fn without_rust_backtrace_the_worker_captures_no_backtrace() {
    concurrent_futures_testkit::watchdog(|| {
        for backtrace in [None, Some("0")] {
            for (short, long) in run_scenario(backtrace) {
                assert!(
                    short
                        .ends_with(": task failed in a worker process: the task failed on purpose"),
                    "{short}"
                );
                assert!(long.contains("Remote traceback:"), "{long}");
                assert!(long.contains("remote_traceback.rs"), "{long}");
                assert!(long.contains("RUST_BACKTRACE=1"), "{long}");
                assert!(!long.contains("stack backtrace"), "{backtrace:?}: {long}");
            }
        }
    });
}

#[test]
fn with_rust_backtrace_the_worker_captures_its_backtrace() {
    concurrent_futures_testkit::watchdog(|| {
        for (short, long) in run_scenario(Some("1")) {
            assert!(
                short.ends_with(": task failed in a worker process: the task failed on purpose"),
                "{short}"
            );
            assert!(long.contains("remote_traceback.rs"), "{long}");
            assert!(long.contains("stack backtrace:"), "{long}");
            assert!(
                long.contains("fail"),
                "the failing function is in it: {long}"
            );
        }
    });
}
