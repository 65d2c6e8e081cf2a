//! Loom models of compensation (`shared/spare.rs`): a task that blocks in a wait on its own
//! pool gets a spare thread, whichever of "block" and "queue the awaited task" comes first;
//! no more than one spare starts for one blocked worker; and a spare retires without
//! stranding a task, even while the worker it stood in for blocks again.
//!
//! Run with `cargo xtask loom`. Each model deadlocks (loom reports it) or fails an assertion
//! if the step its comment names is missing. Every model runs the pool's real code: worker
//! and spare threads are loom threads (core's shim), and the waits go through core's
//! `blocking` hook on them.
#![cfg(loom)]

use concurrent_futures_core::{Future, State};
use concurrent_futures_thread::ThreadPoolExecutor;
use concurrent_futures_wait::{ReturnWhen, wait};
use loom::sync::Arc;

fn pool(max_workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(max_workers)
        .thread_name_prefix("loom")
        .build()
        .unwrap()
}

/// The only worker runs a task that queues another and waits for its result: the queued task
/// can only run on a spare. The worker sees the queued task when it counts itself blocked and
/// must start that spare (without it, both wait forever).
#[test]
fn a_task_waiting_for_a_task_it_queued_on_the_only_worker_gets_a_spare() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || inner.spawn(|| 7u8).unwrap().result(None).unwrap())
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 7);
        pool.shutdown(true, false);
    });
}

/// The only worker blocks on a future that a task queued by the caller completes. Either the
/// worker counts itself blocked first, and the submit must see it and start a spare; or the
/// task is queued first, and the worker must see it as it blocks and start the spare.
/// Dropping either side's check deadlocks the other order. The caller queues a second task
/// first, so two submits may each see the blocked worker and compensate: only one spare may
/// start (counted by the initializer) — `compensate` decides under the lock where threads
/// start, and never beyond `max_workers + blocked`.
#[test]
fn a_worker_blocking_while_the_caller_queues_what_it_waits_for_gets_one_spare_either_way() {
    loom::model(|| {
        // A std counter: loom need not interleave it, it only counts thread starts.
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = starts.clone();
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .thread_name_prefix("loom")
            .initializer(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let signal = Future::<u8>::new();
        let awaited = signal.clone();
        let outer = pool.spawn(move || awaited.result(None).unwrap()).unwrap();
        // Both race the worker's blocking wait.
        let extra = pool.spawn(|| ()).unwrap();
        let inner = pool.spawn(move || signal.set_result(3).unwrap()).unwrap();
        assert_eq!(outer.result(None).unwrap(), 3);
        inner.result(None).unwrap();
        extra.result(None).unwrap();
        pool.shutdown(true, false);
        assert!(starts.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    });
}

/// `wait` (a `Waiter`, not the future's own condition variable) blocks through the same hook:
/// the only worker waiting with it for a task it queued gets a spare.
#[test]
fn wait_in_a_task_for_a_task_it_queued_on_the_only_worker_gets_a_spare() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || {
                let queued = inner.spawn(|| 5u8).unwrap();
                wait([queued], None, ReturnWhen::AllCompleted).done.len()
            })
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 1);
        pool.shutdown(true, false);
    });
}

/// `into_result_when_last` waits, after the result, until its handle is the last one, with
/// the future's lock held — through the same hook. Here the other handle is held by a task
/// the only worker queued: only a spare can run it and drop it (and the spare's start, under
/// the pool's lock, never needs the future's lock: no lock-order deadlock).
#[test]
fn into_result_when_last_in_a_task_for_a_handle_a_queued_task_holds_gets_a_spare() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || {
                let future = Future::<u8>::new();
                future.set_result(4).unwrap();
                let held = future.clone();
                inner.spawn(move || drop(held)).unwrap();
                future.into_result_when_last(None).unwrap()
            })
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 4);
        pool.shutdown(true, false);
    });
}

/// After the wait, the spare is surplus and retires, as the resumed worker finishes and the
/// caller submits again: the new task must still run (a spare that retired while it was the
/// one awake for queued work, with the other worker asleep, would strand it: a deadlock loom
/// reports), and the pool never keeps more than one thread beyond the one blocked wait.
#[test]
fn a_spare_retiring_after_the_wait_strands_no_task_submitted_meanwhile() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || inner.spawn(|| 1u8).unwrap().result(None).unwrap())
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 1);
        let next = pool.spawn(|| 2u8).unwrap();
        assert_eq!(next.result(None).unwrap(), 2);
        assert!(pool.worker_count() <= 2, "{pool:?}");
        assert_eq!(next.state(), State::Finished);
        pool.shutdown(true, false);
    });
}

/// The only worker waits twice in one task. After the first wait its spare is surplus and
/// retires, while the worker queues a second task and blocks again: either the spare sees the
/// worker blocked again and stays, or the worker's compensation sees the spare gone and starts
/// a new one. `compensate` must decide under the lock where spares retire: counting a spare
/// that is halfway out as free strands the second task (a deadlock loom reports).
#[test]
fn a_worker_blocking_again_while_its_spare_retires_gets_a_spare() {
    loom::model(|| {
        let pool = Arc::new(pool(1));
        let inner = pool.clone();
        let outer = pool
            .spawn(move || {
                let first = inner.spawn(|| 1u8).unwrap().result(None).unwrap();
                first + inner.spawn(|| 2u8).unwrap().result(None).unwrap()
            })
            .unwrap();
        assert_eq!(outer.result(None).unwrap(), 3);
        pool.shutdown(true, false);
    });
}
