//! The thread pool takes closures and values of any `Send` type (neither `Clone` nor serde),
//! and its own `submit`/`map` live beside the `Executor` trait's: `pool.submit(square, 3)` and
//! generic code over `Executor` compile and run on it with the trait in scope.
#![cfg(not(loom))]

use concurrent_futures_core::{Executor, MapOptions, Payload};
use concurrent_futures_testkit::watchdog;
use concurrent_futures_thread::ThreadPoolExecutor;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};

fn square(x: u64) -> u64 {
    x * x
}

/// Neither `Clone` nor a serde type: a struct holding a lock.
struct Account {
    balance: Mutex<u64>,
}

/// A channel end: `Send`, but neither `Clone` nor `Sync`.
fn filled(values: &[u64]) -> Receiver<u64> {
    let (tx, rx) = mpsc::channel();
    values.iter().for_each(|&v| tx.send(v).unwrap());
    rx
}

#[test]
fn submit_of_a_function_and_its_argument_compiles_with_the_executor_trait_in_scope() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        assert_eq!(pool.submit(square, 3).unwrap().result(None).unwrap(), 9);
        assert_eq!(
            Executor::submit(&pool, square, 4)
                .unwrap()
                .result(None)
                .unwrap(),
            16
        );
    });
}

fn sum_of_squares<E: Executor>(executor: &E, inputs: Vec<u64>) -> u64 {
    executor
        .map(square, inputs)
        .unwrap()
        .map(Result::unwrap)
        .sum()
}

fn submit_generic<E: Executor, A: Payload, R: Payload + Clone>(
    executor: &E,
    f: fn(A) -> R,
    arg: A,
) -> R {
    executor.submit(f, arg).unwrap().result(None).unwrap()
}

#[test]
fn generic_code_over_the_executor_trait_runs_unchanged_on_the_thread_pool() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        assert_eq!(sum_of_squares(&pool, vec![1, 2, 3]), 14);
        assert_eq!(submit_generic(&pool, square, 5), 25);
        let squares: Vec<u64> = Executor::map(&pool, square, 1..=4)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(squares, [1, 4, 9, 16]);
        let buffered: Vec<u64> =
            Executor::map_with(&pool, square, 1.., MapOptions::new().buffersize(2))
                .unwrap()
                .take(3)
                .map(Result::unwrap)
                .collect();
        assert_eq!(buffered, [1, 4, 9]);
    });
}

#[test]
fn submit_takes_a_capturing_closure_and_an_argument_of_any_send_type() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let bonus = String::from("bonus");
        let account = Account {
            balance: Mutex::new(40),
        };
        let future = pool
            .submit(
                move |account: Account| {
                    *account.balance.lock().unwrap() += bonus.len() as u64 - 3;
                    account
                },
                account,
            )
            .unwrap();
        // The result is no `Clone`: move it out of the only handle.
        let account = future.into_result_when_last(None).unwrap();
        assert_eq!(*account.balance.lock().unwrap(), 42);
    });
}

#[test]
fn spawn_takes_a_closure_of_no_argument() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::new();
        let rx = filled(&[1, 2, 3]);
        let sum = pool.spawn(move || rx.iter().sum::<u64>()).unwrap();
        assert_eq!(sum.result(None).unwrap(), 6);
    });
}

#[test]
fn map_takes_a_capturing_closure_over_receivers_and_returns_structs_holding_locks() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(3)
            .build()
            .unwrap();
        let fee = 1;
        let inputs = vec![
            filled(&[1, 2]),
            filled(&[10]),
            filled(&[]),
            filled(&[5, 5, 5]),
        ];
        let accounts: Vec<Account> = pool
            .map(
                move |rx: Receiver<u64>| Account {
                    balance: Mutex::new(rx.iter().sum::<u64>() + fee),
                },
                inputs,
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let balances: Vec<u64> = accounts
            .into_iter()
            .map(|a| a.balance.into_inner().unwrap())
            .collect();
        assert_eq!(balances, [4, 11, 1, 16]);
    });
}

#[test]
fn map_with_takes_a_closure_over_non_clone_values_with_every_option() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        let accounts = (0..6).map(|n| Account {
            balance: Mutex::new(n),
        });
        let options = MapOptions::new()
            .buffersize(2)
            .chunksize(3)
            .timeout(std::time::Duration::from_secs(60));
        let doubled: Vec<u64> = pool
            .map_with(
                |a: Account| 2 * a.balance.into_inner().unwrap(),
                accounts,
                options,
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(doubled, [0, 2, 4, 6, 8, 10]);
    });
}
