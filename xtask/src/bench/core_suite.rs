//! Suite `core`: the Future itself, `as_completed` and `wait`, against CPython's.

use super::report::{Row, Target};
use super::{median, python};
use concurrent_futures_core::Future;
use concurrent_futures_wait::{ReturnWhen, as_completed, wait};
use std::hint::black_box;
use std::time::Instant;

const CREATE: &str = "create + set_result + result, one thread";
const AS_COMPLETED: &str = "as_completed over 10,000 finished futures";
const WAIT: &str = "wait(ALL_COMPLETED) over 10,000 finished";

/// The same three workloads in CPython. argv: futures per create run, futures per set, repeats.
const PYTHON: &str = r#"
import sys, time, statistics
from concurrent.futures import Future, as_completed, wait, ALL_COMPLETED
n_create, n_set, repeats = (int(a) for a in sys.argv[1:4])
def create():
    t = time.perf_counter()
    for i in range(n_create):
        f = Future(); f.set_result(i); f.result()
    return (time.perf_counter() - t) / n_create * 1e9
def finished():
    fs = [Future() for _ in range(n_set)]
    for f in fs: f.set_result(1)
    return fs
def drain():
    fs = finished(); t = time.perf_counter()
    for f in as_completed(fs): pass
    return (time.perf_counter() - t) / n_set * 1e6
def wait_all():
    fs = finished(); t = time.perf_counter()
    wait(fs, return_when=ALL_COMPLETED)
    return (time.perf_counter() - t) / n_set * 1e6
for name, fn in (("create", create), ("as_completed", drain), ("wait", wait_all)):
    print(name, statistics.median(fn() for _ in range(repeats)), sep="\t")
"#;

/// The issue's targets for this suite.
pub(crate) const TARGETS: &[Target] = &[
    Target::AtMost(AS_COMPLETED, 0.1),
    Target::AtMost(WAIT, 0.05),
    Target::BetterThan {
        workload: CREATE,
        peers: &["CPython"],
        min: 1.0,
    },
];

pub(crate) fn run(quick: bool) -> Result<Vec<Row>, String> {
    let (n_create, n_set, repeats) = if quick {
        (20_000, 10_000, 3)
    } else {
        (1_000_000, 10_000, 21)
    };
    let mut rows = vec![
        Row::ours(
            CREATE,
            median(&mut (0..repeats).map(|_| create(n_create)).collect::<Vec<_>>()),
            "ns/future",
            n_create,
        ),
        Row::ours(
            AS_COMPLETED,
            median(
                &mut (0..repeats)
                    .map(|_| drain_as_completed(n_set))
                    .collect::<Vec<_>>(),
            ),
            "us/future",
            n_set,
        ),
        Row::ours(
            WAIT,
            median(&mut (0..repeats).map(|_| wait_all(n_set)).collect::<Vec<_>>()),
            "us/future",
            n_set,
        ),
    ];
    match python::version() {
        Err(why) => println!("peer CPython skipped: {why}"),
        Ok(version) => {
            let py_create = if quick { 5_000 } else { 200_000 };
            let py_repeats = if quick { 2 } else { 7 };
            let args = [py_create, n_set, py_repeats].map(|n| n.to_string());
            for (name, value) in python::run(PYTHON, &args)? {
                let (workload, unit, n) = match name.as_str() {
                    "create" => (CREATE, "ns/future", py_create),
                    "as_completed" => (AS_COMPLETED, "us/future", n_set),
                    "wait" => (WAIT, "us/future", n_set),
                    other => return Err(format!("unknown CPython workload {other}")),
                };
                rows.push(Row::peer(workload, version.clone(), value, unit, n));
            }
        }
    }
    super::group_by_workload(&mut rows);
    Ok(rows)
}

/// Nanoseconds per future to create, finish and read one.
fn create(n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let f = Future::new();
        f.set_result(black_box(i)).unwrap();
        black_box(f.result(None).unwrap());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn finished(n: usize) -> Vec<Future<usize>> {
    (0..n)
        .map(|i| {
            let f = Future::new();
            f.set_result(i).unwrap();
            f
        })
        .collect()
}

/// Microseconds per future to drain `as_completed` over finished futures.
fn drain_as_completed(n: usize) -> f64 {
    let fs = finished(n);
    let start = Instant::now();
    for f in as_completed(&fs, None) {
        black_box(f.unwrap());
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Microseconds per future for `wait(ALL_COMPLETED)` over finished futures.
fn wait_all(n: usize) -> f64 {
    let fs = finished(n);
    let start = Instant::now();
    let r = wait(&fs, None, ReturnWhen::AllCompleted);
    let elapsed = start.elapsed();
    assert_eq!(r.done.len(), n);
    black_box(r);
    elapsed.as_secs_f64() * 1e6 / n as f64
}
