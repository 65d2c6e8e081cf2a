//! Edges of the thread pool's compensation and of core's blocking hook, each found by an
//! outside review and failing before its fix, for the reason its doc comment gives: a wait
//! after shutdown, a wait in a done-callback, a wait in a thread-local destructor, a wait
//! nested in `blocking`, and `worker_count` after shutdown.
#![cfg(not(loom))]

use concurrent_futures_core::Future;
use concurrent_futures_core::blocking::blocking;
use concurrent_futures_testkit::{Gate, ThreadProbe, watchdog_for};
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::{Arc, mpsc};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn one_worker() -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap()
}

/// `shutdown(wait=false)` leaves queued tasks to run (Python's semantics), but `compensate`
/// refuses to start a spare once `SHUTDOWN` is set: a task that starts waiting on a task
/// queued behind it after the shutdown waits forever (and so does the pool's `Drop`).
#[test]
fn a_task_that_waits_on_a_queued_task_after_shutdown_gets_a_spare() {
    watchdog_for(LIMIT, || {
        let pool = one_worker();
        let gate = Gate::new();
        let g = gate.clone();
        let (tx, rx) = mpsc::channel::<Future<u32>>();
        let a = pool
            .spawn(move || {
                g.wait();
                rx.recv().unwrap().result(None).unwrap() + 1
            })
            .unwrap();
        let b = pool.spawn(|| 41).unwrap();
        tx.send(b).unwrap();
        pool.shutdown(false, false);
        gate.open();
        assert_eq!(a.result(None).unwrap(), 42);
        pool.shutdown(true, false);
    });
}

/// A done-callback runs on the worker *after* `finished_running`, so a wait inside it is
/// counted blocked while the worker is not counted busy: `compensate` sees it as a free
/// thread (`free = threads - busy`) and starts no spare for the task queued behind.
#[test]
fn a_done_callback_on_a_worker_that_waits_on_a_queued_task_gets_a_spare() {
    watchdog_for(LIMIT, || {
        let pool = one_worker();
        let gate = Gate::new();
        let g = gate.clone();
        let a = pool.spawn(move || g.wait()).unwrap();
        let b = pool.spawn(|| 41).unwrap();
        let waited = b.clone();
        let (tx, rx) = mpsc::channel();
        a.add_done_callback(move |_| tx.send(waited.result(None).unwrap()).unwrap());
        gate.open();
        assert_eq!(rx.recv().unwrap(), 41);
        assert_eq!(b.result(None).unwrap(), 41);
        pool.shutdown(true, false);
    });
}

/// `worker_count()` is "worker threads serving now": it counted exited workers (its count was
/// lowered only when a spare retired), while `stats().workers` said 0.
#[test]
fn worker_count_after_a_waited_shutdown_counts_no_exited_worker() {
    watchdog_for(LIMIT, || {
        let pool = one_worker();
        pool.spawn(|| 1).unwrap().result(None).unwrap();
        pool.shutdown(true, false);
        assert_eq!(pool.stats().workers, 0);
        assert_eq!(pool.worker_count(), pool.stats().workers);
    });
}

/// A value whose `Drop` waits briefly on a future (a thread-local flushing on thread exit).
struct WaitsOnDrop(Future<u8>);

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        // Pending: spins, then sleeps inside `blocking`, then times out.
        let _ = self.0.result(Duration::from_millis(10));
    }
}

thread_local! {
    static WAITS_ON_EXIT: WaitsOnDrop = WaitsOnDrop(Future::new());
}

/// `blocking` reads its thread-local with `HOOK.with`, which panics once that local has been
/// destroyed. Thread-locals die in reverse order of first use, so a thread-local whose `Drop`
/// waits on a future (any thread, no pool involved) and that was first used *before* the
/// thread's first sleeping wait now panics in its destructor — which aborts the process.
/// Before t10 that wait simply ran. (`HookGuard::drop` already uses `try_with`; `blocking`
/// should too.) Runs the scenario in a child process, since the failure is an abort.
#[test]
fn a_wait_in_a_thread_local_destructor_does_not_abort() {
    const CHILD: &str = "REVIEW_T10_TLS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        std::thread::spawn(|| {
            WAITS_ON_EXIT.with(|_| {});
            // The thread's first sleeping wait: registers the hook's thread-local after it.
            let _ = Future::<u8>::new().result(Duration::from_millis(1));
        })
        .join()
        .unwrap();
        return;
    }
    watchdog_for(LIMIT, || {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_wait_in_a_thread_local_destructor_does_not_abort",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "child: {:?}\n{}",
            status.status,
            String::from_utf8_lossy(&status.stderr)
        );
    });
}

/// `blocking` is re-entrant and counts every level: a task that wraps a wait of its own in
/// `blocking` (as the docs invite: "call it around your own blocking waits") and that wait is
/// itself a `result()` (which calls `blocking` again) is counted blocked twice, so its one
/// blocked worker gets two spares: `blocked` reads 2 with one thread waiting, and the pool
/// runs two threads beside it where the docs promise at most `max_workers`. `blocking`
/// should skip the hook when the thread is already inside a counted wait.
#[test]
fn a_wait_nested_in_blocking_counts_its_worker_once() {
    watchdog_for(LIMIT, || {
        let pool = Arc::new(one_worker());
        let gate = Gate::new();
        let started = Gate::new();
        let (tx, rx) = mpsc::channel();
        let inner = pool.clone();
        let (g, s) = (gate.clone(), started.clone());
        let a = pool
            .spawn(move || {
                tx.send(ThreadProbe::current()).unwrap();
                let (g1, g2) = (g.clone(), g.clone());
                let b = inner
                    .spawn(move || {
                        s.open();
                        g1.wait();
                        1
                    })
                    .unwrap();
                let c = inner.spawn(move || {
                    g2.wait();
                    2
                });
                let c = c.unwrap();
                blocking(|| b.result(None).unwrap() + c.result(None).unwrap())
            })
            .unwrap();
        let worker = rx.recv().unwrap();
        started.wait();
        worker.wait_until_sleeping();
        let seen = format!("{pool:?}");
        gate.open();
        assert_eq!(a.result(None).unwrap(), 3);
        assert!(seen.contains("blocked: 1"), "{seen}");
        pool.shutdown(true, false);
    });
}
