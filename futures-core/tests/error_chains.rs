//! Error chains print each message once: an error either prints its cause in `Display` or
//! returns it from `source()`, never both (the Rust API guidelines; a reporter walking the
//! chain, like `anyhow`'s `{:#}`, would otherwise print the same text over and over).
#![cfg(not(loom))]

use concurrent_futures_core::{
    BrokenExecutor, BrokenKind, FutureError, MapError, PayloadError, PayloadStage, SubmitError,
    TaskError,
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
        TaskError::remote("boom", "at worker.rs:1"),
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
