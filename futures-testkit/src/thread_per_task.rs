//! [`ThreadPerTaskExecutor`]: the simplest real executor.

use concurrent_futures_core::{Executor, Future, Payload, SubmitError, TaskError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};

/// Runs each task on a new thread. It has no queue, so `cancel_futures` finds nothing to cancel.
///
/// Used by the conformance tests of `Future`, `wait` and `as_completed`, which need futures
/// that real threads complete but no particular engine.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Executor;
/// use concurrent_futures_testkit::{fixtures::mul, ThreadPerTaskExecutor};
///
/// let ex = ThreadPerTaskExecutor::new();
/// assert_eq!(ex.submit(mul, (21, 2)).unwrap().result(None).unwrap(), 42);
/// assert_eq!(ex.spawn(|| "closure").unwrap().result(None).unwrap(), "closure");
/// ```
#[derive(Debug, Default)]
pub struct ThreadPerTaskExecutor {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    shut_down: bool,
    threads: Vec<JoinHandle<()>>,
}

impl ThreadPerTaskExecutor {
    /// A new executor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` on a new thread.
    pub fn spawn<T: Send + 'static>(
        &self,
        task: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Future<T>, SubmitError> {
        let mut state = self.state.lock().unwrap();
        if state.shut_down {
            return Err(SubmitError::Shutdown);
        }
        let future = Future::new();
        let worker = future.clone();
        state.threads.push(thread::spawn(move || {
            if worker.set_running_or_notify_cancel() != Ok(true) {
                return;
            }
            let _ = match catch_unwind(AssertUnwindSafe(task)) {
                Ok(value) => worker.set_result(value),
                Err(panic) => worker.set_exception(TaskError::from_panic(&*panic)),
            };
        }));
        Ok(future)
    }
}

impl Executor for ThreadPerTaskExecutor {
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        self.spawn(move || f(arg))
    }

    fn shutdown(&self, wait: bool, _cancel_futures: bool) {
        let threads = {
            let mut state = self.state.lock().unwrap();
            state.shut_down = true;
            std::mem::take(&mut state.threads)
        };
        if wait {
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

impl Drop for ThreadPerTaskExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
