//! `wait` and `as_completed` always take their waiter down, and accept mixed result types.
#![cfg(not(loom))]

use concurrent_futures_core::{Future, TaskError, Waitable};
use concurrent_futures_testkit::{Gate, ThreadPerTaskExecutor, watchdog};
use concurrent_futures_wait::{ReturnWhen, as_completed, wait};
use std::time::Duration;

#[test]
fn as_completed_dropped_early_removes_its_waiter_from_every_future() {
    let done = Future::new();
    done.set_result(1).unwrap();
    let pending: Vec<Future<i32>> = (0..5).map(|_| Future::new()).collect();
    let mut it = as_completed(std::iter::once(&done).chain(&pending), None);
    assert_eq!(it.next().unwrap().unwrap().id(), done.id());
    assert!(
        pending.iter().all(|f| f.waiter_count() == 1),
        "one waiter on each pending future"
    );
    drop(it);
    assert!(
        pending.iter().all(|f| f.waiter_count() == 0),
        "dropping the iterator removed them"
    );
}

#[test]
fn as_completed_never_started_installs_nothing() {
    let pending: Vec<Future<i32>> = (0..3).map(|_| Future::new()).collect();
    let it = as_completed(&pending, None);
    assert!(pending.iter().all(|f| f.waiter_count() == 0));
    drop(it);
}

#[test]
fn as_completed_detaches_each_future_before_yielding_it() {
    watchdog(|| {
        let fs: Vec<Future<i32>> = (0..3).map(|_| Future::new()).collect();
        let mut it = as_completed(&fs, None);
        // Complete fs[1] once the iterator has started watching (its waiter is installed).
        let (watched, target) = (fs[0].clone(), fs[1].clone());
        let t = std::thread::spawn(move || {
            while watched.waiter_count() == 0 {
                std::thread::yield_now();
            }
            target.set_result(1).unwrap();
        });
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.id(), fs[1].id());
        assert_eq!(fs[1].waiter_count(), 0);
        assert_eq!((fs[0].waiter_count(), fs[2].waiter_count()), (1, 1));
        t.join().unwrap();
    });
}

#[test]
fn as_completed_times_out_after_yielding_what_finished() {
    let fs: Vec<Future<i32>> = (0..3).map(|_| Future::new()).collect();
    fs[2].set_result(3).unwrap();
    let items: Vec<_> = as_completed(&fs, Duration::from_millis(20)).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().id(), fs[2].id());
    assert_eq!(
        items[1].as_ref().unwrap_err().to_string(),
        "2 (of 3) futures unfinished"
    );
    assert!(fs.iter().all(|f| f.waiter_count() == 0));
}

#[test]
fn wait_removes_its_waiter_whether_it_fires_or_times_out() {
    watchdog(|| {
        let fs: Vec<Future<i32>> = (0..4).map(|_| Future::new()).collect();
        let r = wait(&fs, Duration::from_millis(10), ReturnWhen::AllCompleted);
        assert_eq!(r.not_done.len(), 4);
        assert!(fs.iter().all(|f| f.waiter_count() == 0));

        let ex = ThreadPerTaskExecutor::new();
        let gate = Gate::new();
        let g = gate.clone();
        let late = ex
            .spawn(move || {
                g.wait();
                1
            })
            .unwrap();
        let finisher = fs[0].clone();
        ex.spawn(move || finisher.set_result(0).unwrap()).unwrap();
        let r = wait(fs.iter().chain([&late]), None, ReturnWhen::FirstCompleted);
        assert!(!r.done.is_empty());
        gate.open();
        assert!(fs.iter().chain([&late]).all(|f| f.waiter_count() == 0));
    });
}

#[test]
fn wait_mixes_result_types_and_collapses_duplicates() {
    let a = Future::<String>::new();
    let b = Future::<Vec<u8>>::new();
    let c = Future::<()>::new();
    a.set_result("a".into()).unwrap();
    b.set_exception(TaskError::panicked("b")).unwrap();
    let fs: Vec<&dyn Waitable> = vec![&a, &b, &c, &a, &b];
    let r = wait(fs, Duration::ZERO, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 2);
    assert_eq!(r.not_done.len(), 1);
    assert_eq!(r.not_done[0].id(), c.id());
}

#[test]
fn wait_on_nothing_returns_at_once() {
    let r = wait(Vec::<Future<u8>>::new(), None, ReturnWhen::AllCompleted);
    assert!(r.done.is_empty() && r.not_done.is_empty());
}

#[test]
fn wait_first_exception_degrades_to_all_completed_without_errors() {
    watchdog(|| {
        let fs: Vec<Future<i32>> = (0..3).map(|_| Future::new()).collect();
        let ex = ThreadPerTaskExecutor::new();
        for (i, f) in fs.iter().enumerate() {
            let f = f.clone();
            ex.spawn(move || f.set_result(i as i32).unwrap()).unwrap();
        }
        let r = wait(&fs, None, ReturnWhen::FirstException);
        assert_eq!(r.done.len(), 3);
    });
}
