//! The twin of CPython's `Lib/test/test_concurrent_futures/test_future.py` (`FutureTests`, 3.14):
//! one Rust test per Python test, named after it without the `test_` prefix.
//!
//! All 20 tests of 3.14 are portable. Adapted: `test_done_callback_raises` and
//! `test_done_callback_raises_already_succeeded` read the `log` records (Python reads stderr);
//! `test_exception_with_success` uses the public `set_exception` (Python pokes `_state`);
//! `test_result_with_cancel` cancels once `result()` is seen blocked (a `ThreadProbe`), not
//! after a sleep.
//! Not ported: `test_class_str` and `test_get_snapshot` exist only on 3.15/main, not in 3.14.
#![cfg(not(loom))]

use concurrent_futures_core::{Future, FutureError, State, TaskError};
use concurrent_futures_testkit::fixtures::*;
use concurrent_futures_testkit::{ThreadProbe, log_capture, watchdog};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A slot a callback writes into.
fn slot<T>() -> Arc<Mutex<Option<T>>> {
    Arc::new(Mutex::new(None))
}

#[test]
fn done_callback_with_result() {
    let seen = slot();
    let f = Future::new();
    let s = seen.clone();
    f.add_done_callback(move |f| *s.lock().unwrap() = Some(f.result(None).unwrap()));
    f.set_result(5).unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(5));
}

#[test]
fn done_callback_with_exception() {
    let seen = slot();
    let f = Future::<i32>::new();
    let s = seen.clone();
    f.add_done_callback(move |f| *s.lock().unwrap() = f.exception(None).unwrap());
    f.set_exception(TaskError::panicked("test")).unwrap();
    match seen.lock().unwrap().take() {
        Some(TaskError::Panicked { message }) => assert_eq!(&*message, "test"),
        other => panic!("callback saw {other:?}"),
    }
}

#[test]
fn done_callback_with_cancel() {
    let seen = slot();
    let f = Future::<i32>::new();
    let s = seen.clone();
    f.add_done_callback(move |f| *s.lock().unwrap() = Some(f.cancelled()));
    assert!(f.cancel());
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

#[test]
fn done_callback_raises() {
    log_capture::install();
    let raising_was_called = slot();
    let fn_was_called = slot();
    let f = Future::new();
    let r = raising_was_called.clone();
    f.add_done_callback(move |_| {
        *r.lock().unwrap() = Some(true);
        panic!("doh! done_callback_raises");
    });
    let c = fn_was_called.clone();
    f.add_done_callback(move |_| *c.lock().unwrap() = Some(true));
    f.set_result(5).unwrap();
    assert_eq!(*raising_was_called.lock().unwrap(), Some(true));
    assert_eq!(*fn_was_called.lock().unwrap(), Some(true));
    let logged = log_capture::records_containing("doh! done_callback_raises");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].target, "concurrent_futures");
    assert_eq!(logged[0].level, log::Level::Error);
    assert!(
        logged[0]
            .message
            .contains("exception calling callback for <Future at 0x")
    );
}

#[test]
fn done_callback_already_successful() {
    let seen = slot();
    let f = Future::new();
    f.set_result(5).unwrap();
    let s = seen.clone();
    f.add_done_callback(move |f| *s.lock().unwrap() = Some(f.result(None).unwrap()));
    assert_eq!(*seen.lock().unwrap(), Some(5));
}

#[test]
fn done_callback_already_failed() {
    let seen = slot();
    let f = Future::<i32>::new();
    f.set_exception(TaskError::panicked("test")).unwrap();
    let s = seen.clone();
    f.add_done_callback(move |f| *s.lock().unwrap() = f.exception(None).unwrap());
    assert!(
        matches!(&*seen.lock().unwrap(), Some(TaskError::Panicked { message }) if &**message == "test")
    );
}

#[test]
fn done_callback_already_cancelled() {
    let seen = slot();
    let f = Future::<i32>::new();
    assert!(f.cancel());
    let s = seen.clone();
    f.add_done_callback(move |f| *s.lock().unwrap() = Some(f.cancelled()));
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

#[test]
fn done_callback_raises_already_succeeded() {
    log_capture::install();
    let f = Future::new();
    f.set_result(5).unwrap();
    f.add_done_callback(|_| panic!("doh! raises_already_succeeded"));
    let logged = log_capture::records_containing("doh! raises_already_succeeded");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].message.contains("exception calling callback for"));
    assert!(logged[0].message.contains("state=finished returned i32"));
}

/// Python's regexes, checked without a regex engine: a prefix, a hex address, a suffix.
fn assert_repr(f: &impl std::fmt::Debug, suffix: &str) {
    let repr = format!("{f:?}");
    let rest = repr
        .strip_prefix("<Future at 0x")
        .unwrap_or_else(|| panic!("bad repr {repr}"));
    let hex_len = rest.chars().take_while(char::is_ascii_hexdigit).count();
    assert!(hex_len > 0, "no address in {repr}");
    assert_eq!(&rest[hex_len..], suffix, "repr was {repr}");
}

#[test]
fn repr() {
    assert_repr(&pending_future(), " state=pending>");
    assert_repr(&running_future(), " state=running>");
    assert_repr(&cancelled_future(), " state=cancelled>");
    assert_repr(&cancelled_and_notified_future(), " state=cancelled>");
    assert_repr(&exception_future(), " state=finished raised Panicked>");
    assert_repr(&successful_future(), " state=finished returned i32>");
}

#[test]
fn cancel() {
    let f1 = pending_future();
    let f2 = running_future();
    let f3 = cancelled_future();
    let f4 = cancelled_and_notified_future();
    let f5 = exception_future();
    let f6 = successful_future();

    assert!(f1.cancel());
    assert_eq!(f1.state(), State::Cancelled);
    assert!(!f2.cancel());
    assert_eq!(f2.state(), State::Running);
    assert!(f3.cancel());
    assert_eq!(f3.state(), State::Cancelled);
    assert!(f4.cancel());
    assert_eq!(f4.state(), State::CancelledAndNotified);
    assert!(!f5.cancel());
    assert_eq!(f5.state(), State::Finished);
    assert!(!f6.cancel());
    assert_eq!(f6.state(), State::Finished);
}

#[test]
fn cancelled() {
    assert!(!pending_future().cancelled());
    assert!(!running_future().cancelled());
    assert!(cancelled_future().cancelled());
    assert!(cancelled_and_notified_future().cancelled());
    assert!(!exception_future().cancelled());
    assert!(!successful_future().cancelled());
}

#[test]
fn done() {
    assert!(!pending_future().done());
    assert!(!running_future().done());
    assert!(cancelled_future().done());
    assert!(cancelled_and_notified_future().done());
    assert!(exception_future().done());
    assert!(successful_future().done());
}

#[test]
fn running() {
    assert!(!pending_future().running());
    assert!(running_future().running());
    assert!(!cancelled_future().running());
    assert!(!cancelled_and_notified_future().running());
    assert!(!exception_future().running());
    assert!(!successful_future().running());
}

#[test]
fn result_with_timeout() {
    assert!(matches!(
        pending_future().result(Duration::ZERO),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        running_future().result(Duration::ZERO),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        cancelled_future().result(Duration::ZERO),
        Err(FutureError::Cancelled(_))
    ));
    assert!(matches!(
        cancelled_and_notified_future().result(Duration::ZERO),
        Err(FutureError::Cancelled(_))
    ));
    assert!(matches!(
        exception_future().result(Duration::ZERO),
        Err(FutureError::Failed(TaskError::Panicked { .. }))
    ));
    assert_eq!(successful_future().result(Duration::ZERO).unwrap(), 42);
}

#[test]
fn result_with_success() {
    watchdog(|| {
        let f = pending_future();
        let setter = f.clone();
        let t = thread::spawn(move || setter.set_result(42).unwrap());
        assert_eq!(f.result(Duration::from_secs(30)).unwrap(), 42);
        t.join().unwrap();
    });
}

/// The canceller acts only once `result()` is really blocked (its thread asleep in the kernel),
/// so the cancellation must wake it.
#[test]
fn result_with_cancel() {
    watchdog(|| {
        let f = pending_future();
        let waiting = ThreadProbe::current();
        let canceller = f.clone();
        let t = thread::spawn(move || {
            waiting.wait_until_sleeping();
            canceller.cancel()
        });
        // No timeout: a timed wait would see the cancellation when it times out anyway; only
        // the wake-up can end this one (the watchdog fails the test otherwise).
        assert!(matches!(f.result(None), Err(FutureError::Cancelled(_))));
        assert!(t.join().unwrap());
    });
}

#[test]
fn exception_with_timeout() {
    assert!(matches!(
        pending_future().exception(Duration::ZERO),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        running_future().exception(Duration::ZERO),
        Err(FutureError::Timeout(_))
    ));
    assert!(matches!(
        cancelled_future().exception(Duration::ZERO),
        Err(FutureError::Cancelled(_))
    ));
    assert!(matches!(
        cancelled_and_notified_future().exception(Duration::ZERO),
        Err(FutureError::Cancelled(_))
    ));
    assert!(matches!(
        exception_future().exception(Duration::ZERO),
        Ok(Some(TaskError::Panicked { .. }))
    ));
    assert!(matches!(
        successful_future().exception(Duration::ZERO),
        Ok(None)
    ));
}

#[test]
fn exception_with_success() {
    watchdog(|| {
        let f = pending_future();
        let setter = f.clone();
        let t = thread::spawn(move || {
            setter
                .set_exception(TaskError::panicked("OSError"))
                .unwrap()
        });
        assert!(matches!(
            f.exception(Duration::from_secs(30)),
            Ok(Some(TaskError::Panicked { .. }))
        ));
        t.join().unwrap();
    });
}

#[test]
fn multiple_set_result() {
    let f = pending_future();
    f.set_result(1).unwrap();
    let err = f.set_result(2).unwrap_err();
    assert_eq!(err.state(), State::Finished);
    let msg = err.to_string();
    assert!(msg.starts_with("FINISHED: <Future at 0x"), "{msg}");
    assert!(msg.ends_with(" state=finished returned i32>"), "{msg}");
    assert!(f.done());
    assert_eq!(f.result(None).unwrap(), 1);
}

#[test]
fn multiple_set_exception() {
    let f = pending_future();
    f.set_exception(TaskError::panicked("ValueError")).unwrap();
    let err = f.set_exception(TaskError::panicked("second")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("FINISHED: <Future at 0x"), "{msg}");
    assert!(msg.ends_with(" state=finished raised Panicked>"), "{msg}");
    assert!(f.done());
    assert!(
        matches!(f.exception(None), Ok(Some(TaskError::Panicked { message })) if &*message == "ValueError")
    );
}
