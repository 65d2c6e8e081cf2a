//! Suite `thread`: our `ThreadPoolExecutor` beside CPython's, rayon, the `threadpool` crate and
//! Java's `ThreadPoolExecutor` and `ForkJoinPool`, all with 2 workers, in one run. Every row
//! also reports the CPU time per task (user + system of the whole process over the timed
//! region), so a fast wall time bought by spinning shows its cost.

use super::report::{Row, Target};
use super::{group_by_workload, java, median, median_with_cpu, process_cpu, python};
use concurrent_futures_thread::ThreadPoolExecutor;
use concurrent_futures_wait::as_completed;
use rayon::prelude::*;
use std::hint::black_box;
use std::sync::mpsc;
use std::time::Instant;

const SUBMIT_ALL: &str = "(a) submit no-op tasks, then wait for all";
const ROUND_TRIP: &str = "(b) one submit -> result(), round trip";
const AS_COMPLETED: &str = "(c) submit 10,000, drain as_completed";
const MAP: &str = "(d) map over ints";
const IDLE: &str = "(e) an idle pool for 1 s: CPU it used";

const RUST_PEERS: &[&str] = &["rayon", "threadpool"];

/// The issue's targets for this suite.
pub(crate) const TARGETS: &[Target] = &[
    Target::BetterThan {
        workload: SUBMIT_ALL,
        peers: &["CPython"],
        min: 100.0,
    },
    Target::BetterThan {
        workload: SUBMIT_ALL,
        peers: &["Java ThreadPoolExecutor"],
        min: 1.0,
    },
    Target::BetterThan {
        workload: ROUND_TRIP,
        peers: &["CPython"],
        min: 20.0,
    },
    Target::BetterThan {
        workload: ROUND_TRIP,
        peers: RUST_PEERS,
        min: 0.5,
    },
    Target::BetterThan {
        workload: AS_COMPLETED,
        peers: &["CPython"],
        min: 50.0,
    },
    Target::BetterThan {
        workload: AS_COMPLETED,
        peers: &["rayon::spawn + crossbeam"],
        min: 0.5,
    },
    Target::BetterThan {
        workload: MAP,
        peers: &["CPython"],
        min: 100.0,
    },
    Target::AtMost(IDLE, 1.0),
];

/// CPython's `ThreadPoolExecutor(2)` on the same workloads. argv: nA nB nC nD repeats.
const PYTHON: &str = r#"
import sys, time, statistics
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
nA, nB, nC, nD, reps = (int(a) for a in sys.argv[1:6])
def noop(): pass
def ident(x): return x
def double(x): return x * 2
cpu = time.process_time
with ThreadPoolExecutor(2) as ex:
    a, c, d, ac, cc, dc = [], [], [], [], [], []
    for _ in range(reps):
        u = cpu(); t = time.perf_counter(); fs = [ex.submit(noop) for _ in range(nA)]; wait(fs); a.append(nA / (time.perf_counter() - t)); ac.append((cpu() - u) / nA * 1e6)
        u = cpu(); t = time.perf_counter(); fs = [ex.submit(ident, i) for i in range(nC)]
        for f in as_completed(fs): pass
        c.append((time.perf_counter() - t) / nC * 1e6); cc.append((cpu() - u) / nC * 1e6)
        u = cpu(); t = time.perf_counter(); list(ex.map(double, range(nD))); d.append(nD / (time.perf_counter() - t)); dc.append((cpu() - u) / nD * 1e6)
    b = []
    u = cpu()
    for i in range(nB):
        t = time.perf_counter(); ex.submit(ident, i).result(); b.append((time.perf_counter() - t) * 1e6)
    bc = (cpu() - u) / nB * 1e6
print("a", statistics.median(a), sep="\t")
print("b", statistics.median(b), sep="\t")
print("c", statistics.median(c), sep="\t")
print("d", statistics.median(d), sep="\t")
print("a_cpu", statistics.median(ac), sep="\t")
print("b_cpu", bc, sep="\t")
print("c_cpu", statistics.median(cc), sep="\t")
print("d_cpu", statistics.median(dc), sep="\t")
"#;

struct Sizes {
    submit_all: usize,
    round_trips: usize,
    as_completed: usize,
    map: usize,
    repeats: usize,
}

fn double(x: u64) -> u64 {
    x * 2
}

pub(crate) fn run(quick: bool) -> Result<Vec<Row>, String> {
    let s = if quick {
        Sizes {
            submit_all: 10_000,
            round_trips: 200,
            as_completed: 10_000,
            map: 10_000,
            repeats: 3,
        }
    } else {
        Sizes {
            submit_all: 100_000,
            round_trips: 5_000,
            as_completed: 10_000,
            map: 100_000,
            repeats: 11,
        }
    };
    let mut rows = ours(&s);
    rows.extend(rayon_rows(&s));
    rows.extend(threadpool_rows(&s));
    let args = [
        s.submit_all,
        s.round_trips.min(2_000),
        s.as_completed,
        s.map,
        s.repeats,
    ]
    .map(|n| n.to_string());
    match java::run(&args) {
        Ok(peers) => {
            for (system, values) in peers {
                rows.extend(peer_rows(&system, values, &s));
            }
        }
        Err(why) => println!("peer Java skipped: {why}"),
    }
    match python::version() {
        Ok(version) => {
            let py = Sizes {
                submit_all: s.submit_all.min(50_000),
                round_trips: s.round_trips.min(1_000),
                as_completed: s.as_completed,
                map: s.map.min(50_000),
                repeats: s.repeats.min(3),
            };
            let args = [
                py.submit_all,
                py.round_trips,
                py.as_completed,
                py.map,
                py.repeats,
            ]
            .map(|n| n.to_string());
            rows.extend(peer_rows(&version, python::run(PYTHON, &args)?, &py));
        }
        Err(why) => println!("peer CPython skipped: {why}"),
    }
    group_by_workload(&mut rows);
    Ok(rows)
}

/// A peer's rows from its `key<TAB>value` lines: `a`..`d` the workloads, `a_cpu`..`d_cpu`
/// their CPU time per task (µs).
fn peer_rows(system: &str, values: Vec<(String, f64)>, s: &Sizes) -> Vec<Row> {
    let cpu = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == &format!("{key}_cpu"))
            .map(|(_, v)| *v)
    };
    let mut rows: Vec<Row> = values
        .iter()
        .filter_map(|(key, v)| {
            let row = match key.as_str() {
                "a" => Row::peer(SUBMIT_ALL, system, *v, "tasks/s", s.submit_all),
                "b" => Row::peer(ROUND_TRIP, system, *v, "us", s.round_trips),
                "c" => Row::peer(AS_COMPLETED, system, *v, "us/future", s.as_completed),
                "d" => Row::peer(MAP, system, *v, "items/s", s.map),
                _ => return None,
            };
            Some(match cpu(key) {
                Some(c) => row.with_cpu(c),
                None => row,
            })
        })
        .collect();
    rows.shrink_to_fit();
    rows
}

fn per_second(n: usize, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn micros_per(n: usize, start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Median of single round trips, in µs, and the CPU time per round trip (µs) over them all.
fn round_trip_median(n: usize, mut once: impl FnMut(usize)) -> (f64, f64) {
    for i in 0..n / 10 {
        once(i); // warm up
    }
    let before = process_cpu();
    let mut samples: Vec<f64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            once(i);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let cpu = (process_cpu() - before).as_secs_f64() * 1e6 / n as f64;
    (median(&mut samples), cpu)
}

fn ours(s: &Sizes) -> Vec<Row> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .expect("2 workers");
    let a = median_with_cpu(s.repeats, s.submit_all, || {
        let t = Instant::now();
        let fs: Vec<_> = (0..s.submit_all)
            .map(|_| pool.spawn(|| ()).unwrap())
            .collect();
        fs.iter().for_each(|f| f.result(None).unwrap());
        per_second(s.submit_all, t)
    });
    let b = round_trip_median(s.round_trips, |i| {
        black_box(pool.spawn(move || i).unwrap().result(None).unwrap());
    });
    let c = median_with_cpu(s.repeats, s.as_completed, || {
        let t = Instant::now();
        let fs: Vec<_> = (0..s.as_completed)
            .map(|i| pool.spawn(move || i).unwrap())
            .collect();
        for f in as_completed(&fs, None) {
            black_box(f.unwrap());
        }
        micros_per(s.as_completed, t)
    });
    let d = median_with_cpu(s.repeats, s.map, || {
        let t = Instant::now();
        let n = pool
            .map(double, 0..s.map as u64)
            .unwrap()
            .map(Result::unwrap)
            .count();
        assert_eq!(n, s.map);
        per_second(s.map, t)
    });
    let idle = idle_cpu_ms(&pool);
    vec![
        Row::ours(SUBMIT_ALL, a.0, "tasks/s", s.submit_all).with_cpu(a.1),
        Row::ours(ROUND_TRIP, b.0, "us", s.round_trips).with_cpu(b.1),
        Row::ours(AS_COMPLETED, c.0, "us/future", s.as_completed).with_cpu(c.1),
        Row::ours(MAP, d.0, "items/s", s.map).with_cpu(d.1),
        Row::ours(IDLE, idle, "ms", 1),
    ]
}

/// The CPU time (ms) the process uses while `pool`, its workers started, has no work for a
/// second: what the workers' spinning costs once it stops (this thread only sleeps).
fn idle_cpu_ms(pool: &ThreadPoolExecutor) -> f64 {
    pool.spawn(|| ()).unwrap().result(None).unwrap();
    // Let the workers finish their short watch of the queue before counting.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = process_cpu();
    std::thread::sleep(std::time::Duration::from_secs(1));
    (process_cpu() - before).as_secs_f64() * 1e3
}

fn rayon_rows(s: &Sizes) -> Vec<Row> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    let a = median_with_cpu(s.repeats, s.submit_all, || {
        let t = Instant::now();
        let rxs: Vec<_> = (0..s.submit_all)
            .map(|_| {
                let (tx, rx) = mpsc::sync_channel(1);
                pool.spawn(move || tx.send(()).unwrap());
                rx
            })
            .collect();
        rxs.iter().for_each(|rx| rx.recv().unwrap());
        per_second(s.submit_all, t)
    });
    let b_mpsc = round_trip_median(s.round_trips, |i| {
        let (tx, rx) = mpsc::sync_channel(1);
        pool.spawn(move || tx.send(i).unwrap());
        black_box(rx.recv().unwrap());
    });
    let b_crossbeam = round_trip_median(s.round_trips, |i| {
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.spawn(move || tx.send(i).unwrap());
        black_box(rx.recv().unwrap());
    });
    let c = median_with_cpu(s.repeats, s.as_completed, || {
        let t = Instant::now();
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..s.as_completed {
            let tx = tx.clone();
            pool.spawn(move || tx.send(i).unwrap());
        }
        for _ in 0..s.as_completed {
            black_box(rx.recv().unwrap());
        }
        micros_per(s.as_completed, t)
    });
    let d = median_with_cpu(s.repeats, s.map, || {
        let t = Instant::now();
        let out: Vec<u64> =
            pool.install(|| (0..s.map as u64).into_par_iter().map(double).collect());
        assert_eq!(out.len(), s.map);
        per_second(s.map, t)
    });
    vec![
        Row::peer(
            SUBMIT_ALL,
            "rayon::spawn + mpsc",
            a.0,
            "tasks/s",
            s.submit_all,
        )
        .with_cpu(a.1),
        Row::peer(
            ROUND_TRIP,
            "rayon::spawn + mpsc",
            b_mpsc.0,
            "us",
            s.round_trips,
        )
        .with_cpu(b_mpsc.1),
        Row::peer(
            ROUND_TRIP,
            "rayon::spawn + crossbeam",
            b_crossbeam.0,
            "us",
            s.round_trips,
        )
        .with_cpu(b_crossbeam.1),
        Row::peer(
            AS_COMPLETED,
            "rayon::spawn + crossbeam",
            c.0,
            "us/future",
            s.as_completed,
        )
        .with_cpu(c.1),
        Row::peer(MAP, "rayon par_iter (chunked)", d.0, "items/s", s.map).with_cpu(d.1),
    ]
}

fn threadpool_rows(s: &Sizes) -> Vec<Row> {
    let pool = threadpool::ThreadPool::new(2);
    let a = median_with_cpu(s.repeats, s.submit_all, || {
        let t = Instant::now();
        let rxs: Vec<_> = (0..s.submit_all)
            .map(|_| {
                let (tx, rx) = mpsc::sync_channel(1);
                pool.execute(move || tx.send(()).unwrap());
                rx
            })
            .collect();
        rxs.iter().for_each(|rx| rx.recv().unwrap());
        per_second(s.submit_all, t)
    });
    let b = round_trip_median(s.round_trips, |i| {
        let (tx, rx) = mpsc::sync_channel(1);
        pool.execute(move || tx.send(i).unwrap());
        black_box(rx.recv().unwrap());
    });
    let c = median_with_cpu(s.repeats, s.as_completed, || {
        let t = Instant::now();
        let (tx, rx) = mpsc::channel();
        for i in 0..s.as_completed {
            let tx = tx.clone();
            pool.execute(move || tx.send(i).unwrap());
        }
        for _ in 0..s.as_completed {
            black_box(rx.recv().unwrap());
        }
        micros_per(s.as_completed, t)
    });
    let d = median_with_cpu(s.repeats, s.map, || {
        let t = Instant::now();
        let (tx, rx) = mpsc::channel();
        for i in 0..s.map as u64 {
            let tx = tx.clone();
            pool.execute(move || tx.send((i, double(i))).unwrap());
        }
        drop(tx);
        let mut out: Vec<(u64, u64)> = rx.iter().collect();
        out.sort_unstable();
        assert_eq!(out.len(), s.map);
        per_second(s.map, t)
    });
    vec![
        Row::peer(
            SUBMIT_ALL,
            "threadpool + mpsc",
            a.0,
            "tasks/s",
            s.submit_all,
        )
        .with_cpu(a.1),
        Row::peer(ROUND_TRIP, "threadpool + mpsc", b.0, "us", s.round_trips).with_cpu(b.1),
        Row::peer(
            AS_COMPLETED,
            "threadpool + mpsc",
            c.0,
            "us/future",
            s.as_completed,
        )
        .with_cpu(c.1),
        Row::peer(MAP, "threadpool + mpsc (sorted)", d.0, "items/s", s.map).with_cpu(d.1),
    ]
}
