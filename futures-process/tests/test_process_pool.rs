//! Twins of CPython's `test_process_pool.py` (`ProcessPoolExecutorTest`, spec §2.6), run on
//! every start method. Python-only cases: `test_max_workers_too_large` (Windows),
//! `test_max_tasks_per_child_defaults_to_spawn_context` (no contexts here: the method is
//! explicit), `test_python_finalization_error` (interpreter finalization), and
//! `test_terminate_workers`/`test_kill_workers`/`test_force_shutdown_workers_invalid_op`
//! (mock-based; the public methods are tested by their effect instead). Of the 3.14.x additions,
//! `test_gc_during_max_tasks_worker_exit_gh152967` and the executor-dropped variant of
//! gh-119592 have no twin (dropping the pool here waits for its work, so nothing is left to
//! break), nor `test_failed_worker_replacement_breaks_pool` (it patches process creation).

mod common;

use common::{Blockers, METHODS, ProcessPoolExecutor, StartMethod, broken_reason, pool};
use concurrent_futures_core::{Executor, FutureError, MapOptions, SubmitError, TaskError};
use concurrent_futures_process::BuildError;
use concurrent_futures_testkit::fixtures::{mul, pow};
use concurrent_futures_testkit::{ArrivalKey, Arrivals};

concurrent_futures_process::bootstrap_before_main!();

fn pid(_: ()) -> u32 {
    std::process::id()
}

/// `test_killed_child`: a worker killed from outside breaks the pool; later submits refused.
fn killed_child(method: StartMethod) {
    let ex = pool(method, 2);
    let blockers = Blockers::new();
    let f = blockers.submit(&ex, 1).remove(0);
    blockers.arrivals.wait_for(1);
    let victim = ex.worker_pids()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let reason = broken_reason(f.result(None));
    assert!(reason.contains("SIGKILL"), "{reason}");
    match ex.submit(pow, (2, 8)) {
        Err(SubmitError::Broken(b)) => assert_eq!(
            b.reason(),
            "A child process terminated abruptly, the process pool is not usable anymore"
        ),
        other => panic!("expected a refused submit, got {other:?}"),
    }
}

/// `test_map_chunksize`.
fn map_chunksize(method: StartMethod) {
    let ex = pool(method, 2);
    let inputs = || (0..40).map(|i| (i, i as u32 % 8));
    let expected: Vec<i64> = inputs().map(pow).collect();
    for chunksize in [6, 50, 40] {
        let got: Vec<i64> = ex
            .map_with(pow, inputs(), MapOptions::new().chunksize(chunksize))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected, "chunksize {chunksize}");
    }
    let err = ex
        .map_with(pow, inputs(), MapOptions::new().chunksize(0))
        .unwrap_err();
    assert_eq!(err, SubmitError::InvalidArgument("chunksize must be >= 1."));
}

fn raise_runtime_error(_: ()) -> u8 {
    panic!("123 # some comment") // the line the remote traceback must show
}

/// `test_traceback`: the panic's message, and the worker's location as the remote traceback
/// (with a backtrace only if `RUST_BACKTRACE` asks: see `remote_traceback.rs`).
fn traceback(method: StartMethod) {
    let ex = pool(method, 2);
    match ex.submit(raise_runtime_error, ()).unwrap().result(None) {
        Err(FutureError::Failed(error @ TaskError::Remote { .. })) => {
            assert_eq!(
                error.to_string(),
                "task failed in a worker process: 123 # some comment"
            );
            let traceback = error.traceback().expect("a remote error has a traceback");
            assert!(traceback.contains("test_process_pool.rs"), "{traceback}");
            assert!(format!("{error:#}").ends_with(traceback), "{error:#}");
        }
        other => panic!("expected the remote panic, got {other:?}"),
    }
    // The worker survived its task's panic.
    assert_eq!(ex.submit(pow, (3, 2)).unwrap().result(None).unwrap(), 9);
}

/// Reports its own drop, wherever that happens.
#[derive(serde::Serialize, serde::Deserialize)]
struct ReportsDrop(ArrivalKey);

impl Drop for ReportsDrop {
    fn drop(&mut self) {
        self.0.arrive();
    }
}

fn take_and_return_nothing(_: ReportsDrop) {}

/// `test_ressources_gced_in_workers`: the worker frees a task's argument before it reports
/// the result (the drop's arrival is already waiting when the result is in).
fn ressources_gced_in_workers(method: StartMethod) {
    let ex = pool(method, 2);
    let arrivals = Arrivals::new();
    let arg = ReportsDrop(arrivals.key());
    let key = arrivals.key();
    // Serializing does not drop; the parent's copy is dropped (and reports) here.
    let f = ex.submit(take_and_return_nothing, arg).unwrap();
    arrivals.wait_for(1);
    f.result(None).unwrap();
    assert_eq!(
        arrivals.count_now(),
        1,
        "the worker's copy was dropped before the result came"
    );
    drop(key);
}

/// `test_saturation`: many blocked tasks never start more than `max_workers` processes.
fn saturation(method: StartMethod) {
    let ex = pool(method, 2);
    let blockers = Blockers::new();
    let futures = blockers.submit(&ex, 30);
    blockers.arrivals.wait_for(2);
    assert_eq!(ex.worker_pids().len(), 2);
    blockers.gate.open();
    // A datagram queue holds only a few; the later tasks wait until these are read.
    blockers.arrivals.wait_for(28);
    for f in futures {
        f.result(None).unwrap();
    }
    assert_eq!(ex.worker_pids().len(), 2);
}

/// `test_idle_process_reuse_one`: sequential tasks reuse the one idle worker.
fn idle_process_reuse_one(method: StartMethod) {
    let ex = pool(method, 4);
    let first = ex.submit(pid, ()).unwrap().result(None).unwrap();
    for _ in 0..2 {
        assert_eq!(ex.submit(pid, ()).unwrap().result(None).unwrap(), first);
    }
    assert_eq!(ex.worker_pids(), [first]);
}

/// `test_idle_process_reuse_multiple`.
fn idle_process_reuse_multiple(method: StartMethod) {
    let ex = pool(method, 4);
    ex.submit(mul, (12, 7)).unwrap().result(None).unwrap();
    let _a = ex.submit(mul, (33, 25)).unwrap();
    ex.submit(mul, (25, 26)).unwrap().result(None).unwrap();
    let _b = ex.submit(mul, (18, 29)).unwrap();
    ex.submit(mul, (1, 2)).unwrap().result(None).unwrap();
    let _c = ex.submit(mul, (0, 9)).unwrap();
    assert!(ex.worker_pids().len() <= 3, "{:?}", ex.worker_pids());
}

/// `test_max_tasks_per_child`: three tasks in one worker, the fourth in its replacement.
fn max_tasks_per_child(method: StartMethod) {
    let build = || {
        ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(method)
            .max_tasks_per_child(3)
            .build()
    };
    let ex = build().unwrap();
    let pids: Vec<u32> = (0..3)
        .map(|_| ex.submit(pid, ()).unwrap().result(None).unwrap())
        .collect();
    assert!(pids.iter().all(|&p| p == pids[0]), "{pids:?}");
    let fourth = ex.submit(pid, ()).unwrap().result(None).unwrap();
    assert_ne!(fourth, pids[0]);
    assert_eq!(ex.worker_pids(), [fourth]);
}

/// `test_max_tasks_early_shutdown`: replacements keep coming during shutdown.
fn max_tasks_early_shutdown(method: StartMethod) {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(3)
        .start_method(method)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..6).map(|i| ex.submit(mul, (i, i)).unwrap()).collect();
    ex.shutdown(true, false);
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.result(None).unwrap(), (i * i) as i64);
    }
}

/// `test_max_tasks_per_child_pending_tasks_gh115634`: CPython 3.14.0 hangs on (1, 2, 6).
fn max_tasks_per_child_pending_tasks_gh115634(method: StartMethod) {
    for (workers, max_tasks, n) in [(1, 2, 6), (2, 2, 8)] {
        let ex = ProcessPoolExecutor::builder()
            .max_workers(workers)
            .start_method(method)
            .max_tasks_per_child(max_tasks)
            .build()
            .unwrap();
        let futures: Vec<_> = (0..n).map(|i| ex.submit(mul, (i, 2)).unwrap()).collect();
        let results: Vec<i64> = futures.iter().map(|f| f.result(None).unwrap()).collect();
        assert_eq!(results, (0..n).map(|i| i * 2).collect::<Vec<_>>());
    }
}

/// `test_force_shutdown_workers[terminate_workers, kill_workers]`: the running task never
/// finishes; its future fails, naming the signal that was sent.
fn force_shutdown_workers(method: StartMethod) {
    for (kill, signal) in [(false, "SIGTERM"), (true, "SIGKILL")] {
        let ex = pool(method, 1);
        let blockers = Blockers::new();
        let running = blockers.submit(&ex, 1).remove(0);
        let queued = blockers.submit(&ex, 3);
        blockers.arrivals.wait_for(1);
        if kill {
            ex.kill_workers()
        } else {
            ex.terminate_workers()
        }
        let reason = broken_reason(running.result(None));
        assert!(reason.contains(signal), "{reason}");
        // Never sent to the worker: cancelled. (The one sent ahead, if any, broke with it.)
        let cancelled = queued.iter().filter(|f| f.cancelled()).count();
        assert!(cancelled >= 2, "{cancelled} of 3 cancelled");
        assert_eq!(blockers.arrivals.count_now(), 0, "no other task started");
        assert!(ex.submit(pid, ()).is_err());
    }
}

fn exit_one(_: ()) -> u8 {
    std::process::exit(1)
}

/// `test_force_shutdown_workers_dead_workers`: after the pool broke, both calls are harmless.
fn force_shutdown_workers_dead_workers(method: StartMethod) {
    let ex = pool(method, 2);
    broken_reason(ex.submit(exit_one, ()).unwrap().result(None));
    ex.terminate_workers();
    ex.kill_workers();
    assert!(ex.broken().is_some());
}

/// `test_force_shutdown_workers_not_started_yet`: with no worker, nothing is signalled.
fn force_shutdown_workers_not_started_yet(method: StartMethod) {
    let ex = pool(method, 2);
    ex.terminate_workers();
    assert!(ex.worker_pids().is_empty());
    assert_eq!(ex.submit(pid, ()).unwrap_err(), SubmitError::Shutdown);
}

/// `test_force_shutdown_workers_stops_pool`: the pool refuses work and its worker is reaped.
fn force_shutdown_workers_stops_pool(method: StartMethod) {
    for kill in [false, true] {
        let ex = pool(method, 1);
        let worker = ex.submit(pid, ()).unwrap().result(None).unwrap();
        if kill {
            ex.kill_workers()
        } else {
            ex.terminate_workers()
        }
        assert!(ex.submit(pid, ()).is_err());
        ex.shutdown(true, false);
        assert!(ex.worker_pids().is_empty());
        assert!(
            !std::path::Path::new(&format!("/proc/{worker}")).exists(),
            "worker {worker} was reaped"
        );
    }
}

/// `test_broken_process_pool_traceback` (gh-101267): every pending future gets its own error.
fn broken_process_pool_traceback(method: StartMethod) {
    let ex = pool(method, 2);
    let blockers = Blockers::new();
    let futures = blockers.submit(&ex, 3);
    blockers.arrivals.wait_for(2);
    let victim = ex.worker_pids()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    for f in &futures {
        let reason = broken_reason(f.result(None));
        assert!(
            reason.contains(&format!(
                "worker process {victim} was killed by signal 15 (SIGTERM)"
            )),
            "{reason}"
        );
    }
}

fn exit_99(_: ()) -> u8 {
    std::process::exit(99)
}

/// `test_traceback_when_child_process_terminates_abruptly` (3.15): the exit code is named.
fn traceback_when_child_process_terminates_abruptly(method: StartMethod) {
    let ex = pool(method, 2);
    let reason = broken_reason(ex.submit(exit_99, ()).unwrap().result(None));
    assert!(reason.contains("exited with code 99"), "{reason}");
}

/// `test_shutdown_no_wait_max_tasks_gh119592` (executor kept alive): replacements continue
/// after `shutdown(wait=False)`, so every gated task still runs.
fn shutdown_no_wait_max_tasks_gh119592(method: StartMethod) {
    if method == StartMethod::Fork {
        return; // max_tasks_per_child is refused with fork
    }
    let ex = ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(method)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let blockers = Blockers::new();
    let futures = blockers.submit(&ex, 3);
    blockers.arrivals.wait_for(1);
    ex.shutdown(false, false);
    blockers.gate.open();
    blockers.arrivals.wait_for(2);
    let pids: Vec<u32> = futures.iter().map(|f| f.result(None).unwrap()).collect();
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2],
        "one worker per task: {pids:?}"
    );
}

#[test]
fn max_workers_zero_is_refused() {
    for method in METHODS {
        let err = ProcessPoolExecutor::builder()
            .max_workers(0)
            .start_method(method)
            .build()
            .unwrap_err();
        assert_eq!(err.to_string(), "max_workers must be greater than 0");
        let err = ProcessPoolExecutor::builder()
            .max_tasks_per_child(0)
            .start_method(method)
            .build()
            .unwrap_err();
        assert_eq!(err, BuildError::MaxTasksPerChild);
    }
}

per_method!(
    killed_child,
    map_chunksize,
    traceback,
    ressources_gced_in_workers,
    saturation,
    idle_process_reuse_one,
    idle_process_reuse_multiple,
    max_tasks_per_child,
    max_tasks_early_shutdown,
    max_tasks_per_child_pending_tasks_gh115634,
    shutdown_no_wait_max_tasks_gh119592,
    force_shutdown_workers,
    force_shutdown_workers_dead_workers,
    force_shutdown_workers_not_started_yet,
    force_shutdown_workers_stops_pool,
    broken_process_pool_traceback,
    traceback_when_child_process_terminates_abruptly,
);
