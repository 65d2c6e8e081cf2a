//! Loom models of `map`'s items (`map/items.rs`): the slot's state byte and its `WAITING`
//! wake-up, the hand-offs of each slot's content, and the segment's count of holders.
//!
//! Run with `cargo xtask loom`. Loom checks every access to a slot's content cell against the
//! others, so a hand-off without a happens-before edge fails here.
#![cfg(loom)]

use concurrent_futures_core::{FutureError, MapError, MapOptions};
use concurrent_futures_thread::ThreadPoolExecutor;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

fn pool() -> Arc<ThreadPoolExecutor> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("loom")
        .build()
        .unwrap();
    Arc::new(pool)
}

/// Counts the values alive, to see each dropped exactly once.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(alive: &Arc<AtomicUsize>) -> Counted {
        alive.fetch_add(1, Ordering::SeqCst);
        Counted(alive.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The iterator sleeping on an item and the worker finishing it: the worker's `swap` or the
/// iterator's `WAITING` compare-and-swap sees the other, so the iterator wakes (a lost wake-up
/// is a deadlock loom reports) and reads the value the worker wrote.
#[test]
fn the_iterator_waiting_for_an_item_wakes_with_its_value() {
    loom::model(|| {
        let pool = pool();
        let values: Vec<u32> = pool
            .map(|x: u32| x * 10, [1, 2])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(values, [10, 20]);
        pool.shutdown(true, false);
    });
}

/// `shutdown(cancel_futures)` racing the iterator's wait for a queued item: the item ran, or
/// it was cancelled and the sleeping iterator was woken to say so.
#[test]
fn shutdown_cancelling_the_item_an_iterator_sleeps_on_wakes_it() {
    loom::model(|| {
        let pool = pool();
        let p = pool.clone();
        let iterator = thread::spawn(move || {
            match p.map(|x: u32| x + 1, [1]) {
                Ok(mut items) => Some(items.next().unwrap()),
                // Refused: shut down first.
                Err(_) => None,
            }
        });
        pool.shutdown(false, true);
        match iterator.join().unwrap() {
            None | Some(Err(MapError::Future(FutureError::Cancelled(_)))) => {}
            Some(Ok(value)) => assert_eq!(value, 2),
            Some(Err(other)) => panic!("unexpected {other:?}"),
        }
        pool.shutdown(true, false);
    });
}

/// The iterator dropped while the worker runs its items: each input and each result is
/// dropped exactly once, by whichever side lets go of the segment last.
#[test]
fn a_map_dropped_while_its_items_run_drops_every_value_once() {
    loom::model(|| {
        let pool = pool();
        let alive = Arc::new(AtomicUsize::new(0));
        let inputs: Vec<Counted> = (0..2).map(|_| Counted::new(&alive)).collect();
        let made = alive.clone();
        let items = pool
            .map_with(
                move |input: Counted| {
                    drop(input);
                    Counted::new(&made)
                },
                inputs,
                MapOptions::new(),
            )
            .unwrap();
        drop(items);
        pool.shutdown(true, false);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    });
}
