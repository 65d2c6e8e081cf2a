//! `map`'s items live in shared slots, not futures (`map/items.rs`): the cases where that
//! protocol can go wrong — an iterator asleep on an item that shutdown cancels, values left in
//! a segment when the iterator goes, a panicking `Drop` of such a value, a map waited on from
//! the pool's only worker, a pool that breaks under queued items.
#![cfg(not(loom))]

use concurrent_futures_core::blocking::{BlockingHook, install_hook};
use concurrent_futures_core::{FutureError, MapError, MapOptions, QueueFullPolicy, TaskError};
use concurrent_futures_testkit::{Gate, Latch, watchdog};
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
        let before = self.0.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "a value dropped twice");
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

/// Large values: a segment of 32 KiB items must not be built on the stack (64 of them made
/// 2 MiB, and overflowed a default thread's stack), nor hold room for 64 of them.
#[test]
fn a_map_of_32_kib_values_runs_on_a_thread_with_a_2_mib_stack() {
    let t = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let pool = pool(1);
            let sum: u32 = pool
                .map(
                    |b: [u8; 32 * 1024]| b[0] as u32,
                    std::iter::repeat_n([1u8; 32 * 1024], 3),
                )
                .unwrap()
                .map(Result::unwrap)
                .sum();
            assert_eq!(sum, 3);
        })
        .unwrap();
    t.join().unwrap();
}

/// Map dropped / shut down at random points while items run, are queued or are cancelled:
/// every value dropped exactly once, nobody hangs.
#[test]
fn drops_shutdowns_timeouts_and_refills_racing_drop_every_value_once() {
    watchdog(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        for round in 0..150usize {
            let pool = Arc::new(pool(1 + round % 3));
            let n = 1 + (round * 37) % 200;
            let inputs: Vec<Counted> = (0..n).map(|_| Counted::new(&alive)).collect();
            let made = Arc::clone(&alive);
            let mut options = MapOptions::new();
            match round % 4 {
                0 => options = options.buffersize(1 + round % 70),
                1 => options = options.chunksize(1 + round % 100),
                2 => options = options.timeout(Duration::from_micros((round % 50) as u64)),
                _ => {}
            }
            let mut items = pool
                .map_with(
                    move |c: Counted| {
                        drop(c);
                        Counted::new(&made)
                    },
                    inputs,
                    options,
                )
                .unwrap();
            let read = round % 7 * 10;
            for _ in 0..read {
                if items.next().is_none() {
                    break;
                }
            }
            if round % 5 == 0 {
                let p = Arc::clone(&pool);
                let t = std::thread::spawn(move || p.shutdown(false, true));
                for r in items.by_ref() {
                    drop(r);
                }
                t.join().unwrap();
            }
            drop(items);
            drop(pool);
            wait_for_zero(&alive, &format!("round {round}"));
        }
    });
}

/// After a mix of tasks and map items (with chunks), a quiet pool reads 0 pending, 0 running
/// and every task finished.
#[test]
fn stats_count_map_items_exactly_once_the_pool_is_quiet() {
    watchdog(|| {
        let pool = pool(2);
        let mut total = 0u64;
        for round in 0..50 {
            let k = 10 + round;
            let fs: Vec<_> = (0..k).map(|i| pool.spawn(move || i).unwrap()).collect();
            total += k as u64;
            let opts = MapOptions::new().chunksize(1 + round % 9);
            let s: usize = pool
                .map_with(|x: usize| x, 0..k, opts)
                .unwrap()
                .map(Result::unwrap)
                .sum();
            total += k as u64;
            assert_eq!(s, (0..k).sum());
            for f in fs {
                f.result(None).unwrap();
            }
        }
        // Every task and item is counted finished before its result is published.
        let stats = pool.stats();
        assert_eq!(stats.pending, 0, "{stats:?}");
        assert_eq!(stats.running, 0, "{stats:?}");
        assert_eq!(stats.finished, total, "{stats:?}");
    });
}

/// A bounded pool running an item in the submitter (caller-runs) while another item of the
/// same segment is on the worker: both complete, in order.
#[test]
fn a_bounded_caller_runs_pool_runs_items_in_the_submitter_in_order() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .max_queue(1)
            .queue_full_policy(QueueFullPolicy::CallerRuns)
            .build()
            .unwrap();
        let hold = Gate::new();
        let h = hold.clone();
        let started = Latch::new(1);
        let s = started.clone();
        let busy = pool
            .spawn(move || {
                s.count_down();
                h.wait()
            })
            .unwrap();
        started.wait();
        let me = std::thread::current().id();
        // Item 0 takes the queue's one place; items 1..5 run here, in `map` itself.
        let items = pool
            .map(move |x: u32| (x, std::thread::current().id() == me), 0..5)
            .unwrap();
        hold.open();
        let out: Vec<_> = items.map(Result::unwrap).collect();
        assert_eq!(out.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert!(
            out.iter().any(|p| p.1),
            "some ran in the submitter: {out:?}"
        );
        busy.result(None).unwrap();
    });
}

/// A timeout on an item that is running: the rest are cancelled; the running one finishes on
/// the worker and its result is dropped there, once.
#[test]
fn a_timeout_on_a_running_item_cancels_the_rest_and_drops_every_value_once() {
    watchdog(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let pool = pool(1);
        let gate = Gate::new();
        let g = gate.clone();
        let started = Latch::new(1);
        let s = started.clone();
        let made = Arc::clone(&alive);
        let inputs: Vec<Counted> = (0..130).map(|_| Counted::new(&alive)).collect();
        let mut items = pool
            .map_with(
                move |c: Counted| {
                    if s.count() == 1 {
                        s.count_down();
                        g.wait();
                    }
                    drop(c);
                    Counted::new(&made)
                },
                inputs,
                MapOptions::new().timeout(Duration::from_millis(20)),
            )
            .unwrap();
        started.wait();
        let first = items.next();
        assert!(
            matches!(first, Some(Err(MapError::Future(FutureError::Timeout(_))))),
            "{first:?}"
        );
        assert!(items.next().is_none());
        drop(items);
        gate.open();
        pool.shutdown(true, false);
        wait_for_zero(&alive, "timeout");
    });
}
