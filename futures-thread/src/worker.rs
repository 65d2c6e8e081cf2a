//! The worker loop (Python's `_worker`).

use crate::shared::{Shared, WorkerSlot};
use crate::unwind::contain;
use concurrent_futures_core::blocking::{BlockingHook, install_hook};
use concurrent_futures_core::panic_message;
use concurrent_futures_core::shim::sync::Arc;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs the initializer, then tasks until the pool is shut down and drained (or broken).
/// Its start and its end are logged at debug level (target `concurrent_futures`).
/// `slot` tells `stats` and `shutdown_timeout` what this worker runs. A spare thread that
/// retires (see `shared/spare.rs`) has left the books already: it is not counted as exited.
pub(crate) fn run(shared: &Arc<Shared>, slot: &WorkerSlot) {
    let name = std::thread::current().name().unwrap_or("").to_owned();
    log::debug!(target: "concurrent_futures", "worker thread {name} started");
    serve(shared, slot);
    if slot.is_retired() {
        log::debug!(target: "concurrent_futures", "worker thread {name} retired");
    } else {
        log::debug!(target: "concurrent_futures", "worker thread {name} exited");
        shared.worker_exited();
    }
}

fn serve(shared: &Arc<Shared>, slot: &WorkerSlot) {
    if let Some(initializer) = &shared.config.initializer {
        let failure = match catch_unwind(AssertUnwindSafe(|| initializer())) {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(panic) => {
                let why = format!("panicked: {}", panic_message(&*panic));
                crate::unwind::drop_payload(panic);
                Some(why)
            }
        };
        if let Some(why) = failure {
            log::error!(target: "concurrent_futures", "Exception in initializer: {why}");
            shared.break_pool(&why);
            return;
        }
    }
    // A task that blocks in a wait tells the pool, which may start a spare meanwhile.
    let _hook = install_hook(std::sync::Arc::new(Compensate(Arc::clone(shared))));
    while let Some(task) = shared.next_task() {
        // The task catches its closure's panic; a panic in a `Drop` (the panic payload's, a
        // result's, the closure's) escapes it and is contained here, so this thread lives on
        // and leaves `busy` exactly once.
        slot.running(&task);
        let released = Cell::new(false);
        let finished_running = || {
            if !released.replace(true) {
                shared.finished_running();
            }
        };
        if !contain("a task", || task.run(&finished_running)) {
            finished_running();
        }
        slot.ran();
    }
}

/// The pool's [`BlockingHook`] on its workers: compensation for a task blocked in a wait.
struct Compensate(Arc<Shared>);

impl BlockingHook for Compensate {
    fn blocking(&self) -> bool {
        Shared::worker_blocking(&self.0)
    }

    fn unblocked(&self) {
        self.0.worker_unblocked();
    }
}
