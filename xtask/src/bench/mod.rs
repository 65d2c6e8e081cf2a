//! `cargo xtask bench`: our engines and their peers in one run, a table with ratios, JSON rows.
//!
//! The task re-runs this crate in release mode (`__bench-inner`) so the measured code is
//! optimised whatever profile `cargo xtask` was built with.

mod core_suite;
mod java;
#[cfg(feature = "mpi")]
mod mpi_suite;
mod process_suite;
mod process_supervision;
mod python;
mod report;
mod thread_suite;

use std::process::Command;

/// The hidden sub-command that measures, in a release build.
pub(crate) const INNER: &str = "__bench-inner";

/// The default set.
const SUITES: &[&str] = &["core", "thread", "process"];

/// Suites run only when asked for: `mpi` needs a system MPI, and xtask's feature `mpi` (which
/// `cargo xtask bench mpi` turns on for the measuring run).
const OPTIONAL: &[&str] = &["mpi"];

/// What to install for the `mpi` suite, and how it is built.
const MPI_HINT: &str = "the mpi suite needs a system MPI (Debian/Ubuntu: apt-get install \
    libopenmpi-dev openmpi-bin libclang-dev) and xtask's feature `mpi`: `cargo xtask bench mpi` \
    turns it on (it runs `cargo run --release -p xtask --features mpi -- __bench-inner mpi`)";

struct Options {
    suites: Vec<String>,
    quick: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        suites: Vec::new(),
        quick: false,
    };
    for arg in args {
        match arg.as_str() {
            "--quick" => options.quick = true,
            suite if SUITES.contains(&suite) || OPTIONAL.contains(&suite) => {
                options.suites.push(suite.to_owned());
            }
            other => {
                return Err(format!(
                    "cargo xtask bench: unknown suite or flag {other} (suites: {SUITES:?}, \
                     and on request {OPTIONAL:?})"
                ));
            }
        }
    }
    if options.suites.is_empty() {
        options.suites = SUITES.iter().map(|s| (*s).to_owned()).collect();
    }
    // MPI last: once a process has initialised MPI, its environment carries Open MPI's
    // variables, which would make the process suite's spawned workers look launched by MPI.
    options.suites.sort_by_key(|s| s == "mpi");
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let mpi = options.suites.iter().any(|s| s == "mpi");
    let cargo = || {
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
        cargo.current_dir(crate::workspace_root());
        cargo
    };
    let features: &[&str] = if mpi { &["--features", "mpi"] } else { &[] };
    if mpi {
        // Built first, so that a machine without MPI hears what the suite needs.
        let built = cargo()
            .args(["build", "--release", "--quiet", "--package", "xtask"])
            .args(features)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !built.success() {
            return Err(format!("cannot build the bench with MPI: {MPI_HINT}"));
        }
    }
    let mut run = cargo();
    run.args(["run", "--release", "--quiet", "--package", "xtask"])
        .args(features)
        .args(["--", INNER])
        .args(args);
    // Open MPI leaves a singleton's session directory in $TMPDIR for a while after it exits:
    // the measuring run gets a private one, removed afterwards.
    let tmp = std::env::temp_dir().join(format!("cf-bench-mpi-{}", std::process::id()));
    if mpi {
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        run.env("TMPDIR", &tmp);
    }
    let status = run.status().map_err(|e| format!("cannot run cargo: {e}"));
    if mpi {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if status?.success() {
        Ok(())
    } else {
        Err("bench failed".to_owned())
    }
}

/// The first line of `main` with the feature `mpi`: a copy of this program spawned as an MPI
/// worker (by the `mpi` suite) serves there and exits.
#[cfg(feature = "mpi")]
pub(crate) fn mpi_bootstrap()
-> Result<concurrent_futures_mpi::Session, concurrent_futures_mpi::MpiError> {
    mpi_suite::bootstrap()
}

pub(crate) fn run_inner(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    for suite in &options.suites {
        let (rows, targets) = match suite.as_str() {
            "core" => (core_suite::run(options.quick)?, core_suite::TARGETS),
            "thread" => (thread_suite::run(options.quick)?, thread_suite::TARGETS),
            "process" => (process_suite::run(options.quick)?, process_suite::TARGETS),
            #[cfg(feature = "mpi")]
            "mpi" => (mpi_suite::run(options.quick)?, mpi_suite::TARGETS),
            #[cfg(not(feature = "mpi"))]
            "mpi" => return Err(format!("this xtask was built without MPI: {MPI_HINT}")),
            _ => unreachable!("validated by parse"),
        };
        report::print(suite, &rows, targets);
        let path = report::write_json(suite, &rows)?;
        println!("rows written to {}", path.display());
    }
    Ok(())
}

/// The median of some samples (they are sorted in place).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

/// Orders rows so each workload's rows are together, ours first (stable otherwise).
fn group_by_workload(rows: &mut [report::Row]) {
    let mut order: Vec<&'static str> = Vec::new();
    for row in rows.iter() {
        if !order.contains(&row.workload) {
            order.push(row.workload);
        }
    }
    rows.sort_by_key(|r| (order.iter().position(|w| *w == r.workload), !r.ours));
}

/// Runs `measure` `repeats` times and returns the median.
fn median_of(repeats: usize, mut measure: impl FnMut() -> f64) -> f64 {
    median(&mut (0..repeats).map(|_| measure()).collect::<Vec<_>>())
}

/// CPU time this process has used so far, all threads, user and system
/// (`CLOCK_PROCESS_CPUTIME_ID`).
fn process_cpu() -> std::time::Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("the process CPU clock");
    std::time::Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// As [`median_of`], also measuring the process's CPU time over each run: returns the median
/// of `measure`'s results and the median CPU time per task in µs (`tasks` per run).
fn median_with_cpu(repeats: usize, tasks: usize, mut measure: impl FnMut() -> f64) -> (f64, f64) {
    let mut values = Vec::with_capacity(repeats);
    let mut cpu = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let before = process_cpu();
        values.push(measure());
        cpu.push((process_cpu() - before).as_secs_f64() * 1e6 / tasks as f64);
    }
    (median(&mut values), median(&mut cpu))
}
