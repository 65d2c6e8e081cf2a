//! The thread pool's own `map` (closures, any `Send` type) keeps Python 3.14's `map` semantics
//! (spec §1.6.1): input order, the timeout counted from the call, `buffersize` refilling before
//! it waits, the first error ending the iteration and cancelling the rest, and dropping the
//! iterator cancelling what has not started. The values here are deliberately not `Clone`.
#![cfg(not(loom))]

use concurrent_futures_core::{FutureError, MapError, MapOptions, SubmitError, TaskError};
use concurrent_futures_testkit::fixtures::Unfused;
use concurrent_futures_testkit::{Gate, ThreadProbe, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A value that is neither `Clone` nor a serde type.
#[derive(Debug, PartialEq, Eq)]
struct Item(u64);

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Which inputs a map's closure ran on.
#[derive(Clone, Default)]
struct Ran(Arc<Mutex<Vec<u64>>>);

impl Ran {
    fn record(&self, n: u64) {
        self.0.lock().unwrap().push(n);
    }

    fn sorted(&self) -> Vec<u64> {
        let mut ran = self.0.lock().unwrap().clone();
        ran.sort_unstable();
        ran
    }
}

#[test]
fn results_come_in_input_order_when_tasks_finish_in_reverse() {
    watchdog(|| {
        let pool = pool(3);
        // Task i waits for task i + 1 to finish: they finish 2, 1, 0.
        let gates: Arc<Vec<Gate>> = Arc::new((0..3).map(|_| Gate::new()).collect());
        let finished = Ran::default();
        let (g, f) = (Arc::clone(&gates), finished.clone());
        let items: Vec<Item> = pool
            .map(
                move |Item(i)| {
                    if i < 2 {
                        g[i as usize].wait();
                    }
                    f.record(i);
                    if i > 0 {
                        g[i as usize - 1].open();
                    }
                    Item(10 * i)
                },
                (0..3).map(Item),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, [Item(0), Item(10), Item(20)]);
        assert_eq!(*finished.0.lock().unwrap(), [2, 1, 0]);
    });
}

#[test]
fn the_first_error_ends_the_iteration_and_cancels_the_tasks_not_started() {
    watchdog(|| {
        let pool = pool(1);
        let (ran, gate) = (Ran::default(), Gate::new());
        let (r, g) = (ran.clone(), gate.clone());
        let mut it = pool
            .map(
                move |Item(i)| {
                    r.record(i);
                    match i {
                        0 => panic!("input {i} failed"),
                        // Holds the only worker while the consumer sees the error.
                        1 => g.wait(),
                        _ => {}
                    }
                    Item(i)
                },
                (0..4).map(Item),
            )
            .unwrap();
        match it.next() {
            Some(Err(MapError::Future(FutureError::Failed(TaskError::Panicked { message })))) => {
                assert!(message.contains("input 0 failed"), "{message}")
            }
            other => panic!("expected the panic of input 0, got {other:?}"),
        }
        assert!(it.next().is_none());
        assert!(it.next().is_none());
        gate.open();
        pool.shutdown(true, false);
        // Input 1 may have started before the error was seen; 2 and 3 never do.
        assert!(!ran.sorted().contains(&2), "ran {:?}", ran.sorted());
        assert!(!ran.sorted().contains(&3), "ran {:?}", ran.sorted());
        drop(it);
    });
}

#[test]
fn dropping_the_iterator_cancels_the_tasks_not_started() {
    watchdog(|| {
        let pool = pool(1);
        let gate = Gate::new();
        let g = gate.clone();
        let blocker = pool.spawn(move || g.wait()).unwrap();
        let ran = Ran::default();
        let r = ran.clone();
        let it = pool
            .map(move |Item(i)| r.record(i), (0..3).map(Item))
            .unwrap();
        drop(it);
        gate.open();
        blocker.result(None).unwrap();
        pool.shutdown(true, false);
        assert_eq!(ran.sorted(), Vec::<u64>::new());
    });
}

#[test]
fn the_timeout_counts_from_the_call_to_map() {
    watchdog(|| {
        let pool = pool(1);
        let gate = Gate::new();
        let g = gate.clone();
        let timeout = Duration::from_millis(500);
        let called = Instant::now();
        let mut it = pool
            .map_with(
                move |Item(i)| {
                    g.wait();
                    Item(i)
                },
                (0..2).map(Item),
                MapOptions::new().timeout(timeout),
            )
            .unwrap();
        // Let the whole timeout pass before the first `next()` (the clock is what is tested).
        while called.elapsed() < timeout {
            thread::yield_now();
        }
        let asked = Instant::now();
        let first = it.next();
        let waited = asked.elapsed();
        let second = it.next();
        gate.open();
        assert!(matches!(
            first,
            Some(Err(MapError::Future(FutureError::Timeout(_))))
        ));
        // Counted from each `next()`, it would have waited the whole timeout again.
        assert!(
            waited < timeout,
            "next() waited {waited:?} after the deadline had passed"
        );
        assert!(second.is_none());
    });
}

#[test]
fn finished_results_are_returned_even_after_the_deadline() {
    watchdog(|| {
        let pool = pool(2);
        let it = pool
            .map_with(
                |Item(i)| Item(i + 1),
                (0..3).map(Item),
                MapOptions::new().timeout(Duration::ZERO),
            )
            .unwrap();
        // Every task has finished once the workers are joined.
        pool.shutdown(true, false);
        let items: Vec<Item> = it.map(Result::unwrap).collect();
        assert_eq!(items, [Item(1), Item(2), Item(3)]);
    });
}

#[test]
fn buffersize_submits_one_more_input_before_waiting_for_the_oldest() {
    watchdog(|| {
        let pool = pool(1);
        let gate = Gate::new();
        let g = gate.clone();
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = Arc::clone(&pulled);
        let inputs = (0..10).map(move |i| {
            p.fetch_add(1, Ordering::SeqCst);
            Item(i)
        });
        let mut it = pool
            .map_with(
                move |Item(i)| {
                    if i == 0 {
                        g.wait();
                    }
                    Item(i)
                },
                inputs,
                MapOptions::new().buffersize(3),
            )
            .unwrap();
        assert_eq!(pulled.load(Ordering::SeqCst), 3, "buffersize inputs pulled");
        // Once the consumer sleeps waiting for item 0, see how many inputs it has pulled.
        let consumer = ThreadProbe::current();
        let (p, g) = (Arc::clone(&pulled), gate.clone());
        let observer = thread::spawn(move || {
            consumer.wait_until_sleeping();
            let seen = p.load(Ordering::SeqCst);
            g.open();
            seen
        });
        assert_eq!(it.next().unwrap().unwrap(), Item(0));
        assert_eq!(
            observer.join().unwrap(),
            4,
            "inputs pulled while waiting for the oldest"
        );
        assert_eq!(
            it.map(Result::unwrap).collect::<Vec<_>>(),
            (1..10).map(Item).collect::<Vec<_>>()
        );
    });
}

#[test]
fn buffersize_pulls_only_buffersize_inputs_of_an_infinite_iterator() {
    watchdog(|| {
        let pool = pool(2);
        let mut ints = 0..;
        let it = pool
            .map_with(
                |n: u64| Item(n),
                ints.by_ref(),
                MapOptions::new().buffersize(2),
            )
            .unwrap();
        drop(it);
        assert_eq!(ints.next(), Some(2));
        let firsts: Vec<Item> = pool
            .map_with(|n: u64| Item(n), 0.., MapOptions::new().buffersize(2))
            .unwrap()
            .take(3)
            .map(Result::unwrap)
            .collect();
        assert_eq!(firsts, [Item(0), Item(1), Item(2)]);
    });
}

#[test]
fn empty_inputs_give_no_results() {
    watchdog(|| {
        let pool = pool(1);
        assert!(pool.map(Item, Vec::new()).unwrap().next().is_none());
        let mut it = pool
            .map_with(Item, std::iter::empty(), MapOptions::new().buffersize(2))
            .unwrap();
        assert!(it.next().is_none());
        assert!(it.next().is_none());
    });
}

#[test]
fn without_buffersize_every_input_is_submitted_at_the_call() {
    watchdog(|| {
        let pool = pool(2);
        let ran = Ran::default();
        let r = ran.clone();
        let it = pool.map(move |i: u64| r.record(i), 0..10).unwrap();
        pool.shutdown(true, false);
        assert_eq!(ran.sorted(), (0..10).collect::<Vec<_>>());
        drop(it);
    });
}

#[test]
fn invalid_options_are_refused_at_the_call_with_pythons_messages() {
    let pool = pool(1);
    let err = pool
        .map_with(Item, 0..4, MapOptions::new().buffersize(0))
        .unwrap_err();
    assert_eq!(
        err,
        SubmitError::InvalidArgument("buffersize must be None or > 0")
    );
    let err = pool
        .map_with(Item, 0..4, MapOptions::new().chunksize(0))
        .unwrap_err();
    assert_eq!(err.to_string(), "chunksize must be >= 1.");
    // Python's thread pool accepts any other chunksize and ignores it.
    let items: Vec<Item> = pool
        .map_with(Item, 0..4, MapOptions::new().chunksize(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, (0..4).map(Item).collect::<Vec<_>>());
}

#[test]
fn map_after_shutdown_fails_at_the_call_and_a_refill_after_shutdown_ends_the_iteration() {
    watchdog(|| {
        let pool = pool(1);
        let mut it = pool
            .map_with(Item, 0..4, MapOptions::new().buffersize(1))
            .unwrap();
        pool.shutdown(true, false);
        assert!(matches!(
            it.next(),
            Some(Err(MapError::Submit(SubmitError::Shutdown)))
        ));
        assert!(it.next().is_none());
        drop(it);
        assert_eq!(pool.map(Item, 0..4).unwrap_err(), SubmitError::Shutdown);
    });
}

/// Counts the live values of one test.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(live: &Arc<AtomicUsize>) -> Counted {
        live.fetch_add(1, Ordering::SeqCst);
        Counted(Arc::clone(live))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `test_free_reference`: the iterator keeps nothing it has yielded.
#[test]
fn the_iterator_keeps_no_result_it_yielded() {
    watchdog(|| {
        let pool = pool(2);
        let live = Arc::new(AtomicUsize::new(0));
        let l = Arc::clone(&live);
        let mut it = pool.map(move |_: u64| Counted::new(&l), 0..10).unwrap();
        for _ in 0..10 {
            drop(it.next().unwrap().unwrap());
        }
        pool.shutdown(true, false);
        assert_eq!(live.load(Ordering::SeqCst), 0);
        assert!(it.next().is_none());
    });
}

/// Once the inputs end, `map` never asks them again (Python's loop stops there).
#[test]
fn with_a_buffersize_the_map_stops_at_the_first_end_of_the_inputs() {
    watchdog(|| {
        let pool = pool(2);
        let got: Vec<u64> = pool
            .map_with(|x| x, Unfused::default(), MapOptions::new().buffersize(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [1]);
    });
}

/// With `chunksize(n)` the inputs are queued `n` at a time (one reservation each), yet as many
/// threads start as one submit per input would: on a fresh pool of 4, four items that each
/// wait for all four to be running finish (with one thread per chunk they would wait forever),
/// and a map of more inputs than a chunk keeps them in order.
#[test]
fn a_chunked_map_starts_a_thread_per_item_up_to_max_workers_and_keeps_order() {
    watchdog(|| {
        let pool = pool(4);
        let all_running = Arc::new(std::sync::Barrier::new(4));
        let started: Vec<usize> = pool
            .map_with(
                move |i: usize| {
                    all_running.wait();
                    i
                },
                0..4,
                MapOptions::new().chunksize(64),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(started, [0, 1, 2, 3]);
        assert_eq!(pool.worker_count(), 4);
        let many: Vec<usize> = pool
            .map_with(|i: usize| i * 2, 0..1000, MapOptions::new().chunksize(64))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(many.iter().copied().eq((0..1000).map(|i| i * 2)));
    });
}
