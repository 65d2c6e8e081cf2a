//! CPython's `ProcessPool{Forkserver,Spawn,Fork}ProcessPoolExecutorTest` generic part
//! (`ExecutorTest`): the testkit's shared suite on each start method, with 2 workers as in
//! CPython's `ExecutorMixin` for process pools.

use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};

concurrent_futures_process::bootstrap_before_main!();

fn pool(method: StartMethod) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .unwrap()
}

mod forkserver {
    use super::*;
    concurrent_futures_testkit::executor_tests!(pool(StartMethod::ForkServer), 2);
}

mod spawn {
    use super::*;
    concurrent_futures_testkit::executor_tests!(pool(StartMethod::Spawn), 2);
}

mod fork {
    use super::*;
    concurrent_futures_testkit::executor_tests!(pool(StartMethod::Fork), 2);
}
