//! Shared by the process engine's test files.
#![allow(dead_code, unreachable_pub)]

use concurrent_futures_core::{BrokenKind, FutureError, TaskError};
pub use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};

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
