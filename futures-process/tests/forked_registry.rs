//! A fork-mode worker inherits every lock of the test process as it was at the fork, held or
//! not, and a lock held by another thread (cargo test runs tests side by side) stays held for
//! good in the worker, where that thread does not exist. The testkit's registry of live
//! `Tracked` values was such a lock: a task that made a `Tracked` in a worker forked while
//! another test counted one waited for it forever (the fork-mode `free_reference` hung in CI,
//! now and then). Workers now count no `Tracked` values; this case makes that fork certain.

use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use concurrent_futures_testkit::conformance::{Tracked, with_tracked_registry_locked};
use concurrent_futures_testkit::{ArrivalKey, Arrivals, watchdog};
use std::time::Duration;

concurrent_futures_process::bootstrap_before_main!();

/// Says it runs (so its worker exists), then makes a `Tracked` value.
fn arrive_then_track((arrived, n): (ArrivalKey, u64)) -> Tracked {
    arrived.arrive();
    Tracked::new(n)
}

#[test]
fn a_worker_forked_while_the_tracked_registry_is_locked_can_make_tracked_values() {
    watchdog(|| {
        let arrivals = Arrivals::new();
        let (pool, made) = with_tracked_registry_locked(|| {
            let pool = ProcessPoolExecutor::builder()
                .max_workers(1)
                .start_method(StartMethod::Fork)
                .build()
                .unwrap();
            let made = pool.submit(arrive_then_track, (arrivals.key(), 7)).unwrap();
            // The worker was forked, with the registry's lock held, and its task has started.
            arrivals.wait_for(1);
            (pool, made)
        });
        match made.result(Some(Duration::from_secs(20))) {
            Ok(tracked) => assert_eq!(tracked.0, 7),
            Err(e) => panic!("the task in a worker forked under the lock: {e:?}"),
        }
        pool.shutdown(true, false);
    });
}
