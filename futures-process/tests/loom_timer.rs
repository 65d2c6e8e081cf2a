//! Loom model of the process pool's timer thread (`shared/supervise.rs`): a deadline added
//! under the pool's lock wakes the timer only if it is earlier than the one the timer sleeps
//! to, or if the timer sleeps with none. The model checks that no such deadline is missed
//! (a lost wake-up leaves the idle worker in place forever), and that `shutdown(wait)` ends the
//! timer thread.
//!
//! Run with `cargo xtask loom`.
#![cfg(loom)]

use concurrent_futures_core::model_clock;
use concurrent_futures_process::ExitReason;
use concurrent_futures_process::model::Bookkeeping;
use std::time::Duration;

/// A pid no process has (pids stay below 2^22), for the modelled worker.
const PID: i32 = i32::MAX - 7;

/// How many times the model yields for the timer before it calls the deadline missed.
const PATIENCE: usize = 50;

/// The worker gets a job as it connects (the timer starts then, with an idle deadline the
/// job makes moot), answers it, and idles: that new idle deadline must reach the timer,
/// which may be asleep with no deadline at all by then. Once the clock passes it, the timer
/// asks the worker to leave; after the worker's exit, `shutdown(wait)` joins the timer.
/// Mutation seen to fail: `need_timer` never notifying a running timer (the model then
/// yields in vain: the idle worker is never asked to leave).
#[test]
fn an_idle_deadline_reaches_a_sleeping_timer_and_shutdown_ends_it() {
    loom::model(|| {
        let pool = Bookkeeping::with_idle_timeout(Duration::from_secs(1));
        let future = pool.submit().unwrap();
        let _channel = pool.worker_arrives(PID);
        pool.task_done(PID, 0);
        assert_eq!(future.result(None).unwrap(), 0);
        model_clock::advance(Duration::from_secs(2));
        let mut waited = 0;
        while !pool.worker_asked_to_leave(PID) {
            waited += 1;
            assert!(waited < PATIENCE, "the timer missed the idle deadline");
            loom::thread::yield_now();
        }
        pool.worker_exits(PID);
        pool.shutdown(true, false);
        assert_eq!(pool.exit_reasons(), [ExitReason::RecycledWhenIdle]);
    });
}
