//! CPython's `ThreadPoolExecutorTest` generic part (`ExecutorTest`, 19 tests): the testkit's
//! shared suite, on a 5-worker pool as in CPython's `ExecutorMixin`.
#![cfg(not(loom))]

use concurrent_futures_thread::ThreadPoolExecutor;

concurrent_futures_testkit::executor_tests!(
    ThreadPoolExecutor::builder()
        .max_workers(5)
        .build()
        .unwrap(),
    5
);
