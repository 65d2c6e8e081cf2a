//! Futures as keys and tagged items (issue 9, point 2), and `as_completed`'s exact size
//! (point 7).
#![cfg(not(loom))]
// A future hashes by its identity, which never changes; clippy only sees its locks.
#![allow(clippy::mutable_key_type)]

use concurrent_futures_core::{Future, Waitable};
use concurrent_futures_testkit::{Gate, watchdog};
use concurrent_futures_wait::{ReturnWhen, as_completed, as_completed_all, wait};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

#[test]
fn futures_are_equal_and_hash_by_identity() {
    let a = Future::new();
    let b = Future::new();
    a.set_result(1).unwrap();
    b.set_result(1).unwrap();
    assert_eq!(a, a.clone());
    assert_ne!(a, b, "equal values, different futures");
    let set: HashSet<Future<i32>> = [a.clone(), b.clone(), a.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert!(set.contains(&a.clone()) && set.contains(&b));
}

/// Python's `{executor.submit(load_url, url): url}` then `as_completed(future_to_url)`: each
/// future comes back with its own value.
#[test]
fn as_completed_and_wait_over_a_map_hand_each_future_back_with_its_value() {
    watchdog(|| {
        let urls = ["http://a/", "http://bb/", "http://ccc/"];
        let gate = Gate::new();
        let mut future_to_url = HashMap::new();
        let mut workers = Vec::new();
        for url in urls {
            let f = Future::new();
            let (worker, gate) = (f.clone(), gate.clone());
            workers.push(std::thread::spawn(move || {
                gate.wait();
                worker.set_result(url.len()).unwrap();
            }));
            future_to_url.insert(f, url);
        }
        gate.open();
        let mut seen = Vec::new();
        for item in as_completed(&future_to_url, None) {
            let (future, url) = item.unwrap();
            assert_eq!(future.result(None).unwrap(), url.len(), "{url}");
            assert_eq!(future_to_url[future], *url);
            seen.push(*url);
        }
        seen.sort();
        assert_eq!(seen, urls);
        let r = wait(&future_to_url, None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 3);
        for (future, url) in r.done {
            assert_eq!(future.result(None).unwrap(), url.len());
        }
        workers.into_iter().for_each(|w| w.join().unwrap());
    });
}

/// Mixed result types: a tag naming the typed future comes back with each `&dyn Waitable`.
#[test]
fn wait_over_mixed_result_types_hands_back_tags_that_name_the_typed_futures() {
    enum Job<'a> {
        Count(&'a Future<usize>),
        Name(&'a Future<String>),
    }
    let count = Future::new();
    let name = Future::new();
    name.set_result(String::from("ready")).unwrap();
    let items: [(&dyn Waitable, Job); 2] =
        [(&count, Job::Count(&count)), (&name, Job::Name(&name))];
    let r = wait(items, Duration::ZERO, ReturnWhen::FirstCompleted);
    assert_eq!((r.done.len(), r.not_done.len()), (1, 1));
    match &r.done[0].1 {
        Job::Name(f) => assert_eq!(f.result(None).unwrap(), "ready"),
        Job::Count(_) => panic!("the count is not done"),
    }
    assert!(matches!(r.not_done[0].1, Job::Count(f) if f == &count));
}

#[test]
fn as_completed_without_timeout_has_an_exact_size_counting_each_future_once() {
    watchdog(|| {
        let done = Future::new();
        done.set_result(0u8).unwrap();
        let pending: Vec<Future<u8>> = (0..3).map(|_| Future::new()).collect();
        let all: Vec<&Future<u8>> = std::iter::once(&done)
            .chain(&pending)
            .chain(&pending)
            .collect();
        let mut it = as_completed(all, None);
        assert_eq!(it.size_hint(), (4, Some(4)), "duplicates collapse");
        assert_eq!(it.next().unwrap().unwrap(), &done);
        assert_eq!(it.size_hint(), (3, Some(3)));
        let setter = {
            let pending = pending.clone();
            std::thread::spawn(move || pending.iter().for_each(|f| f.set_result(1).unwrap()))
        };
        for left in (0..3).rev() {
            it.next().unwrap().unwrap();
            assert_eq!(it.size_hint(), (left, Some(left)));
        }
        assert!(it.next().is_none());
        assert_eq!(it.size_hint(), (0, Some(0)));
        setter.join().unwrap();
    });
}

#[test]
fn as_completed_with_a_timeout_bounds_its_size_by_the_one_err() {
    let done = Future::new();
    done.set_result(0u8).unwrap();
    let pending: Vec<Future<u8>> = (0..2).map(|_| Future::new()).collect();
    let mut it = as_completed(std::iter::once(&done).chain(&pending), Duration::ZERO);
    assert_eq!(it.size_hint(), (1, Some(3)), "before the first next()");
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.size_hint(), (1, Some(2)), "one Err at least");
    assert!(it.next().unwrap().is_err());
    assert_eq!(it.size_hint(), (0, Some(0)));
    assert!(it.next().is_none());
}

#[test]
fn as_completed_all_is_an_exact_size_iterator_of_futures() {
    watchdog(|| {
        let futures: Vec<Future<u32>> = (0..5).map(|_| Future::new()).collect();
        let setter = {
            let futures = futures.clone();
            std::thread::spawn(move || {
                for (i, f) in futures.iter().enumerate().rev() {
                    f.set_result(i as u32).unwrap();
                }
            })
        };
        fn length<I: ExactSizeIterator>(it: &I) -> usize {
            it.len()
        }
        let mut it = as_completed_all(&futures);
        let mut yielded = 0;
        let mut sum = 0;
        assert_eq!(length(&it), 5);
        while let Some(f) = it.next() {
            yielded += 1;
            sum += f.result(None).unwrap();
            assert_eq!(length(&it), 5 - yielded);
        }
        assert_eq!(sum, 10);
        setter.join().unwrap();
    });
}
