//! Twins of CPython's `test_init.py` for process pools (`ProcessPool*InitializerTest`,
//! `ProcessPool*FailingInitializerTest`, spec §2.9), on every start method, plus a worker
//! that dies inside its initializer. The resource test (`FailingInitializerResourcesTest`)
//! is covered by `no_leaks.rs`, which builds pools with failing initializers too.

mod common;

use common::{StartMethod, broken_reason};
use concurrent_futures_core::SubmitError;
use concurrent_futures_process::ProcessPoolExecutor;
use concurrent_futures_testkit::log_capture;
use std::sync::Mutex;

concurrent_futures_process::bootstrap_before_main!();

static INIT_STATUS: Mutex<&str> = Mutex::new("uninitialized");

fn init(status: String) {
    *INIT_STATUS.lock().unwrap() = status.leak();
}

fn get_init_status(_: ()) -> String {
    INIT_STATUS.lock().unwrap().to_string()
}

fn init_fail(_: ()) {
    panic!("error in initializer");
}

fn init_abort(_: ()) {
    std::process::abort();
}

/// `*InitializerTest.test_initializer`: each worker ran the initializer before its tasks.
fn initializer(method: StartMethod) {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .initializer(init, "initialized".to_string())
        .build()
        .unwrap();
    let futures: Vec<_> = (0..2)
        .map(|_| ex.submit(get_init_status, ()).unwrap())
        .collect();
    for f in futures {
        assert_eq!(f.result(None).unwrap(), "initialized");
    }
    // Not in this process: the initializer ran in the workers only.
    assert_eq!(*INIT_STATUS.lock().unwrap(), "uninitialized");
}

/// `*FailingInitializerTest.test_initializer`: the pool breaks, refuses work, and the failure
/// is logged (on target `concurrent_futures`, in the pool's process).
fn failing_initializer(method: StartMethod) {
    log_capture::install();
    let ex = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .initializer(init_fail, ())
        .build()
        .unwrap();
    match ex.submit(get_init_status, ()) {
        Ok(f) => {
            let reason = broken_reason(f.result(None));
            assert!(reason.contains("initializer"), "{reason}");
            assert!(reason.contains("error in initializer"), "{reason}");
            // One line: the remote traceback goes to the log, not into the error.
            assert!(!reason.contains('\n'), "{reason:?}");
        }
        Err(SubmitError::Broken(_)) => {}
        Err(other) => panic!("unexpected {other}"),
    }
    assert!(ex.broken().is_some());
    assert!(matches!(
        ex.submit(get_init_status, ()),
        Err(SubmitError::Broken(_))
    ));
    let logged = log_capture::records_containing("error in initializer");
    assert!(
        logged
            .iter()
            .any(|r| r.target == "concurrent_futures" && r.message.contains("panicked at")),
        "the log carries the remote traceback: {logged:?}"
    );
}

/// A worker that dies inside its initializer breaks the pool, naming the signal.
fn dies_in_initializer(method: StartMethod) {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .initializer(init_abort, ())
        .build()
        .unwrap();
    match ex.submit(get_init_status, ()) {
        Ok(f) => {
            let reason = broken_reason(f.result(None));
            assert!(reason.contains("SIGABRT"), "{reason}");
        }
        Err(SubmitError::Broken(_)) => {}
        Err(other) => panic!("unexpected {other}"),
    }
    assert!(matches!(
        ex.submit(get_init_status, ()),
        Err(SubmitError::Broken(_))
    ));
}

per_method!(initializer, failing_initializer, dies_in_initializer);
