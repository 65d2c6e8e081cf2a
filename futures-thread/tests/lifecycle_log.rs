//! The pool's lifecycle — a worker thread started, exited, the pool broken — is logged at debug
//! level under the `concurrent_futures` target, so `RUST_LOG=concurrent_futures=debug` shows it.
#![cfg(not(loom))]

use concurrent_futures_testkit::log_capture::{self, Record};
use concurrent_futures_testkit::watchdog;
use concurrent_futures_thread::ThreadPoolExecutor;
use log::Level;

fn logged(text: &str, level: Level) {
    let records: Vec<Record> = log_capture::records_containing(text);
    assert!(
        records
            .iter()
            .any(|r| r.level == level && r.target == "concurrent_futures"),
        "no {level} record containing {text:?}: {records:?}"
    );
}

#[test]
fn worker_threads_starting_and_exiting_are_logged_at_debug_level() {
    log_capture::install();
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .thread_name_prefix("lifecycle-log")
            .build()
            .unwrap();
        pool.spawn(|| ()).unwrap().result(None).unwrap();
        pool.shutdown(true, false);
        logged("worker thread lifecycle-log_0 started", Level::Debug);
        logged("worker thread lifecycle-log_0 exited", Level::Debug);
    });
}

#[test]
fn a_broken_pool_is_logged_at_debug_level() {
    log_capture::install();
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .try_initializer(|| Err("no lifecycle database"))
            .build()
            .unwrap();
        assert!(pool.spawn(|| ()).unwrap().result(None).is_err());
        logged("no lifecycle database", Level::Debug);
    });
}
