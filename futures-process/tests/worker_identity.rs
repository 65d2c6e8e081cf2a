//! What a user sees of the processes from outside: their names in `ps` and `top`
//! (`/proc/<pid>/comm`), and the pool's lifecycle in the log (target `concurrent_futures`).

mod common;

use common::{METHODS, pool};
use concurrent_futures_testkit::log_capture;
use log::Level;

concurrent_futures_process::bootstrap_before_main!();

fn square(x: u64) -> u64 {
    x * x
}

fn abort(_: ()) -> u8 {
    std::process::abort()
}

/// `/proc/<pid>/comm`, without its newline.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim_end()
        .to_owned()
}

/// The parent's pid, from `/proc/<pid>/stat` (the field after the parenthesised name).
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn workers_and_the_fork_server_carry_a_recognisable_name() {
    concurrent_futures_testkit::watchdog(|| {
        for method in METHODS {
            let ex = pool(method, 1);
            assert_eq!(ex.submit(square, 3).unwrap().result(None).unwrap(), 9);
            // A worker that finished its task stays until shutdown.
            let worker = ex.worker_pids()[0];
            assert_eq!(comm(worker), "cf-worker", "{}", method.name());
            if method == concurrent_futures_process::StartMethod::ForkServer {
                assert_eq!(comm(parent_of(worker)), "cf-forkserver");
            }
        }
    });
}

#[test]
fn worker_start_and_exit_and_a_broken_pool_are_logged() {
    concurrent_futures_testkit::watchdog(|| {
        log_capture::install();
        for method in METHODS {
            let ex = pool(method, 1);
            assert_eq!(ex.submit(square, 4).unwrap().result(None).unwrap(), 16);
            let worker = ex.worker_pids()[0];
            ex.shutdown(true, false);
            let logged = |text: &str, level: Level| {
                let records = log_capture::records_containing(text);
                assert!(
                    records
                        .iter()
                        .any(|r| r.level == level && r.target == "concurrent_futures"),
                    "{}: no {level} record with {text:?}: {records:?}",
                    method.name()
                );
            };
            let started = format!("worker process {worker} started ({})", method.name());
            logged(&started, Level::Debug);
            logged(
                &format!("worker process {worker} exited with code 0"),
                Level::Debug,
            );

            let ex = pool(method, 1);
            assert_eq!(ex.submit(square, 5).unwrap().result(None).unwrap(), 25);
            let worker = ex.worker_pids()[0];
            assert!(ex.submit(abort, ()).unwrap().result(None).is_err());
            let broken = format!("BrokenProcessPool: worker process {worker} was killed by");
            logged(&broken, Level::Error);
        }
    });
}
