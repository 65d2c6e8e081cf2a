//! Project tasks, run as `cargo xtask <task>` from anywhere in the workspace.
//!
//! * `cargo xtask loom [--preemptions N]` — every loom model (the `tests/loom_*.rs` files of
//!   each crate), built with `--cfg loom` in its own target directory.
//! * `cargo xtask bench [SUITE] [--quick]` — our engines beside their peers (CPython via
//!   `python3`), one table with ratios, and JSON rows in `target/bench/<suite>.json`. The
//!   suite `mpi` runs only when asked for (it builds the measuring run with the feature `mpi`,
//!   which needs a system MPI).

mod bench;
mod loom;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  loom [--preemptions N]     run every loom model (default preemption bound 2)
  bench [SUITE] [--quick]    run the benchmarks (suites: core, thread, process; default: all;
                             and on request: mpi, which needs a system MPI)";

fn main() -> ExitCode {
    // The mpi suite's workers are copies of this program that MPI spawns with this process's
    // arguments: they must serve (and exit) here, before anything that could fail or block, and
    // before any other thread exists (Open MPI reads its settings at init). In every other
    // process this only decides the role; MPI is initialised when the suite starts workers.
    #[cfg(feature = "mpi")]
    let _mpi = match bench::mpi_bootstrap() {
        Ok(session) => Some(session),
        Err(e) => {
            eprintln!("MPI bootstrap failed: {e} (the mpi suite cannot run)");
            None
        }
    };
    // The process suite's workers are this program, started again or forked.
    concurrent_futures_process::bootstrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("loom") => loom::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some(bench::INNER) => bench::run_inner(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
