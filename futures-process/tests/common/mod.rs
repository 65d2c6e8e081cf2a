//! Shared by the process engine's test files.
#![allow(dead_code, unreachable_pub)]

use concurrent_futures_core::{BrokenKind, Future, FutureError, TaskError};
pub use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use concurrent_futures_testkit::{ArrivalKey, Arrivals, GateKey, ProcessGate};

/// The three start methods, as Python's generated `ProcessPool{Fork,Forkserver,Spawn}…` classes.
pub const METHODS: [StartMethod; 3] = [
    StartMethod::ForkServer,
    StartMethod::Spawn,
    StartMethod::Fork,
];

/// A pool of `workers` with `method`.
pub fn pool(method: StartMethod, workers: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .start_method(method)
        .build()
        .unwrap()
}

/// A task that reports its arrival, then blocks until the gate opens; returns its worker's pid.
pub fn arrive_then_wait((arrived, gate): (ArrivalKey, GateKey)) -> u32 {
    arrived.arrive();
    gate.wait();
    std::process::id()
}

/// Blocking tasks and what the test holds to watch and release them.
#[derive(Debug, Default)]
pub struct Blockers {
    /// Each task reports here once it runs.
    pub arrivals: Arrivals,
    /// Each task waits for this.
    pub gate: ProcessGate,
}

impl Blockers {
    /// A closed gate and an empty arrival count.
    pub fn new() -> Blockers {
        Blockers::default()
    }

    /// Submits `n` blocking tasks to `ex`.
    pub fn submit(&self, ex: &ProcessPoolExecutor, n: usize) -> Vec<Future<u32>> {
        (0..n)
            .map(|_| {
                ex.submit(arrive_then_wait, (self.arrivals.key(), self.gate.key()))
                    .unwrap()
            })
            .collect()
    }
}

/// The reason of a `BrokenProcessPool` future error (fails the test on anything else).
pub fn broken_reason<T: std::fmt::Debug>(outcome: Result<T, FutureError>) -> String {
    match outcome {
        Err(FutureError::Failed(TaskError::Broken(b))) => {
            assert_eq!(b.kind(), BrokenKind::ProcessPool);
            b.reason().to_owned()
        }
        other => panic!("expected BrokenProcessPool, got {other:?}"),
    }
}

/// One `#[test]` per start method for `fn $name(StartMethod)`, each under the watchdog:
/// `$name::forkserver`, `$name::spawn`, `$name::fork`.
#[macro_export]
macro_rules! per_method {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn forkserver() {
                concurrent_futures_testkit::watchdog(|| super::$name(concurrent_futures_process::StartMethod::ForkServer));
            }
            #[test]
            fn spawn() {
                concurrent_futures_testkit::watchdog(|| super::$name(concurrent_futures_process::StartMethod::Spawn));
            }
            #[test]
            fn fork() {
                concurrent_futures_testkit::watchdog(|| super::$name(concurrent_futures_process::StartMethod::Fork));
            }
        }
    )*};
}
