//! `MpiPoolExecutor` end to end, with this test binary as its own worker: `main` calls
//! `bootstrap` first (hence `harness = false`), so the copies a pool spawns, and the ranks
//! `mpirun` starts, serve the pool's tasks instead of running the cases.
//!
//! The binary plays three parts, chosen by `CF_MPI_TEST`:
//! - unset (as `cargo test` runs it): never initialises MPI; runs itself as `spawn` and under
//!   `mpirun -n 3` as `launcher`, each with a private `TMPDIR` (Open MPI leaves its session
//!   directory there for a few seconds after a run), removed afterwards;
//! - `spawn`: a plain program; each case builds its own pool of 2 spawned workers;
//! - `launcher`: rank 0 of `mpirun -n 3`; every case shares the one pool of ranks 1 and 2 (a
//!   launcher's ranks serve one pool), so of the suite's cases that shut the pool down only
//!   one runs there, last.
//!
//! The cases: the testkit's generic executor suite (CPython's `ExecutorTest`), then the MPI
//! engine's own faults — a panicking task, an argument that fails to serialize, a worker that
//! dies (the pool breaks, naming the rank and the host), and no worker left behind.
//! Every case runs under a watchdog: a hang fails the run, never stalls CI.
#![cfg(feature = "mpi")]

use concurrent_futures_core::{Executor, FutureError, PayloadStage, SubmitError, TaskError};
use concurrent_futures_mpi::{MpiError, MpiPoolExecutor};
use concurrent_futures_testkit::conformance;
use serde::{Deserialize, Serialize, Serializer};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{PART, case, hostname, others_running_this_program, run_spawn_then_launcher_parts};

/// The generic suite's cases that leave the executor usable, by name.
/// A case of the suite: its name, and what it does with a pool.
type Case = (&'static str, fn(&MpiPoolExecutor));

const SUITE: &[Case] = &[
    ("submit", conformance::submit::<MpiPoolExecutor>),
    (
        "submit_keyword",
        conformance::submit_keyword::<MpiPoolExecutor>,
    ),
    ("map", conformance::map::<MpiPoolExecutor>),
    (
        "map_exception",
        conformance::map_exception::<MpiPoolExecutor>,
    ),
    ("map_timeout", conformance::map_timeout::<MpiPoolExecutor>),
    (
        "map_buffersize_value_validation",
        conformance::map_buffersize_value_validation::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize",
        conformance::map_buffersize::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize_on_multiple_iterables",
        conformance::map_buffersize_on_multiple_iterables::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize_on_infinite_iterable",
        conformance::map_buffersize_on_infinite_iterable::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize_on_multiple_infinite_iterables",
        conformance::map_buffersize_on_multiple_infinite_iterables::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize_on_empty_iterable",
        conformance::map_buffersize_on_empty_iterable::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize_without_iterable",
        conformance::map_buffersize_without_iterable::<MpiPoolExecutor>,
    ),
    (
        "map_buffersize_when_buffer_is_full",
        conformance::map_buffersize_when_buffer_is_full::<MpiPoolExecutor>,
    ),
    (
        "swallows_falsey_exceptions",
        conformance::swallows_falsey_exceptions::<MpiPoolExecutor>,
    ),
    (
        "a_panicking_task_fails_its_future_only",
        a_panicking_task_fails_its_future_only,
    ),
    (
        "an_argument_that_cannot_be_serialized_fails_its_future_only",
        an_argument_that_cannot_be_serialized_fails_its_future_only,
    ),
];

/// The generic suite's cases that end with `shutdown`: each on its own pool when spawning;
/// under the launcher only `shutdown_race_issue12456` runs, last (its ranks serve one pool).
const SUITE_SHUTTING_DOWN: &[Case] = &[
    (
        "no_stale_references",
        conformance::no_stale_references::<MpiPoolExecutor>,
    ),
    (
        "free_reference",
        conformance::free_reference::<MpiPoolExecutor>,
    ),
];

/// Twins of mpi4py's `test_futures.py` cases that do not depend on mpi4py's internals or on
/// Python's calling conventions. Not ported: keyword arguments (`submit_keyword`), Python's
/// exceptions as objects (`exc_pickle`, `exc_unpickle`), `bootup` (the builder starts the
/// workers: `build()` is `bootup(wait=True)`), mpi4py's settings and environment variables
/// (`use_pkl5`, `max_workers_environ`, `init_*`, `get_comm_workers`), and its helpers beyond
/// `concurrent.futures` (`ThenTest`, `CollectTest`, `ComposeTest`). `starmap` is `map` over
/// tuples, since a task takes one argument.
const MPI4PY_TWINS: &[(&str, fn())] = &[
    ("mpi4py_test_initializer", mpi4py_test_initializer),
    (
        "mpi4py_test_initializer_error",
        mpi4py_test_initializer_error,
    ),
    (
        "mpi4py_test_initializer_error_del",
        mpi4py_test_initializer_error_del,
    ),
    ("mpi4py_test_submit_cancel", mpi4py_test_submit_cancel),
    (
        "mpi4py_test_submit_shutdown_cancel_wait",
        mpi4py_test_submit_shutdown_cancel_wait,
    ),
    ("mpi4py_test_shutdown_cancel", mpi4py_test_shutdown_cancel),
    ("mpi4py_test_first_completed", mpi4py_test_first_completed),
    ("mpi4py_test_zero_timeout", mpi4py_test_zero_timeout),
    (
        "mpi4py_test_run_after_shutdown",
        mpi4py_test_run_after_shutdown,
    ),
    ("mpi4py_test_hang_issue12364", mpi4py_test_hang_issue12364),
    ("mpi4py_test_map_chunksize", mpi4py_test_map_chunksize),
    (
        "mpi4py_test_max_workers_negative",
        mpi4py_test_max_workers_negative,
    ),
    (
        "mpi4py_test_context_manager_shutdown",
        mpi4py_test_context_manager_shutdown,
    ),
    ("mpi4py_test_all_completed", mpi4py_test_all_completed),
    (
        "mpi4py_test_first_exception_some_already_complete",
        mpi4py_test_first_exception_some_already_complete,
    ),
    ("mpi4py_test_no_timeout", mpi4py_test_no_timeout),
    (
        "mpi4py_test_duplicate_futures",
        mpi4py_test_duplicate_futures,
    ),
    (
        "mpi4py_test_initializer_error_del_nowait",
        mpi4py_test_initializer_error_del_nowait,
    ),
    ("mpi4py_test_shutdown", mpi4py_test_shutdown),
    (
        "mpi4py_test_submit_shutdown_cancel",
        mpi4py_test_submit_shutdown_cancel,
    ),
    ("mpi4py_test_del_shutdown", mpi4py_test_del_shutdown),
    (
        "mpi4py_test_first_completed_some_already_completed",
        mpi4py_test_first_completed_some_already_completed,
    ),
    ("mpi4py_test_first_exception", mpi4py_test_first_exception),
    (
        "mpi4py_test_first_exception_one_already_failed",
        mpi4py_test_first_exception_one_already_failed,
    ),
    ("mpi4py_test_timeout", mpi4py_test_timeout),
    ("mpi4py_test_nonzero_timeout", mpi4py_test_nonzero_timeout),
    ("mpi4py_test_submit", mpi4py_test_submit),
    ("mpi4py_test_map", mpi4py_test_map),
    ("mpi4py_test_map_exception", mpi4py_test_map_exception),
    ("mpi4py_test_map_timeout_one", mpi4py_test_map_timeout_one),
    ("mpi4py_test_starmap", mpi4py_test_starmap),
    (
        "mpi4py_test_starmap_chunksize",
        mpi4py_test_starmap_chunksize,
    ),
    (
        "mpi4py_test_multiple_executors",
        mpi4py_test_multiple_executors,
    ),
    ("mpi4py_test_good_pickle", mpi4py_test_good_pickle),
    ("mpi4py_test_bad_pickle", mpi4py_test_bad_pickle),
    ("mpi4py_test_bad_unpickle", mpi4py_test_bad_unpickle),
];

fn main() {
    let session = concurrent_futures_mpi::bootstrap().expect("bootstrap");
    match std::env::var(PART).as_deref() {
        Ok("spawn") => {
            for (name, case_fn) in SUITE.iter().chain(SUITE_SHUTTING_DOWN) {
                case(name, 60, || {
                    let pool = pool();
                    case_fn(&pool);
                    pool.shutdown(true, false);
                });
            }
            case("shutdown_race_issue12456", 60, || {
                conformance::shutdown_race_issue12456(&pool(), 2)
            });
            case(
                "a_worker_that_dies_breaks_the_pool_naming_its_rank_and_host",
                60,
                a_worker_that_dies_breaks_the_pool_naming_its_rank_and_host,
            );
            case(
                "a_frozen_worker_is_presumed_dead_after_the_heartbeat_timeout",
                60,
                a_frozen_worker_is_presumed_dead_after_the_heartbeat_timeout,
            );
            case(
                "a_done_callback_that_drops_the_pool_does_not_hang_it",
                60,
                a_done_callback_that_drops_the_pool_does_not_hang_it,
            );
            case(
                "a_result_whose_drop_panics_on_the_manager_does_not_stop_the_pool",
                60,
                a_result_whose_drop_panics_on_the_manager_does_not_stop_the_pool,
            );
            case(
                "user_code_never_runs_on_the_receiving_thread",
                60,
                user_code_never_runs_on_the_receiving_thread,
            );
            case(
                "twenty_pools_one_after_another_each_start",
                120,
                twenty_pools_one_after_another_each_start,
            );
            // Twins of the portable cases of mpi4py's `test_futures.py`, named after them.
            for (name, twin) in MPI4PY_TWINS {
                case(name, 60, twin);
            }
            case(
                "shutdown_leaves_no_worker_process_behind",
                60,
                shutdown_leaves_no_worker_process_behind,
            );
            // Found by review (t12): heartbeat false positives, and a hang on a death mid-send.
            case(
                "a_long_first_task_is_not_presumed_dead",
                60,
                a_long_first_task_is_not_presumed_dead,
            );
            case(
                "a_task_longer_than_the_heartbeat_timeout_does_not_break_the_pool",
                60,
                a_task_longer_than_the_heartbeat_timeout_does_not_break_the_pool,
            );
            case(
                "a_worker_that_dies_while_sending_a_large_result_breaks_the_pool",
                60,
                a_worker_that_dies_while_sending_a_large_result_breaks_the_pool,
            );
            case(
                "a_worker_frozen_while_sending_a_large_result_is_presumed_dead",
                60,
                a_worker_frozen_while_sending_a_large_result_is_presumed_dead,
            );
            case(
                "a_slow_done_callback_does_not_make_the_workers_silent",
                60,
                a_slow_done_callback_does_not_make_the_workers_silent,
            );
            // Found by the second review (t12).
            case(
                "a_large_result_slower_than_the_heartbeat_timeout_does_not_break_the_pool",
                60,
                a_large_result_slower_than_the_heartbeat_timeout_does_not_break_the_pool,
            );
            // After every case above, whose sends it counts too.
            case(
                "only_the_receiving_thread_sends_while_the_pool_runs",
                60,
                only_the_receiving_thread_sends_while_the_pool_runs,
            );
            // Last: it leaves MPI wedged in this process, which then starts no pool.
            case(
                "a_worker_that_dies_while_a_large_task_comes_breaks_the_pool",
                60,
                a_worker_that_dies_while_a_large_task_comes_breaks_the_pool,
            );
        }
        Ok("launcher") => {
            let pool = pool();
            assert_eq!(pool.max_workers(), 2, "ranks 1 and 2 serve");
            for (name, case_fn) in SUITE {
                case(name, 60, || case_fn(&pool));
            }
            case("shutdown_race_issue12456", 60, || {
                conformance::shutdown_race_issue12456(&pool, 2)
            });
            // As in the spawn part: every send above was the receiving thread's.
            assert_eq!(
                concurrent_futures_mpi::test_support::sends_beside_the_receiving_thread(),
                0,
                "MPI sends started on another thread while a receiving thread ran"
            );
            println!("launcher: ok");
        }
        _ => {
            run_spawn_then_launcher_parts();
        }
    }
    drop(session);
}

fn pool() -> MpiPoolExecutor {
    MpiPoolExecutor::builder()
        .max_workers(2)
        .build()
        .expect("two workers")
}

fn fails(x: u32) -> u32 {
    assert!(x != 3, "three is not allowed");
    x
}

fn double(x: u32) -> u32 {
    2 * x
}

fn a_panicking_task_fails_its_future_only(pool: &MpiPoolExecutor) {
    let error = pool.submit(fails, 3).unwrap().result(None).unwrap_err();
    match error {
        FutureError::Failed(TaskError::Remote { message, .. }) => {
            assert!(message.contains("three is not allowed"), "{message}");
        }
        other => panic!("expected the worker's panic, got {other:?}"),
    }
    assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
}

/// Fails when serialized.
#[derive(Debug, Deserialize)]
struct Unsendable;

impl Serialize for Unsendable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value stays here"))
    }
}

fn take(_: Unsendable) -> u32 {
    0
}

fn an_argument_that_cannot_be_serialized_fails_its_future_only(pool: &MpiPoolExecutor) {
    let error = pool
        .submit(take, Unsendable)
        .unwrap()
        .result(None)
        .unwrap_err();
    match error {
        FutureError::Failed(TaskError::Payload(p)) => {
            assert_eq!(p.stage(), PayloadStage::EncodeArgument, "{p}");
        }
        other => panic!("expected a payload error, got {other:?}"),
    }
    assert_eq!(pool.submit(double, 4).unwrap().result(None).unwrap(), 8);
}

fn die(_: ()) {
    std::process::abort();
}

fn a_worker_that_dies_breaks_the_pool_naming_its_rank_and_host() {
    let pool = pool();
    let error = pool.submit(die, ()).unwrap().result(None).unwrap_err();
    let FutureError::Failed(TaskError::Broken(broken)) = error else {
        panic!("expected a broken pool, got {error:?}");
    };
    let text = broken.to_string();
    assert!(text.contains("rank"), "{text}");
    let host = hostname();
    assert!(text.contains(&host), "names the host {host}: {text}");
    match pool.submit(double, 1) {
        Err(SubmitError::Broken(_)) => {}
        other => panic!("a broken pool refuses tasks, got {other:?}"),
    }
    pool.shutdown(true, false);
}

/// Stops this worker's process, as a hung host would: it neither dies nor sends anything.
fn freeze(_: ()) {
    let me = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-STOP", &me])
        .status();
}

fn a_frozen_worker_is_presumed_dead_after_the_heartbeat_timeout() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .heartbeat_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let workers = workers_of_this_program();
    assert_eq!(workers.len(), 2, "two workers run: {workers:?}");
    let error = pool.submit(freeze, ()).unwrap().result(None).unwrap_err();
    let FutureError::Failed(TaskError::Broken(broken)) = error else {
        panic!("expected a broken pool, got {error:?}");
    };
    let text = broken.to_string();
    assert!(text.contains("heartbeat"), "{text}");
    assert!(text.contains("rank"), "{text}");
    assert!(text.contains(&hostname()), "{text}");
    pool.shutdown(true, false);
    // The frozen worker too: on this host, a worker presumed dead is killed.
    assert_exit(workers, "is still there after shutdown");
}

fn shutdown_leaves_no_worker_process_behind() {
    let pool = pool();
    let sum: u32 = pool.map(double, 0..100).unwrap().map(Result::unwrap).sum();
    assert_eq!(sum, 9900);
    let workers = workers_of_this_program();
    assert_eq!(workers.len(), 2, "two workers run: {workers:?}");
    pool.shutdown(true, false);
    assert_exit(workers, "is still running after shutdown");
}

/// The pids of the processes running this test binary, other than this one and the outer run
/// that started it.
fn workers_of_this_program() -> Vec<u32> {
    others_running_this_program(&[std::os::unix::process::parent_id()])
}

/// Asserts that every process in `workers` exits within 10 s: "worker {pid} {otherwise}".
fn assert_exit(workers: Vec<u32>, otherwise: &str) {
    for pid in workers {
        assert!(
            concurrent_futures_mpi::transport::wait_for_exit(pid, Duration::from_secs(10)),
            "worker {pid} {otherwise}"
        );
    }
}

/// Trial division: a task that takes a few tens of milliseconds, so that its future is
/// completed by the pool's manager thread, after the callback below is added.
fn is_prime(n: u64) -> bool {
    n > 1
        && (2..)
            .take_while(|i| i * i <= n)
            .all(|i| !n.is_multiple_of(i))
}

fn a_done_callback_that_drops_the_pool_does_not_hang_it() {
    let holder = std::sync::Arc::new(std::sync::Mutex::new(Some(pool())));
    let future = holder
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .submit(is_prime, 1_099_726_899_285_419)
        .unwrap();
    let (dropped, on_drop) = mpsc::channel();
    let h = std::sync::Arc::clone(&holder);
    future.add_done_callback(move |_| {
        // The last handle of the pool goes here, on whichever thread completes the future.
        drop(h.lock().unwrap().take());
        let _ = dropped.send(());
    });
    on_drop
        .recv_timeout(Duration::from_secs(30))
        .expect("the callback dropped the pool and returned");
    assert!(!future.result(None).unwrap());
}

/// While the workers run, every MPI send is the receiving thread's (crate docs, "Death"): a
/// caller of `submit` (which dispatches under the pool's lock) or the event thread (which
/// runs the done-callbacks, and dispatches as results come) caught inside MPI by Open MPI's
/// deadlock could not act on the progress watch's verdict, and the futures would never fail.
/// Counted over every case this process ran before, plus submits from a done-callback and a
/// chunked `map`.
fn only_the_receiving_thread_sends_while_the_pool_runs() {
    let pool = std::sync::Arc::new(pool());
    let (resubmitted, from_callback) = mpsc::channel();
    let there = std::sync::Arc::clone(&pool);
    pool.submit(double, 1).unwrap().add_done_callback(move |_| {
        let _ = resubmitted.send(there.submit(double, 2).unwrap());
    });
    let second = from_callback
        .recv_timeout(Duration::from_secs(30))
        .expect("the done-callback submitted");
    assert_eq!(second.result(None).unwrap(), 4);
    let doubled: Vec<u32> = pool
        .map_with(
            double,
            0..100u32,
            concurrent_futures_core::MapOptions::new().chunksize(7),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(doubled, (0..100).map(|x| 2 * x).collect::<Vec<_>>());
    pool.shutdown(true, false);
    assert_eq!(
        concurrent_futures_mpi::test_support::sends_beside_the_receiving_thread(),
        0,
        "MPI sends started on another thread while a receiving thread ran"
    );
}

/// A pool per round, 20 rounds: each shutdown waits until its workers' processes have ended
/// (a spawn while the last pool's workers were still exiting hung Open MPI's spawn, found by
/// review).
fn twenty_pools_one_after_another_each_start() {
    for round in 0..20 {
        let pool = MpiPoolExecutor::builder()
            .max_workers(2)
            .start_timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(pool.submit(double, 2).unwrap().result(None).unwrap(), 4);
        pool.shutdown(true, false);
    }
}

/// Set in the pool's process once its cases run: a [`Bomb`] goes off only there.
static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A result whose `Drop` panics in the pool's process.
#[derive(Serialize, Deserialize)]
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if ARMED.load(std::sync::atomic::Ordering::SeqCst) && !std::thread::panicking() {
            panic!("a result's Drop panics");
        }
    }
}

/// Returns once the file `gate` exists: a gate between the pool's process and a worker.
fn bomb_after(gate: std::path::PathBuf) -> Bomb {
    while !gate.exists() {
        std::thread::yield_now();
    }
    Bomb(0)
}

/// The caller drops its future before the task ends, so the manager thread holds the last
/// handle and the result's `Drop` panics there: the pool carries on (found by review: the
/// manager thread died, and later tasks never completed).
fn a_result_whose_drop_panics_on_the_manager_does_not_stop_the_pool() {
    ARMED.store(true, std::sync::atomic::Ordering::SeqCst);
    let gate = std::env::temp_dir().join(format!("cf-mpi-bomb-{}", std::process::id()));
    let pool = pool();
    drop(pool.submit(bomb_after, gate.clone()).unwrap());
    std::fs::write(&gate, b"").unwrap();
    let later: Vec<_> = (0..3).map(|i| pool.submit(double, i).unwrap()).collect();
    for (i, f) in later.into_iter().enumerate() {
        assert_eq!(
            f.result(None).unwrap(),
            2 * i as u32,
            "task {i} after the panic"
        );
    }
    pool.shutdown(true, false);
    ARMED.store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::remove_file(&gate);
}

/// Set in the pool's process while [`user_code_never_runs_on_the_receiving_thread`] runs.
static WATCHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Drops of [`Witness`] values in the pool's process, while watched.
static WITNESS_DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Names of the threads that ran user code there that must not run on the receiving thread.
static USER_CODE_THREADS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The pool's receiving thread (the transport's name for it).
const RECEIVER: &str = "cf-mpi-receiver";

fn this_thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned()
}

/// A result whose `Drop` records where it runs, in the pool's process.
#[derive(Serialize, Deserialize)]
struct Witness(u32);

impl Drop for Witness {
    fn drop(&mut self) {
        if WATCHING.load(std::sync::atomic::Ordering::SeqCst) {
            WITNESS_DROPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            USER_CODE_THREADS.lock().unwrap().push(this_thread_name());
        }
    }
}

fn witness(x: u32) -> Witness {
    Witness(x)
}

/// Results complete on the receiving thread, but what may run user code does not run there:
/// every done-callback, and the drop of each result whose future the caller let go before it
/// finished (the pool's handle is then the last), run on the manager thread; a future dropped
/// as soon as it finished drops its value in the caller's thread; each value is dropped once.
fn user_code_never_runs_on_the_receiving_thread() {
    WATCHING.store(true, std::sync::atomic::Ordering::SeqCst);
    USER_CODE_THREADS.lock().unwrap().clear();
    WITNESS_DROPS.store(0, std::sync::atomic::Ordering::SeqCst);
    let pool = pool();
    let (ran, callbacks) = mpsc::channel();
    let mut kept = Vec::new();
    for i in 0..50 {
        let future = pool.submit(witness, i).unwrap();
        let ran = ran.clone();
        future.add_done_callback(move |_| {
            USER_CODE_THREADS.lock().unwrap().push(this_thread_name());
            let _ = ran.send(());
        });
        if i % 2 == 0 {
            kept.push(future);
        }
    }
    for i in 0..50 {
        callbacks
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("callback {i} of 50 never ran: {e}"));
    }
    // Dropped the moment they finish, with no callback: the pool's handle was released as
    // the result came, and the caller's, the last, drops the value (never the receiving
    // thread, should it let go of the future's block after the caller).
    for i in 0..50 {
        let future = pool.submit(witness, i).unwrap();
        assert!(future.exception(None).unwrap().is_none());
        drop(future);
    }
    pool.shutdown(true, false);
    for future in &kept {
        assert!(future.done());
    }
    drop(kept);
    WATCHING.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        WITNESS_DROPS.load(std::sync::atomic::Ordering::SeqCst),
        100,
        "each result dropped once"
    );
    let threads = USER_CODE_THREADS.lock().unwrap();
    assert_eq!(
        threads.len(),
        150,
        "50 callbacks and 100 drops: {threads:?}"
    );
    assert!(
        threads.iter().all(|name| name != RECEIVER),
        "user code ran on the receiving thread: {threads:?}"
    );
}

fn pow_of((x, y): (u64, u32)) -> u64 {
    x.pow(y)
}

fn divide((x, y): (u32, u32)) -> u32 {
    x / y
}

fn mpi4py_test_run_after_shutdown() {
    let pool = pool();
    pool.shutdown(true, false);
    assert!(matches!(pool.submit(double, 2), Err(SubmitError::Shutdown)));
}

fn mpi4py_test_hang_issue12364() {
    let pool = pool();
    let futures: Vec<_> = (0..50).map(|i| pool.submit(double, i).unwrap()).collect();
    pool.shutdown(true, false);
    for (i, future) in futures.iter().enumerate() {
        assert_eq!(future.result(None).unwrap(), 2 * i as u32);
    }
}

fn mpi4py_test_map_chunksize() {
    let pool = pool();
    let inputs: Vec<(u64, u32)> = (0..40).map(|i| (i % 5, i as u32 % 7)).collect();
    let reference: Vec<u64> = inputs.iter().copied().map(pow_of).collect();
    for chunksize in [6, 50, 40] {
        let options = concurrent_futures_core::MapOptions::new().chunksize(chunksize);
        let got: Vec<u64> = pool
            .map_with(pow_of, inputs.clone(), options)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, reference, "chunksize {chunksize}");
    }
    let bad = concurrent_futures_core::MapOptions::new().chunksize(0);
    assert!(pool.map_with(pow_of, inputs, bad).is_err());
    pool.shutdown(true, false);
}

fn mpi4py_test_max_workers_negative() {
    // Rust has no negative count: 0 is the one invalid value.
    let error = MpiPoolExecutor::builder()
        .max_workers(0)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("max_workers"), "{error}");
}

fn mpi4py_test_context_manager_shutdown() {
    let workers = {
        let pool = pool();
        let absolute: Vec<u32> = pool
            .map(|x: i32| x.unsigned_abs(), -5..5)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(absolute, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
        workers_of_this_program()
        // Dropping the pool is leaving Python's `with` block: shutdown(wait=True).
    };
    assert_exit(workers, "outlived its pool");
}

fn mpi4py_test_all_completed() {
    let pool = pool();
    let failing = pool.submit(divide, (2, 0)).unwrap();
    let fine = pool.submit(divide, (42, 1)).unwrap();
    let done = concurrent_futures_wait::wait(
        [failing.clone(), fine.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::AllCompleted,
    );
    assert_eq!(done.done.len(), 2);
    assert!(done.not_done.is_empty());
    assert!(failing.exception(None).unwrap().is_some());
    assert_eq!(fine.result(None).unwrap(), 42);
}

fn mpi4py_test_first_exception_some_already_complete() {
    let pool = pool();
    let failing = pool.submit(divide, (21, 0)).unwrap();
    let done = concurrent_futures_wait::wait(
        [failing.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::FirstException,
    );
    assert!(done.done.contains(&failing));
}

fn mpi4py_test_no_timeout() {
    let pool = pool();
    let a = pool.submit(double, 21).unwrap();
    let b = pool.submit(double, 3).unwrap();
    let completed: Vec<u32> = concurrent_futures_wait::as_completed([a, b], None)
        .map(|f| f.unwrap().result(None).unwrap())
        .collect();
    assert_eq!(completed.len(), 2);
    assert!(
        completed.contains(&42) && completed.contains(&6),
        "{completed:?}"
    );
}

fn mpi4py_test_duplicate_futures() {
    let pool = pool();
    let future = pool.submit(double, 1).unwrap();
    let completed = concurrent_futures_wait::as_completed([future.clone(), future], None).count();
    assert_eq!(completed, 1);
}

/// What each worker's initializer set (a global of the worker's process).
static INITIALIZED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn set_initialized(value: u32) {
    INITIALIZED.store(value, std::sync::atomic::Ordering::SeqCst);
}

fn read_initialized(_: ()) -> u32 {
    INITIALIZED.load(std::sync::atomic::Ordering::SeqCst)
}

fn initializer_fails(_: ()) {
    panic!("the initializer fails on purpose");
}

/// mpi4py runs `time.sleep(0)` as initializer; here it sets a global every task then reads.
fn mpi4py_test_initializer() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .initializer(set_initialized, 7)
        .build()
        .unwrap();
    let seen: Vec<u32> = pool
        .map(read_initialized, vec![(); 12])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seen, vec![7; 12], "every worker ran the initializer first");
}

fn mpi4py_test_initializer_error() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .initializer(initializer_fails, ())
        .build()
        .unwrap();
    let future = pool.submit(read_initialized, ()).unwrap();
    let error = future.result(None).unwrap_err();
    let FutureError::Failed(TaskError::Broken(broken)) = error else {
        panic!("expected a broken pool, got {error:?}");
    };
    let text = broken.to_string();
    assert!(text.contains("initializer"), "{text}");
    assert!(text.contains("fails on purpose"), "{text}");
    match pool.submit(read_initialized, ()) {
        Err(SubmitError::Broken(_)) => {}
        other => panic!("a broken pool refuses tasks, got {other:?}"),
    }
}

fn mpi4py_test_initializer_error_del() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .initializer(initializer_fails, ())
        .build()
        .unwrap();
    let workers = workers_of_this_program();
    drop(pool);
    assert_exit(workers, "is still running after the pool was dropped");
}

/// Returns once the file `gate` exists (polled, so that a worker waiting here leaves the cores
/// to the others): the test opens it when it is ready for the tasks to end.
fn wait_for_gate(gate: std::path::PathBuf) -> u32 {
    while !gate.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    1
}

/// A gate file of this test run, closed.
fn gate(name: &str) -> std::path::PathBuf {
    let gate = std::env::temp_dir().join(format!("cf-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    gate
}

fn open(gate: &std::path::Path) {
    std::fs::write(gate, b"").unwrap();
}

/// The end of a case whose tasks wait at `gate`: opens it, shuts the pool down (waiting for
/// them), and removes the gate's file.
fn release_and_shut_down(pool: &MpiPoolExecutor, gate: &std::path::Path) {
    open(gate);
    pool.shutdown(true, false);
    let _ = std::fs::remove_file(gate);
}

fn mpi4py_test_submit_cancel() {
    let pool = pool();
    let gate = gate("submit-cancel");
    let fs: Vec<_> = (0..pool.max_workers() * 100)
        .map(|_| pool.submit(wait_for_gate, gate.clone()).unwrap())
        .collect();
    let future = pool.submit(wait_for_gate, gate.clone()).unwrap();
    assert!(future.cancel(), "a queued task can be cancelled");
    assert!(future.cancelled());
    for f in &fs {
        f.cancel();
    }
    open(&gate);
    pool.shutdown(true, false);
    assert!(fs.iter().all(|f| f.done()));
    let _ = std::fs::remove_file(&gate);
}

fn mpi4py_test_submit_shutdown_cancel_wait() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let gate = gate("shutdown-cancel-wait");
    let fut1 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let others: Vec<_> = (0..100)
        .map(|_| pool.submit(wait_for_gate, gate.clone()).unwrap())
        .collect();
    let fut2 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let fut3 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    pool.shutdown(false, true);
    open(&gate);
    let waited = concurrent_futures_wait::wait(
        [fut1.clone(), fut2.clone(), fut3.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::AllCompleted,
    );
    assert_eq!(waited.not_done.len(), 0);
    assert!(!fut1.cancelled(), "the running task ends normally");
    assert_eq!(fut1.result(None).unwrap(), 1);
    assert!(fut2.cancelled());
    assert!(fut3.cancelled());
    pool.shutdown(true, true);
    assert!(others.iter().all(|f| f.done()));
    // Only the few sent ahead to the worker with `fut1` ran; the queued rest were cancelled.
    let ran = others.iter().filter(|f| !f.cancelled()).count();
    assert!(ran < 10, "{ran} of the 100 queued tasks ran");
    let _ = std::fs::remove_file(&gate);
}

fn mpi4py_test_shutdown_cancel() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    pool.shutdown(false, false);
    pool.shutdown(false, false);
    pool.shutdown(false, true);
    pool.shutdown(false, true);
    pool.shutdown(true, true);
    pool.shutdown(true, true);
    assert!(matches!(pool.submit(double, 1), Err(SubmitError::Shutdown)));
}

fn mpi4py_test_first_completed() {
    let pool = pool();
    let gate = gate("first-completed");
    let cancelled = cancelled_future();
    let future1 = pool.submit(double, 21).unwrap();
    let future2 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let waited = concurrent_futures_wait::wait(
        [cancelled.clone(), future1.clone(), future2.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::FirstCompleted,
    );
    assert_eq!(waited.done, vec![future1]);
    assert_eq!(waited.not_done, vec![cancelled, future2]);
    release_and_shut_down(&pool, &gate);
}

fn mpi4py_test_zero_timeout() {
    let pool = pool();
    let gate = gate("zero-timeout");
    let cancelled_and_notified = cancelled_and_notified_future();
    let failed = exception_future();
    let successful = successful_future();
    let future1 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let completed: Vec<_> = concurrent_futures_wait::as_completed(
        [
            cancelled_and_notified.clone(),
            failed.clone(),
            successful.clone(),
            future1,
        ],
        Duration::ZERO,
    )
    .map_while(Result::ok)
    .collect();
    assert_eq!(completed.len(), 3, "{completed:?}");
    for finished in [&cancelled_and_notified, &failed, &successful] {
        assert!(completed.contains(finished), "{finished:?} is yielded");
    }
    release_and_shut_down(&pool, &gate);
}

// mpi4py's module-level futures, made in the states its tests give them.

/// `CANCELLED_FUTURE`: cancelled, its waiters not told yet.
fn cancelled_future() -> concurrent_futures_core::Future<u32> {
    let future = concurrent_futures_core::Future::new();
    assert!(future.cancel());
    future
}

/// `CANCELLED_AND_NOTIFIED_FUTURE`.
fn cancelled_and_notified_future() -> concurrent_futures_core::Future<u32> {
    let future = cancelled_future();
    assert_eq!(future.set_running_or_notify_cancel(), Ok(false));
    future
}

/// `EXCEPTION_FUTURE`.
fn exception_future() -> concurrent_futures_core::Future<u32> {
    let future = concurrent_futures_core::Future::new();
    future
        .set_exception(TaskError::Panicked {
            message: "failed on purpose".into(),
        })
        .unwrap();
    future
}

/// `SUCCESSFUL_FUTURE`.
fn successful_future() -> concurrent_futures_core::Future<u32> {
    let future = concurrent_futures_core::Future::new();
    future.set_result(42).unwrap();
    future
}

fn mul((x, y): (u32, u32)) -> u32 {
    x * y
}

fn mpi4py_test_initializer_error_del_nowait() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .initializer(initializer_fails, ())
        .build()
        .unwrap();
    let workers = workers_of_this_program();
    pool.shutdown(false, false);
    drop(pool);
    assert_exit(
        workers,
        "is still running after the pool was shut down and dropped",
    );
}

/// mpi4py checks its pool's internals (`_pool`, `_shutdown`); here what a user sees: a
/// `shutdown(wait=False)` refuses new tasks and returns with the tasks still to run, and the
/// `shutdown(wait=True)` after it returns once they have run and the worker has gone.
fn mpi4py_test_shutdown() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let workers = workers_of_this_program();
    let futures: Vec<_> = [(21, 2), (6, 7), (3, 14)]
        .into_iter()
        .map(|pair| pool.submit(mul, pair).unwrap())
        .collect();
    pool.shutdown(false, false);
    assert!(matches!(pool.submit(double, 1), Err(SubmitError::Shutdown)));
    pool.shutdown(true, false);
    for future in &futures {
        assert!(
            future.done(),
            "shutdown(wait) returned before {future:?} ran"
        );
        assert_eq!(future.result(None).unwrap(), 42);
    }
    assert_exit(workers, "is still running after shutdown(wait)");
}

/// mpi4py's tasks sleep 0.1 s each, so that the queue is still long when `shutdown` comes;
/// here they wait for a gate, which the last future's done-callback opens: it runs only once
/// `shutdown(wait=True, cancel_futures=True)` has cancelled that future, and the running tasks
/// (which the shutdown waits for) end only then.
fn mpi4py_test_submit_shutdown_cancel() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let gate = gate("submit-shutdown-cancel");
    let queued: Vec<_> = (0..pool.max_workers() * 100)
        .map(|_| pool.submit(wait_for_gate, gate.clone()).unwrap())
        .collect();
    let future = pool.submit(wait_for_gate, gate.clone()).unwrap();
    pool.shutdown(false, false);
    assert!(!future.cancelled(), "shutdown without cancel_futures");
    let opens = gate.clone();
    future.add_done_callback(move |_| open(&opens));
    pool.shutdown(true, true);
    assert!(future.cancelled());
    assert!(queued.iter().all(|f| f.done()));
    let _ = std::fs::remove_file(&gate);
}

/// `del executor`: here, dropping the pool. It shuts down, waiting, and its worker goes.
fn mpi4py_test_del_shutdown() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let workers = workers_of_this_program();
    let absolute: Vec<u32> = pool
        .map(|x: i32| x.unsigned_abs(), -5..5)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(absolute, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
    let future = pool.submit(double, 21).unwrap();
    drop(pool);
    assert_eq!(future.result(Duration::ZERO).unwrap(), 42);
    assert_exit(workers, "outlived its dropped pool");
}

fn mpi4py_test_first_completed_some_already_completed() {
    let pool = pool();
    let gate = gate("first-completed-some");
    let cancelled_and_notified = cancelled_and_notified_future();
    let successful = successful_future();
    let future1 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let waited = concurrent_futures_wait::wait(
        [
            cancelled_and_notified.clone(),
            successful.clone(),
            future1.clone(),
        ],
        None,
        concurrent_futures_wait::ReturnWhen::FirstCompleted,
    );
    assert_eq!(waited.done, vec![cancelled_and_notified, successful]);
    assert_eq!(waited.not_done, vec![future1]);
    release_and_shut_down(&pool, &gate);
}

/// mpi4py's first task is fast and its failing one sleeps 0.25 s first, so the first is done
/// when the failure comes; here the test waits for the first task's result instead.
fn mpi4py_test_first_exception() {
    let pool = pool();
    let gate = gate("first-exception");
    let future1 = pool.submit(mul, (2, 21)).unwrap();
    assert_eq!(future1.result(None).unwrap(), 42);
    let future2 = pool.submit(fails, 3).unwrap();
    let future3 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let waited = concurrent_futures_wait::wait(
        [future1.clone(), future2.clone(), future3.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::FirstException,
    );
    assert_eq!(waited.done, vec![future1, future2]);
    assert_eq!(waited.not_done, vec![future3]);
    release_and_shut_down(&pool, &gate);
}

fn mpi4py_test_first_exception_one_already_failed() {
    let pool = pool();
    let gate = gate("first-exception-one-failed");
    let failed = exception_future();
    let future1 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let waited = concurrent_futures_wait::wait(
        [failed.clone(), future1.clone()],
        None,
        concurrent_futures_wait::ReturnWhen::FirstException,
    );
    assert_eq!(waited.done, vec![failed]);
    assert_eq!(waited.not_done, vec![future1]);
    release_and_shut_down(&pool, &gate);
}

/// mpi4py's fast task must finish within the 0.5 s timeout; here the test waits for its result
/// first, so only the gated task can be left pending.
fn mpi4py_test_timeout() {
    let pool = pool();
    let gate = gate("timeout");
    let future1 = pool.submit(mul, (6, 7)).unwrap();
    assert_eq!(future1.result(None).unwrap(), 42);
    let future2 = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let finished = [
        cancelled_and_notified_future(),
        exception_future(),
        successful_future(),
        future1,
    ];
    let waited = concurrent_futures_wait::wait(
        finished.iter().cloned().chain([future2.clone()]),
        Duration::from_millis(500),
        concurrent_futures_wait::ReturnWhen::AllCompleted,
    );
    assert_eq!(waited.done, finished);
    assert_eq!(waited.not_done, vec![future2]);
    release_and_shut_down(&pool, &gate);
}

/// As [`mpi4py_test_timeout`], the fast task's result is taken first; the task left running
/// (mpi4py's 0.5 s sleep, here a gate) is not among the futures waited for.
fn mpi4py_test_nonzero_timeout() {
    let pool = pool();
    let gate = gate("nonzero-timeout");
    let future1 = pool.submit(double, 0).unwrap();
    future1.result(None).unwrap();
    let running = pool.submit(wait_for_gate, gate.clone()).unwrap();
    let given = [
        cancelled_and_notified_future(),
        exception_future(),
        successful_future(),
        future1,
    ];
    let completed: Vec<_> =
        concurrent_futures_wait::as_completed(given.iter().cloned(), Duration::from_millis(200))
            .collect::<Result<_, _>>()
            .expect("every future given is done: no timeout");
    assert_eq!(completed.len(), 4, "{completed:?}");
    for future in &given {
        assert!(completed.contains(future), "{future:?} is yielded");
    }
    assert!(!running.done());
    release_and_shut_down(&pool, &gate);
}

fn mpi4py_test_submit() {
    let pool = pool();
    assert_eq!(
        pool.submit(pow_of, (2, 8)).unwrap().result(None).unwrap(),
        256
    );
}

/// `map(pow, range(10), range(10))`: a task takes one argument, so two iterables are zipped
/// into pairs.
fn mpi4py_test_map() {
    let pool = pool();
    let got: Vec<u64> = pool
        .map(pow_of, (0..10).map(|a| (a, a as u32)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let reference: Vec<u64> = (0..10u64).map(|a| a.pow(a as u32)).collect();
    assert_eq!(got, reference);
}

fn mpi4py_test_map_exception() {
    let pool = pool();
    let mut it = pool.map(divide, [(1, 2), (1, 3), (1, 0), (1, 5)]).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert_eq!(it.next().unwrap().unwrap(), 0);
    match it.next() {
        Some(Err(concurrent_futures_core::MapError::Future(FutureError::Failed(
            TaskError::Remote { message, .. },
        )))) => assert!(message.contains("divide by zero"), "{message}"),
        other => panic!("expected the division's panic, got {other:?}"),
    }
    assert!(it.next().is_none(), "the iteration ends at the error");
}

/// A timeout that is not reached (mpi4py's is 1 s for three `sleep(0)`; here 60 s, since only
/// the results are asserted) yields every result.
fn mpi4py_test_map_timeout_one() {
    let pool = pool();
    let options = concurrent_futures_core::MapOptions::new().timeout(Duration::from_secs(60));
    let got: Vec<u32> = pool
        .map_with(double, [0, 0, 0], options)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [0, 0, 0]);
}

/// Rust's `starmap` is `map` over tuples: a task takes one argument. From a list, and from an
/// iterator, as mpi4py does.
fn mpi4py_test_starmap() {
    let pool = pool();
    let sequence: Vec<(u64, u32)> = (0..10).map(|a| (a, a as u32)).collect();
    let reference: Vec<u64> = sequence.iter().copied().map(pow_of).collect();
    let from_list: Vec<u64> = pool
        .map(pow_of, sequence.clone())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(from_list, reference);
    let from_iterator: Vec<u64> = pool
        .map(pow_of, sequence.iter().copied())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(from_iterator, reference);
}

fn mpi4py_test_starmap_chunksize() {
    let pool = pool();
    let sequence: Vec<(u64, u32)> = (0..40).map(|a| (a % 7, a as u32 % 5)).collect();
    let reference: Vec<u64> = sequence.iter().copied().map(pow_of).collect();
    for chunksize in [6, 50, 40] {
        let options = concurrent_futures_core::MapOptions::new().chunksize(chunksize);
        for lazily in [false, true] {
            // A list, or an iterator that does not know its length.
            let inputs: Box<dyn Iterator<Item = (u64, u32)>> = if lazily {
                Box::new(sequence.iter().copied().filter(|_| true))
            } else {
                Box::new(sequence.clone().into_iter())
            };
            let got: Vec<u64> = pool
                .map_with(pow_of, inputs, options)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(got, reference, "chunksize {chunksize}, lazily: {lazily}");
        }
    }
    let bad = concurrent_futures_core::MapOptions::new().chunksize(0);
    assert!(matches!(
        pool.map_with(pow_of, sequence, bad),
        Err(SubmitError::InvalidArgument(_))
    ));
}

fn identity(x: u32) -> u32 {
    x
}

/// Three pools of one worker each, all running at once in this process.
fn mpi4py_test_multiple_executors() {
    let pools: Vec<MpiPoolExecutor> = (0..3)
        .map(|_| MpiPoolExecutor::builder().max_workers(1).build().unwrap())
        .collect();
    let submitted: Vec<Vec<_>> = pools
        .iter()
        .zip([100, 200, 300])
        .map(|(pool, start)| {
            (start..start + 100)
                .map(|i| pool.submit(identity, i).unwrap())
                .collect()
        })
        .collect();
    let all: Vec<_> = submitted.iter().rev().flatten().cloned().collect();
    let waited =
        concurrent_futures_wait::wait(all, None, concurrent_futures_wait::ReturnWhen::AllCompleted);
    assert!(waited.not_done.is_empty());
    for (futures, start) in submitted.iter().zip([100, 200, 300]) {
        for (i, future) in futures.iter().enumerate() {
            assert_eq!(future.result(None).unwrap(), start + i as u32);
        }
    }
}

/// mpi4py's `GoodPickle`: a value with its own serde code, which marks the copies it decodes.
#[derive(Debug, Clone)]
struct GoodPickle {
    value: u32,
    /// Set on the copies deserialization made.
    unpickled: bool,
}

impl Serialize for GoodPickle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.value)
    }
}

impl<'de> Deserialize<'de> for GoodPickle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(GoodPickle {
            value: u32::deserialize(deserializer)?,
            unpickled: true,
        })
    }
}

fn inout<T>(value: T) -> T {
    value
}

fn make_good_pickle(value: u32) -> GoodPickle {
    GoodPickle {
        value,
        unpickled: false,
    }
}

fn mpi4py_test_good_pickle() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let sent = make_good_pickle(42);
    let back = pool
        .submit(inout::<GoodPickle>, sent)
        .unwrap()
        .into_result(None)
        .unwrap();
    assert_eq!(back.value, 42);
    assert!(back.unpickled);
    let made = pool
        .submit(make_good_pickle, 77)
        .unwrap()
        .into_result(None)
        .unwrap();
    assert_eq!(made.value, 77);
    assert!(made.unpickled, "the worker's value came by serde");
}

fn make_unsendable(_: ()) -> Unsendable {
    Unsendable
}

/// The payload stage at which `future` failed.
fn payload_stage<R>(future: concurrent_futures_core::Future<R>) -> PayloadStage {
    match future.exception(None) {
        Ok(Some(TaskError::Payload(p))) => p.stage(),
        other => panic!("expected a payload error, got {other:?}"),
    }
}

/// mpi4py's `BadPickle` raises `ZeroDivisionError` when pickled, as an argument (in this
/// process) and as a result (in the worker); either fails its future only.
fn mpi4py_test_bad_pickle() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let stage = payload_stage(pool.submit(inout::<Unsendable>, Unsendable).unwrap());
    assert_eq!(stage, PayloadStage::EncodeArgument);
    let stage = payload_stage(pool.submit(make_unsendable, ()).unwrap());
    assert_eq!(stage, PayloadStage::EncodeResult);
    assert_eq!(pool.submit(identity, 42).unwrap().result(None).unwrap(), 42);
}

/// mpi4py's `BadUnpickle`: encodes, but fails to decode.
#[derive(Debug, Clone, Serialize)]
struct BadUnpickle;

impl<'de> Deserialize<'de> for BadUnpickle {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("this value cannot be rebuilt"))
    }
}

fn make_bad_unpickle(_: ()) -> BadUnpickle {
    BadUnpickle
}

/// As an argument it fails to decode in the worker; as a result, in this process; either fails
/// its future only.
fn mpi4py_test_bad_unpickle() {
    let pool = MpiPoolExecutor::builder().max_workers(1).build().unwrap();
    let stage = payload_stage(pool.submit(inout::<BadUnpickle>, BadUnpickle).unwrap());
    assert_eq!(stage, PayloadStage::DecodeArgument);
    let stage = payload_stage(pool.submit(make_bad_unpickle, ()).unwrap());
    assert_eq!(stage, PayloadStage::DecodeResult);
    assert_eq!(pool.submit(identity, 42).unwrap().result(None).unwrap(), 42);
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Pins (or unpins) the calling thread with `taskset`; threads it spawns inherit it.
fn pin_this_thread(cpus: &str) {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = link.file_name().unwrap().to_str().unwrap().to_owned();
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", cpus, &tid])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A worker starts its own heartbeat only once it reads the pool's first pulse, which the
/// pool's heartbeat thread sends as soon as it runs. If the init and a first task reach the
/// worker before that pulse (the thread starts late: here it shares one core with the thread
/// that builds the pool and submits), the worker runs the task without ever pulsing, and the
/// pool presumes a healthy worker dead (and kills it) after the heartbeat timeout.
fn a_long_first_task_is_not_presumed_dead() {
    let cpus = format!(
        "0-{}",
        std::thread::available_parallelism().unwrap().get() - 1
    );
    for round in 0..3 {
        pin_this_thread("0");
        let pool = MpiPoolExecutor::builder()
            .max_workers(2)
            .heartbeat_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let futures: Vec<_> = (0..2)
            .map(|_| pool.submit(sleep_ms, 2500).unwrap())
            .collect();
        pin_this_thread(&cpus);
        for f in futures {
            match f.result(None) {
                Ok(ms) => assert_eq!(ms, 2500),
                Err(e) => panic!("round {round}: a healthy worker running a 2.5 s task: {e:?}"),
            }
        }
        pool.shutdown(true, false);
    }
}

/// One task that runs past the heartbeat timeout: the worker sends its result, then its
/// `recv` probed once, found nothing (the pulses that came during the task were there, but MPI
/// had not moved them along yet: a second probe a few microseconds later found them), judged
/// the pool silent, and exited without a goodbye; the pool saw a death and broke (found by
/// review). The half-second pause after the long task is the window in which that false
/// verdict would show; it orders nothing.
fn a_task_longer_than_the_heartbeat_timeout_does_not_break_the_pool() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .heartbeat_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let warm: Vec<_> = (0..2).map(|i| pool.submit(double, i).unwrap()).collect();
    for f in warm {
        f.result(None).unwrap();
    }
    assert_eq!(
        pool.submit(sleep_ms, 2500).unwrap().result(None).unwrap(),
        2500
    );
    std::thread::sleep(Duration::from_millis(500));
    match pool.submit(double, 21).map(|f| f.result(None)) {
        Ok(Ok(42)) => {}
        other => panic!("after a 2.5 s task (heartbeat timeout 1 s): {other:?}"),
    }
    pool.shutdown(true, false);
}

/// A large result (256 MiB: its transfer takes a good part of a second on Open MPI's TCP
/// transport) whose worker aborts 50 ms after the task returns, most likely while the result
/// is on its way. A `String`, which serde writes whole: a `Vec<u8>` goes byte by byte, which in
/// a debug build took seconds, so the worker died while still encoding.
fn big_then_die(_: ()) -> String {
    let result = "7".repeat(256 << 20);
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        std::process::abort();
    });
    result
}

/// A worker that dies while its large result comes: the receiving thread matched the message
/// and waited for it to come whole, for good (review, t12: it received with a blocking
/// MPI_Mrecv). Now the pool breaks; if the death came only after the whole result, the
/// result is delivered. Either way, no hang.
fn a_worker_that_dies_while_sending_a_large_result_breaks_the_pool() {
    let pool = pool();
    let big = pool.submit(big_then_die, ()).unwrap();
    match big.into_result(Some(Duration::from_secs(30))) {
        Err(FutureError::Failed(TaskError::Broken(_))) => {}
        Ok(v) => assert_eq!(v.len(), 256 << 20, "a whole result, or none"),
        Err(FutureError::Timeout(_)) => {
            panic!("the result of a worker that died mid-send never came, nor did its death")
        }
        Err(other) => panic!("expected a broken pool, got {other:?}"),
    }
    pool.shutdown(true, false);
}

/// A done-callback that blocks the receiving thread for three heartbeat timeouts: the workers'
/// pulses queue up meanwhile, and count.
fn a_slow_done_callback_does_not_make_the_workers_silent() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .heartbeat_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let first = pool.submit(sleep_ms, 100).unwrap();
    first.add_done_callback(|_| std::thread::sleep(Duration::from_secs(3)));
    let later: Vec<_> = (0..6).map(|i| pool.submit(double, i).unwrap()).collect();
    for (i, f) in later.into_iter().enumerate() {
        assert_eq!(f.result(None).unwrap(), 2 * i as u32, "task {i}");
    }
    assert_eq!(pool.submit(double, 5).unwrap().result(None).unwrap(), 10);
    pool.shutdown(true, false);
}

/// As [`big_then_die`], but the worker freezes (SIGSTOP) instead: a hung host mid-send.
fn big_then_freeze(_: ()) -> String {
    let result = "7".repeat(256 << 20);
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        let me = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &me])
            .status();
    });
    result
}

/// The heartbeat is to see a frozen worker; one frozen while its large result comes was
/// matched by the receiving thread, whose blocking MPI_Mrecv never returned (review, t12): no
/// silence was judged, and the pool hung. Now its silence breaks the pool (after the limit
/// plus the large message's allowance); a result that came whole before the freeze is
/// delivered. Either way, no hang.
fn a_worker_frozen_while_sending_a_large_result_is_presumed_dead() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(2)
        .heartbeat_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let big = pool.submit(big_then_freeze, ()).unwrap();
    match big.into_result(Some(Duration::from_secs(30))) {
        Err(FutureError::Failed(TaskError::Broken(b))) => {
            assert!(b.to_string().contains("heartbeat"), "{b}");
        }
        Ok(v) => assert_eq!(v.len(), 256 << 20, "a whole result, or none"),
        Err(FutureError::Timeout(_)) => {
            panic!("a worker frozen mid-send: neither its result nor its silence came in 30 s")
        }
        Err(other) => panic!("expected a broken pool, got {other:?}"),
    }
    pool.shutdown(true, false);
}

/// (A `String`, as [`length`]'s argument is.)
fn gib(_: ()) -> String {
    "3".repeat(1 << 30)
}

/// A healthy worker returns 1 GiB under a 1 s heartbeat timeout; it pulses throughout, but the
/// pool's receive of the result (carried by Open MPI's TCP transport between the pool and its
/// spawned workers) is bounded by the heartbeat's limit as a whole, so a transfer longer
/// than 1 s counts the worker Silent, kills it and breaks the pool (second review, t12).
fn a_large_result_slower_than_the_heartbeat_timeout_does_not_break_the_pool() {
    let pool = MpiPoolExecutor::builder()
        .max_workers(1)
        .heartbeat_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    match pool.submit(gib, ()).unwrap().into_result(None) {
        Ok(v) => {
            assert_eq!(v.len(), 1 << 30);
            eprintln!("  1 GiB result in {:?}", started.elapsed());
        }
        Err(e) => panic!(
            "a healthy worker returning 1 GiB (after {:?}): {e:?}",
            started.elapsed()
        ),
    }
    pool.shutdown(true, false);
}

/// Returns at once, and aborts the worker's process once `gate` opens.
fn die_at_gate(gate: std::path::PathBuf) {
    std::thread::spawn(move || {
        wait_for_gate(gate);
        std::process::abort();
    });
}

/// (A `String`: serde writes it whole, where a `Vec<u8>` goes byte by byte, which takes most of
/// a minute for 512 MiB in a debug build.)
fn length(text: String) -> usize {
    text.len()
}

/// The other direction of [`a_worker_that_dies_while_sending_a_large_result_breaks_the_pool`]:
/// the pool's non-blocking send of a 512 MiB task is under way on Open MPI's TCP transport
/// (the submit has returned) when its worker dies. The pool breaks, naming the rank; the send
/// never completes, and neither it nor the disconnect from a dead peer may hang the pool or
/// its shutdown, or leave a process.
fn a_worker_that_dies_while_a_large_task_comes_breaks_the_pool() {
    // A 1 s heartbeat timeout: the receiving thread is found stuck after 5 s (the least).
    let pool = MpiPoolExecutor::builder()
        .max_workers(1)
        .heartbeat_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let workers = workers_of_this_program();
    let death = gate("death");
    let started = std::time::Instant::now();
    pool.submit(die_at_gate, death.clone())
        .unwrap()
        .result(None)
        .unwrap();
    let big = pool.submit(length, "x".repeat(512 << 20)).unwrap();
    eprintln!("  large task sent after {:?}", started.elapsed());
    open(&death);
    match big.result(Some(Duration::from_secs(30))) {
        Err(FutureError::Failed(TaskError::Broken(b))) => {
            assert!(b.to_string().contains("rank 0"), "{b}");
        }
        Ok(n) => panic!("a worker that died ran the 512 MiB task ({n} bytes)"),
        Err(FutureError::Timeout(_)) => {
            panic!("a worker died while its large task came: no verdict in 30 s")
        }
        Err(other) => panic!("expected a broken pool, got {other:?}"),
    }
    eprintln!("  broken after {:?}", started.elapsed());
    pool.shutdown(true, false);
    eprintln!("  shut down after {:?}", started.elapsed());
    let _ = std::fs::remove_file(&death);
    assert_exit(workers, "is still running after shutdown");
    // If Open MPI wedged (its TCP transport, version 4.1, usually does here), no pool starts
    // in this process any more, and saying so is immediate.
    if let Err(e) = MpiPoolExecutor::builder().max_workers(1).build() {
        assert!(matches!(e, MpiError::Stuck { .. }), "{e:?}");
    }
}
