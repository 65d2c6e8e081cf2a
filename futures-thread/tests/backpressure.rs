//! The bounded submit queue (`max_queue` with a `QueueFullPolicy`): every policy, every way of
//! submitting (submit, the pool's `map`, the trait's `map`, scopes), and the wake-ups of a
//! blocked submitter (a worker taking a task, shutdown).
#![cfg(not(loom))]

use concurrent_futures_core::{Executor, Future, QueueFullPolicy, State, SubmitError};
use concurrent_futures_testkit::{Gate, Latch, ThreadProbe, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn pool(policy: QueueFullPolicy) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .max_queue(1)
        .queue_full_policy(policy)
        .build()
        .unwrap()
}

/// Fills the pool of [`pool`]: its one worker runs a task blocked on `gate` (started, so it
/// left the queue), and one task waits in the queue, which is then full.
fn fill(pool: &ThreadPoolExecutor, gate: &Gate) -> (Future<()>, Future<u32>) {
    let started = Latch::new(1);
    let (g, s) = (gate.clone(), started.clone());
    let busy = pool
        .spawn(move || {
            s.count_down();
            g.wait();
        })
        .unwrap();
    started.wait();
    let queued = pool.spawn(|| 7).unwrap();
    assert_eq!(pool.stats().pending, 1);
    (busy, queued)
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn reject_refuses_a_submit_to_a_full_queue_with_queue_full_naming_the_bound() {
    watchdog(|| {
        let pool = pool(QueueFullPolicy::Reject);
        let gate = Gate::new();
        let (busy, queued) = fill(&pool, &gate);
        let refused = pool.spawn(|| 1).unwrap_err();
        assert_eq!(refused, SubmitError::QueueFull { bound: 1 });
        assert!(refused.to_string().contains("max_queue"), "{refused}");
        gate.open();
        busy.result(None).unwrap();
        assert_eq!(queued.result(None).unwrap(), 7);
        // Room again: accepted.
        assert_eq!(pool.spawn(|| 2).unwrap().result(None).unwrap(), 2);
    });
}

#[test]
fn caller_runs_runs_the_task_in_the_submitting_thread_before_submit_returns() {
    watchdog(|| {
        let pool = pool(QueueFullPolicy::CallerRuns);
        let gate = Gate::new();
        let (busy, queued) = fill(&pool, &gate);
        let ran_here = pool.spawn(|| thread::current().id()).unwrap();
        assert_eq!(
            ran_here.state(),
            State::Finished,
            "done when submit returned"
        );
        assert_eq!(ran_here.result(None).unwrap(), thread::current().id());
        // Its panic fails only its future, as on a worker.
        let failed = pool.spawn(|| -> u8 { panic!("inline boom") }).unwrap();
        assert!(
            failed
                .result(None)
                .unwrap_err()
                .to_string()
                .contains("inline boom")
        );
        gate.open();
        busy.result(None).unwrap();
        assert_eq!(queued.result(None).unwrap(), 7);
    });
}

#[test]
fn block_with_a_timeout_gives_up_with_queue_full_after_the_timeout() {
    watchdog(|| {
        let timeout = Duration::from_millis(50);
        let pool = pool(QueueFullPolicy::Block {
            timeout: Some(timeout),
        });
        let gate = Gate::new();
        let (busy, _queued) = fill(&pool, &gate);
        let start = Instant::now();
        let refused = pool.spawn(|| 1).unwrap_err();
        assert!(start.elapsed() >= timeout);
        assert_eq!(refused, SubmitError::QueueFull { bound: 1 });
        gate.open();
        busy.result(None).unwrap();
    });
}

/// Runs `submit` on its own thread, and returns once that thread is blocked in it.
fn blocked_submitter<T: Send + 'static>(
    submit: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        tx.send(ThreadProbe::current()).unwrap();
        submit()
    });
    rx.recv().unwrap().wait_until_sleeping();
    handle
}

#[test]
fn a_blocked_submitter_is_woken_when_a_worker_takes_a_task() {
    watchdog(|| {
        let pool = std::sync::Arc::new(pool(QueueFullPolicy::Block { timeout: None }));
        let gate = Gate::new();
        let (busy, queued) = fill(&pool, &gate);
        let p = pool.clone();
        let submitter = blocked_submitter(move || p.spawn(|| 3));
        assert_eq!(pool.stats().pending, 1, "still full: the submitter waits");
        gate.open(); // the worker finishes, takes the queued task: room
        let third = submitter.join().unwrap().unwrap();
        busy.result(None).unwrap();
        assert_eq!(queued.result(None).unwrap(), 7);
        assert_eq!(third.result(None).unwrap(), 3);
    });
}

#[test]
fn a_blocked_submitter_is_refused_with_shutdown_when_the_pool_shuts_down() {
    watchdog(|| {
        let pool = std::sync::Arc::new(pool(QueueFullPolicy::Block { timeout: None }));
        let gate = Gate::new();
        let (busy, queued) = fill(&pool, &gate);
        let p = pool.clone();
        let submitter = blocked_submitter(move || p.spawn(|| 3));
        pool.shutdown(false, false);
        assert_eq!(
            submitter.join().unwrap().unwrap_err(),
            SubmitError::Shutdown
        );
        gate.open();
        busy.result(None).unwrap();
        assert_eq!(queued.result(None).unwrap(), 7, "queued work still runs");
    });
}

#[test]
fn a_blocked_submitter_is_refused_when_the_pool_breaks() {
    watchdog(|| {
        // The initializer waits for the gate, then fails: the pool breaks while full.
        let gate = Gate::new();
        let g = gate.clone();
        let pool = std::sync::Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .max_queue(1)
                .try_initializer(move || {
                    g.wait();
                    Err("no database")
                })
                .build()
                .unwrap(),
        );
        // One task for the (initializing) worker, one waiting: the queue is full.
        let first = pool.spawn(|| 1).unwrap();
        let queued = pool.spawn(|| 2).unwrap();
        let p = pool.clone();
        let submitter = blocked_submitter(move || p.spawn(|| 3));
        gate.open();
        let refused = submitter.join().unwrap().unwrap_err();
        assert!(matches!(refused, SubmitError::Broken(_)), "{refused:?}");
        assert!(first.result(None).is_err());
        assert!(queued.result(None).is_err());
    });
}

#[test]
fn the_pools_own_map_respects_the_bound() {
    watchdog(|| {
        let pool = pool(QueueFullPolicy::Reject);
        let gate = Gate::new();
        let (busy, _queued) = fill(&pool, &gate);
        let refused = pool.map(|x: u64| x + 1, 0..3).map(|_| ()).unwrap_err();
        assert_eq!(refused, SubmitError::QueueFull { bound: 1 });
        gate.open();
        busy.result(None).unwrap();
    });
}

#[test]
fn the_executor_traits_map_respects_the_bound() {
    watchdog(|| {
        let pool = pool(QueueFullPolicy::Reject);
        let gate = Gate::new();
        let (busy, _queued) = fill(&pool, &gate);
        let refused = Executor::map(&pool, square, 0..3).map(|_| ()).unwrap_err();
        assert_eq!(refused, SubmitError::QueueFull { bound: 1 });
        gate.open();
        busy.result(None).unwrap();
    });
}

#[test]
fn a_map_over_more_inputs_than_the_bound_finishes_when_the_submitter_blocks() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .max_queue(2)
            .build()
            .unwrap();
        let squares: u64 = pool.map(square, 0..1000).unwrap().map(Result::unwrap).sum();
        assert_eq!(squares, (0..1000).map(square).sum());
        assert!(pool.stats().pending <= 2);
    });
}

#[test]
fn a_scoped_task_on_a_full_queue_runs_in_the_spawning_thread_whatever_the_policy() {
    watchdog(|| {
        for policy in [
            QueueFullPolicy::Reject,
            QueueFullPolicy::Block { timeout: None },
        ] {
            let pool = pool(policy);
            let gate = Gate::new();
            let (busy, queued) = fill(&pool, &gate);
            let here = thread::current().id();
            let ran_on = pool.scope(|s| {
                let f = s.spawn(|| thread::current().id()).unwrap();
                assert_eq!(f.state(), State::Finished);
                f.result(None).unwrap()
            });
            assert_eq!(ran_on, here);
            gate.open();
            busy.result(None).unwrap();
            assert_eq!(queued.result(None).unwrap(), 7);
        }
    });
}

/// A scope opened inside the pool's only worker, on a full queue, with `Block`: its tasks
/// cannot wait for room that only this worker would make.
#[test]
fn a_scope_inside_a_task_on_a_full_blocking_queue_does_not_deadlock() {
    watchdog(|| {
        let pool = std::sync::Arc::new(pool(QueueFullPolicy::Block { timeout: None }));
        let (inside, queue_is_full) = (Latch::new(1), Gate::new());
        let (i, q, p) = (inside.clone(), queue_is_full.clone(), pool.clone());
        let outer = pool
            .spawn(move || {
                i.count_down();
                q.wait();
                p.scope(|s| {
                    let fs: Vec<_> = (0..3u32).map(|n| s.spawn(move || n).unwrap()).collect();
                    fs.iter().map(|f| f.result(None).unwrap()).sum::<u32>()
                })
            })
            .unwrap();
        inside.wait();
        let queued = pool.spawn(|| 7).unwrap();
        queue_is_full.open();
        assert_eq!(outer.result(None).unwrap(), 3);
        assert_eq!(queued.result(None).unwrap(), 7);
    });
}

#[test]
fn max_queue_zero_is_refused_and_the_default_is_unbounded() {
    let err = ThreadPoolExecutor::builder()
        .max_queue(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_queue must be greater than 0");
    assert_eq!(ThreadPoolExecutor::new().max_queue(), None);
    assert_eq!(pool(QueueFullPolicy::Reject).max_queue(), Some(1));
}

/// Tasks that a worker can start at once (free workers, or workers the pool may still start)
/// do not count against the bound: a fresh pool of four with `max_queue(1)` takes five tasks
/// (four running, one waiting), then refuses. It refused the second before.
#[test]
fn reject_counts_only_the_tasks_that_must_wait() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(4)
            .max_queue(1)
            .queue_full_policy(QueueFullPolicy::Reject)
            .build()
            .unwrap();
        let gate = Gate::new();
        let started = Latch::new(4);
        let running: Vec<_> = (0..4)
            .map(|_| {
                let (g, s) = (gate.clone(), started.clone());
                pool.spawn(move || {
                    s.count_down();
                    g.wait();
                })
                .unwrap()
            })
            .collect();
        let waiting = pool.spawn(|| ()).unwrap();
        started.wait();
        assert_eq!(
            pool.spawn(|| ()).unwrap_err(),
            SubmitError::QueueFull { bound: 1 }
        );
        gate.open();
        for f in running {
            f.result(None).unwrap();
        }
        waiting.result(None).unwrap();
    });
}
