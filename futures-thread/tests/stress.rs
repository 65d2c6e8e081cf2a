//! Bounded stress: many submitters, cancels and a shutdown racing on real threads — the same
//! properties the loom models prove on tiny pools, checked at scale.
#![cfg(not(loom))]

use concurrent_futures_core::{Future, State, SubmitError};
use concurrent_futures_testkit::{Latch, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use concurrent_futures_wait::{ReturnWhen, wait};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

const SUBMITTERS: usize = 4;
const TASKS_EACH: usize = 2_000;

/// Every submitted task ends exactly one way — ran to the end, or was cancelled and notified
/// without running — while four threads submit and cancel and a fifth shuts the pool down.
#[test]
fn submitters_cancels_and_a_racing_shutdown_leave_no_future_unfinished() {
    watchdog(|| {
        for round in 0..5 {
            let pool = Arc::new(
                ThreadPoolExecutor::builder()
                    .max_workers(3)
                    .build()
                    .unwrap(),
            );
            let ran = Arc::new(AtomicUsize::new(0));
            let halfway = Latch::new(SUBMITTERS);
            let submitters: Vec<_> = (0..SUBMITTERS)
                .map(|s| {
                    let (pool, ran, halfway) = (pool.clone(), ran.clone(), halfway.clone());
                    thread::spawn(move || {
                        let mut accepted: Vec<Future<usize>> = Vec::new();
                        for i in 0..TASKS_EACH {
                            if i == TASKS_EACH / 2 {
                                halfway.count_down();
                            }
                            let r = ran.clone();
                            match pool.spawn(move || {
                                r.fetch_add(1, Ordering::SeqCst);
                                i
                            }) {
                                Ok(f) => {
                                    if (i + s + round) % 7 == 0 {
                                        f.cancel();
                                    }
                                    accepted.push(f);
                                }
                                Err(SubmitError::Shutdown) => break,
                                Err(e) => panic!("unexpected {e}"),
                            }
                        }
                        accepted
                    })
                })
                .collect();
            halfway.wait();
            pool.shutdown(false, true);
            let futures: Vec<Future<usize>> = submitters
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            pool.shutdown(true, false);

            // Each accepted future was either run or cancelled-and-notified by the pool (a
            // cancel that comes after the pool notified changes nothing), so `wait` sees all.
            let finished = futures
                .iter()
                .filter(|f| f.state() == State::Finished)
                .count();
            let notified = futures
                .iter()
                .filter(|f| f.state() == State::CancelledAndNotified)
                .count();
            assert_eq!(
                finished + notified,
                futures.len(),
                "every future ended (round {round})"
            );
            assert_eq!(
                ran.load(Ordering::SeqCst),
                finished,
                "no cancelled task ran (round {round})"
            );
            assert!(
                wait(&futures, None, ReturnWhen::AllCompleted)
                    .not_done
                    .is_empty()
            );
        }
    });
}

/// A one-worker pool runs tasks in the order they were submitted, also past the queue's ring
/// (`shared/queue.rs`): while the worker is held the ring fills and spills into the overflow,
/// and once it is released it drains both while the submitter keeps pushing.
#[test]
fn one_worker_runs_tasks_in_submission_order_past_the_ring() {
    watchdog(|| {
        const TASKS: usize = 20_000;
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let held = pool.spawn(move || gate.recv().unwrap()).unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::with_capacity(TASKS)));
        let mut futures = Vec::with_capacity(TASKS);
        for i in 0..TASKS {
            if i == TASKS / 4 {
                release.send(()).unwrap();
            }
            let order = order.clone();
            futures.push(pool.spawn(move || order.lock().unwrap().push(i)).unwrap());
        }
        held.result(None).unwrap();
        futures.iter().for_each(|f| f.result(None).unwrap());
        let order = order.lock().unwrap();
        assert!(order.iter().copied().eq(0..TASKS), "tasks ran out of order");
    });
}
