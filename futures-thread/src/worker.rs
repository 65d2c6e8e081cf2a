//! The worker loop (Python's `_worker`).

use crate::shared::Shared;
use concurrent_futures_core::panic_message;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs the initializer, then tasks until the pool is shut down and drained (or broken).
pub(crate) fn run(shared: &Shared) {
    if let Some(initializer) = &shared.config.initializer {
        let failure = match catch_unwind(AssertUnwindSafe(|| initializer())) {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
        };
        if let Some(why) = failure {
            log::error!(target: "concurrent_futures", "Exception in initializer: {why}");
            shared.break_pool(&why);
            return;
        }
    }
    while let Some(task) = shared.next_task() {
        task.run(&|| shared.finished_running());
    }
}
