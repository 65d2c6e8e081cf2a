//! Rows of suite `process` for the pool's supervision (issue 11), measured in the same run as
//! rows (a)–(e): how soon a task past its time limit fails and a new worker serves the next
//! task; the same after a `SIGKILL` of a busy worker with crash isolation on; how long
//! `shutdown_timeout` takes with 100 queued one-second tasks.
//!
//! Each of (f) and (g) runs on one pool of **one** worker, so the trivial task submitted once
//! the future has failed can only run on the replacement worker: its result is the moment the
//! replacement serves work. Both numbers of a row are measured from the same instant (the
//! deadline, or the kill).

use super::median;
use super::report::Row;
use concurrent_futures_core::{StopReason, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use std::time::{Duration, Instant};

pub(crate) const TIMEOUT_FAILS: [&str; 3] = [
    "(f) time limit passed -> its future fails [forkserver]",
    "(f) time limit passed -> its future fails [spawn]",
    "(f) time limit passed -> its future fails [fork]",
];
pub(crate) const TIMEOUT_SERVED: [&str; 3] = [
    "(f) time limit passed -> new worker serves [forkserver]",
    "(f) time limit passed -> new worker serves [spawn]",
    "(f) time limit passed -> new worker serves [fork]",
];
pub(crate) const KILL_FAILS: [&str; 3] = [
    "(g) SIGKILL, isolated -> its future fails [forkserver]",
    "(g) SIGKILL, isolated -> its future fails [spawn]",
    "(g) SIGKILL, isolated -> its future fails [fork]",
];
pub(crate) const KILL_SERVED: [&str; 3] = [
    "(g) SIGKILL, isolated -> new worker serves [forkserver]",
    "(g) SIGKILL, isolated -> new worker serves [spawn]",
    "(g) SIGKILL, isolated -> new worker serves [fork]",
];
/// The target: under 5 s (the tasks would take 50 s).
pub(crate) const SHUTDOWN: [&str; 3] = [
    "(h) shutdown_timeout, 100 queued 1 s tasks [forkserver]",
    "(h) shutdown_timeout, 100 queued 1 s tasks [spawn]",
    "(h) shutdown_timeout, 100 queued 1 s tasks [fork]",
];
pub(crate) const SHUTDOWN_TARGET_MS: f64 = 5_000.0;

/// The time limit of the tasks of (f).
const LIMIT: Duration = Duration::from_millis(50);

/// Never returns (ends on `SIGTERM`, its default action).
fn hang(_: ()) -> u8 {
    loop {
        std::thread::park();
    }
}

fn one_second(_: ()) {
    std::thread::sleep(Duration::from_secs(1));
}

fn ident(x: u64) -> u64 {
    x
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Waits (spinning, yielding) until `f` is running: sent to a worker.
fn until_running<R>(f: &concurrent_futures_core::Future<R>) -> Instant {
    while !f.running() {
        std::thread::yield_now();
    }
    Instant::now()
}

/// Submits a trivial task and waits for its result: when a new worker serves work.
fn served(ex: &ProcessPoolExecutor) -> Instant {
    ex.submit(ident, 1).unwrap().result(None).unwrap();
    Instant::now()
}

/// Rows (f): a task that never ends, submitted with a time limit of [`LIMIT`] to a one-worker
/// pool (default grace period; the task ends on `SIGTERM`).
///
/// The limit's clock starts when the pool sends the task to the worker, which is also when the
/// future turns running (`set_running` and the clock's start are one step of the dispatch,
/// under the pool's lock, usually inside `submit` itself). The deadline is taken as the
/// instant this thread first sees the future running, plus the limit: within a few µs of the
/// pool's own deadline (this thread sees the flag at most a yield after it turns; the clock
/// starts a few instructions after it turns), so the latencies measured from it are off by
/// those µs at most, and not padded with the time the submit took. Medians of `repeats` on
/// one pool.
pub(crate) fn after_timeout(method: StartMethod, repeats: usize) -> Result<(f64, f64), String> {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(method)
        .build()
        .map_err(|e| e.to_string())?;
    served(&ex);
    let (mut fails, mut serves) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let f = ex.submit_with_timeout(hang, (), LIMIT).unwrap();
        let deadline = until_running(&f) + LIMIT;
        let error = f.exception(None).unwrap();
        let failed = Instant::now();
        match error {
            Some(TaskError::Stopped(s)) if s.reason() == StopReason::TimedOut(LIMIT) => {}
            other => return Err(format!("(f) expected a time limit's error, got {other:?}")),
        }
        let ready = served(&ex);
        fails.push(ms(failed.saturating_duration_since(deadline)));
        serves.push(ms(ready.saturating_duration_since(deadline)));
    }
    Ok((median(&mut fails), median(&mut serves)))
}

/// Rows (g): `SIGKILL` (from here, to the pid `workers()` gives) of the one worker of a pool
/// with crash isolation on, while it runs a task that never ends; measured from just before
/// the `kill`. Medians of `repeats` on one pool (its restart-storm guard raised so that the
/// repetitions cannot trip it).
pub(crate) fn after_kill(method: StartMethod, repeats: usize) -> Result<(f64, f64), String> {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(method)
        .isolate_crashes(true)
        .max_restarts(1_000, Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    served(&ex);
    let (mut fails, mut serves) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let f = ex.submit(hang, ()).unwrap();
        until_running(&f);
        let pid = ex
            .workers()
            .first()
            .map(|w| w.pid)
            .ok_or("(g) no live worker")?;
        let t = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .map_err(|e| e.to_string())?;
        let error = f.exception(None).unwrap();
        let failed = Instant::now();
        match error {
            Some(TaskError::Stopped(s)) if s.reason() == StopReason::WorkerDied => {}
            other => return Err(format!("(g) expected a worker's death, got {other:?}")),
        }
        let ready = served(&ex);
        fails.push(ms(failed - t));
        serves.push(ms(ready - t));
    }
    if ex.broken().is_some() {
        return Err("(g) the isolated pool broke".to_owned());
    }
    Ok((median(&mut fails), median(&mut serves)))
}

/// Row (h): a default pool of 2 workers (both started), 100 one-second tasks submitted, and
/// once two run, `shutdown_timeout(limit)`: the time it takes to return. One run (it lasts
/// about `limit`). Returns the ms and what it cancelled and stopped.
pub(crate) fn shutdown(
    method: StartMethod,
    limit: Duration,
) -> Result<(f64, usize, usize), String> {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .map_err(|e| e.to_string())?;
    let warm: Vec<_> = (0..4).map(|i| ex.submit(ident, i).unwrap()).collect();
    for f in &warm {
        f.result(None).unwrap();
    }
    let tasks: Vec<_> = (0..100)
        .map(|_| ex.submit(one_second, ()).unwrap())
        .collect();
    while tasks.iter().filter(|f| f.running()).count() < 2 {
        std::thread::yield_now();
    }
    let t = Instant::now();
    let report = ex.shutdown_timeout(limit);
    let took = ms(t.elapsed());
    if !tasks.iter().all(|f| f.done()) {
        return Err("(h) shutdown_timeout returned with a task not done".to_owned());
    }
    Ok((took, report.cancelled, report.stopped.len()))
}

/// The (f), (g) and (h) rows of one start method. `repeats` for (f) and (g); `limit` for (h).
pub(crate) fn rows(
    i: usize,
    method: StartMethod,
    repeats: usize,
    limit: Duration,
) -> Result<Vec<Row>, String> {
    let (t_fails, t_serves) = after_timeout(method, repeats)?;
    let (k_fails, k_serves) = after_kill(method, repeats)?;
    let (s, cancelled, stopped) = shutdown(method, limit)?;
    println!(
        "(h) [{}]: shutdown_timeout({} ms) cancelled {cancelled}, stopped {stopped}",
        method.name(),
        limit.as_millis()
    );
    let limited = format!("ours, limit {} ms", LIMIT.as_millis());
    let isolated = "ours, isolate_crashes";
    let with_limit = format!("ours, d = {} ms", limit.as_millis());
    Ok(vec![
        named(
            Row::ours(TIMEOUT_FAILS[i], t_fails, "ms", repeats),
            &limited,
        ),
        named(
            Row::ours(TIMEOUT_SERVED[i], t_serves, "ms", repeats),
            &limited,
        ),
        named(Row::ours(KILL_FAILS[i], k_fails, "ms", repeats), isolated),
        named(Row::ours(KILL_SERVED[i], k_serves, "ms", repeats), isolated),
        named(Row::ours(SHUTDOWN[i], s, "ms", 1), &with_limit),
    ])
}

/// `row` (ours) under another system name, which says how the pool was set up.
fn named(mut row: Row, system: &str) -> Row {
    row.system = system.to_owned();
    row
}
