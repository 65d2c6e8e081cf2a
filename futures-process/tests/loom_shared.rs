//! Loom models of the process pool's bookkeeping (`shared.rs`: launching, ready, exited,
//! shutdown, break), driving the real code with loom threads standing in for the courier
//! threads (see `concurrent_futures_process::model`).
//!
//! Run with `cargo xtask loom`. A lost wake-up or a launch that is never counted down shows up
//! as a deadlock, which loom reports.
#![cfg(loom)]

use concurrent_futures_core::{Future, FutureError, State, SubmitError, TaskError};
use concurrent_futures_process::model::{Bookkeeping, Launch};
use loom::thread;

/// A submit's outcome is acceptable once the pool breaks: refused as broken, or a future that
/// fails as broken.
fn refused_or_failed_broken(submitted: Result<Future<u64>, SubmitError>) -> bool {
    match submitted {
        Ok(future) => failed_broken(&future),
        Err(refused) => matches!(refused, SubmitError::Broken(_)),
    }
}

/// Whether the future failed with `BrokenProcessPool` (waiting for it to finish).
fn failed_broken(future: &Future<u64>) -> bool {
    matches!(
        future.result(None),
        Err(FutureError::Failed(TaskError::Broken(_)))
    )
}

/// `shutdown(wait=True)` waits until no launch is in progress. A courier whose launch fails
/// while the shutdown waits must count its launch down *and* wake the waiter: without the
/// count-down the wait never ends, and without the notification a shutdown that checked the
/// count just before the failure sleeps forever (both are deadlocks loom reports).
#[test]
fn shutdown_wait_returns_when_a_launch_fails_concurrently() {
    loom::model(|| {
        let pool = Bookkeeping::new(1, Launch::Fails);
        let future = pool.submit().unwrap();
        pool.shutdown(true, false);
        // The pool's only launch failed with work queued: nothing is left to run it.
        assert!(pool.is_broken());
        assert!(failed_broken(&future));
    });
}

/// Up to two launches fail at once while submits race them: whichever fails last sees no
/// worker and no launch left and breaks the pool, so every queued future fails (none is left
/// pending forever), and a submit that lands after the break is refused.
#[test]
fn break_while_launching_fails_every_queued_future() {
    loom::model(|| {
        let pool = Bookkeeping::new(2, Launch::Fails);
        let first = pool.submit().unwrap();
        let racing = {
            let pool = pool.clone();
            thread::spawn(move || pool.submit())
        };
        let second = pool.submit();
        assert!(failed_broken(&first));
        assert!(refused_or_failed_broken(second));
        assert!(refused_or_failed_broken(racing.join().unwrap()));
        pool.shutdown(true, false);
    });
}

/// A hand-shake that times out breaks the pool even though another worker may still come:
/// every later start would hang the same way. The waiting shutdown still returns, and the
/// cancelled or failed futures all end.
#[test]
fn a_timed_out_handshake_breaks_the_pool_and_shutdown_with_cancel_returns() {
    loom::model(|| {
        let pool = Bookkeeping::new(2, Launch::TimesOut);
        let first = pool.submit().unwrap();
        let shutting = {
            let pool = pool.clone();
            thread::spawn(move || pool.shutdown(true, true))
        };
        let second = pool.submit();
        shutting.join().unwrap();
        assert!(pool.is_broken(), "a timed-out hand-shake breaks the pool");
        let ended = |future: &Future<u64>| match future.state() {
            // Cancelled by the shutdown, or failed by the break: never still pending.
            State::CancelledAndNotified | State::Cancelled => true,
            _ => failed_broken(future),
        };
        assert!(ended(&first));
        match second {
            Ok(future) => assert!(ended(&future)),
            Err(refused) => assert!(matches!(
                refused,
                SubmitError::Broken(_) | SubmitError::Shutdown
            )),
        }
    });
}

/// A bounded queue of one, full (the only launch never reports, so nothing is sent; one job
/// for the worker being started, one waiting): a third submitter waits for room. `shutdown`
/// must wake it with `SubmitError::Shutdown` — without the notification in `shutdown` it would
/// sleep for ever (a deadlock loom reports).
#[test]
fn a_submitter_blocked_on_a_full_queue_is_refused_when_the_pool_shuts_down() {
    use concurrent_futures_core::QueueFullPolicy;
    loom::model(|| {
        let block = QueueFullPolicy::Block { timeout: None };
        let pool = Bookkeeping::with_max_queue(1, Launch::Never, Some((1, block)));
        let for_the_worker = pool.submit().unwrap();
        let queued = pool.submit().unwrap();
        let p = pool.clone();
        let submitter = thread::spawn(move || p.submit().map(|_| ()));
        pool.shutdown(false, false);
        assert_eq!(submitter.join().unwrap(), Err(SubmitError::Shutdown));
        for future in [for_the_worker, queued] {
            assert_eq!(
                future.state(),
                State::Pending,
                "still queued: nothing ran it"
            );
        }
    });
}

/// The same full queue, whose only launch fails: the pool breaks (nothing left to run the
/// queued job), and the waiting submitter must be woken and refused as broken — or, if it came
/// before the break, find its future failed as broken.
#[test]
fn a_submitter_blocked_on_a_full_queue_is_released_when_the_pool_breaks() {
    use concurrent_futures_core::QueueFullPolicy;
    loom::model(|| {
        let block = QueueFullPolicy::Block { timeout: None };
        let pool = Bookkeeping::with_max_queue(1, Launch::Fails, Some((1, block)));
        // One job for the worker being started, one waiting: the queue is full.
        let first = pool.submit();
        let second = pool.submit();
        let p = pool.clone();
        let submitter = thread::spawn(move || p.submit());
        let third = submitter.join().unwrap();
        assert!(refused_or_failed_broken(first));
        assert!(refused_or_failed_broken(second));
        assert!(refused_or_failed_broken(third));
    });
}
