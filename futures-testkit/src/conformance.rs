//! The generic executor suite: CPython's `ExecutorTest` (`executor.py`, spec §2.1) as
//! functions over the [`Executor`] trait, so every engine runs the same cases.
//!
//! An engine's test file instantiates it with [`executor_tests!`](crate::executor_tests), giving
//! one `#[test]` per Python test, named after it. Cases that only exist in Python:
//! `test_map_buffersize_type_validation` (the type system rules out `"foo"` and `2.0`) and
//! `test_max_workers_negative` (a constructor, not a trait method: each engine tests its own
//! builder). `test_swallows_falsey_exceptions` keeps its intent: an error is never dropped, even
//! one whose message is empty.

use crate::fixtures::{add, divmod, mul, pow, stringify};
use crate::{GateKey, ProcessGate};
use concurrent_futures_core::{
    Executor, FutureError, MapError, MapOptions, SubmitError, TaskError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// `test_submit`.
pub fn submit<E: Executor>(ex: &E) {
    assert_eq!(ex.submit(pow, (2, 8)).unwrap().result(None).unwrap(), 256);
}

/// `test_submit_keyword`: arguments reach the function (several as a tuple; keywords are
/// Python-only).
pub fn submit_keyword<E: Executor>(ex: &E) {
    assert_eq!(ex.submit(mul, (2, 8)).unwrap().result(None).unwrap(), 16);
}

/// `test_map`, with and without `chunksize=3`.
pub fn map<E: Executor>(ex: &E) {
    let inputs = || (0..10).map(|i| (i, i as u32));
    let expected: Vec<i64> = inputs().map(pow).collect();
    let got: Vec<i64> = ex.map(pow, inputs()).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, expected);
    let chunked = ex
        .map_with(pow, inputs(), MapOptions::new().chunksize(3))
        .unwrap();
    assert_eq!(chunked.map(Result::unwrap).collect::<Vec<_>>(), expected);
}

/// `test_map_exception`: `(0, 1)`, `(0, 1)`, then the division by zero, then nothing.
pub fn map_exception<E: Executor>(ex: &E) {
    let mut it = ex.map(divmod, [(1, 2), (1, 3), (1, 0), (1, 5)]).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), (0, 1));
    assert_eq!(it.next().unwrap().unwrap(), (0, 1));
    match it.next().unwrap() {
        Err(MapError::Future(FutureError::Failed(e))) => {
            assert!(e.to_string().contains("divide by zero"), "{e}")
        }
        other => panic!("expected the ZeroDivisionError twin, got {other:?}"),
    }
    assert!(it.next().is_none());
}

/// `test_map_timeout`: the third task blocks; the map's deadline passes while waiting for it.
/// The gates work across processes, so the suite runs on process pools too.
pub fn map_timeout<E: Executor>(ex: &E) {
    let (open, closed) = (ProcessGate::new(), ProcessGate::new());
    open.open();
    let it = ex
        .map_with(
            pass_gate,
            [open.key(), open.key(), closed.key()],
            MapOptions::new().timeout(Duration::from_millis(200)),
        )
        .unwrap();
    let mut results = Vec::new();
    let mut timed_out = false;
    for item in it {
        match item {
            Ok(v) => results.push(v),
            Err(MapError::Future(FutureError::Timeout(_))) => timed_out = true,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(timed_out);
    assert_eq!(results, [open.key(), open.key()]);
    closed.open();
}

fn pass_gate(key: GateKey) -> GateKey {
    key.wait();
    key
}

/// `test_map_buffersize_value_validation`.
pub fn map_buffersize_value_validation<E: Executor>(ex: &E) {
    let err = ex
        .map_with(stringify, 0..4, MapOptions::new().buffersize(0))
        .unwrap_err();
    assert_eq!(
        err,
        SubmitError::InvalidArgument("buffersize must be None or > 0")
    );
}

/// `test_map_buffersize`.
pub fn map_buffersize<E: Executor>(ex: &E) {
    for b in [1, 2, 4, 8] {
        let it = ex
            .map_with(stringify, 0..4, MapOptions::new().buffersize(b))
            .unwrap();
        assert_eq!(
            it.map(Result::unwrap).collect::<Vec<_>>(),
            ["0", "1", "2", "3"]
        );
    }
}

/// `test_map_buffersize_on_multiple_iterables`.
pub fn map_buffersize_on_multiple_iterables<E: Executor>(ex: &E) {
    for b in [1, 2, 4, 8] {
        let it = ex
            .map_with(add, (0..4).zip(0..4), MapOptions::new().buffersize(b))
            .unwrap();
        assert_eq!(it.map(Result::unwrap).collect::<Vec<_>>(), [0, 2, 4, 6]);
    }
}

/// `test_map_buffersize_on_infinite_iterable`.
pub fn map_buffersize_on_infinite_iterable<E: Executor>(ex: &E) {
    let mut it = ex
        .map_with(stringify, 0.., MapOptions::new().buffersize(2))
        .unwrap();
    for expected in ["0", "1", "2"] {
        assert_eq!(it.next().unwrap().unwrap(), expected);
    }
}

/// `test_map_buffersize_on_multiple_infinite_iterables`.
pub fn map_buffersize_on_multiple_infinite_iterables<E: Executor>(ex: &E) {
    let mut it = ex
        .map_with(add, (0..).zip(0..), MapOptions::new().buffersize(2))
        .unwrap();
    for expected in [0, 2, 4] {
        assert_eq!(it.next().unwrap().unwrap(), expected);
    }
}

/// `test_map_buffersize_on_empty_iterable`.
pub fn map_buffersize_on_empty_iterable<E: Executor>(ex: &E) {
    let mut it = ex
        .map_with(stringify, Vec::new(), MapOptions::new().buffersize(2))
        .unwrap();
    assert!(it.next().is_none());
}

/// `test_map_buffersize_without_iterable`: no input at all gives no output.
pub fn map_buffersize_without_iterable<E: Executor>(ex: &E) {
    let mut it = ex
        .map_with(
            stringify,
            std::iter::empty(),
            MapOptions::new().buffersize(2),
        )
        .unwrap();
    assert!(it.next().is_none());
}

/// `test_map_buffersize_when_buffer_is_full`: never iterated, only `buffersize` inputs pulled.
pub fn map_buffersize_when_buffer_is_full<E: Executor>(ex: &E) {
    let mut ints = 0..4;
    let it = ex
        .map_with(stringify, ints.by_ref(), MapOptions::new().buffersize(2))
        .unwrap();
    drop(it);
    assert_eq!(ints.next(), Some(2));
}

/// `test_shutdown_race_issue12456`: more tasks than workers, then shutdown, must not hang.
pub fn shutdown_race_issue12456<E: Executor>(ex: &E, worker_count: usize) {
    let it = ex.map(stringify, vec![2; worker_count + 1]).unwrap();
    drop(it);
    ex.shutdown(true, false);
}

/// Counts live [`Tracked`] values; a test checks it returns to where it started.
/// How many [`Tracked`] values of each number are alive in this process. Tests in one binary
/// run side by side (one per engine or start method), so each draws its own numbers from
/// [`tracked_numbers`] and counts only those.
static LIVE_TRACKED: Mutex<BTreeMap<u64, usize>> = Mutex::new(BTreeMap::new());
/// Notified whenever a [`Tracked`] is dropped, so a test can wait for a count without sleeping.
static TRACKED_DROPPED: Condvar = Condvar::new();
static NEXT_TRACKED: AtomicU64 = AtomicU64::new(0);
/// The process whose [`Tracked`] values are counted: the test's own, set when a test first
/// draws numbers. A worker forked from it inherits [`LIVE_TRACKED`] as it was at the fork,
/// its lock perhaps held by a thread that does not exist in the worker (tests run side by
/// side): a task that made a `Tracked` there waited for that lock for good (seen in CI, the
/// fork-mode `free_reference`). So no other process counts: its copies are not the test's.
static COUNTING_PROCESS: OnceLock<u32> = OnceLock::new();

/// How long a test waits for an executor to let go of what it no longer needs (a handle a
/// worker drops just after completing a future).
const RELEASE_LIMIT: Duration = Duration::from_secs(10);

fn live_tracked() -> MutexGuard<'static, BTreeMap<u64, usize>> {
    LIVE_TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this process counts its [`Tracked`] values (see [`COUNTING_PROCESS`]). Never
/// blocks: a worker forked while the test process set it finds it unset.
fn counting_here() -> bool {
    COUNTING_PROCESS.get() == Some(&std::process::id())
}

/// `n` numbers no other test uses.
fn tracked_numbers(n: u64) -> Range<u64> {
    COUNTING_PROCESS.get_or_init(std::process::id);
    let start = NEXT_TRACKED.fetch_add(n, Ordering::SeqCst);
    start..start + n
}

/// How many tracked values numbered in `numbers` are alive.
fn alive(live: &BTreeMap<u64, usize>, numbers: &Range<u64>) -> usize {
    live.range(numbers.clone()).map(|(_, n)| n).sum()
}

/// Waits (up to [`RELEASE_LIMIT`]) until no tracked value numbered in `numbers` is alive;
/// returns how many still are.
fn wait_until_released(numbers: &Range<u64>) -> usize {
    let deadline = Instant::now() + RELEASE_LIMIT;
    let mut live = live_tracked();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if alive(&live, numbers) == 0 || left.is_zero() {
            return alive(&live, numbers);
        }
        live = TRACKED_DROPPED
            .wait_timeout(live, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// A payload that counts how many copies of it are alive (in the test's process: one that is
/// serialized to another process is dropped here and counted again when it comes back; the
/// copies in a worker process are not counted).
#[derive(Debug)]
pub struct Tracked(pub u64);

impl Serialize for Tracked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Tracked::new)
    }
}

impl Tracked {
    /// A new tracked value.
    pub fn new(n: u64) -> Tracked {
        if counting_here() {
            *live_tracked().entry(n).or_default() += 1;
        }
        Tracked(n)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !counting_here() {
            return;
        }
        let mut live = live_tracked();
        if let Some(n) = live.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.0);
            }
        }
        TRACKED_DROPPED.notify_all();
    }
}

/// Runs `f` while this thread holds the lock of the registry that counts live [`Tracked`]
/// values: a test's way to fork a worker at the worst moment, when the worker inherits that
/// lock held by a thread it does not have (workers count no `Tracked` values, so they never
/// wait for it). `f` must not count a `Tracked` value itself (it would wait for its own lock).
pub fn with_tracked_registry_locked<R>(f: impl FnOnce() -> R) -> R {
    let _held = live_tracked();
    f()
}

fn track(n: u64) -> Tracked {
    Tracked::new(n)
}

fn consume(t: Tracked) -> u64 {
    t.0
}

/// `test_no_stale_references`: once a task is done and its caller dropped the future, the
/// executor holds nothing of it — neither the argument nor the result. (Python waits, with a
/// timeout, for its object to be collected; here a tracked value's drop is the event waited
/// for.)
pub fn no_stale_references<E: Executor>(ex: &E) {
    let numbers = tracked_numbers(2);
    let f = ex.submit(consume, Tracked::new(numbers.start)).unwrap();
    assert_eq!(f.result(None).unwrap(), numbers.start);
    assert_eq!(
        wait_until_released(&numbers),
        0,
        "the executor still holds a finished task's argument"
    );
    let f = ex.submit(track, numbers.start + 1).unwrap();
    assert_eq!(f.result_ref(None).unwrap().0, numbers.start + 1);
    drop(f);
    assert_eq!(
        wait_until_released(&numbers),
        0,
        "the executor still holds the result of a task whose future was dropped"
    );
}

/// `test_free_reference`: the `map` iterator keeps no result it has yielded. Checked while
/// the iterator is still alive, after `shutdown(wait)` has released every handle the executor
/// held, so only a copy kept by the iterator can keep a result alive.
pub fn free_reference<E: Executor>(ex: &E) {
    let numbers = tracked_numbers(10);
    let mut results = ex.map(track, numbers.clone()).unwrap();
    for _ in numbers.clone() {
        let value = results.next().unwrap().unwrap();
        drop(value);
    }
    ex.shutdown(true, false);
    assert_eq!(
        wait_until_released(&numbers),
        0,
        "yielded results are still alive while the map iterator lives"
    );
    assert!(results.next().is_none());
}

fn panic_with_empty_message(_: ()) -> u8 {
    std::panic::panic_any(String::new())
}

/// `test_swallows_falsey_exceptions`, in Rust terms: an error is never dropped, even one whose
/// message is empty.
pub fn swallows_falsey_exceptions<E: Executor>(ex: &E) {
    let err = ex
        .submit(panic_with_empty_message, ())
        .unwrap()
        .result(None)
        .unwrap_err();
    match err {
        FutureError::Failed(TaskError::Panicked { message })
        | FutureError::Failed(TaskError::Remote { message, .. }) => assert!(message.is_empty()),
        other => panic!("expected the panic, got {other:?}"),
    }
}

/// One `#[test]` per case of the generic executor suite, for the executor `$make` builds
/// (with `$workers` workers, Python's `worker_count`). Each runs under the testkit's watchdog.
#[macro_export]
macro_rules! executor_tests {
    ($make:expr, $workers:expr) => {
        $crate::executor_tests!(@cases $make, $workers;
            submit, submit_keyword, map, map_exception, map_timeout,
            map_buffersize_value_validation, map_buffersize, map_buffersize_on_multiple_iterables,
            map_buffersize_on_infinite_iterable, map_buffersize_on_multiple_infinite_iterables,
            map_buffersize_on_empty_iterable, map_buffersize_without_iterable,
            map_buffersize_when_buffer_is_full, swallows_falsey_exceptions);

        #[test]
        fn shutdown_race_issue12456() {
            $crate::watchdog(|| {
                let ex = $make;
                $crate::conformance::shutdown_race_issue12456(&ex, $workers);
            });
        }

        #[test]
        fn no_stale_references() {
            $crate::watchdog(|| {
                let ex = $make;
                $crate::conformance::no_stale_references(&ex);
            });
        }

        #[test]
        fn free_reference() {
            $crate::watchdog(|| {
                let ex = $make;
                $crate::conformance::free_reference(&ex);
            });
        }
    };
    (@cases $make:expr, $workers:expr; $($case:ident),*) => {$(
        #[test]
        fn $case() {
            $crate::watchdog(|| {
                let ex = $make;
                $crate::conformance::$case(&ex);
            });
        }
    )*};
}
