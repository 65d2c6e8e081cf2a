//! The process pool from async code: with `bootstrap_before_main!()` the fork server started
//! before the runtime's threads, so a multi-threaded tokio runtime's tasks can build pools of
//! every start method and await their futures beside a thread pool's (what
//! `examples/tokio_main.rs` does from `#[tokio::main]`).
#![cfg(all(target_os = "linux", not(loom)))]

use concurrent_futures::process::StartMethod;
use concurrent_futures::{Executor, ProcessPoolExecutor, ThreadPoolExecutor};

concurrent_futures::process::bootstrap_before_main!();

fn square(x: u64) -> (u64, u32) {
    (x * x, std::process::id())
}

#[test]
fn both_pools_are_awaited_from_a_multi_threaded_runtime() {
    concurrent_futures_testkit::watchdog(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
            .block_on(awaits_both_pools())
    });
}

async fn awaits_both_pools() {
    let threads = ThreadPoolExecutor::new();
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let processes = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(method)
            .build()
            .unwrap_or_else(|e| panic!("{}: {e}", method.name()));
        let remote = Executor::submit(&processes, square, 7).unwrap();
        let local = Executor::submit(&threads, square, 6).unwrap();
        let (remote, local) = tokio::join!(remote, local);
        let here = std::process::id();
        assert_eq!(remote.unwrap().0, 49);
        assert_ne!(
            Executor::submit(&processes, square, 1)
                .unwrap()
                .await
                .unwrap()
                .1,
            here,
            "{}: ran in a worker process",
            method.name()
        );
        assert_eq!(local.unwrap(), (36, here));
    }
}
