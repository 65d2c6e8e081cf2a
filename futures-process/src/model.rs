//! The pool's bookkeeping ([`Shared`]) opened to the loom models in `tests/loom_*.rs`, and only
//! under `cfg(loom)`: the real code, with loom threads standing in for the courier threads.
//!
//! A stand-in courier does what a real one reports about its worker's start, without a
//! process: the launch fails, or the hand-shake times out.

use crate::launch::{LaunchError, StartMethod};
use crate::shared::{Config, FutureSink, Job, Shared};
use crate::sys::ExitCause;
use crate::wire;
use concurrent_futures_core::{Future, QueueFullPolicy, SubmitError};
use concurrent_futures_remote::auth::CallKey;
use concurrent_futures_remote::call::CallSite;
use std::sync::Arc;
use std::time::Duration;

/// What every stand-in courier of a [`Bookkeeping`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// The worker could not be started (`launch_failed` with a start error).
    Fails,
    /// The worker never connected and was killed (`launch_failed` with a time-out).
    TimesOut,
    /// The launch never reports (a worker still starting, for as long as the model runs).
    Never,
}

/// A pool's bookkeeping whose couriers are stand-ins.
#[derive(Clone)]
pub struct Bookkeeping(Arc<Shared>);

impl std::fmt::Debug for Bookkeeping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bookkeeping")
            .field("broken", &self.0.broken().is_some())
            .finish()
    }
}

fn identity(x: u64) -> u64 {
    x
}

fn fails(shared: Arc<Shared>) {
    shared.launch_failed(LaunchError::Start("modelled start failure".into()));
}

fn never(_: Arc<Shared>) {}

fn times_out(shared: Arc<Shared>) {
    shared.launch_failed(LaunchError::TimedOut {
        pid: i32::MAX,
        after: Duration::from_secs(1),
        cause: ExitCause::Signal(9),
    });
}

/// The settings of a modelled pool.
fn model_config(max_workers: usize, max_queue: Option<(usize, QueueFullPolicy)>) -> Config {
    Config {
        max_workers,
        method: StartMethod::Fork,
        key: CallKey::generate().expect("the OS gives random bytes"),
        init: Vec::new(),
        has_initializer: false,
        max_tasks: None,
        handshake_timeout: Duration::from_secs(1),
        max_queue,
        supervision: Default::default(),
    }
}

impl Bookkeeping {
    /// Bookkeeping for at most `max_workers` workers; each launch it asks for runs a stand-in
    /// courier (a new loom thread) that reports `launch`.
    pub fn new(max_workers: usize, launch: Launch) -> Bookkeeping {
        Bookkeeping::with_max_queue(max_workers, launch, None)
    }

    /// The same, with a bounded submit queue (`max_queue` and its policy).
    pub fn with_max_queue(
        max_workers: usize,
        launch: Launch,
        max_queue: Option<(usize, QueueFullPolicy)>,
    ) -> Bookkeeping {
        let config = model_config(max_workers, max_queue);
        let courier = match launch {
            Launch::Fails => fails,
            Launch::TimesOut => times_out,
            Launch::Never => never,
        };
        Bookkeeping(Shared::with_courier(config, courier))
    }

    /// `submit`: queues a job whose future is returned, starting couriers as needed.
    pub fn submit(&self) -> Result<Future<u64>, SubmitError> {
        let id = self.0.next_id();
        let future = Future::new();
        let message = wire::encode_task(id, self.0.config.key.seal(CallSite::of(identity)), &id)
            .expect("a u64 always encodes");
        let sink = Box::new(FutureSink(future.clone()));
        self.0.enqueue(Job {
            id,
            message,
            sink,
            timeout: None,
        })?;
        Ok(future)
    }

    /// `shutdown(wait, cancel_futures)`.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.0.shutdown(wait, cancel_futures);
    }

    /// Whether the pool is broken.
    pub fn is_broken(&self) -> bool {
        self.0.broken().is_some()
    }

    /// Bookkeeping for one worker, which the pool retires once it has been idle for `idle`
    /// (the timer thread, a loom thread, keeps that deadline). Its launches never report: the
    /// model plays the worker with [`worker_arrives`](Self::worker_arrives).
    pub fn with_idle_timeout(idle: Duration) -> Bookkeeping {
        let mut config = model_config(1, None);
        config.supervision.idle_timeout = Some(idle);
        Bookkeeping(Shared::with_courier(config, never))
    }

    /// Worker `pid` connects (taking the launch a submit asked for) and is sent the queued
    /// job; the returned value is the worker's end of its task channel, to keep open.
    pub fn worker_arrives(&self, pid: i32) -> impl Sized {
        let (tasks, received) = wire::channel().expect("a channel");
        self.0.worker_ready(pid, Arc::new(tasks));
        received
    }

    /// Worker `pid` answers job `id` with `id`.
    pub fn task_done(&self, pid: i32, id: u64) {
        let bytes = postcard::to_allocvec(&id).expect("a u64 encodes");
        self.0.task_done(pid, id, Ok(&bytes));
    }

    /// Whether the pool has asked worker `pid` to leave.
    pub fn worker_asked_to_leave(&self, pid: i32) -> bool {
        self.0
            .workers()
            .iter()
            .any(|w| w.pid == pid as u32 && w.state == crate::WorkerState::Leaving)
    }

    /// Worker `pid` leaves (exit code 0) and is reaped.
    pub fn worker_exits(&self, pid: i32) {
        self.0.worker_exited(pid, ExitCause::Code(0));
    }

    /// Why each worker that ended did, oldest first.
    pub fn exit_reasons(&self) -> Vec<crate::ExitReason> {
        self.0
            .exit_history()
            .into_iter()
            .map(|e| e.reason)
            .collect()
    }
}
