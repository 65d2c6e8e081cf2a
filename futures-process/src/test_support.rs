//! Hooks for this crate's own integration tests: a real worker driven message by message, and
//! the messages a forger or another pool would send it. Compiled only with the `test-support`
//! feature, which only the crate's dev-dependency on itself turns on; not part of the API.

use crate::launch::{self, Child, Connected, LaunchError, StartMethod};
use crate::wire::{self, Failure, FromWorker, Init};
use concurrent_futures_core::{Payload, TaskError};
use concurrent_futures_remote::auth::{CallKey, Version};
use concurrent_futures_remote::call::CallSite;

/// A key as a pool draws it when it is built.
#[derive(Debug)]
pub struct PoolKey(CallKey);

impl PoolKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn new() -> PoolKey {
        PoolKey(CallKey::generate().expect("the OS random number generator"))
    }
}

impl Default for PoolKey {
    fn default() -> Self {
        PoolKey::new()
    }
}

/// Which half of the version a launch expects differently from the worker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSkew {
    /// The next wire protocol.
    Protocol,
    /// Another build of the crate (another copy of it in the program).
    Build,
}

/// How a launch ended.
#[derive(Debug)]
pub enum Launched {
    /// The worker connected and was accepted (and has been killed and reaped again).
    Accepted,
    /// Refused for its version: the worker's pid, and the error's text.
    VersionRefused {
        /// The refused worker.
        pid: i32,
        /// The launch error's message.
        message: String,
    },
    /// Failed otherwise: the error's text.
    Failed(String),
}

/// The hand-shake time limit the test workers get (a pool's default).
const HANDSHAKE: std::time::Duration = crate::ProcessPoolBuilder::DEFAULT_HANDSHAKE_TIMEOUT;

/// Starts a worker with `method` the way a pool does, but expecting a hello whose version
/// differs from this build's by `skew`: what a pool of another copy of the crate would see.
pub fn launch_expecting(method: StartMethod, skew: VersionSkew) -> Launched {
    let mut expected = Version::ours();
    match skew {
        VersionSkew::Protocol => expected.protocol += 1,
        VersionSkew::Build => expected.build ^= 0x10,
    }
    match launch::launch_expecting(method, HANDSHAKE, expected) {
        Ok((child, connected)) => {
            crate::sys::signal(child.pid, nix::sys::signal::Signal::SIGKILL);
            drop(connected);
            child.reap();
            Launched::Accepted
        }
        Err(error @ LaunchError::Version { pid, .. }) => Launched::VersionRefused {
            pid,
            message: launch::describe(&error),
        },
        Err(error) => Launched::Failed(launch::describe(&error)),
    }
}

/// A real worker with no pool around it: the test plays its pool.
#[derive(Debug)]
pub struct RawWorker {
    child: Option<Child>,
    connected: Connected,
    key: PoolKey,
}

impl RawWorker {
    /// Starts a worker with `method` and sends it its settings with a fresh key, as a pool's
    /// courier does.
    pub fn start(method: StartMethod) -> RawWorker {
        let (child, connected) = launch::launch(method, HANDSHAKE)
            .unwrap_or_else(|e| panic!("start a worker: {}", launch::describe(&e)));
        let key = PoolKey::new();
        let init = wire::encode_init(&Init {
            version: Version::ours(),
            key: key.0.clone(),
            initializer: None,
            max_tasks: None,
        });
        let worker = RawWorker {
            child: Some(child),
            connected,
            key,
        };
        worker.send_raw(init);
        worker
    }

    /// The worker's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.pid)
    }

    /// Sends task `id`, `f(arg)`, sealed with this worker's key: what its pool would send.
    pub fn send_task<A: Payload, R: Payload>(&self, id: u64, f: fn(A) -> R, arg: &A) {
        self.send_sealed_by(&self.key, id, f, arg);
    }

    /// Sends task `id`, `f(arg)`, sealed with `key`: what another pool would send.
    pub fn send_sealed_by<A: Payload, R: Payload>(
        &self,
        key: &PoolKey,
        id: u64,
        f: fn(A) -> R,
        arg: &A,
    ) {
        let site = key.0.seal(CallSite::of(f));
        self.send_raw(wire::encode_task(id, site, arg).expect("encode the argument"));
    }

    /// Sends task `id` as a forger would make it from a real message of this pool: the
    /// trampoline and tag of `f`, sealed with this worker's key, but the function moved to
    /// `function` (an address in this process, e.g. `std::process::abort as usize`).
    pub fn send_forged<A: Payload, R: Payload>(
        &self,
        id: u64,
        f: fn(A) -> R,
        function: usize,
        arg: &A,
    ) {
        let authentic = self.key.0.seal(CallSite::of(f));
        let forged = authentic.with_site(authentic.site.with_function_at(function));
        self.send_raw(wire::encode_task(id, forged, arg).expect("encode the argument"));
    }

    /// Sends `bytes` as one message.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        wire::send(&self.connected.tasks, bytes).expect("the worker's channel is open");
    }

    /// The next task report: its id, and the result or the task's error. `None` if the
    /// worker's channel closed (it is gone).
    pub fn reply<R: Payload>(&self) -> Option<(u64, Result<R, TaskError>)> {
        let mut envelope = self.connected.results.recv().ok()?;
        // An initializer's report that it returned comes first; skip it.
        if matches!(
            wire::decode_from_worker(envelope.bytes()),
            Some(FromWorker::Ready)
        ) {
            envelope = self.connected.results.recv().ok()?;
        }
        match wire::decode_from_worker(envelope.bytes()) {
            Some(FromWorker::Ready) => panic!("a second report that the initializer returned"),
            Some(FromWorker::Done { id, outcome }) => {
                let outcome = outcome.map_err(Failure::into_task_error).and_then(|bytes| {
                    postcard::from_bytes(bytes).map_err(|e| TaskError::remote(e.to_string(), ""))
                });
                Some((id, outcome))
            }
            Some(FromWorker::InitFailed { message, .. }) => {
                panic!("the worker's settings failed: {message}")
            }
            None => panic!("an undecodable report from the worker"),
        }
    }

    /// Asks the worker to leave, reaps it, and says how it ended.
    pub fn finish(mut self) -> String {
        self.send_raw(wire::encode_exit());
        let child = self.child.take().expect("not yet reaped");
        child.reap().to_string()
    }
}

impl Drop for RawWorker {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::sys::signal(child.pid, nix::sys::signal::Signal::SIGKILL);
            child.reap();
        }
    }
}
