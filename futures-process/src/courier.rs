//! A worker's courier: the pool-side thread that starts one worker, then reads its results
//! and completes their futures until the worker's channel closes, then reaps it.
//!
//! Reading from the worker's own channel is how death is seen: the channel closes within a
//! fraction of a millisecond of the process ending, however it ended, and the blocking reap
//! that follows gives the exit code or signal.

use crate::deathwatch;
use crate::launch::{self, LaunchError};
use crate::shared::Shared;
use crate::sys;
use crate::wire::{self, FromWorker};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

thread_local! {
    /// The pool this thread is a courier of (its address), if any.
    static COURIER_OF: Cell<usize> = const { Cell::new(0) };
}

/// Whether the current thread is one of `shared`'s couriers.
pub(crate) fn is_courier_of(shared: &Shared) -> bool {
    COURIER_OF.with(|c| c.get() == shared as *const Shared as usize)
}

/// The courier's whole life. Whatever happens, it reports exactly once that the launch ended
/// (`worker_ready` or `launch_failed`), and a worker that was started is reaped.
pub(crate) fn run(shared: Arc<Shared>) {
    COURIER_OF.with(|c| c.set(Arc::as_ptr(&shared) as usize));
    let config = &shared.config;
    // Every ipc-channel call in `launch` is guarded; this catches anything else, so that a
    // panic can never leave the launch counted forever (and shutdown waiting on it).
    let launched = catch_unwind(AssertUnwindSafe(|| {
        launch::launch(config.method, config.handshake_timeout)
    }));
    let (child, connected) = match launched {
        Ok(Ok(started)) => started,
        Ok(Err(error)) => return shared.launch_failed(error),
        Err(panic) => {
            let why = sys::explain(format!(
                "starting it panicked: {}",
                concurrent_futures_core::panic_message(&*panic)
            ));
            return shared.launch_failed(LaunchError::Start(why));
        }
    };
    log::debug!(
        target: "concurrent_futures",
        "worker process {} started ({})", child.pid, config.method.name()
    );
    // Its end is seen even if a process its task forked keeps its channel open.
    let watched = deathwatch::watch(child.pid);
    let tasks = Arc::new(connected.tasks);
    // Its settings go first, ahead of any task.
    let init = wire::send(&tasks, shared.config.init.clone());
    shared.worker_ready(child.pid, tasks);
    let mut failure = match init {
        Err(wire::SendError::Local(why)) => Some(format!(
            "could not send worker process {} its settings: {why}",
            child.pid
        )),
        _ => None,
    };
    while failure.is_none() {
        // Only a closed channel means the worker is gone. Any other error (a descriptor sent
        // with the message that could not be installed, say) leaves a live worker whose
        // result is lost: waiting to reap it would wait forever.
        let envelope = match sys::guarded(|| match connected.results.recv() {
            Err(ipc_channel::IpcError::Disconnected) => Ok(None),
            received => received.map(Some),
        }) {
            Ok(Some(envelope)) => envelope,
            Ok(None) => break,
            Err(why) => {
                failure = Some(format!(
                    "could not receive a message from worker process {}: {why}",
                    child.pid
                ));
                break;
            }
        };
        match wire::decode_from_worker(envelope.bytes()) {
            Some(FromWorker::Done { id, outcome }) => shared.task_done(
                child.pid,
                id,
                outcome.map_err(wire::Failure::into_task_error),
            ),
            Some(FromWorker::Ready) => shared.worker_initialized(child.pid),
            Some(FromWorker::InitFailed { message, traceback }) => {
                shared.init_failed(child.pid, message, &traceback)
            }
            None => log::error!(
                target: "concurrent_futures",
                "worker process {} sent a message the pool cannot decode", child.pid
            ),
        }
    }
    if let Some(why) = failure {
        sys::signal(child.pid, nix::sys::signal::Signal::SIGKILL);
        shared.fail_pool(format!("the pool {why}"));
    }
    drop(watched);
    let cause = child.reap();
    // No orphans: what the worker's tasks started goes with it.
    sys::kill_group(child.pid);
    log::debug!(target: "concurrent_futures", "worker process {} {cause}", child.pid);
    shared.worker_exited(child.pid, cause);
}
