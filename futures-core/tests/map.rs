//! `Executor::map` (Python 3.14 semantics, spec §1.6.1) on a queue executor whose tasks the test
//! runs by hand, in any order.
#![cfg(not(loom))]

use concurrent_futures_core::{
    Executor, Future, FutureError, MapError, MapOptions, Payload, State, SubmitError, TaskError,
};
use concurrent_futures_testkit::fixtures::Unfused;
use concurrent_futures_testkit::watchdog;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Queues tasks; the test (or a helper thread) runs them.
#[derive(Default, Clone)]
struct QueueExecutor {
    inner: Arc<Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    futures_submitted: usize,
    /// The state of each submitted future, in submission order.
    states: Vec<Box<dyn Fn() -> State + Send>>,
    shut_down: bool,
}

impl QueueExecutor {
    fn submitted(&self) -> usize {
        self.inner.lock().unwrap().futures_submitted
    }

    fn states(&self) -> Vec<State> {
        self.inner
            .lock()
            .unwrap()
            .states
            .iter()
            .map(|state| state())
            .collect()
    }

    fn take_jobs(&self) -> Vec<Job> {
        self.inner.lock().unwrap().jobs.drain(..).collect()
    }

    fn run_all(&self) {
        for job in self.take_jobs() {
            job();
        }
    }
}

impl Executor for QueueExecutor {
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        let mut q = self.inner.lock().unwrap();
        if q.shut_down {
            return Err(SubmitError::Shutdown);
        }
        let future = Future::new();
        let worker = future.clone();
        q.futures_submitted += 1;
        let observed = future.clone();
        q.states.push(Box::new(move || observed.state()));
        q.jobs.push_back(Box::new(move || {
            if worker.set_running_or_notify_cancel() == Ok(true) {
                let _ = match catch_unwind(AssertUnwindSafe(|| f(arg))) {
                    Ok(v) => worker.set_result(v),
                    Err(p) => worker.set_exception(TaskError::from_panic(&*p)),
                };
            }
        }));
        Ok(future)
    }

    fn shutdown(&self, _wait: bool, _cancel_futures: bool) {
        self.inner.lock().unwrap().shut_down = true;
    }
}

fn pow((x, y): (u64, u32)) -> u64 {
    x.pow(y)
}

fn divmod((x, y): (i64, i64)) -> (i64, i64) {
    (x.div_euclid(y), x.rem_euclid(y))
}

fn stringify(x: u64) -> String {
    x.to_string()
}

fn add((x, y): (u64, u64)) -> u64 {
    x + y
}

#[test]
fn map_returns_results_in_input_order_whatever_order_tasks_finish_in() {
    watchdog(|| {
        let ex = QueueExecutor::default();
        let inputs: Vec<(u64, u32)> = (0..10).map(|i| (i, i as u32)).collect();
        let it = ex.map(pow, inputs.clone()).unwrap();
        let runner = ex.clone();
        let t = thread::spawn(move || runner.take_jobs().into_iter().rev().for_each(|job| job()));
        let got: Vec<u64> = it.map(Result::unwrap).collect();
        t.join().unwrap();
        assert_eq!(got, inputs.into_iter().map(pow).collect::<Vec<_>>());
    });
}

#[test]
fn map_with_chunksize_still_returns_every_result() {
    let ex = QueueExecutor::default();
    let it = ex
        .map_with(pow, (0..10).map(|i| (i, 2)), MapOptions::new().chunksize(3))
        .unwrap();
    ex.run_all();
    assert_eq!(
        it.map(Result::unwrap).collect::<Vec<_>>(),
        (0..10).map(|i| i * i).collect::<Vec<_>>()
    );
}

#[test]
fn map_exception_ends_the_iteration_and_cancels_the_rest() {
    let ex = QueueExecutor::default();
    let mut it = ex.map(divmod, [(1, 2), (1, 3), (1, 0), (1, 5)]).unwrap();
    // Run the first three only; the fourth stays queued.
    let mut jobs = ex.take_jobs();
    let fourth = jobs.pop().unwrap();
    jobs.into_iter().for_each(|job| job());
    assert_eq!(it.next().unwrap().unwrap(), (0, 1));
    assert_eq!(it.next().unwrap().unwrap(), (0, 1));
    match it.next().unwrap() {
        Err(MapError::Future(FutureError::Failed(TaskError::Panicked { message }))) => {
            assert!(message.contains("divide by zero"), "{message}")
        }
        other => panic!("expected the task's panic, got {other:?}"),
    }
    assert!(it.next().is_none());
    assert!(it.next().is_none());
    // The fourth task was cancelled when the iteration ended: running it now does nothing.
    assert_eq!(ex.states()[3], State::Cancelled);
    fourth();
    assert_eq!(ex.states()[3], State::CancelledAndNotified);
}

#[test]
fn map_buffersize_validation() {
    let ex = QueueExecutor::default();
    let err = ex
        .map_with(stringify, 0..4, MapOptions::new().buffersize(0))
        .unwrap_err();
    assert_eq!(
        err,
        SubmitError::InvalidArgument("buffersize must be None or > 0")
    );
    assert_eq!(err.to_string(), "buffersize must be None or > 0");
    let err = ex
        .map_with(stringify, 0..4, MapOptions::new().chunksize(0))
        .unwrap_err();
    assert_eq!(err.to_string(), "chunksize must be >= 1.");
    assert_eq!(ex.submitted(), 0);
}

#[test]
fn map_buffersize() {
    watchdog(|| {
        for buffersize in [1, 2, 4, 8] {
            let ex = QueueExecutor::default();
            let (stop, t) = serve(&ex);
            let it = ex
                .map_with(stringify, 0..4, MapOptions::new().buffersize(buffersize))
                .unwrap();
            assert_eq!(
                it.map(Result::unwrap).collect::<Vec<_>>(),
                ["0", "1", "2", "3"]
            );
            stop.store(1, Ordering::SeqCst);
            t.join().unwrap();
        }
    });
}

/// Runs every queued job on a helper thread until `stop` is set, so that `next()` never waits
/// for a task nobody will run.
fn serve(ex: &QueueExecutor) -> (Arc<AtomicUsize>, thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicUsize::new(0));
    let (ex, s) = (ex.clone(), stop.clone());
    let t = thread::spawn(move || {
        while s.load(Ordering::SeqCst) == 0 {
            let jobs = ex.take_jobs();
            if jobs.is_empty() {
                thread::yield_now();
            }
            jobs.into_iter().for_each(|job| job());
        }
    });
    (stop, t)
}

#[test]
fn map_buffersize_on_multiple_iterables() {
    watchdog(|| {
        for buffersize in [1, 2, 4, 8] {
            let ex = QueueExecutor::default();
            let (stop, t) = serve(&ex);
            let ints = 0..4;
            let it = ex
                .map_with(
                    add,
                    ints.clone().zip(ints),
                    MapOptions::new().buffersize(buffersize),
                )
                .unwrap();
            assert_eq!(it.map(Result::unwrap).collect::<Vec<_>>(), [0, 2, 4, 6]);
            stop.store(1, Ordering::SeqCst);
            t.join().unwrap();
        }
    });
}

#[test]
fn map_buffersize_on_infinite_iterable() {
    watchdog(|| {
        let ex = QueueExecutor::default();
        let (stop, t) = serve(&ex);
        let mut it = ex
            .map_with(stringify, 0.., MapOptions::new().buffersize(2))
            .unwrap();
        assert_eq!(it.next().unwrap().unwrap(), "0");
        assert_eq!(it.next().unwrap().unwrap(), "1");
        assert_eq!(it.next().unwrap().unwrap(), "2");
        drop(it);
        stop.store(1, Ordering::SeqCst);
        t.join().unwrap();
    });
}

#[test]
fn map_buffersize_on_multiple_infinite_iterables() {
    watchdog(|| {
        let ex = QueueExecutor::default();
        let (stop, t) = serve(&ex);
        let mut it = ex
            .map_with(add, (0..).zip(0..), MapOptions::new().buffersize(2))
            .unwrap();
        assert_eq!(it.next().unwrap().unwrap(), 0);
        assert_eq!(it.next().unwrap().unwrap(), 2);
        assert_eq!(it.next().unwrap().unwrap(), 4);
        drop(it);
        stop.store(1, Ordering::SeqCst);
        t.join().unwrap();
    });
}

#[test]
fn map_buffersize_on_empty_iterable() {
    let ex = QueueExecutor::default();
    let mut it = ex
        .map_with(
            stringify,
            std::iter::empty(),
            MapOptions::new().buffersize(2),
        )
        .unwrap();
    assert!(it.next().is_none());
}

#[test]
fn map_buffersize_when_buffer_is_full() {
    let ex = QueueExecutor::default();
    let pulled = AtomicUsize::new(0);
    let ints = (0..4).inspect(|_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    });
    let it = ex
        .map_with(stringify, ints, MapOptions::new().buffersize(2))
        .unwrap();
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        2,
        "only buffersize inputs pulled before iteration"
    );
    assert_eq!(ex.submitted(), 2);
    drop(it);
}

/// Python's refill order: the next input is submitted *before* waiting on the oldest, so a
/// consumer waiting on item 0 has `buffersize + 1` tasks submitted.
#[test]
fn map_buffersize_refills_before_waiting_on_the_oldest() {
    let ex = QueueExecutor::default();
    let mut it = ex
        .map_with(stringify, 0..10, MapOptions::new().buffersize(3))
        .unwrap();
    assert_eq!(ex.submitted(), 3);
    ex.run_all();
    assert_eq!(it.next().unwrap().unwrap(), "0");
    assert_eq!(ex.submitted(), 4);
}

#[test]
fn map_submits_without_iteration() {
    let ex = QueueExecutor::default();
    let it = ex.map(stringify, 0..10).unwrap();
    assert_eq!(ex.submitted(), 10);
    ex.run_all();
    drop(it);
}

#[test]
fn dropping_the_map_iterator_cancels_tasks_not_started() {
    let ex = QueueExecutor::default();
    let it = ex.map(stringify, 0..3).unwrap();
    assert_eq!(ex.states(), [State::Pending; 3]);
    drop(it);
    assert_eq!(ex.states(), [State::Cancelled; 3]);
    // The executor then notifies each cancellation instead of running the task.
    ex.run_all();
    assert_eq!(ex.states(), [State::CancelledAndNotified; 3]);
}

#[test]
fn map_timeout_counts_from_the_call_and_cancels_the_rest() {
    let ex = QueueExecutor::default();
    let mut it = ex
        .map_with(stringify, 0..3, MapOptions::new().timeout(Duration::ZERO))
        .unwrap();
    assert!(matches!(
        it.next(),
        Some(Err(MapError::Future(FutureError::Timeout(_))))
    ));
    assert!(it.next().is_none());
    // The timed-out one is cancelled by `_result_or_cancel`, the rest when the iteration ends.
    assert_eq!(ex.states(), [State::Cancelled; 3]);
}

#[test]
fn map_returns_finished_results_even_after_the_deadline() {
    let ex = QueueExecutor::default();
    let it = ex
        .map_with(stringify, 0..3, MapOptions::new().timeout(Duration::ZERO))
        .unwrap();
    ex.run_all();
    assert_eq!(it.map(Result::unwrap).collect::<Vec<_>>(), ["0", "1", "2"]);
}

#[test]
fn map_refill_after_shutdown_reports_the_submit_error_and_ends() {
    let ex = QueueExecutor::default();
    let mut it = ex
        .map_with(stringify, 0..4, MapOptions::new().buffersize(1))
        .unwrap();
    ex.shutdown(true, false);
    assert!(matches!(
        it.next(),
        Some(Err(MapError::Submit(SubmitError::Shutdown)))
    ));
    assert!(it.next().is_none());
}

#[test]
fn map_after_shutdown_fails_at_the_call() {
    let ex = QueueExecutor::default();
    ex.shutdown(true, false);
    assert_eq!(ex.map(stringify, 0..4).unwrap_err(), SubmitError::Shutdown);
}

/// Once the inputs end, `map` never asks them again (Python's loop stops there): an input that
/// yields again after `None` is not submitted.
#[test]
fn map_with_buffersize_stops_at_the_first_end_of_the_inputs() {
    watchdog(|| {
        let ex = QueueExecutor::default();
        let done = Arc::new(AtomicUsize::new(0));
        let (runner, stop) = (ex.clone(), done.clone());
        let worker = thread::spawn(move || {
            while stop.load(Ordering::SeqCst) == 0 {
                runner.run_all();
                thread::yield_now();
            }
        });
        let got: Vec<u64> = ex
            .map_with(
                identity,
                Unfused::default(),
                MapOptions::new().buffersize(1),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        done.store(1, Ordering::SeqCst);
        worker.join().unwrap();
        assert_eq!(got, [1]);
        assert_eq!(ex.submitted(), 1);
    });
}

fn identity(x: u64) -> u64 {
    x
}
