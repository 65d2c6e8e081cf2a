//! A worker runs only the call sites its own pool made: a forged or foreign task message is
//! refused by task id with a typed error, and the worker keeps serving. A worker of another
//! protocol or build is refused at the hand-shake. Real workers on every start method, fed
//! messages by the test (through the crate's `test-support` hooks).

mod common;

use common::StartMethod;
use concurrent_futures_core::TaskError;
use concurrent_futures_process::test_support::{Launched, PoolKey, RawWorker, VersionSkew};
use concurrent_futures_process::{CallRefused, RefusalReason};

concurrent_futures_process::bootstrap_before_main!();

fn nothing(_: ()) {}

fn triple(x: u32) -> u32 {
    3 * x
}

fn refusal(outcome: Result<(), TaskError>) -> RefusalReason {
    match outcome {
        Err(TaskError::Custom(e)) => match e.downcast_ref::<CallRefused>() {
            Some(refused) => refused.reason(),
            None => panic!("expected a CallRefused, got {e}"),
        },
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The worker still runs its pool's own tasks, and leaves normally when asked.
fn still_serves(worker: RawWorker) {
    worker.send_task(100, triple, &5);
    let (id, outcome) = worker.reply::<u32>().expect("the worker answered");
    assert_eq!((id, outcome.unwrap()), (100, 15));
    assert_eq!(worker.finish(), "exited with code 0");
}

/// A forger copies a real task message of the pool (`nothing`, a valid trampoline and its
/// valid tag) and points its function at `std::process::abort`. Checked only for "lies in the
/// code", the worker would call it and die.
fn forged_call_to_abort_is_refused_and_worker_keeps_serving(method: StartMethod) {
    let worker = RawWorker::start(method);
    let abort = std::process::abort as fn() -> ! as usize;
    worker.send_forged(7, nothing, abort, &());
    let (id, outcome) = worker
        .reply::<()>()
        .expect("the worker died instead of answering");
    assert_eq!(id, 7);
    assert_eq!(refusal(outcome), RefusalReason::Unauthenticated);
    still_serves(worker);
}

/// An authentic call site, sealed by another pool: refused like a forgery.
fn call_site_of_another_pool_is_refused_and_worker_keeps_serving(method: StartMethod) {
    let worker = RawWorker::start(method);
    let other_pool = PoolKey::new();
    worker.send_sealed_by(&other_pool, 8, nothing, &());
    let (id, outcome) = worker.reply::<()>().expect("the worker answered");
    assert_eq!(id, 8);
    assert_eq!(refusal(outcome), RefusalReason::Unauthenticated);
    still_serves(worker);
}

per_method!(
    forged_call_to_abort_is_refused_and_worker_keeps_serving,
    call_site_of_another_pool_is_refused_and_worker_keeps_serving,
);

/// The pool expects another protocol, or another build of the crate, than the worker speaks
/// (as with two copies of the crate in one program): the launch is refused with an error that
/// says so, and the worker is killed and reaped. The `Fork` method has no hand-shake: its
/// worker is a copy of the pool's own process, so the same copy of the crate.
fn hello_of_another_version_is_refused(method: StartMethod) {
    for skew in [VersionSkew::Protocol, VersionSkew::Build] {
        match concurrent_futures_process::test_support::launch_expecting(method, skew) {
            Launched::VersionRefused { pid, message } => {
                assert!(message.contains("two copies"), "{message}");
                assert!(
                    !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                    "the refused worker {pid} was reaped"
                );
            }
            other => panic!("{skew:?}: expected a refusal for the version, got {other:?}"),
        }
    }
}

#[test]
fn hello_of_another_version_is_refused_forkserver() {
    concurrent_futures_testkit::watchdog(|| {
        hello_of_another_version_is_refused(StartMethod::ForkServer)
    });
}

#[test]
fn hello_of_another_version_is_refused_spawn() {
    concurrent_futures_testkit::watchdog(|| {
        hello_of_another_version_is_refused(StartMethod::Spawn)
    });
}
