//! The generic executor suite on the testkit's own thread-per-task executor: proof that the
//! suite itself runs, independent of any engine.
#![cfg(not(loom))]

use concurrent_futures_testkit::ThreadPerTaskExecutor;

concurrent_futures_testkit::executor_tests!(ThreadPerTaskExecutor::new(), 5);
