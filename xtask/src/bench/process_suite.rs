//! Suite `process`: our `ProcessPoolExecutor` per start method, CPython's per start method,
//! and the raw floor (a one-byte ping-pong over a Unix socket pair between two processes), all
//! with 2 workers, in one run; then the supervision rows (f)–(h) (`process_supervision.rs`),
//! and row (a) (and (b)) on pools with supervision turned on beside the default pool's, to see
//! what supervision costs the hot path.

use super::process_supervision::{self as supervision, SHUTDOWN, SHUTDOWN_TARGET_MS};
use super::report::{Row, Target};
use super::{group_by_workload, median, median_of, python};
use concurrent_futures_core::{Executor, MapOptions};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long a busy worker's death takes to reach its future (the issue asks for under a second).
const DEATH: [&str; 3] = [
    "(e) SIGKILL a busy worker -> its future fails [forkserver]",
    "(e) SIGKILL a busy worker -> its future fails [spawn]",
    "(e) SIGKILL a busy worker -> its future fails [fork]",
];

const METHODS: [StartMethod; 3] = [
    StartMethod::ForkServer,
    StartMethod::Spawn,
    StartMethod::Fork,
];

/// Workload names, one per start method (rows of one workload are compared with each other).
const ROUND_TRIP: [&str; 3] = [
    "(a) one submit -> result() [forkserver]",
    "(a) one submit -> result() [spawn]",
    "(a) one submit -> result() [fork]",
];
const MAP_SMALL: [&str; 3] = [
    "(b) map x*x, 10k ints, chunksize 1 [forkserver]",
    "(b) map x*x, 10k ints, chunksize 1 [spawn]",
    "(b) map x*x, 10k ints, chunksize 1 [fork]",
];
const MAP_CHUNKED: [&str; 3] = [
    "(c) map x*x, 1M ints, chunksize 1000 [forkserver]",
    "(c) map x*x, 1M ints, chunksize 1000 [spawn]",
    "(c) map x*x, 1M ints, chunksize 1000 [fork]",
];
const FIRST_RESULT: [&str; 3] = [
    "(d) pool creation -> first result [forkserver]",
    "(d) pool creation -> first result [spawn]",
    "(d) pool creation -> first result [fork]",
];

const fn targets() -> [Target; 21] {
    let mut t = [Target::AtMost("", 0.0); 21];
    let mut i = 0;
    while i < 3 {
        t[15 + i] = Target::AtMost(DEATH[i], 1000.0);
        t[18 + i] = Target::AtMost(SHUTDOWN[i], SHUTDOWN_TARGET_MS);
        t[5 * i] = Target::BetterThan {
            workload: ROUND_TRIP[i],
            peers: &["raw"],
            min: 0.5,
        };
        t[5 * i + 1] = Target::BetterThan {
            workload: ROUND_TRIP[i],
            peers: &["CPython"],
            min: 4.0,
        };
        t[5 * i + 2] = Target::BetterThan {
            workload: MAP_SMALL[i],
            peers: &["CPython"],
            min: 15.0,
        };
        t[5 * i + 3] = Target::BetterThan {
            workload: MAP_CHUNKED[i],
            peers: &["CPython"],
            min: 10.0,
        };
        t[5 * i + 4] = Target::BetterThan {
            workload: FIRST_RESULT[i],
            peers: &["CPython"],
            min: 10.0,
        };
        i += 1;
    }
    t
}

/// The issue's targets: (a) ≤ 2× the raw floor and ≤ 1/4 of CPython; (b) ≥ 15× CPython;
/// (c) ≥ 10× CPython; (d) ≥ 10× faster than CPython's same start method; a worker's death
/// seen in under a second (e); `shutdown_timeout` with 100 queued one-second tasks back in
/// under 5 s (h).
pub(crate) const TARGETS: &[Target] = &targets();

/// CPython's `ProcessPoolExecutor(2, mp_context=get_context(method))`.
/// argv: method round_trips map_small map_chunked first_result_repeats map_repeats.
const PYTHON: &str = r#"
import sys, time, statistics, multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

def ident(x):
    return x

def square(x):
    return x * x

if __name__ == "__main__":
    method = sys.argv[1]
    nA, nB, nC, nD, reps = (int(a) for a in sys.argv[2:7])
    ctx = mp.get_context(method)
    d = []
    for _ in range(nD):
        t = time.perf_counter()
        ex = ProcessPoolExecutor(2, mp_context=ctx)
        ex.submit(ident, 0).result()
        d.append((time.perf_counter() - t) * 1e3)
        ex.shutdown()
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        for f in [ex.submit(ident, i) for i in range(4)]:
            f.result()
        a = []
        for i in range(nA):
            t = time.perf_counter()
            ex.submit(ident, i).result()
            a.append((time.perf_counter() - t) * 1e6)
        b, c = [], []
        for _ in range(reps):
            t = time.perf_counter()
            list(ex.map(square, range(nB), chunksize=1))
            b.append(nB / (time.perf_counter() - t))
            t = time.perf_counter()
            list(ex.map(square, range(nC), chunksize=1000))
            c.append(nC / (time.perf_counter() - t))
    print("a", statistics.median(a), sep="\t")
    print("b", statistics.median(b), sep="\t")
    print("c", statistics.median(c), sep="\t")
    print("d", statistics.median(d), sep="\t")
"#;

struct Sizes {
    round_trips: usize,
    map_small: usize,
    map_chunked: usize,
    first_results: usize,
    /// Runs of (b) and (c), whose median is reported.
    repeats: usize,
    /// Runs of (f) and (g), whose median is reported.
    stops: usize,
    /// The time limit given to `shutdown_timeout` in (h).
    shutdown_limit: Duration,
}

fn ident(x: u64) -> u64 {
    x
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Never returns.
fn hang(_: ()) -> u8 {
    loop {
        std::thread::park();
    }
}

/// Median time from `SIGKILL` of a worker running a task to that task's future failing.
fn death_detection(method: StartMethod, repeats: usize) -> f64 {
    median_of(repeats, || {
        let ex = pool(method).expect("checked by the caller");
        let f = ex.submit(hang, ()).unwrap();
        let worker = loop {
            // The worker is known once it has connected; its task is running soon after.
            if let Some(&pid) = ex.worker_pids().first()
                && f.running()
            {
                break pid;
            }
            std::thread::yield_now();
        };
        let t = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(worker as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert!(f.result(None).is_err());
        t.elapsed().as_secs_f64() * 1e3
    })
}

pub(crate) fn run(quick: bool) -> Result<Vec<Row>, String> {
    let s = if quick {
        Sizes {
            round_trips: 200,
            map_small: 2_000,
            map_chunked: 100_000,
            first_results: 3,
            repeats: 1,
            stops: 1,
            shutdown_limit: Duration::from_millis(100),
        }
    } else {
        Sizes {
            round_trips: 2_000,
            map_small: 10_000,
            map_chunked: 1_000_000,
            first_results: 11,
            repeats: 5,
            stops: 7,
            shutdown_limit: Duration::from_millis(500),
        }
    };
    let mut rows = Vec::new();
    let floor = raw_floor(s.round_trips * 2)?;
    for (i, method) in METHODS.into_iter().enumerate() {
        rows.extend(ours(i, method, &s)?);
        rows.extend(supervision::rows(i, method, s.stops, s.shutdown_limit)?);
        rows.push(Row::peer(
            ROUND_TRIP[i],
            "raw socket ping-pong",
            floor,
            "us",
            s.round_trips * 2,
        ));
    }
    match python::version() {
        Ok(version) => {
            let py = Sizes {
                round_trips: s.round_trips.min(1_000),
                map_small: s.map_small.min(if quick { 1_000 } else { 10_000 }),
                map_chunked: s.map_chunked,
                first_results: s.first_results.min(5),
                repeats: s.repeats.min(3),
                ..s
            };
            for (i, method) in METHODS.into_iter().enumerate() {
                let args = [
                    py.round_trips,
                    py.map_small,
                    py.map_chunked,
                    py.first_results,
                    py.repeats,
                ]
                .map(|n| n.to_string());
                let mut argv = vec![method.name().to_owned()];
                argv.extend(args);
                let system = format!("{version} {}", method.name());
                for (key, v) in python::run_file("process_bench.py", PYTHON, &argv)? {
                    rows.push(match key.as_str() {
                        "a" => Row::peer(ROUND_TRIP[i], system.clone(), v, "us", py.round_trips),
                        "b" => Row::peer(MAP_SMALL[i], system.clone(), v, "items/s", py.map_small),
                        "c" => {
                            Row::peer(MAP_CHUNKED[i], system.clone(), v, "items/s", py.map_chunked)
                        }
                        "d" => {
                            Row::peer(FIRST_RESULT[i], system.clone(), v, "ms", py.first_results)
                        }
                        _ => continue,
                    });
                }
            }
        }
        Err(why) => println!("peer CPython skipped: {why}"),
    }
    group_by_workload(&mut rows);
    Ok(rows)
}

/// Systems of the rows of (a) and (b) on pools with supervision on (ours too; the ratio says
/// how many times faster the default pool is).
const ISOLATED: &str = "ours, isolate_crashes(true)";
const LIMITED: &str = "ours, task_timeout(1 h)";

fn builder(method: StartMethod) -> concurrent_futures_process::ProcessPoolBuilder {
    ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
}

fn pool(method: StartMethod) -> Result<ProcessPoolExecutor, String> {
    builder(method).build().map_err(|e| e.to_string())
}

fn ours(i: usize, method: StartMethod, s: &Sizes) -> Result<Vec<Row>, String> {
    let d = median_of(s.first_results, || {
        let t = Instant::now();
        let ex = pool(method).expect("checked below");
        ex.submit(ident, 0).unwrap().result(None).unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        drop(ex);
        ms
    });
    // Row (a) on the default pool and, beside it, on a pool with crash isolation on and on one
    // with a pool-wide time limit that never passes: supervision's cost on the hot path. The
    // three pools' round trips are interleaved (rotating which goes first), so that drift of
    // the machine's speed hits all three alike.
    let pools = [
        pool(method)?,
        builder(method)
            .isolate_crashes(true)
            .build()
            .map_err(|e| e.to_string())?,
        builder(method)
            .task_timeout(Duration::from_secs(3600))
            .build()
            .map_err(|e| e.to_string())?,
    ];
    for ex in &pools {
        // Both workers started before anything is measured.
        let warm: Vec<_> = (0..4).map(|i| ex.submit(ident, i).unwrap()).collect();
        for f in &warm {
            f.result(None).unwrap();
        }
    }
    let mut samples: [Vec<f64>; 3] = Default::default();
    for i in 0..s.round_trips {
        for k in 0..3 {
            let p = (i + k) % 3;
            let t = Instant::now();
            pools[p]
                .submit(ident, i as u64)
                .unwrap()
                .result(None)
                .unwrap();
            samples[p].push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let [a, a_isolated, a_limited] = samples.map(|mut v| median(&mut v));
    let map_small = |ex: &ProcessPoolExecutor| {
        median_of(s.repeats, || {
            let t = Instant::now();
            let n = ex
                .map(square, 0..s.map_small as u64)
                .unwrap()
                .map(Result::unwrap)
                .count();
            n as f64 / t.elapsed().as_secs_f64()
        })
    };
    // (b) too: with isolation or a time limit a worker holds only the task it runs (no second
    // task queued in it behind the first), which a map of tiny tasks feels.
    let [b, b_isolated, b_limited] = [0, 1, 2].map(|p| map_small(&pools[p]));
    println!(
        "supervision's cost on the hot path [{}]: (a) isolate_crashes {:.3}x, task_timeout \
         {:.3}x of the default pool's time; (b) {:.3}x, {:.3}x of its rate",
        method.name(),
        a_isolated / a,
        a_limited / a,
        b_isolated / b,
        b_limited / b
    );
    let [ex, isolated, limited] = pools;
    drop((isolated, limited));
    let c = median_of(s.repeats, || {
        let t = Instant::now();
        let chunked = MapOptions::new().chunksize(1000);
        let n = ex
            .map_with(square, 0..s.map_chunked as u64, chunked)
            .unwrap()
            .map(Result::unwrap)
            .count();
        n as f64 / t.elapsed().as_secs_f64()
    });
    let e = death_detection(method, s.first_results);
    Ok(vec![
        Row::ours(DEATH[i], e, "ms", s.first_results),
        Row::ours(ROUND_TRIP[i], a, "us", s.round_trips),
        Row::peer(ROUND_TRIP[i], ISOLATED, a_isolated, "us", s.round_trips),
        Row::peer(ROUND_TRIP[i], LIMITED, a_limited, "us", s.round_trips),
        Row::ours(MAP_SMALL[i], b, "items/s", s.map_small),
        Row::peer(MAP_SMALL[i], ISOLATED, b_isolated, "items/s", s.map_small),
        Row::peer(MAP_SMALL[i], LIMITED, b_limited, "items/s", s.map_small),
        Row::ours(MAP_CHUNKED[i], c, "items/s", s.map_chunked),
        Row::ours(FIRST_RESULT[i], d, "ms", s.first_results),
    ])
}

/// The median round trip of one byte over a Unix socket pair between this process and a
/// forked child that echoes it, in µs: what any two-process request/reply costs here.
fn raw_floor(n: usize) -> Result<f64, String> {
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    // SAFETY: the child only calls `read`, `write` and `_exit` on a descriptor it owns, all
    // async-signal-safe, so forking this multi-threaded process is sound.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => {
            // Our copy of the parent's end would keep `read` from ever seeing its close.
            // SAFETY: closing a descriptor this child owns a copy of; `ours` is never used here.
            unsafe { nix::libc::close(ours.as_raw_fd()) };
            let fd = theirs.as_raw_fd();
            let mut byte = [0u8; 1];
            loop {
                // SAFETY: reading into a live one-byte buffer.
                let read = unsafe { nix::libc::read(fd, byte.as_mut_ptr().cast(), 1) };
                // SAFETY: writing from the same live one-byte buffer.
                if read != 1 || unsafe { nix::libc::write(fd, byte.as_ptr().cast(), 1) } != 1 {
                    // SAFETY: ends the child without running anything of the parent's.
                    unsafe { nix::libc::_exit(0) };
                }
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            use std::io::{Read, Write};
            let mut byte = [7u8; 1];
            let mut samples = Vec::with_capacity(n);
            for i in 0..n + n / 10 {
                let t = Instant::now();
                ours.write_all(&byte).map_err(|e| e.to_string())?;
                ours.read_exact(&mut byte).map_err(|e| e.to_string())?;
                if i >= n / 10 {
                    samples.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
            drop(ours);
            let _ = nix::sys::wait::waitpid(child, None);
            Ok(median(&mut samples))
        }
    }
}
