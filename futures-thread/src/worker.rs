//! The worker loop (Python's `_worker`).

use crate::shared::{Shared, WorkerSlot};
use crate::unwind::contain;
use concurrent_futures_core::blocking::{BlockingHook, install_hook};
use concurrent_futures_core::panic_message;
use concurrent_futures_core::shim::sync::Arc;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

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
    let hook = std::sync::Arc::new(Compensate {
        shared: Arc::clone(shared),
        in_task: AtomicBool::new(false),
        lent_busy: AtomicBool::new(false),
    });
    let _hook = install_hook(hook.clone());
    while let Some(task) = shared.next_task() {
        hook.in_task.store(true, Ordering::Relaxed);
        // The task catches its closure's panic; a panic in a `Drop` (the panic payload's, a
        // result's, the closure's) escapes it and is contained here, so this thread lives on
        // and leaves `busy` exactly once.
        slot.running(&task);
        let released = Cell::new(false);
        let finished_running = || {
            if !released.replace(true) {
                hook.in_task.store(false, Ordering::Relaxed);
                slot.finished_one();
                shared.finished_running();
            }
        };
        if !contain("a task", || task.run(&finished_running)) {
            finished_running();
        }
        slot.ran();
    }
}

/// The pool's [`BlockingHook`] on one worker: compensation for a task blocked in a wait.
/// Its flags are this worker's own (only its thread touches them).
struct Compensate {
    shared: Arc<Shared>,
    /// The worker is inside a task's closure, so counted busy.
    in_task: AtomicBool,
    /// The worker waits outside a task (in a done-callback, after its closure returned) and
    /// counted itself busy for the wait: a blocked worker that is not busy would be taken for
    /// a free one, and no spare would start.
    lent_busy: AtomicBool,
}

impl BlockingHook for Compensate {
    fn blocking(&self) -> bool {
        let outside = !self.in_task.load(Ordering::Relaxed);
        if outside {
            self.shared.busy_while_waiting(true);
        }
        let counted = Shared::worker_blocking(&self.shared);
        if outside && !counted {
            self.shared.busy_while_waiting(false);
        }
        self.lent_busy.store(outside && counted, Ordering::Relaxed);
        counted
    }

    fn unblocked(&self) {
        self.shared.worker_unblocked();
        if self.lent_busy.swap(false, Ordering::Relaxed) {
            self.shared.busy_while_waiting(false);
        }
    }
}
