//! The first-day program, as a test: what a new user writes on the first day compiles
//! and behaves as the documentation says — a capturing closure mapped over items that are
//! neither serde nor `Clone`, futures as `HashMap` keys, `.await` on a future whose clone is
//! alive, a scope whose task panicked, a remote panic printed with `{}`, and `Executor::map` on
//! the thread pool.
#![cfg(all(target_os = "linux", not(loom)))]

use concurrent_futures::process::StartMethod;
use concurrent_futures::{
    Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, panic_message,
};
use concurrent_futures_testkit::{block_on, watchdog};
use std::collections::HashMap;
use std::sync::Mutex;

concurrent_futures::process::bootstrap_before_main!();

fn square(x: u64) -> u64 {
    x * x
}

fn remote_boom(_: ()) -> u8 {
    panic!("remote boom")
}

/// Neither serde nor `Clone`.
struct Order {
    name: String,
    quantity: Mutex<u32>,
}

#[test]
fn a_first_day_program_compiles_and_behaves_as_documented() {
    watchdog(|| {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(4)
            .build()
            .unwrap();

        // A capturing closure over non-serde, non-Clone items.
        let prefix = String::from("order ");
        let orders = (1..=3).map(|n| Order {
            name: n.to_string(),
            quantity: Mutex::new(n),
        });
        let labels: Vec<String> = pool
            .map(
                move |order: Order| {
                    format!("{prefix}{} x{}", order.name, order.quantity.lock().unwrap())
                },
                orders,
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(labels, ["order 1 x1", "order 2 x2", "order 3 x3"]);

        // Futures as keys: Python's `{executor.submit(f, n): n for n in ...}`.
        #[allow(clippy::mutable_key_type)]
        let by_future: HashMap<_, u64> = (1..=5)
            .map(|n| (pool.submit(square, n).unwrap(), n))
            .collect();
        let mut seen = 0;
        for item in as_completed(&by_future, None) {
            let (future, n) = item.unwrap();
            assert_eq!(future.result(None).unwrap(), n * n);
            seen += 1;
        }
        assert_eq!(seen, 5);

        // `.await` on a future whose clone is alive returns without waiting for that clone.
        let future = pool.submit(square, 6).unwrap();
        let kept = future.clone();
        assert_eq!(block_on(async move { future.await }).unwrap(), 36);
        assert!(kept.done());

        // A scope whose task panicked (and nobody looked): the panic comes back at its end.
        let scoped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.spawn(|| -> u8 { panic!("scoped boom") }).unwrap();
            })
        }));
        assert!(panic_message(&*scoped.unwrap_err()).contains("scoped boom"));

        // A remote panic prints as one line with `{}`.
        let processes = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::ForkServer)
            .build()
            .unwrap();
        let error = processes
            .submit(remote_boom, ())
            .unwrap()
            .result(None)
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("remote boom"), "{text}");
        assert!(!text.contains('\n'), "{text}");

        // Generic code: `Executor::map` on the thread pool.
        let squares: Vec<u64> = Executor::map(&pool, square, 1..=3)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(squares, [1, 4, 9]);
    });
}
