//! Error chains print each message once: an error either prints its cause in `Display` or
//! returns it from `source()`, never both (the Rust API guidelines; a reporter walking the
//! chain, like `anyhow`'s `{:#}`, would otherwise print the same text over and over).
#![cfg(not(loom))]

use concurrent_futures_core::{
    BrokenExecutor, BrokenKind, CancelledError, Future, FutureError, InvalidStateError, MapError,
    PayloadError, PayloadStage, SubmitError, TaskError, TimeoutError,
};
use std::error::Error;
use std::fmt;

/// A custom task error with a cause of its own, as a hand-written executor might set.
#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner;

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not fetch the page")
    }
}
impl Error for Outer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}
impl Error for Inner {}

/// The messages a reporter prints, walking `source()` from `error`.
fn chain(error: &dyn Error) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(e) = next {
        messages.push(e.to_string());
        next = e.source();
    }
    messages
}

fn assert_each_message_once(error: &dyn Error) {
    let messages = chain(error);
    for pair in messages.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} prints its source {:?} too (chain: {messages:?})",
            pair[0],
            pair[1]
        );
    }
}

fn task_errors() -> Vec<TaskError> {
    vec![
        TaskError::panicked("boom"),
        TaskError::remote(
            "boom",
            "panicked at worker.rs:1:5\nstack backtrace:\n   0: worker::boom\n   1: main",
        ),
        TaskError::Broken(BrokenExecutor::new(BrokenKind::ProcessPool, "worker died")),
        TaskError::Payload(PayloadError::new(PayloadStage::DecodeResult, "bad bytes")),
        TaskError::custom(Outer(Inner)),
    ]
}

#[test]
fn every_error_prints_each_message_of_its_chain_once() {
    let broken = BrokenExecutor::new(BrokenKind::ThreadPool, "initializer failed");
    let mut errors: Vec<Box<dyn Error>> = vec![
        Box::new(SubmitError::Broken(broken.clone())),
        Box::new(SubmitError::Shutdown),
        Box::new(MapError::Submit(SubmitError::Broken(broken))),
    ];
    for e in task_errors() {
        errors.push(Box::new(e.clone()));
        errors.push(Box::new(FutureError::Failed(e.clone())));
        errors.push(Box::new(MapError::Future(FutureError::Failed(e))));
    }
    for error in &errors {
        assert_each_message_once(&**error);
    }
}

/// Transparent wrappers keep the chain below them: the custom error's own cause is still
/// reachable through `FutureError` and `MapError`.
#[test]
fn a_custom_errors_cause_stays_reachable_through_the_wrappers() {
    let e = MapError::Future(FutureError::Failed(TaskError::custom(Outer(Inner))));
    assert_eq!(
        chain(&e),
        ["could not fetch the page", "connection refused"],
        "one message per link"
    );
}

fn invalid_state() -> InvalidStateError {
    let f = Future::new();
    f.set_result(1).unwrap();
    f.set_result(2).unwrap_err()
}

/// Every error of core prints one line with `{}`, as Rust errors do (a remote panic's
/// traceback is for `{:#}` and `TaskError::traceback`, not for `Display`).
#[test]
fn every_error_displays_on_one_line() {
    let mut errors: Vec<Box<dyn Error>> = vec![
        Box::new(CancelledError),
        Box::new(TimeoutError::new()),
        Box::new(TimeoutError::unfinished(1, 2)),
        Box::new(invalid_state()),
        Box::new(SubmitError::Shutdown),
        Box::new(SubmitError::InvalidArgument("chunksize must be >= 1.")),
        Box::new(FutureError::Cancelled(CancelledError)),
        Box::new(FutureError::Timeout(TimeoutError::new())),
    ];
    for e in task_errors() {
        errors.push(Box::new(FutureError::Failed(e.clone())));
        errors.push(Box::new(MapError::Future(FutureError::Failed(e.clone()))));
        errors.push(Box::new(e));
    }
    for error in &errors {
        let text = error.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
    }
}

/// The remote traceback is one accessor away, and `{:#}` prints it after the message, through
/// the wrappers too.
#[test]
fn the_alternate_form_adds_the_remote_traceback() {
    let remote = TaskError::remote("boom", "panicked at worker.rs:1:5");
    assert_eq!(remote.traceback(), Some("panicked at worker.rs:1:5"));
    let wrapped = MapError::Future(FutureError::Failed(remote));
    assert_eq!(wrapped.to_string(), "task failed in a worker process: boom");
    assert_eq!(
        format!("{wrapped:#}"),
        "task failed in a worker process: boom\n\nRemote traceback:\npanicked at worker.rs:1:5"
    );
}
