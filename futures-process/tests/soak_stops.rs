//! Soak: thousands of stopped tasks — time limits that pass and cancels of running tasks, in
//! every start method — then a count of this process's descendants, zombies and open
//! descriptors, which must be back where they started. One test in its own binary, so that no
//! other test opens anything meanwhile.

use concurrent_futures_core::{StopReason, TaskError};
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use concurrent_futures_testkit::procfs::{descendants, open_fds};
use concurrent_futures_testkit::{ArrivalKey, Arrivals};
use std::time::Duration;

concurrent_futures_process::bootstrap_before_main!();

/// Reports its arrival (if asked), then never returns.
fn block(arrived: Option<ArrivalKey>) {
    if let Some(arrived) = arrived {
        arrived.arrive();
    }
    loop {
        std::thread::park();
    }
}

fn double(x: u32) -> u32 {
    2 * x
}

/// `timeouts` tasks that run past a 1 ms limit on four workers, then `cancels` running tasks
/// cancelled one at a time; every future must end as asked and the pool must stay healthy.
fn soak(method: StartMethod, timeouts: usize, cancels: usize) {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(4)
        .start_method(method)
        .cancel_running(true)
        .grace_period(Duration::from_millis(100))
        .build()
        .unwrap();
    let limit = Duration::from_millis(1);
    let timed: Vec<_> = (0..timeouts)
        .map(|_| pool.submit_with_timeout(block, None, limit).unwrap())
        .collect();
    for future in &timed {
        match future.exception(None).unwrap() {
            Some(TaskError::Stopped(s)) => assert_eq!(s.reason(), StopReason::TimedOut(limit)),
            other => panic!("{other:?}"),
        }
    }
    let arrivals = Arrivals::new();
    for _ in 0..cancels {
        let future = pool.submit(block, Some(arrivals.key())).unwrap();
        arrivals.wait_for(1);
        assert!(future.cancel(), "a running task is cancelled");
    }
    assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
    assert!(pool.broken().is_none());
    pool.shutdown(true, false);
}

#[test]
fn thousands_of_timeouts_and_cancels_leave_no_process_zombie_or_descriptor() {
    concurrent_futures_testkit::watchdog_for(Duration::from_secs(240), || {
        // Warm up once: the fork server, its reader, ipc-channel's statics.
        for method in [
            StartMethod::Fork,
            StartMethod::ForkServer,
            StartMethod::Spawn,
        ] {
            soak(method, 2, 2);
        }
        let (fds, processes) = (open_fds(), descendants());
        assert!(
            processes.iter().all(|&(_, state)| state != 'Z'),
            "{processes:?}"
        );
        soak(StartMethod::Fork, 1000, 500);
        soak(StartMethod::ForkServer, 500, 250);
        soak(StartMethod::Spawn, 200, 100);
        assert_eq!(
            descendants(),
            processes,
            "a worker or a zombie was left behind"
        );
        assert_eq!(open_fds(), fds, "a descriptor was leaked");
    });
}
