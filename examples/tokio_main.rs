//! Both pools in an async program: futures of a `ProcessPoolExecutor` and of a
//! `ThreadPoolExecutor`, awaited together from `#[tokio::main]`.
//!
//! ```text
//! cargo run --release --example tokio_main
//! ```
//!
//! `#[tokio::main]` starts the runtime's threads before the first line of `main`, too late for
//! `bootstrap()`; `bootstrap_before_main!()`, once at the top level of the file, runs it before
//! `main`, while the program still has one thread.
// Loom builds (`--cfg loom`) have no tokio, and so an empty `main`: see the root `Cargo.toml`.
#![cfg_attr(loom, allow(unused_imports, dead_code))]

use concurrent_futures::{Executor, ProcessPoolExecutor, ThreadPoolExecutor};

concurrent_futures::process::bootstrap_before_main!();

/// `x²`, and the process it was computed in.
fn square(x: u64) -> (u64, u32) {
    (x * x, std::process::id())
}

#[cfg(not(loom))]
#[tokio::main]
async fn main() {
    let processes = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .expect("bootstrap_before_main!() ran before main");
    let threads = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .expect("two workers are a valid pool");

    // Each `.await` takes a future this program holds the only handle of.
    let in_a_process = Executor::submit(&processes, square, 7).expect("the pool is open");
    let on_a_thread = Executor::submit(&threads, square, 6).expect("the pool is open");
    let (remote, local) = tokio::join!(in_a_process, on_a_thread);

    let here = std::process::id();
    let (value, pid) = remote.expect("square does not fail");
    println!(
        "process pool: 7² = {value} (in another process: {})",
        pid != here
    );
    let (value, pid) = local.expect("square does not fail");
    println!(
        "thread pool: 6² = {value} (in this process: {})",
        pid == here
    );
}

#[cfg(loom)]
fn main() {}
