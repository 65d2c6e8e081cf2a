//! A worker's courier: the pool-side thread that starts one worker, then reads its results
//! and completes their futures until the worker's channel closes, then reaps it.
//!
//! Reading from the worker's own channel is how death is seen: the channel closes within a
//! fraction of a millisecond of the process ending, however it ended, and the blocking reap
//! that follows gives the exit code or signal.

use crate::launch;
use crate::shared::Shared;
use crate::wire::{self, FromWorker};
use std::cell::Cell;
use std::sync::Arc;

thread_local! {
    /// The pool this thread is a courier of (its address), if any.
    static COURIER_OF: Cell<usize> = const { Cell::new(0) };
}

/// Whether the current thread is one of `shared`'s couriers.
pub(crate) fn is_courier_of(shared: &Shared) -> bool {
    COURIER_OF.with(|c| c.get() == shared as *const Shared as usize)
}

/// The courier's whole life.
pub(crate) fn run(shared: Arc<Shared>) {
    COURIER_OF.with(|c| c.set(Arc::as_ptr(&shared) as usize));
    let (child, connected) = match launch::launch(shared.config.method) {
        Ok(started) => started,
        Err(error) => return shared.launch_failed(error),
    };
    let tasks = Arc::new(connected.tasks);
    // Its settings go first, ahead of any task.
    let _ = wire::send(&tasks, shared.config.init.clone());
    shared.worker_ready(child.pid, tasks);
    while let Ok(envelope) = connected.results.recv() {
        match wire::decode_from_worker(envelope.bytes()) {
            Some(FromWorker::Done { id, outcome }) => shared.task_done(
                child.pid,
                id,
                outcome.map_err(wire::Failure::into_task_error),
            ),
            Some(FromWorker::InitFailed(text)) => shared.init_failed(child.pid, text),
            None => log::error!(
                target: "concurrent_futures",
                "worker process {} sent a message the pool cannot decode", child.pid
            ),
        }
    }
    let cause = child.reap();
    shared.worker_exited(child.pid, cause);
}
