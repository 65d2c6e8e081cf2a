//! Suite `mpi` (xtask's feature `mpi`, a system MPI): our `MpiPoolExecutor` (spawn mode) beside
//! `mpi4py.futures.MPIPoolExecutor` (spawn mode, run by `python3`) and the floor (a small
//! message's round trip between the transport's receiving thread and one spawned echo worker,
//! over `concurrent_futures_mpi::transport`), all with 2 workers, in one run.
//!
//! This program is its own MPI worker: [`bootstrap`] is the first line of `main`, and a spawned
//! copy serves there, either the pool's tasks or the floor's echo, told apart by the first
//! message it receives (the copies get this process's arguments, so the arguments cannot).

use super::report::{Row, Target};
use super::{group_by_workload, median, median_of, python};
use concurrent_futures_core::{Executor, MapOptions};
use concurrent_futures_mpi::transport::{Event, Outbox, Rank, WorkerLink, Workers, WorkersConfig};
use concurrent_futures_mpi::{MpiError, MpiPoolExecutor, Session};
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROUND_TRIP: &str = "(a) one submit -> result() [spawn]";
const MAP_SMALL: &str = "(b) map x*x, 10k ints, chunksize 1 [spawn]";
const MAP_CHUNKED: &str = "(c) map x*x, 1M ints, chunksize 1000 [spawn]";
const FIRST_RESULT: &str = "(d) pool creation -> first result [spawn]";

/// Fresh pairs of an echo worker and a pool over which row (a) and the floor are measured.
const PAIRS: usize = 5;

/// The floor's system name (its rows are compared with ours by this prefix).
const FLOOR: &str = "MPI ping-pong (transport)";
/// The peer's system name prefix.
const MPI4PY: &str = "mpi4py";

/// The issue's targets: (a) within 2× the ping-pong floor; (b) and (c) at least 10× mpi4py's
/// rate. (d) has none: it is reported.
pub(crate) const TARGETS: &[Target] = &[
    Target::BetterThan {
        workload: ROUND_TRIP,
        peers: &[FLOOR],
        min: 0.5,
    },
    Target::BetterThan {
        workload: MAP_SMALL,
        peers: &[MPI4PY],
        min: 10.0,
    },
    Target::BetterThan {
        workload: MAP_CHUNKED,
        peers: &[MPI4PY],
        min: 10.0,
    },
];

/// The first message of the floor's worker: it echoes from then on. A pool's worker gets the
/// pool's settings first, which never look like this.
const ECHO: &[u8] = b"concurrent-futures xtask bench mpi: echo from here on";

/// The first line of `main` with the feature `mpi`: in a copy of this program spawned as an MPI
/// worker, serves (the pool's tasks, or the floor's echo) and exits; elsewhere returns the
/// session to keep until the end of `main`.
pub(crate) fn bootstrap() -> Result<Session, MpiError> {
    concurrent_futures_mpi::transport::bootstrap_with(|link| {
        let Some(first) = link.recv() else {
            return 0;
        };
        if first == ECHO {
            while let Some(message) = link.recv() {
                if !link.send(message) {
                    break;
                }
            }
            0
        } else {
            concurrent_futures_remote::serve(&mut Replay {
                first: Some(first),
                link,
            })
            .exit_code()
        }
    })
}

/// A worker's link with its first message put back in front.
struct Replay<'a> {
    first: Option<Vec<u8>>,
    link: &'a mut WorkerLink,
}

impl concurrent_futures_remote::WorkerLink for Replay<'_> {
    fn recv(&mut self) -> Option<Vec<u8>> {
        self.first.take().or_else(|| self.link.recv())
    }

    fn send(&mut self, message: Vec<u8>) -> bool {
        self.link.send(message)
    }
}

/// mpi4py's `MPIPoolExecutor(max_workers=2)` (spawn mode).
/// argv: round_trips map_small map_chunked first_result_repeats map_repeats.
const PYTHON: &str = r#"
import sys, time, statistics
from mpi4py.futures import MPIPoolExecutor

def ident(x):
    return x

def square(x):
    return x * x

if __name__ == "__main__":
    nA, nB, nC, nD, reps = (int(a) for a in sys.argv[1:6])
    d = []
    for _ in range(nD):
        t = time.perf_counter()
        ex = MPIPoolExecutor(max_workers=2)
        ex.submit(ident, 0).result()
        d.append((time.perf_counter() - t) * 1e3)
        ex.shutdown()
    with MPIPoolExecutor(max_workers=2) as ex:
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
}

fn ident(x: u64) -> u64 {
    x
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

pub(crate) fn run(quick: bool) -> Result<Vec<Row>, String> {
    let s = if quick {
        Sizes {
            round_trips: 200,
            map_small: 2_000,
            map_chunked: 100_000,
            first_results: 3,
            repeats: 1,
        }
    } else {
        Sizes {
            round_trips: 2_000,
            map_small: 10_000,
            map_chunked: 1_000_000,
            first_results: 7,
            repeats: 5,
        }
    };
    let mut rows = ours(&s)?;
    let py = Sizes {
        round_trips: s.round_trips.min(1_000),
        map_small: s.map_small,
        map_chunked: s.map_chunked,
        first_results: s.first_results.min(5),
        repeats: s.repeats.min(3),
    };
    match mpi4py(&py) {
        Ok((system, values)) => {
            for (key, v) in values {
                rows.push(match key.as_str() {
                    "a" => Row::peer(ROUND_TRIP, system.clone(), v, "us", py.round_trips),
                    "b" => Row::peer(MAP_SMALL, system.clone(), v, "items/s", py.map_small),
                    "c" => Row::peer(MAP_CHUNKED, system.clone(), v, "items/s", py.map_chunked),
                    "d" => Row::peer(FIRST_RESULT, system.clone(), v, "ms", py.first_results),
                    _ => continue,
                });
            }
        }
        Err(why) => {
            println!("peer mpi4py unavailable: {why}");
            let unavailable = format!("{MPI4PY} (unavailable)");
            for (workload, unit) in [
                (ROUND_TRIP, "us"),
                (MAP_SMALL, "items/s"),
                (MAP_CHUNKED, "items/s"),
                (FIRST_RESULT, "ms"),
            ] {
                // NaN: printed as such, and never counted as measured by a target (the
                // verdict compares with it and fails: see `unavailable` below).
                rows.push(Row::peer(workload, unavailable.clone(), f64::NAN, unit, 0));
            }
        }
    }
    group_by_workload(&mut rows);
    Ok(rows)
}

fn pool() -> Result<MpiPoolExecutor, String> {
    MpiPoolExecutor::builder()
        .max_workers(2)
        .build()
        .map_err(|e| format!("MpiPoolExecutor: {e}"))
}

fn ours(s: &Sizes) -> Result<Vec<Row>, String> {
    // The first pool of the process also initialises MPI (and Open MPI's singleton daemon):
    // that is counted, as mpi4py's first pool counts its own import of MPI.
    let mut failure = None;
    let d = median_of(s.first_results, || {
        let t = Instant::now();
        match pool().and_then(|ex| {
            ex.submit(ident, 0)
                .map_err(|e| e.to_string())?
                .result(None)
                .map_err(|e| e.to_string())
        }) {
            Ok(_) => t.elapsed().as_secs_f64() * 1e3,
            Err(e) => {
                failure = Some(e);
                f64::NAN
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    // Row (a) and the floor's round trips interleaved (alternating which goes first), the
    // floor's echo worker and the pool's workers all started, so that drift of the machine's
    // speed (other work on it) hits both alike; over fresh pairs of an echo and a pool, since
    // the threads of each keep where the scheduler first put them, which on 2 cores moved
    // either one's median by up to 2x from one run to the next.
    let mut samples = Vec::with_capacity(s.round_trips);
    let mut floor = Vec::with_capacity(s.round_trips);
    let per_batch = s.round_trips / 10;
    let mut ex = None;
    for pair in 0..PAIRS {
        drop(ex.take());
        let mut echo = Echo::start()?;
        let pool = pool()?;
        // Both workers busy once before anything is measured.
        let warm: Vec<_> = (0..4).map(|i| pool.submit(ident, i).unwrap()).collect();
        for f in &warm {
            f.result(None).map_err(|e| e.to_string())?;
        }
        echo.round_trips(per_batch)?;
        // Ten batches of each over all pairs, alternating which goes first.
        for batch in 0..10 / PAIRS {
            let floor_first = (pair + batch) % 2 == 1;
            if floor_first {
                floor.extend(echo.round_trips(per_batch)?);
            }
            for i in 0..per_batch {
                let t = Instant::now();
                pool.submit(ident, i as u64)
                    .unwrap()
                    .result(None)
                    .map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_secs_f64() * 1e6);
            }
            if !floor_first {
                floor.extend(echo.round_trips(per_batch)?);
            }
        }
        echo.stop()?;
        ex = Some(pool);
    }
    let ex = ex.expect("at least one pair");
    let a = median(&mut samples);
    let b = median_of(s.repeats, || {
        let t = Instant::now();
        let n = ex
            .map(square, 0..s.map_small as u64)
            .unwrap()
            .map(Result::unwrap)
            .count();
        n as f64 / t.elapsed().as_secs_f64()
    });
    let c = median_of(s.repeats, || {
        let t = Instant::now();
        let n = ex
            .map_with(
                square,
                0..s.map_chunked as u64,
                MapOptions::new().chunksize(1000),
            )
            .unwrap()
            .map(Result::unwrap)
            .count();
        n as f64 / t.elapsed().as_secs_f64()
    });
    drop(ex);
    Ok(vec![
        Row::ours(ROUND_TRIP, a, "us", s.round_trips),
        Row::peer(ROUND_TRIP, FLOOR, median(&mut floor), "us", s.round_trips),
        Row::ours(MAP_SMALL, b, "items/s", s.map_small),
        Row::ours(MAP_CHUNKED, c, "items/s", s.map_chunked),
        Row::ours(FIRST_RESULT, d, "ms", s.first_results),
    ])
}

/// The floor: one spawned worker that echoes whole messages, and the transport's event thread
/// posting the next ping as each echo arrives: an MPI ping-pong over the transport the pool is
/// built on, with its polling and its two threads (one hand-off each way, as between the pool's
/// receiving thread and its caller).
struct Echo {
    workers: Workers,
    batch: Arc<Mutex<Batch>>,
    done: Receiver<Result<Vec<f64>, String>>,
    rank: Rank,
}

/// One batch of round trips, as the receiving thread runs it.
#[derive(Default)]
struct Batch {
    left: usize,
    sent: Option<Instant>,
    samples: Vec<f64>,
}

impl Echo {
    fn start() -> Result<Echo, String> {
        let config = WorkersConfig {
            workers: 1,
            ..WorkersConfig::default()
        };
        let batch = Arc::new(Mutex::new(Batch::default()));
        let (finished, done) = mpsc::channel();
        let running = Arc::clone(&batch);
        let on_event = move |outbox: &Outbox, rank: Rank, event: Event| {
            let mut batch = running.lock().unwrap();
            let Event::Message(bytes) = event else {
                let _ = finished.send(Err(format!("MPI echo worker {rank}: {event:?}")));
                return;
            };
            let now = Instant::now();
            if let Some(sent) = batch.sent.take() {
                batch.samples.push((now - sent).as_secs_f64() * 1e6);
            }
            batch.left = batch.left.saturating_sub(1);
            if batch.left == 0 {
                let _ = finished.send(Ok(std::mem::take(&mut batch.samples)));
                return;
            }
            batch.sent = Some(Instant::now());
            if let Err(e) = outbox.send(rank, bytes) {
                let _ = finished.send(Err(format!("MPI send: {e}")));
            }
        };
        let workers =
            Workers::start_with(&config, on_event).map_err(|e| format!("MPI workers: {e}"))?;
        let rank = workers.members()[0].rank;
        workers
            .send(rank, ECHO.to_vec())
            .map_err(|e| format!("MPI send: {e}"))?;
        Ok(Echo {
            workers,
            batch,
            done,
            rank,
        })
    }

    /// `n` round trips of an 8-byte message, each started by the previous one's echo; each one's
    /// time, in µs.
    fn round_trips(&mut self, n: usize) -> Result<Vec<f64>, String> {
        {
            let mut batch = self.batch.lock().unwrap();
            batch.left = n;
            batch.sent = Some(Instant::now());
        }
        self.workers
            .send(self.rank, 0u64.to_le_bytes().to_vec())
            .map_err(|e| format!("MPI send: {e}"))?;
        self.done
            .recv_timeout(Duration::from_secs(60))
            .map_err(|e| format!("MPI echo worker: no answer ({e})"))?
    }

    fn stop(self) -> Result<(), String> {
        self.workers
            .shutdown()
            .map_err(|e| format!("stopping the MPI echo worker: {e}"))
    }
}

/// Whether `python3` can import mpi4py; if not, one `pip install` (said in the output).
fn ensure_mpi4py() -> Result<String, String> {
    let version = || {
        Command::new("python3")
            .args(["-c", "import mpi4py; print(mpi4py.__version__)"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    println!("mpi4py is missing: python3 -m pip install --quiet mpi4py (builds against this MPI)");
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "mpi4py"])
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() {
        return Err(format!("pip install mpi4py failed ({status})"));
    }
    version().ok_or_else(|| "mpi4py still cannot be imported after pip install".to_owned())
}

/// Runs the mpi4py script with a private `TMPDIR` (removed afterwards) and oversubscription on
/// (2 workers and the parent on a machine that may have 2 cores); returns the system's name
/// and the script's `(workload, median)` pairs.
fn mpi4py(s: &Sizes) -> Result<(String, Vec<(String, f64)>), String> {
    let python = python::version()?;
    let version = ensure_mpi4py()?;
    let tmp = std::env::temp_dir().join(format!("cf-bench-mpi4py-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let args = [
        s.round_trips,
        s.map_small,
        s.map_chunked,
        s.first_results,
        s.repeats,
    ]
    .map(|n| n.to_string());
    let result = python::run_file_with_env(
        "mpi_bench.py",
        PYTHON,
        &args,
        &[
            ("TMPDIR", tmp.as_os_str()),
            ("OMPI_MCA_rmaps_base_oversubscribe", "1".as_ref()),
        ],
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok((format!("{MPI4PY} {version} {python}"), result?))
}
