//! `map`'s items live in shared slots, not futures (`map/items.rs`): the cases where that
//! protocol can go wrong — an iterator asleep on an item that shutdown cancels, values left in
//! a segment when the iterator goes, a panicking `Drop` of such a value, a map waited on from
//! the pool's only worker, a pool that breaks under queued items.
#![cfg(not(loom))]

use concurrent_futures_core::blocking::{BlockingHook, install_hook};
use concurrent_futures_core::{FutureError, MapError, MapOptions, TaskError};
use concurrent_futures_testkit::{Gate, watchdog};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Opens its gate when its thread is about to sleep in a wait.
struct SleepSignal(Gate);

impl BlockingHook for SleepSignal {
    fn blocking(&self) -> bool {
        self.0.open();
        false
    }

    fn unblocked(&self) {}
}

#[test]
fn an_iterator_asleep_on_an_item_is_woken_when_shutdown_cancels_the_item() {
    watchdog(|| {
        let pool = Arc::new(pool(1));
        let hold = Gate::new();
        let h = hold.clone();
        let busy = pool.spawn(move || h.wait()).unwrap();
        let asleep = Arc::new(SleepSignal(Gate::new()));
        let (p, signal) = (Arc::clone(&pool), Arc::clone(&asleep));
        let iterator = std::thread::spawn(move || {
            let _hook = install_hook(signal);
            let mut items = p.map(|x: u32| x + 1, [1, 2]).unwrap();
            (items.next(), items.next())
        });
        // The only worker is held, so the first item stays queued while the iterator sleeps.
        asleep.0.wait();
        pool.shutdown(false, true);
        let (first, second) = iterator.join().unwrap();
        assert!(
            matches!(
                first,
                Some(Err(MapError::Future(FutureError::Cancelled(_))))
            ),
            "{first:?}"
        );
        assert!(second.is_none(), "the first error ends the iteration");
        hold.open();
        busy.result(None).unwrap();
    });
}

/// Counts the values alive, to see each dropped exactly once.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(alive: &Arc<AtomicUsize>) -> Counted {
        alive.fetch_add(1, Ordering::SeqCst);
        Counted(Arc::clone(alive))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// However a map ends — read to the end, dropped half read, ended by a panic or by the timeout,
/// never read at all — every input and every result is dropped once, across many segments.
#[test]
fn every_input_and_result_is_dropped_exactly_once_however_the_map_ends() {
    watchdog(|| {
        let pool = pool(2);
        let alive = Arc::new(AtomicUsize::new(0));
        for (case, read) in [("all read", 1000), ("half read", 500), ("none read", 0)] {
            let inputs: Vec<Counted> = (0..1000).map(|_| Counted::new(&alive)).collect();
            let made = Arc::clone(&alive);
            let items = pool
                .map(
                    move |input: Counted| {
                        drop(input);
                        Counted::new(&made)
                    },
                    inputs,
                )
                .unwrap();
            assert_eq!(
                items.take(read).filter(Result::is_ok).count(),
                read,
                "{case}"
            );
            // Items still running when the iterator went finish on the workers; wait for them.
            pool.spawn(|| ()).unwrap().result(None).unwrap();
            pool.spawn(|| ()).unwrap().result(None).unwrap();
            wait_for_zero(&alive, case);
        }
        // Ended by a panic in the middle: the rest are cancelled or run, and all are dropped.
        let inputs: Vec<(usize, Counted)> = (0..300).map(|i| (i, Counted::new(&alive))).collect();
        let made = Arc::clone(&alive);
        let items: Vec<_> = pool
            .map(
                move |(i, input): (usize, Counted)| {
                    drop(input);
                    assert!(i != 100, "item {i} fails");
                    Counted::new(&made)
                },
                inputs,
            )
            .unwrap()
            .collect();
        assert_eq!(items.len(), 101);
        assert!(matches!(
            items[100],
            Err(MapError::Future(FutureError::Failed(_)))
        ));
        drop(items);
        wait_for_zero(&alive, "ended by a panic");
        // Ended by the timeout: the first item waits for a gate that opens only afterwards.
        let gate = Gate::new();
        let g = gate.clone();
        let inputs: Vec<Counted> = (0..200).map(|_| Counted::new(&alive)).collect();
        let made = Arc::clone(&alive);
        let first = std::sync::atomic::AtomicBool::new(true);
        let options = MapOptions::new().timeout(Duration::from_millis(1));
        let mut items = pool
            .map_with(
                move |input: Counted| {
                    if first.swap(false, Ordering::SeqCst) {
                        g.wait();
                    }
                    drop(input);
                    Counted::new(&made)
                },
                inputs,
                options,
            )
            .unwrap();
        let timed_out = items.find(Result::is_err).unwrap();
        assert!(
            matches!(timed_out, Err(MapError::Future(FutureError::Timeout(_)))),
            "{timed_out:?}"
        );
        drop(items);
        gate.open();
        wait_for_zero(&alive, "ended by the timeout");
    });
}

/// Waits (polling: the values go on worker threads, after the items' last use) until no
/// counted value is alive.
fn wait_for_zero(alive: &AtomicUsize, case: &str) {
    let start = std::time::Instant::now();
    while alive.load(Ordering::SeqCst) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{case}: {} values never dropped",
            alive.load(Ordering::SeqCst)
        );
        std::thread::yield_now();
    }
}

/// A result whose `Drop` panics.
#[derive(Debug)]
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a result's Drop panics");
    }
}

#[test]
fn panicking_drops_of_results_never_read_are_contained_and_the_pool_lives_on() {
    watchdog(|| {
        let pool = pool(2);
        let items = pool.map(|_: u32| PanicsOnDrop, 0..200).unwrap();
        // Read a few (their drops panic here, in this thread: contain them), drop the rest.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut items = items;
            let first = items.next();
            drop(items);
            first.is_some()
        }));
        assert!(
            read.is_err(),
            "the read result's own drop panics in the caller"
        );
        // The workers free the segments of the unread results: their panics stay inside.
        for _ in 0..4 {
            assert_eq!(pool.spawn(|| 7).unwrap().result(None).unwrap(), 7);
        }
        let sum: u32 = pool
            .map(|x: u32| x, 0..100)
            .unwrap()
            .map(Result::unwrap)
            .sum();
        assert_eq!(sum, 4950);
    });
}

#[test]
fn a_map_waited_on_inside_the_pools_only_worker_finishes() {
    watchdog(|| {
        let pool = Arc::new(pool(1));
        let p = Arc::clone(&pool);
        // The worker waits for items queued behind it: a spare thread runs them.
        let sum = pool
            .spawn(move || {
                p.map(|x: u64| x * 2, 0..100)
                    .unwrap()
                    .map(Result::unwrap)
                    .sum::<u64>()
            })
            .unwrap();
        assert_eq!(sum.result(None).unwrap(), 9900);
    });
}

#[test]
fn items_queued_when_the_pool_breaks_fail_with_the_breakage() {
    watchdog(|| {
        let start = Gate::new();
        let s = start.clone();
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .try_initializer(move || {
                s.wait();
                Err("no database")
            })
            .build()
            .unwrap();
        let mut items = pool.map(|x: u32| x, 0..3).unwrap();
        start.open();
        match items.next() {
            Some(Err(MapError::Future(FutureError::Failed(TaskError::Broken(e))))) => {
                assert!(e.to_string().contains("no database"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(items.next().is_none());
    });
}
