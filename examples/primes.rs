//! The `ProcessPoolExecutor` example of Python's `concurrent.futures` documentation: which of
//! six large numbers are prime, checked in parallel with `map`.
//!
//! ```text
//! cargo run --release --example primes
//! ```
//!
//! Until the process engine lands, the executor is the smallest one a user can write on the
//! core crate alone: one thread per task. The code that uses it — `map` over a plain
//! `fn(u64) -> bool` — is already the code that will run on `ProcessPoolExecutor`.

use concurrent_futures::{Executor, Future, Payload, SubmitError, TaskError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};

const PRIMES: [u64; 6] = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
];

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n % 2 == 0 {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64;
    (3..=sqrt_n).step_by(2).all(|i| n % i != 0)
}

/// One thread per task; `shutdown(wait)` joins them all. Dropping it waits, like `with`.
#[derive(Default)]
struct ThreadPerTask {
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    shut_down: bool,
    threads: Vec<JoinHandle<()>>,
}

impl Executor for ThreadPerTask {
    fn submit<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<Future<R>, SubmitError> {
        let mut state = self.state.lock().unwrap();
        if state.shut_down {
            return Err(SubmitError::Shutdown);
        }
        let future = Future::new();
        let worker = future.clone();
        state.threads.push(thread::spawn(move || {
            if worker.set_running_or_notify_cancel() == Ok(true) {
                let _ = match catch_unwind(AssertUnwindSafe(|| f(arg))) {
                    Ok(value) => worker.set_result(value),
                    Err(panic) => worker.set_exception(TaskError::from_panic(&*panic)),
                };
            }
        }));
        Ok(future)
    }

    fn shutdown(&self, wait: bool, _cancel_futures: bool) {
        let threads = {
            let mut state = self.state.lock().unwrap();
            state.shut_down = true;
            std::mem::take(&mut state.threads)
        };
        if wait {
            threads
                .into_iter()
                .for_each(|t| t.join().expect("workers catch panics"));
        }
    }
}

impl Drop for ThreadPerTask {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

fn main() {
    let executor = ThreadPerTask::default();
    let results = executor
        .map(is_prime, PRIMES)
        .expect("the executor is running");
    for (number, prime) in PRIMES.iter().zip(results) {
        let prime = prime.expect("is_prime does not fail");
        println!(
            "{number} is prime: {}",
            if prime { "True" } else { "False" }
        );
    }
}
