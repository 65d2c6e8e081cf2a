//! Edges of the process pool's supervision, each found by an outside review and failing before
//! its fix: unbounded limits, an initializer's time, callbacks of a cancelled running task, a
//! terminal's Ctrl-C and the fork server, the counts of stopped tasks, and a task that forks.
//! Each runs with the Fork method (the quickest to start) under a short watchdog.

use concurrent_futures_core::{FutureError, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod, WorkerState};
use concurrent_futures_testkit::procfs::wait_until;
use concurrent_futures_testkit::{ArrivalKey, Arrivals, GateKey, ProcessGate, watchdog_for};
use std::sync::Arc;
use std::time::{Duration, Instant};

concurrent_futures_process::bootstrap_before_main!();

fn sleep_then(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    7
}

fn slow_init(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn double(x: u32) -> u32 {
    2 * x
}

fn forever(_: ()) {
    loop {
        std::thread::park();
    }
}

fn ignore_term_then_block(_: ()) {
    // SAFETY: setting a signal's disposition to "ignore" takes plain integers.
    unsafe { nix::libc::signal(nix::libc::SIGTERM, nix::libc::SIG_IGN) };
    forever(())
}

fn running_pid(pool: &ProcessPoolExecutor) -> u32 {
    let mut pid = None;
    wait_until("a worker runs the task", || {
        pid = pool.workers().iter().find_map(|w| match w.state {
            WorkerState::Running { .. } => Some(w.pid),
            _ => None,
        });
        pid.is_some()
    });
    pid.unwrap()
}

/// `shutdown_timeout(Duration::MAX)` ("wait as long as it takes") stops the running task at
/// once: `Instant::now().checked_add(MAX)` is `None`, and `Shared::shutdown_timeout` reads a
/// `None` deadline as "already passed" (`deadline.filter(..)` → `break`).
#[test]
fn shutdown_timeout_max_waits_for_running_tasks() {
    watchdog_for(Duration::from_secs(20), || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Fork)
            .build()
            .unwrap();
        let future = pool.submit(sleep_then, 300).unwrap();
        running_pid(&pool);
        let report = pool.shutdown_timeout(Duration::MAX);
        assert_eq!(
            report.stopped,
            Vec::<u64>::new(),
            "nothing should be stopped"
        );
        assert_eq!(future.result(None).unwrap(), 7);
    });
}

/// `grace_period(Duration::MAX)` (never escalate) escalates at once: `begin_stop` computes
/// `kill_at = now.checked_add(grace).unwrap_or(now)`, so the SIGKILL is due immediately. A
/// task that ignores SIGTERM is SIGKILLed on the timer's next pass instead of never.
#[test]
fn grace_period_max_does_not_sigkill_at_once() {
    watchdog_for(Duration::from_secs(20), || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Fork)
            .grace_period(Duration::MAX)
            .build()
            .unwrap();
        let future = pool
            .submit_with_timeout(ignore_term_then_block, (), Duration::from_millis(100))
            .unwrap();
        let pid = running_pid(&pool);
        wait_until("the time limit starts the stop", || {
            pool.workers()
                .iter()
                .any(|w| w.state == WorkerState::Stopping)
        });
        // The absence of an event cannot be gated: give a wrong SIGKILL a second to land.
        std::thread::sleep(Duration::from_millis(1000));
        let done_early = future.done();
        let history = pool.exit_history();
        // Clean up either way (the worker ignores SIGTERM and would otherwise live on).
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = future.exception(None);
        assert!(
            !done_early,
            "SIGKILL came right after SIGTERM despite an unbounded grace period: {history:?}"
        );
    });
}

/// A task's time limit is charged the worker's initializer: the first task sent to a new
/// worker starts its clock at `dispatch` (right after `worker_ready`), while the worker
/// first runs the initializer. With an initializer slower than the limit every first task
/// fails `TimedOut` though it would take microseconds — and the replacement worker does the
/// same to the next task, forever (stops do not count for the storm guard).
#[test]
fn the_initializer_is_not_charged_to_the_first_tasks_time_limit() {
    watchdog_for(Duration::from_secs(20), || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Fork)
            .initializer(slow_init, 500)
            .task_timeout(Duration::from_millis(200))
            .grace_period(Duration::ZERO)
            .build()
            .unwrap();
        match pool.submit(double, 21).unwrap().result(None) {
            Ok(v) => assert_eq!(v, 42),
            Err(FutureError::Failed(TaskError::Stopped(s))) => {
                panic!("a 1 us task was stopped by its 200 ms limit: {s}")
            }
            Err(e) => panic!("{e:?}"),
        }
    });
}

/// `cancel()` of a running task runs the future's done-callbacks *before* it calls the
/// pool's stop (`Future::cancel_running`: `announce_done` then `stop`). A done-callback that
/// shuts the pool down and waits (`shutdown(wait=true)`, Python-legal from a non-worker
/// thread) waits for a worker that nobody has told to stop yet: `cancel()` never returns.
#[test]
fn cancel_running_stops_the_worker_before_done_callbacks_run() {
    watchdog_for(Duration::from_secs(15), || {
        let pool = Arc::new(
            ProcessPoolExecutor::builder()
                .max_workers(1)
                .start_method(StartMethod::Fork)
                .cancel_running(true)
                .grace_period(Duration::ZERO)
                .build()
                .unwrap(),
        );
        let future = pool.submit(forever, ()).unwrap();
        running_pid(&pool);
        let in_callback = Arc::clone(&pool);
        future.add_done_callback(move |_| in_callback.shutdown(true, false));
        let start = Instant::now();
        assert!(future.cancel());
        assert!(start.elapsed() < Duration::from_secs(5));
    });
}

/// Without `stop_on_interrupt`, "workers ignore SIGINT so that the parent decides" — but with
/// `ForkServer` a terminal's Ctrl-C (sent to the whole foreground process group) also reaches
/// the fork server, which stays in the program's group with `SIGINT` at its default. The
/// server dies; each of its workers gets its parent-death signal and takes its group down;
/// the pool breaks (`BrokenProcessPool`) although the program chose to carry on, and no
/// `ForkServer` pool can start a worker afterwards. Here the signal goes to the server alone
/// (sending it to the test's group would also hit cargo), which is what it gets from a
/// terminal.
#[test]
fn ctrl_c_at_the_terminal_leaves_forkserver_workers_alone_by_default() {
    watchdog_for(Duration::from_secs(20), || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::ForkServer)
            .build()
            .unwrap();
        let future = pool.submit(sleep_then, 500).unwrap();
        let worker = running_pid(&pool);
        let server = std::fs::read_to_string(format!("/proc/{worker}/stat"))
            .unwrap()
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<i32>()
            .unwrap();
        let comm = std::fs::read_to_string(format!("/proc/{server}/comm")).unwrap();
        assert_eq!(comm.trim(), "cf-forkserver");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        assert_eq!(future.result(None).unwrap(), 7, "the running task was lost");
        assert!(pool.broken().is_none());
    });
}

/// `stats()` loses every task the pool stopped or lost to an isolated crash: it leaves
/// `running` when its worker ends, but `finished` counts only results that came back
/// (`task_done`), so pending + running + finished no longer adds up to what was submitted
/// (issue 11, item 9: counts of pending, running and finished tasks).
#[test]
fn stats_count_a_stopped_task_as_finished() {
    watchdog_for(Duration::from_secs(20), || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Fork)
            .grace_period(Duration::ZERO)
            .build()
            .unwrap();
        let future = pool
            .submit_with_timeout(forever, (), Duration::from_millis(50))
            .unwrap();
        assert!(future.exception(None).unwrap().is_some());
        wait_until("the stopped worker is gone", || pool.stats().running == 0);
        let stats = pool.stats();
        assert_eq!(
            stats.pending + stats.running + stats.finished as usize,
            1,
            "the stopped task is in no count: {stats:?}"
        );
    });
}

/// Forks a plain child (no `exec`: it keeps every descriptor the worker has, its result
/// channel included), reports its arrival, waits for the gate, then aborts the worker.
fn fork_child_then_abort((arrived, gate): (ArrivalKey, GateKey)) -> u32 {
    // SAFETY: the child only calls `pause`, which is async-signal-safe.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => loop {
            // SAFETY: `pause` takes nothing and only waits for a signal.
            unsafe { nix::libc::pause() };
        },
        nix::unistd::ForkResult::Parent { .. } => {
            arrived.arrive();
            gate.wait();
            std::process::abort()
        }
    }
}

/// With isolation on, a worker that dies mid-task fails its task — unless its task forked a
/// child without `exec`. That child, in the worker's process group, holds a copy of the
/// worker's result channel, so the courier never sees the channel close, never reaps the
/// worker (a zombie), and never gets to kill the group after the reap: the future stays pending for
/// ever (and `shutdown(wait=true)` would hang). "No orphans" kills the group only after the
/// reap that the orphan itself prevents. (The same holds without isolation: the pool should
/// break and does not.)
#[test]
fn a_crashed_worker_whose_task_forked_is_still_seen_to_die() {
    let worker = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let seen = Arc::clone(&worker);
    let outcome = std::panic::catch_unwind(move || {
        watchdog_for(Duration::from_secs(10), move || {
            // Leaked on purpose: dropping it would wait for the hung courier.
            let pool = Box::leak(Box::new(
                ProcessPoolExecutor::builder()
                    .max_workers(1)
                    .start_method(StartMethod::Fork)
                    .isolate_crashes(true)
                    .build()
                    .unwrap(),
            ));
            let (arrivals, gate) = (Arrivals::new(), ProcessGate::new());
            let future = pool
                .submit(fork_child_then_abort, (arrivals.key(), gate.key()))
                .unwrap();
            arrivals.wait_for(1);
            seen.store(
                pool.worker_pids()[0] as i32,
                std::sync::atomic::Ordering::SeqCst,
            );
            gate.open();
            match future.result(None) {
                Err(FutureError::Failed(TaskError::Stopped(_))) => {}
                other => panic!("{other:?}"),
            }
        })
    });
    // Clean up the orphan (it leads no group of its own: it is in the dead worker's group).
    let pgid = worker.load(std::sync::atomic::Ordering::SeqCst);
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
