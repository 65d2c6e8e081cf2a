//! Twins of CPython's `test_deadlock.py` (`ExecutorDeadlockTest`, spec §2.8): faults injected
//! while the argument or the result is (de)serialized and while the task runs, on every start
//! method. Each must end in a typed error, never a hang (each test runs under a watchdog).
//!
//! Where we differ from Python, on purpose: a payload that *fails to decode* (in the worker or
//! in the pool) fails only its future, where Python breaks the pool; `exit` in a task ends the
//! worker process (Rust has no `SystemExit` exception), so it breaks the pool; and the parent
//! cannot "exit while decoding a result" without exiting, so that twin panics instead.
//! `test_gh105829_should_not_deadlock_if_wakeup_pipe_full` has no wake-up pipe to fill here;
//! its workload still runs as `map_of_a_hundred_ints`.

mod common;

use common::{StartMethod, broken_reason, pool};
use concurrent_futures_core::{
    BrokenKind, Executor, FutureError, MapError, PayloadStage, SubmitError, TaskError,
};
use nix::sys::signal::{SigHandler, Signal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

concurrent_futures_process::bootstrap_before_main!();

/// What to do at the moment of the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Fault {
    Error,
    Exit,
    Crash,
    Abort,
    Panic,
}

fn strike<E: serde::ser::Error>(fault: Fault) -> E {
    match fault {
        Fault::Error => E::custom("injected failure"),
        Fault::Exit => std::process::exit(1),
        Fault::Crash => segfault(),
        Fault::Abort => std::process::abort(),
        Fault::Panic => panic!("injected panic"),
    }
}

/// Dies of `SIGSEGV`. (std's own handler for stack overflows is put back to the default first,
/// so the signal ends the process instead of being passed over.)
fn segfault() -> ! {
    // SAFETY: restoring the default disposition of a signal has no memory-safety effect.
    unsafe { nix::sys::signal::signal(Signal::SIGSEGV, SigHandler::SigDfl) }.unwrap();
    nix::sys::signal::raise(Signal::SIGSEGV).unwrap();
    unreachable!("SIGSEGV ends the process")
}

/// Faults when serialized.
#[derive(Debug, Clone, Deserialize)]
struct FaultAtEncode(Fault);

impl Serialize for FaultAtEncode {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(strike(self.0))
    }
}

/// Faults when deserialized.
#[derive(Debug, Clone, Serialize)]
struct FaultAtDecode(Fault);

impl<'de> Deserialize<'de> for FaultAtDecode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fault = Fault::deserialize(d)?;
        match fault {
            Fault::Error => Err(serde::de::Error::custom("injected failure")),
            Fault::Exit => std::process::exit(1),
            Fault::Crash => segfault(),
            Fault::Abort => std::process::abort(),
            Fault::Panic => panic!("injected panic"),
        }
    }
}

fn take_encode(_: FaultAtEncode) -> u8 {
    0
}

fn take_decode(_: FaultAtDecode) -> u8 {
    0
}

fn give_encode(fault: Fault) -> FaultAtEncode {
    FaultAtEncode(fault)
}

fn give_decode(fault: Fault) -> FaultAtDecode {
    FaultAtDecode(fault)
}

fn run_fault(fault: Fault) -> u8 {
    match fault {
        Fault::Error | Fault::Panic => panic!("injected panic"),
        Fault::Exit => std::process::exit(1),
        Fault::Crash => segfault(),
        Fault::Abort => std::process::abort(),
    }
}

fn double(x: u32) -> u32 {
    2 * x
}

/// The pool still works after a fault that should not have broken it.
fn still_healthy(ex: &common::ProcessPoolExecutor) {
    assert_eq!(
        ex.submit(double, 21).unwrap().into_result(None).unwrap(),
        42
    );
    assert!(ex.broken().is_none());
}

fn payload_stage<T: std::fmt::Debug>(outcome: Result<T, FutureError>) -> PayloadStage {
    match outcome {
        Err(FutureError::Failed(TaskError::Payload(p))) => p.stage(),
        other => panic!("expected a payload error, got {other:?}"),
    }
}

/// `test_error_at_task_pickle`: the argument cannot be serialized: that future fails.
fn error_at_task_pickle(method: StartMethod) {
    let ex = pool(method, 2);
    let f = ex.submit(take_encode, FaultAtEncode(Fault::Error)).unwrap();
    assert_eq!(payload_stage(f.result(None)), PayloadStage::EncodeArgument);
    still_healthy(&ex);
}

/// `test_exit_at_task_unpickle`.
fn exit_at_task_unpickle(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(
        ex.submit(take_decode, FaultAtDecode(Fault::Exit))
            .unwrap()
            .into_result(None),
    );
    assert!(reason.contains("exited with code 1"), "{reason}");
}

/// `test_error_at_task_unpickle`: only that future fails (Python breaks the pool).
fn error_at_task_unpickle(method: StartMethod) {
    let ex = pool(method, 2);
    let f = ex.submit(take_decode, FaultAtDecode(Fault::Error)).unwrap();
    assert_eq!(payload_stage(f.result(None)), PayloadStage::DecodeArgument);
    still_healthy(&ex);
}

/// `test_crash_at_task_unpickle`.
fn crash_at_task_unpickle(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(
        ex.submit(take_decode, FaultAtDecode(Fault::Crash))
            .unwrap()
            .into_result(None),
    );
    assert!(reason.contains("SIGSEGV"), "{reason}");
}

/// `test_crash_during_func_exec_on_worker`.
fn crash_during_func_exec_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(
        ex.submit(run_fault, Fault::Crash)
            .unwrap()
            .into_result(None),
    );
    assert!(
        reason.contains("was killed by signal 11 (SIGSEGV)"),
        "{reason}"
    );
}

/// `abort()` in a task.
fn abort_during_func_exec_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(
        ex.submit(run_fault, Fault::Abort)
            .unwrap()
            .into_result(None),
    );
    assert!(reason.contains("SIGABRT"), "{reason}");
}

/// `test_exit_during_func_exec_on_worker`: the worker process ends, so the pool breaks.
fn exit_during_func_exec_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(ex.submit(run_fault, Fault::Exit).unwrap().into_result(None));
    assert!(reason.contains("exited with code 1"), "{reason}");
}

fn exit_zero(_: ()) -> u8 {
    std::process::exit(0)
}

/// `exit(0)` in the middle of a task is a death too: the task never reported.
fn exit_zero_during_func_exec_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(ex.submit(exit_zero, ()).unwrap().into_result(None));
    assert!(reason.contains("exited with code 0"), "{reason}");
}

/// `test_error_during_func_exec_on_worker`.
fn error_during_func_exec_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    match ex
        .submit(run_fault, Fault::Panic)
        .unwrap()
        .into_result(None)
    {
        Err(FutureError::Failed(TaskError::Remote { message, .. })) => {
            assert_eq!(&*message, "injected panic")
        }
        other => panic!("expected the task's panic, got {other:?}"),
    }
    still_healthy(&ex);
}

/// `test_crash_during_result_pickle_on_worker`.
fn crash_during_result_pickle_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(
        ex.submit(give_encode, Fault::Crash)
            .unwrap()
            .into_result(None),
    );
    assert!(reason.contains("SIGSEGV"), "{reason}");
}

/// `test_exit_during_result_pickle_on_worker`.
fn exit_during_result_pickle_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(
        ex.submit(give_encode, Fault::Exit)
            .unwrap()
            .into_result(None),
    );
    assert!(reason.contains("exited with code 1"), "{reason}");
}

/// `test_error_during_result_pickle_on_worker`.
fn error_during_result_pickle_on_worker(method: StartMethod) {
    let ex = pool(method, 2);
    assert_eq!(
        payload_stage(
            ex.submit(give_encode, Fault::Error)
                .unwrap()
                .into_result(None)
        ),
        PayloadStage::EncodeResult
    );
    still_healthy(&ex);
}

/// `test_error_during_result_unpickle_in_result_handler`: only that future fails.
fn error_during_result_unpickle_in_result_handler(method: StartMethod) {
    let ex = pool(method, 2);
    assert_eq!(
        payload_stage(
            ex.submit(give_decode, Fault::Error)
                .unwrap()
                .into_result(None)
        ),
        PayloadStage::DecodeResult
    );
    still_healthy(&ex);
}

/// `test_exit_during_result_unpickle_in_result_handler`, as a panic in the pool's decoder.
fn panic_during_result_unpickle_in_result_handler(method: StartMethod) {
    let ex = pool(method, 2);
    assert_eq!(
        payload_stage(
            ex.submit(give_decode, Fault::Panic)
                .unwrap()
                .into_result(None)
        ),
        PayloadStage::DecodeResult
    );
    still_healthy(&ex);
}

fn json_value(_: ()) -> serde_json::Value {
    serde_json::json!({"a": [1, 2]})
}

/// postcard cannot decode `deserialize_any` types: `WontImplement`, on that future only.
fn result_that_cannot_be_decoded(method: StartMethod) {
    let ex = pool(method, 2);
    match ex.submit(json_value, ()).unwrap().into_result(None) {
        Err(FutureError::Failed(TaskError::Payload(p))) => {
            assert_eq!(p.stage(), PayloadStage::DecodeResult);
            assert!(p.message().contains("implement"), "{p}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    still_healthy(&ex);
}

/// `test_shutdown_deadlock`: shutdown after a crash returns, and the future is broken.
fn shutdown_deadlock(method: StartMethod) {
    let ex = pool(method, 2);
    let f = ex.submit(run_fault, Fault::Crash).unwrap();
    ex.shutdown(true, false);
    broken_reason(f.result(None));
}

fn identity(x: u64) -> u64 {
    x
}

/// `test_shutdown_deadlock_pickle` (bpo-39104).
fn shutdown_deadlock_pickle(method: StartMethod) {
    let ex = pool(method, 2);
    assert_eq!(
        ex.submit(identity, 42).unwrap().into_result(None).unwrap(),
        42
    );
    let bad = ex.submit(take_encode, FaultAtEncode(Fault::Error)).unwrap();
    ex.shutdown(false, false);
    assert_eq!(
        payload_stage(bad.result(None)),
        PayloadStage::EncodeArgument
    );
    ex.shutdown(true, false);
    assert!(ex.worker_pids().is_empty());
}

fn crash_with_data(_: String) -> u8 {
    segfault()
}

/// `test_crash_big_data` (gh-94777): a crash while large payloads are in flight.
fn crash_big_data(method: StartMethod) {
    let ex = pool(method, 2);
    let data = "a".repeat(4 * 1024 * 1024 + 1);
    // The pool may break while `map` is still submitting (then `map` itself is refused).
    match ex.map(crash_with_data, vec![data; 10]) {
        Err(SubmitError::Broken(b)) => assert_eq!(b.kind(), BrokenKind::ProcessPool),
        Ok(mut results) => match results.next() {
            Some(Err(MapError::Future(e))) => {
                broken_reason::<u8>(Err(e));
            }
            other => panic!("expected BrokenProcessPool, got {other:?}"),
        },
        Err(other) => panic!("expected BrokenProcessPool, got {other:?}"),
    }
}

fn to_int(x: u8) -> i64 {
    x as i64
}

/// What `test_gh105829_should_not_deadlock_if_wakeup_pipe_full` runs.
fn map_of_a_hundred_ints(method: StartMethod) {
    let ex = pool(method, 2);
    let got: Vec<i64> = ex
        .map(to_int, 0..100)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

per_method!(
    error_at_task_pickle,
    exit_at_task_unpickle,
    error_at_task_unpickle,
    crash_at_task_unpickle,
    crash_during_func_exec_on_worker,
    abort_during_func_exec_on_worker,
    exit_during_func_exec_on_worker,
    exit_zero_during_func_exec_on_worker,
    error_during_func_exec_on_worker,
    crash_during_result_pickle_on_worker,
    exit_during_result_pickle_on_worker,
    error_during_result_pickle_on_worker,
    error_during_result_unpickle_in_result_handler,
    panic_during_result_unpickle_in_result_handler,
    result_that_cannot_be_decoded,
    shutdown_deadlock,
    shutdown_deadlock_pickle,
    crash_big_data,
    map_of_a_hundred_ints,
);
