//! Forgetting `bootstrap` is a typed error, never a hang: in the program itself, and in the
//! workers it spawns (copies of a program whose `main` does not call it first never reach
//! `MPI_Init`, which leaves Open MPI's `MPI_Comm_spawn` waiting for good).
//!
//! `harness = false`: the binary plays two parts, chosen by `CF_MPI_TEST`:
//! - unset (as `cargo test` runs it): never calls `bootstrap` nor initialises MPI; checks the
//!   error, then runs itself as `forgetful` in a private `TMPDIR`, removed afterwards;
//! - `forgetful`: calls `bootstrap`, but its spawned copies (which see Open MPI's variables in
//!   their environment) act like a program without it: their `Workers::start` fails and they
//!   exit before `MPI_Init`.
#![cfg(feature = "mpi")]

use concurrent_futures_mpi::MpiError;
use concurrent_futures_mpi::transport::{Workers, WorkersConfig, bootstrap_with};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PART: &str = "CF_MPI_TEST";
/// The spawn's deadline in the forgetful part.
const SPAWN_LIMIT: Duration = Duration::from_secs(5);

fn main() {
    watchdog(Duration::from_secs(120));
    let spawned_copy = std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some();
    match std::env::var(PART).as_deref() {
        Ok("forgetful") if spawned_copy => {
            let error = Workers::start(&WorkersConfig::default()).unwrap_err();
            assert_eq!(error, MpiError::NotBootstrapped);
            std::process::exit(1);
        }
        Ok("forgetful") => forgetful_parent(),
        _ => {
            eprintln!("test starting_workers_without_bootstrap_is_an_error ...");
            let error = Workers::start(&WorkersConfig::default()).unwrap_err();
            assert_eq!(error, MpiError::NotBootstrapped);
            assert!(error.to_string().contains("bootstrap()"), "{error}");
            eprintln!("test starting_workers_without_bootstrap_is_an_error ... ok");
            eprintln!("test workers_without_bootstrap_make_the_spawn_time_out ...");
            run_forgetful();
            eprintln!("test workers_without_bootstrap_make_the_spawn_time_out ... ok");
        }
    }
}

/// Past `limit`, fails the whole run: a hang is a failure.
fn watchdog(limit: Duration) {
    let (never_sent, watched) = mpsc::channel::<()>();
    // Open for the life of the process: the wait ends only at its limit.
    std::mem::forget(never_sent);
    std::thread::spawn(move || {
        let _ = watched.recv_timeout(limit);
        eprintln!("not_bootstrapped: still running after {limit:?}");
        std::process::exit(3);
    });
}

fn forgetful_parent() {
    let session = bootstrap_with(|_| 0).expect("bootstrap");
    let config = WorkersConfig {
        spawn_timeout: SPAWN_LIMIT,
        hello_timeout: SPAWN_LIMIT,
        ..WorkersConfig::default()
    };
    let started = Instant::now();
    let error = Workers::start(&config).unwrap_err();
    assert!(
        matches!(error, MpiError::SpawnTimedOut { after, .. } if after == SPAWN_LIMIT),
        "{error:?}"
    );
    assert!(
        started.elapsed() < SPAWN_LIMIT * 3,
        "took {:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("bootstrap()"), "{error}");
    println!("spawn timed out: ok");
    // MPI is not finalized under the abandoned spawn: the session knows.
    drop(session);
}

fn run_forgetful() {
    let tmp = std::env::temp_dir().join(format!("cf-mpi-test-{}-forgetful", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .env(PART, "forgetful")
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .output()
        .expect("run the forgetful part");
    let _ = std::fs::remove_dir_all(&tmp);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the forgetful part failed: {}\n{stdout}",
        output.status
    );
    assert!(stdout.contains("spawn timed out: ok"), "{stdout}");
}
