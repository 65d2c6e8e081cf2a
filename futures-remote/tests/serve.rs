//! The worker's serve loop over an in-memory link: what it answers, and why it ends.
//!
//! Its own test binary, since `serve` makes the process a worker (a panic anywhere is then
//! recorded for the pool instead of printed).

use concurrent_futures_remote::auth::{CallKey, SealedSite, Version};
use concurrent_futures_remote::call::CallSite;
use concurrent_futures_remote::wire::{self, Failure, FromWorker, Init};
use concurrent_futures_remote::{RefusalReason, ServeEnd, WorkerLink, serve};
use std::collections::VecDeque;

/// The pool's side: messages to the worker queued up front, the worker's replies collected.
struct Memory {
    to_worker: VecDeque<Vec<u8>>,
    from_worker: Vec<Vec<u8>>,
    /// Whether the pool is still there to take a reply.
    open: bool,
}

impl Memory {
    fn new(messages: impl IntoIterator<Item = Vec<u8>>) -> Memory {
        Memory {
            to_worker: messages.into_iter().collect(),
            from_worker: Vec::new(),
            open: true,
        }
    }

    /// Each reply, decoded: a task's id and outcome (`Ok` with the decoded `u32`).
    fn reports(&self) -> Vec<(u64, Result<u32, Failure>)> {
        self.from_worker
            .iter()
            .map(|message| match wire::decode_from_worker(message) {
                Some(FromWorker::Done { id, outcome }) => {
                    (id, outcome.map(|b| postcard::from_bytes(b).unwrap()))
                }
                other => panic!("expected a task report, got {other:?}"),
            })
            .collect()
    }
}

impl WorkerLink for Memory {
    fn recv(&mut self) -> Option<Vec<u8>> {
        self.to_worker.pop_front()
    }

    fn send(&mut self, message: Vec<u8>) -> bool {
        if self.open {
            self.from_worker.push(message);
        }
        self.open
    }
}

fn triple(x: u32) -> u32 {
    3 * x
}

fn settings(key: &CallKey, max_tasks: Option<u64>) -> Vec<u8> {
    wire::encode_init(&Init {
        version: Version::ours(),
        key: key.clone(),
        initializer: None,
        max_tasks,
    })
}

fn refusal(report: &(u64, Result<u32, Failure>)) -> (u64, RefusalReason) {
    match report {
        (id, Err(Failure::Refused { reason, .. })) => (*id, *reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_sealed_task_is_answered_and_an_unsealed_one_refused() {
    let key = CallKey::generate().unwrap();
    // The site of `triple` with a tag of zeros: what a message no pool sealed carries.
    let unsealed: SealedSite =
        postcard::from_bytes(&postcard::to_allocvec(&(CallSite::of(triple), [0u8; 16])).unwrap())
            .unwrap();
    let foreign = CallKey::generate().unwrap().seal(CallSite::of(triple));
    let mut link = Memory::new([
        wire::encode_task(1, key.seal(CallSite::of(triple)), &5u32).unwrap(),
        settings(&key, None),
        wire::encode_task(2, key.seal(CallSite::of(triple)), &5u32).unwrap(),
        wire::encode_task(3, unsealed, &5u32).unwrap(),
        wire::encode_task(4, foreign, &5u32).unwrap(),
        wire::encode_task(5, key.seal(CallSite::of(triple)), &7u32).unwrap(),
        wire::encode_exit(),
        wire::encode_task(6, key.seal(CallSite::of(triple)), &7u32).unwrap(),
    ]);
    assert_eq!(serve(&mut link), ServeEnd::Exit);
    let reports = link.reports();
    assert_eq!(reports.len(), 5, "{reports:?}");
    assert_eq!(refusal(&reports[0]), (1, RefusalReason::BeforeSettings));
    assert!(matches!(reports[1], (2, Ok(15))), "{:?}", reports[1]);
    assert_eq!(refusal(&reports[2]), (3, RefusalReason::Unauthenticated));
    assert_eq!(refusal(&reports[3]), (4, RefusalReason::Unauthenticated));
    assert!(matches!(reports[4], (5, Ok(21))), "{:?}", reports[4]);
    assert_eq!(ServeEnd::Exit.exit_code(), 0);
}

fn panics(_: u32) -> u32 {
    panic!("no such number")
}

#[test]
fn a_panic_is_the_tasks_failure_with_where_it_happened() {
    let key = CallKey::generate().unwrap();
    let mut link = Memory::new([
        settings(&key, Some(2)),
        wire::encode_task(1, key.seal(CallSite::of(panics)), &1u32).unwrap(),
        wire::encode_task(2, key.seal(CallSite::of(triple)), &1u32).unwrap(),
        wire::encode_task(3, key.seal(CallSite::of(triple)), &1u32).unwrap(),
    ]);
    assert_eq!(
        serve(&mut link),
        ServeEnd::MaxTasks,
        "two tasks, then leave"
    );
    match &link.reports()[..] {
        [
            (1, Err(Failure::Panicked { message, traceback })),
            (2, Ok(3)),
        ] => {
            assert_eq!(message, "no such number");
            assert!(traceback.starts_with("panicked at "), "{traceback}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn settings_of_another_version_end_the_loop_with_its_exit_code() {
    let key = CallKey::generate().unwrap();
    let mut other = Version::ours();
    other.protocol += 1;
    let init = Init {
        version: other,
        key: key.clone(),
        initializer: None,
        max_tasks: None,
    };
    let mut link = Memory::new([wire::encode_init(&init), settings(&key, None)]);
    let end = serve(&mut link);
    assert_eq!(
        (end, end.exit_code()),
        (
            ServeEnd::VersionMismatch,
            concurrent_futures_remote::VERSION_MISMATCH
        )
    );
    match wire::decode_from_worker(&link.from_worker[0]) {
        Some(FromWorker::InitFailed { message, .. }) => {
            assert!(message.contains("another protocol or build"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_loop_ends_when_the_pool_closes_or_is_gone() {
    let key = CallKey::generate().unwrap();
    assert_eq!(
        serve(&mut Memory::new([settings(&key, None)])),
        ServeEnd::PoolClosed
    );
    let mut gone = Memory::new([
        settings(&key, None),
        wire::encode_task(1, key.seal(CallSite::of(triple)), &1u32).unwrap(),
        wire::encode_task(2, key.seal(CallSite::of(triple)), &1u32).unwrap(),
    ]);
    gone.open = false;
    assert_eq!(serve(&mut gone), ServeEnd::PoolGone);
    assert_eq!(
        gone.to_worker.len(),
        1,
        "it stopped at the first report it could not send"
    );
}
