//! The pool's bookkeeping ([`Shared`]) opened to the loom models in `tests/loom_*.rs`, and only
//! under `cfg(loom)`: the real code, with loom threads standing in for the courier threads.
//!
//! A stand-in courier does what a real one reports about its worker's start, without a
//! process: the launch fails, or the hand-shake times out.

use crate::auth::CallKey;
use crate::call::CallSite;
use crate::launch::{LaunchError, StartMethod};
use crate::shared::{Config, FutureSink, Job, Shared};
use crate::sys::ExitCause;
use crate::wire;
use concurrent_futures_core::{Future, QueueFullPolicy, SubmitError};
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
        let config = Config {
            max_workers,
            method: StartMethod::Fork,
            key: CallKey::generate().expect("the OS gives random bytes"),
            init: Vec::new(),
            has_initializer: false,
            max_tasks: None,
            handshake_timeout: Duration::from_secs(1),
            max_queue,
            supervision: Default::default(),
        };
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
}
