//! Project tasks, run as `cargo xtask <task>` from anywhere in the workspace.
//!
//! * `cargo xtask loom [--preemptions N]` — every loom model (the `tests/loom_*.rs` files of
//!   each crate), built with `--cfg loom` in its own target directory.
//! * `cargo xtask bench [SUITE] [--quick]` — our engines beside their peers (CPython via
//!   `python3`), one table with ratios, and JSON rows in `target/bench/<suite>.json`.

mod bench;
mod loom;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  loom [--preemptions N]     run every loom model (default preemption bound 2)
  bench [SUITE] [--quick]    run the benchmarks (suites: core, thread, process; default: all)";

fn main() -> ExitCode {
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
