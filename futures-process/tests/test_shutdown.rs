//! Twins of the process parts of CPython's `test_shutdown.py` (`ExecutorShutdownTest` and
//! `ProcessPoolShutdownTest`, spec §2.7), on every start method.
//!
//! Python-only: `test_interpreter_shutdown` and `test_hang_gh83386` (a child interpreter that
//! exits without shutting the pool down: here the pool's `Drop` is that shutdown, tested by
//! `del_shutdown`), and `test_submit_after_interpreter_shutdown` (`atexit`).

mod common;

use common::{Blockers, StartMethod, pool};
use concurrent_futures_core::{Executor, SubmitError};
use concurrent_futures_process::ProcessPoolExecutor;
use concurrent_futures_testkit::fixtures::{abs, pow};

concurrent_futures_process::bootstrap_before_main!();

fn identity(x: u64) -> u64 {
    x
}

fn gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// `test_run_after_shutdown`.
fn run_after_shutdown(method: StartMethod) {
    let ex = pool(method, 2);
    ex.shutdown(true, false);
    assert_eq!(ex.submit(pow, (2, 5)).unwrap_err(), SubmitError::Shutdown);
}

/// `test_hang_issue12364`: shutdown waits for all queued work.
fn hang_issue12364(method: StartMethod) {
    let ex = pool(method, 2);
    let futures: Vec<_> = (0..50).map(|i| ex.submit(identity, i).unwrap()).collect();
    ex.shutdown(true, false);
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result(None).unwrap(), i as u64);
    }
}

/// `test_cancel_futures`: what was not yet sent to a worker is cancelled; the rest finishes.
fn cancel_futures(method: StartMethod) {
    let ex = pool(method, 2);
    let blockers = Blockers::new();
    let futures = blockers.submit(&ex, 50);
    blockers.arrivals.wait_for(2);
    ex.shutdown(false, true);
    blockers.gate.open();
    ex.shutdown(true, false);
    let cancelled = futures.iter().filter(|f| f.cancelled()).count();
    assert!(cancelled > 20, "only {cancelled} cancelled");
    assert!(cancelled < 50);
    for f in futures.iter().filter(|f| !f.cancelled()) {
        assert!(f.result(None).is_ok());
    }
    // Tasks sent ahead to the two workers ran too; each reported once.
    assert_eq!(blockers.arrivals.count_now(), 50 - cancelled - 2);
}

fn int(_: ()) -> i64 {
    0
}

/// `test_hang_gh94440`: a future cancelled before it started does not hang shutdown.
fn hang_gh94440(method: StartMethod) {
    let ex = pool(method, 1);
    ex.submit(int, ()).unwrap().result(None).unwrap();
    let f = ex.submit(int, ()).unwrap();
    f.cancel();
    ex.shutdown(true, false);
    assert!(f.done());
}

/// `test_processes_terminate`: workers start on demand, and shutdown reaps them.
fn processes_terminate(method: StartMethod) {
    let ex = pool(method, 5);
    let blockers = Blockers::new();
    let futures = blockers.submit(&ex, 3);
    blockers.arrivals.wait_for(3);
    let pids = ex.worker_pids();
    assert_eq!(pids.len(), 3);
    blockers.gate.open();
    ex.shutdown(true, false);
    assert!(futures.iter().all(|f| f.result(None).is_ok()));
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
}

/// `test_context_manager_shutdown`: the end of the pool's scope shuts it down.
fn context_manager_shutdown(method: StartMethod) {
    let pids = {
        let ex = pool(method, 5);
        let got: Vec<i64> = ex.map(abs, -5..5).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
        ex.worker_pids()
    };
    assert!(!pids.is_empty());
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
}

/// `test_del_shutdown`: dropping the pool runs what was submitted, then reaps the workers.
///
/// The pids are read once all five workers run a blocked task (workers start on demand, so
/// before that the list could be empty and the check below would prove nothing).
fn del_shutdown(method: StartMethod) {
    let ex = pool(method, 5);
    let blockers = Blockers::new();
    let blocked = blockers.submit(&ex, 5);
    blockers.arrivals.wait_for(5);
    let pids = ex.worker_pids();
    assert_eq!(pids.len(), 5, "five workers run the five blocked tasks");
    let futures: Vec<_> = (-5..5).map(|i| ex.submit(abs, i).unwrap()).collect();
    blockers.gate.open();
    drop(ex);
    let got: Vec<i64> = futures.iter().map(|f| f.result(None).unwrap()).collect();
    assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    assert!(blocked.iter().all(|f| f.result(None).is_ok()));
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
}

/// `test_shutdown_no_wait`: the work still completes; a later waiting shutdown reaps.
fn shutdown_no_wait(method: StartMethod) {
    let ex = pool(method, 5);
    let futures: Vec<_> = (-5..5).map(|i| ex.submit(abs, i).unwrap()).collect();
    ex.shutdown(false, false);
    let got: Vec<i64> = futures.iter().map(|f| f.result(None).unwrap()).collect();
    assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    ex.shutdown(true, false);
    assert!(ex.worker_pids().is_empty());
}

fn good(x: u64) -> u64 {
    x
}

fn failing(_: u64) -> u64 {
    panic!("ValueError")
}

/// `test_shutdown_gh_132969_case_1` / `_case_2`: replacement after `shutdown(wait=False)`
/// with `max_tasks_per_child=1` neither errors nor hangs.
fn shutdown_gh_132969(method: StartMethod) {
    if method == StartMethod::Fork {
        return; // max_tasks_per_child is refused with fork
    }
    for workers in [2, 4] {
        let ex = ProcessPoolExecutor::builder()
            .max_workers(workers)
            .start_method(method)
            .max_tasks_per_child(1)
            .build()
            .unwrap();
        let futures = [
            ex.submit(good, 1).unwrap(),
            ex.submit(failing, 2).unwrap(),
            ex.submit(good, 3).unwrap(),
        ];
        let mut total = 0;
        for f in &futures {
            match f.result(None) {
                Ok(v) => total += v,
                Err(_) => break,
            }
        }
        assert_eq!(total, 1);
        ex.shutdown(false, false);
        drop(ex); // waits: must return
        assert_eq!(futures[2].result(None).unwrap(), 3);
    }
}

/// A done-callback runs on the pool's courier thread: `shutdown(wait=true)` there, or dropping
/// the last handle there, must not wait for that same thread (Python raises "cannot join
/// current thread"; here the call returns, and the shutdown completes on its own).
fn shutdown_from_a_done_callback(method: StartMethod) {
    let ex = std::sync::Arc::new(pool(method, 2));
    let blockers = Blockers::new();
    let f = blockers.submit(&ex, 1).remove(0);
    let (called, returned) = std::sync::mpsc::channel();
    let inner = std::sync::Arc::clone(&ex);
    f.add_done_callback(move |_| {
        inner.shutdown(true, false);
        drop(inner);
        called.send(()).unwrap();
    });
    blockers.arrivals.wait_for(1);
    blockers.gate.open();
    returned.recv().unwrap();
    ex.shutdown(true, false);
    assert!(ex.worker_pids().is_empty());
}

per_method!(
    shutdown_from_a_done_callback,
    run_after_shutdown,
    hang_issue12364,
    cancel_futures,
    hang_gh94440,
    processes_terminate,
    context_manager_shutdown,
    del_shutdown,
    shutdown_no_wait,
    shutdown_gh_132969,
);
