//! The process pool beyond Python's (`beyond.md` rows 1–6 and 11): crash isolation and its
//! restart-storm guard, per-task time limits that stop the work, cancel of a running task,
//! recycling by memory and idle time, no orphaned grandchildren, and the introspection the
//! other tests read. Every test runs in all three start methods, under the watchdog.

mod common;

use common::StartMethod;
use concurrent_futures_core::{FutureError, StopReason, TaskError, TaskStopped};
use concurrent_futures_process::{
    ExitReason, ProcessPoolBuilder, ProcessPoolExecutor, WorkerState,
};
use concurrent_futures_testkit::procfs::{children_of, is_gone, wait_until};
use concurrent_futures_testkit::{ArrivalKey, Arrivals};
use std::time::Duration;

concurrent_futures_process::bootstrap_before_main!();

fn builder(method: StartMethod, workers: usize) -> ProcessPoolBuilder {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .start_method(method)
}

fn double(x: u32) -> u32 {
    2 * x
}

fn abort(_: ()) -> u32 {
    std::process::abort()
}

fn exit_zero(_: ()) -> u32 {
    std::process::exit(0)
}

/// Reports its arrival, then never returns.
fn arrive_then_block(arrived: ArrivalKey) {
    arrived.arrive();
    loop {
        std::thread::park();
    }
}

/// Ignores `SIGTERM`, reports its arrival, then never returns.
fn ignore_term_then_block(arrived: ArrivalKey) {
    // SAFETY: setting a signal's disposition to "ignore" takes plain integers.
    unsafe { nix::libc::signal(nix::libc::SIGTERM, nix::libc::SIG_IGN) };
    arrive_then_block(arrived)
}

/// Reports its arrival, then stops its own process (`SIGSTOP`): alive but hung.
fn stop_myself(arrived: ArrivalKey) {
    arrived.arrive();
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP).unwrap();
    loop {
        std::thread::park();
    }
}

/// Starts a `sleep` child (a grandchild of the pool), reports its arrival, then never returns.
fn spawn_grandchild_then_block(arrived: ArrivalKey) {
    let child = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    std::mem::forget(child);
    arrive_then_block(arrived)
}

/// Limits this worker's address space to `limit` bytes, then allocates and touches twice that:
/// a real out-of-memory failure, inside the worker.
fn exhaust_memory(limit: u64) -> usize {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_AS, limit, limit).unwrap();
    let mut block = vec![1u8; 2 * limit as usize];
    block[limit as usize] = 2;
    block.iter().map(|&b| b as usize).sum()
}

/// Allocates `mib` MiB, touches it, and keeps it (the worker's resident memory grows).
fn grow(mib: usize) -> usize {
    let block = vec![7u8; mib << 20];
    let sum = block.iter().step_by(4096).map(|&b| b as usize).sum();
    std::mem::forget(block);
    sum
}

/// The `TaskStopped` a future failed with (fails the test on anything else).
fn stopped<T: std::fmt::Debug>(outcome: Result<T, FutureError>) -> TaskStopped {
    match outcome {
        Err(FutureError::Failed(TaskError::Stopped(stopped))) => stopped,
        other => panic!("expected TaskError::Stopped, got {other:?}"),
    }
}

/// The pid of the worker running task number `task` now.
fn worker_running(pool: &ProcessPoolExecutor, task: u64) -> u32 {
    let mut pid = None;
    wait_until("the task shows as running", || {
        pid = pool.workers().iter().find_map(|w| match w.state {
            WorkerState::Running { task: t, .. } if t == task => Some(w.pid),
            _ => None,
        });
        pid.is_some()
    });
    pid.unwrap()
}

/// With isolation, a worker that aborts or calls `exit(0)` mid-task fails only its task,
/// naming it, the pid and how the process ended; a new worker replaces it; the task blocked
/// in the other worker and later tasks are served; the history records the crash.
fn a_crash_fails_only_its_own_task(method: StartMethod) {
    let pool = builder(method, 2).isolate_crashes(true).build().unwrap();
    let arrivals = Arrivals::new();
    let blocked = pool.submit(arrive_then_block, arrivals.key()).unwrap();
    arrivals.wait_for(1);
    for (crash, ended) in [
        (abort as fn(()) -> u32, "was killed by signal 6 (SIGABRT)"),
        (exit_zero, "exited with code 0"),
    ] {
        let future = pool.submit(crash, ()).unwrap();
        let stopped = stopped(future.result(None));
        assert_eq!(stopped.reason(), StopReason::WorkerDied);
        assert_eq!(stopped.ended(), ended);
        let exit = pool.exit_history().pop().unwrap();
        assert_eq!(
            (exit.reason, exit.task, exit.pid),
            (ExitReason::Crashed, Some(stopped.task()), stopped.pid())
        );
        assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
    }
    assert!(pool.broken().is_none());
    assert!(!blocked.done(), "the other worker's task is untouched");
    assert!(pool.workers_started() >= 3);
    let report = pool.shutdown_timeout(Duration::ZERO);
    assert_eq!(report.stopped.len(), 1);
}

/// A task that kills every worker it touches, with isolation on: after more than
/// `max_restarts` deaths the pool breaks, saying why, and no more workers start.
fn every_task_crashing_ends_in_a_broken_pool(method: StartMethod) {
    let pool = builder(method, 2)
        .isolate_crashes(true)
        .max_restarts(3, Duration::from_secs(600))
        .build()
        .unwrap();
    let futures: Vec<_> = (0..40).map(|_| pool.submit(abort, ()).unwrap()).collect();
    for future in &futures {
        assert!(future.exception(None).unwrap().is_some());
    }
    let broken = pool.broken().expect("the guard broke the pool");
    let why = futures
        .iter()
        .find_map(|f| match f.exception(None).unwrap() {
            Some(TaskError::Broken(b)) => Some(b.to_string()),
            _ => None,
        })
        .expect("the futures left when the guard tripped are BrokenProcessPool");
    assert!(why.contains("restart-storm guard"), "{why} / {broken}");
    // Four deaths (the fourth trips the guard), at most one more worker starting meanwhile.
    assert!(pool.workers_started() <= 5, "{}", pool.workers_started());
    assert!(pool.submit(double, 1).is_err());
}

/// A task past its time limit is stopped (its worker gets SIGTERM), its future fails with
/// `TimedOut` naming it, and a new worker serves the next task; the pool's default limit
/// applies to plain `submit`.
fn a_task_past_its_time_limit_is_stopped(method: StartMethod) {
    let pool = builder(method, 1)
        .task_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let arrivals = Arrivals::new();
    let future = pool.submit(arrive_then_block, arrivals.key()).unwrap();
    let stopped = stopped(future.result(None));
    assert_eq!(
        stopped.reason(),
        StopReason::TimedOut(Duration::from_millis(200))
    );
    assert_eq!(stopped.ended(), "was killed by signal 15 (SIGTERM)");
    assert_eq!(pool.exit_history()[0].reason, ExitReason::TimedOut);
    let next = pool.submit(double, 4).unwrap().result(None).unwrap();
    assert_eq!(next, 8);
    assert_ne!(pool.worker_pids(), [stopped.pid()]);
    // A per-submit limit overrides the pool's.
    let quick = pool
        .submit_with_timeout(arrive_then_block, arrivals.key(), Duration::from_millis(10))
        .unwrap();
    assert_eq!(
        stopped_reason(quick.result(None)),
        StopReason::TimedOut(Duration::from_millis(10))
    );
}

fn stopped_reason<T: std::fmt::Debug>(outcome: Result<T, FutureError>) -> StopReason {
    stopped(outcome).reason()
}

/// A task that ignores SIGTERM is killed when the grace period ends.
fn a_task_ignoring_sigterm_is_still_stopped(method: StartMethod) {
    let pool = builder(method, 1)
        .grace_period(Duration::from_millis(100))
        .build()
        .unwrap();
    let arrivals = Arrivals::new();
    let future = pool
        .submit_with_timeout(
            ignore_term_then_block,
            arrivals.key(),
            Duration::from_millis(100),
        )
        .unwrap();
    let stopped = stopped(future.result(None));
    assert_eq!(stopped.ended(), "was killed by signal 9 (SIGKILL)");
    assert_eq!(pool.submit(double, 1).unwrap().result(None).unwrap(), 2);
}

/// A worker stopped with SIGSTOP (alive but hung) under a time limit is still stopped.
fn a_sigstopped_worker_is_still_stopped(method: StartMethod) {
    let pool = builder(method, 1).build().unwrap();
    let arrivals = Arrivals::new();
    let future = pool
        .submit_with_timeout(stop_myself, arrivals.key(), Duration::from_millis(100))
        .unwrap();
    let stopped = stopped(future.result(None));
    assert_eq!(
        stopped.reason(),
        StopReason::TimedOut(Duration::from_millis(100))
    );
    assert_eq!(pool.submit(double, 1).unwrap().result(None).unwrap(), 2);
}

/// With `cancel_running`, `cancel()` of a running task succeeds, `wait` sees the future done at
/// once, and the worker is stopped and replaced.
fn cancel_stops_a_running_task(method: StartMethod) {
    let pool = builder(method, 1).cancel_running(true).build().unwrap();
    let arrivals = Arrivals::new();
    let future = pool.submit(arrive_then_block, arrivals.key()).unwrap();
    arrivals.wait_for(1);
    let pid = worker_running(&pool, 0);
    assert!(future.cancel());
    assert!(future.cancelled());
    let seen = concurrent_futures_wait::wait(
        [future.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::AllCompleted,
    );
    assert_eq!((seen.done.len(), seen.not_done.len()), (1, 0));
    assert_eq!(pool.submit(double, 5).unwrap().result(None).unwrap(), 10);
    wait_until("the stopped worker is in the history", || {
        !pool.exit_history().is_empty()
    });
    let exit = &pool.exit_history()[0];
    assert_eq!((exit.pid, exit.reason), (pid, ExitReason::Cancelled));
    // Without the option, Python's rule stands.
    let plain = builder(method, 1).build().unwrap();
    let running = plain.submit(arrive_then_block, arrivals.key()).unwrap();
    arrivals.wait_for(1);
    assert!(!running.cancel());
    plain.shutdown_timeout(Duration::ZERO);
}

/// No orphans: a process started by a task dies with its worker, whether the worker timed
/// out, was killed from outside (isolation on), or the pool shut down with a time limit.
fn grandchildren_die_with_their_worker(method: StartMethod) {
    let pool = builder(method, 1)
        .isolate_crashes(true)
        .grace_period(Duration::from_millis(100))
        .build()
        .unwrap();
    let arrivals = Arrivals::new();
    let grandchild_of = |task: u64| {
        let worker = worker_running(&pool, task);
        let mut children = Vec::new();
        wait_until("the task started its child", || {
            children = children_of(worker);
            !children.is_empty()
        });
        (worker, children[0])
    };
    // Killed from outside, while its task runs with a child of its own.
    let _lost = pool
        .submit(spawn_grandchild_then_block, arrivals.key())
        .unwrap();
    arrivals.wait_for(1);
    let (worker, grandchild) = grandchild_of(0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the killed worker's child is gone", || is_gone(grandchild));
    // Shut down with a time limit.
    let _running = pool
        .submit(spawn_grandchild_then_block, arrivals.key())
        .unwrap();
    arrivals.wait_for(1);
    let (_, grandchild) = grandchild_of(1);
    let report = pool.shutdown_timeout(Duration::from_millis(10));
    assert_eq!(report.stopped, [1]);
    wait_until("the stopped worker's child is gone", || is_gone(grandchild));
}

/// A timed-out worker's child dies with it.
fn a_timed_out_workers_child_dies_too(method: StartMethod) {
    let pool = builder(method, 1).build().unwrap();
    let arrivals = Arrivals::new();
    let future = pool
        .submit_with_timeout(
            spawn_grandchild_then_block,
            arrivals.key(),
            Duration::from_millis(300),
        )
        .unwrap();
    arrivals.wait_for(1);
    let worker = worker_running(&pool, 0);
    let mut children = Vec::new();
    wait_until("the task started its child", || {
        children = children_of(worker);
        !children.is_empty()
    });
    stopped(future.result(None));
    wait_until("the timed-out worker's child is gone", || {
        is_gone(children[0])
    });
}

/// A real out-of-memory failure (an `RLIMIT_AS` the task set in its worker) with isolation
/// on fails only that task.
fn an_out_of_memory_task_fails_alone(method: StartMethod) {
    let pool = builder(method, 1).isolate_crashes(true).build().unwrap();
    let future = pool.submit(exhaust_memory, 1 << 30).unwrap();
    let stopped = stopped(future.result(None));
    assert_eq!(stopped.reason(), StopReason::WorkerDied);
    assert_eq!(pool.submit(double, 3).unwrap().result(None).unwrap(), 6);
}

/// A worker whose resident memory grew past the limit after a task is recycled; one that
/// stays under it is kept.
fn a_worker_grown_past_the_memory_limit_is_recycled(method: StartMethod) {
    let probe = builder(method, 1).build().unwrap();
    probe.submit(double, 1).unwrap().result(None).unwrap();
    let baseline = probe.workers()[0].resident_memory.unwrap();
    drop(probe);
    let pool = builder(method, 1)
        .max_worker_memory(baseline + (64 << 20))
        .build()
        .unwrap();
    pool.submit(grow, 1).unwrap().result(None).unwrap();
    let first = pool.worker_pids();
    pool.submit(grow, 1).unwrap().result(None).unwrap();
    assert_eq!(pool.worker_pids(), first, "a small worker is kept");
    pool.submit(grow, 128).unwrap().result(None).unwrap();
    pool.submit(double, 1).unwrap().result(None).unwrap();
    assert_ne!(pool.worker_pids(), first, "the grown worker was replaced");
    wait_until("the recycled worker is in the history", || {
        !pool.exit_history().is_empty()
    });
    let exit = &pool.exit_history()[0];
    assert_eq!(exit.pid, first[0]);
    assert!(
        matches!(exit.reason, ExitReason::RecycledForMemory { resident } if resident > baseline + (64 << 20))
    );
}

/// With an idle timeout the pool shrinks to no process when idle, and grows on demand.
fn an_idle_pool_shrinks_to_zero_and_grows_again(method: StartMethod) {
    let pool = builder(method, 2)
        .idle_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let futures: Vec<_> = (0..4).map(|x| pool.submit(double, x).unwrap()).collect();
    for f in &futures {
        f.result(None).unwrap();
    }
    wait_until("every idle worker left", || pool.worker_pids().is_empty());
    assert!(
        pool.exit_history()
            .iter()
            .all(|e| e.reason == ExitReason::RecycledWhenIdle),
        "{:?}",
        pool.exit_history()
    );
    assert_eq!(pool.submit(double, 8).unwrap().result(None).unwrap(), 16);
    assert!(pool.broken().is_none());
}

/// `shutdown_timeout` cancels what is queued, stops what still runs at the limit (failing
/// those futures with `ShutdownTimedOut`), and returns with every worker gone.
fn shutdown_with_a_time_limit_stops_the_work(method: StartMethod) {
    let pool = builder(method, 2).build().unwrap();
    let arrivals = Arrivals::new();
    let futures: Vec<_> = (0..100)
        .map(|_| pool.submit(arrive_then_block, arrivals.key()).unwrap())
        .collect();
    arrivals.wait_for(2);
    let report = pool.shutdown_timeout(Duration::from_millis(20));
    // The two running tasks, and up to two that their workers held next.
    assert!((2..=4).contains(&report.stopped.len()), "{report:?}");
    assert_eq!(report.stopped.len() + report.cancelled, 100);
    assert!(!report.finished_in_time());
    assert!(pool.worker_pids().is_empty());
    let mut cancelled = 0;
    for future in &futures {
        if future.cancelled() {
            cancelled += 1;
        } else {
            assert_eq!(
                stopped_reason(future.result(None)),
                StopReason::ShutdownTimedOut(Duration::from_millis(20))
            );
        }
    }
    assert_eq!(cancelled, report.cancelled);
}

/// What `workers()` says while a task runs and after.
fn introspection_follows_the_work(method: StartMethod) {
    let pool = builder(method, 1).cancel_running(true).build().unwrap();
    let arrivals = Arrivals::new();
    pool.submit(double, 1).unwrap().result(None).unwrap();
    let future = pool.submit(arrive_then_block, arrivals.key()).unwrap();
    arrivals.wait_for(1);
    let pid = worker_running(&pool, 1);
    let worker = pool.workers().into_iter().find(|w| w.pid == pid).unwrap();
    assert_eq!(worker.tasks_run, 1);
    assert!(worker.resident_memory.is_some());
    assert!(future.cancel());
    assert_eq!(pool.submit(double, 2).unwrap().result(None).unwrap(), 4);
    let workers = pool.workers();
    assert_eq!(workers.len(), 1);
    assert_eq!(
        (workers[0].state, workers[0].tasks_run),
        (WorkerState::Idle, 1)
    );
    let stats = pool.stats();
    assert_eq!((stats.pending, stats.running, stats.workers), (0, 0, 1));
}

/// Without `stop_on_interrupt`, a worker ignores `SIGINT` (the program decides), as Python's
/// do: the task it runs finishes.
fn a_worker_ignores_sigint_by_default(method: StartMethod) {
    let pool = builder(method, 1).build().unwrap();
    let blockers = common::Blockers::new();
    let future = blockers.submit(&pool, 1).pop().unwrap();
    blockers.arrivals.wait_for(1);
    let worker = pool.worker_pids()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    // A round trip through the worker's task gate: SIGINT was delivered before it opens.
    blockers.gate.open();
    assert_eq!(future.result(None).unwrap(), worker);
    assert!(pool.broken().is_none());
}

per_method!(
    a_worker_ignores_sigint_by_default,
    a_crash_fails_only_its_own_task,
    every_task_crashing_ends_in_a_broken_pool,
    a_task_past_its_time_limit_is_stopped,
    a_task_ignoring_sigterm_is_still_stopped,
    a_sigstopped_worker_is_still_stopped,
    cancel_stops_a_running_task,
    grandchildren_die_with_their_worker,
    a_timed_out_workers_child_dies_too,
    an_out_of_memory_task_fails_alone,
    a_worker_grown_past_the_memory_limit_is_recycled,
    an_idle_pool_shrinks_to_zero_and_grows_again,
    shutdown_with_a_time_limit_stops_the_work,
    introspection_follows_the_work,
);
