//! The worker's side: connect to the pool, then run tasks until the pool asks it to leave (or
//! closes the channel, or the worker reaches `max_tasks_per_child`).
//!
//! Python's `_process_worker`, over ipc-channel: the messages are served by
//! `concurrent_futures_remote::serve`, which runs only call sites the worker's pool sealed,
//! with the key from its first settings message. A spawned worker starts with no descriptor of
//! the pool's (all were close-on-exec); a fork-server worker closed the fork server's and keeps
//! what the program had open at `bootstrap`; a forked one keeps them all, as Python's fork
//! does. It leaves with `_exit`, never through destructors, since a forked worker may hold
//! copies of locks another thread took.

use crate::sys;
use crate::wire::{self, Envelope, Failure, Hello};
use concurrent_futures_remote::auth::Version;
use concurrent_futures_remote::{RefusalReason, WorkerLink};
use ipc_channel::ipc::IpcSender;

/// Exit code of a worker that could not reach its pool at all.
const CANNOT_CONNECT: i32 = 70;

/// Runs the worker: connects to the one-shot server `server` with `token`, and serves tasks.
pub(crate) fn serve(server: &str, token: u64) -> ! {
    let Ok((tasks_tx, tasks)) = wire::channel() else {
        sys::exit_now(CANNOT_CONNECT)
    };
    let Ok((results, results_rx)) = wire::channel() else {
        sys::exit_now(CANNOT_CONNECT)
    };
    let Ok(hello) = IpcSender::<Hello>::connect(server.to_owned()) else {
        sys::exit_now(CANNOT_CONNECT)
    };
    let greeting = Hello {
        version: Version::ours(),
        token,
        pid: sys::pid(),
        channels: Some((tasks_tx, results_rx)),
    };
    if hello.send(greeting).is_err() {
        sys::exit_now(CANNOT_CONNECT);
    }
    drop(hello);
    serve_channels(tasks, results)
}

/// The worker's loop, on channels it already holds.
pub(crate) fn serve_channels(tasks: wire::Receiver, results: wire::Sender) -> ! {
    sys::set_process_name(sys::WORKER_NAME);
    sys::take_group_down_with_worker();
    let end = concurrent_futures_remote::serve(&mut Channels { tasks, results });
    sys::exit_now(end.exit_code())
}

/// A worker's two channels, as the serve loop's link to its pool.
struct Channels {
    tasks: wire::Receiver,
    results: wire::Sender,
}

impl WorkerLink for Channels {
    fn recv(&mut self) -> Option<Vec<u8>> {
        match self.tasks.recv().ok()? {
            Envelope::Inline(bytes) => Some(bytes),
            // A message over 64 KiB: copied out of its region (one copy of the argument).
            Envelope::Shared(region) => Some(region.to_vec()),
        }
    }

    fn send(&mut self, message: Vec<u8>) -> bool {
        let report = wire::done_id(&message);
        match wire::send(&self.results, message) {
            Ok(()) => true,
            Err(wire::SendError::Gone) => false,
            // Most often no descriptor for a large result's shared memory: say so in a small
            // message instead, so that the future fails with the reason.
            Err(wire::SendError::Local(why)) => match report {
                Some(id) => {
                    let failure = Failure::Refused {
                        reason: RefusalReason::ResultNotSent,
                        detail: why,
                    };
                    wire::send(&self.results, wire::encode_done(id, Err(failure))).is_ok()
                }
                // Not a task's report (the initializer's): as before, nothing more to say.
                None => true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    //! A real worker (a fork of this test process) fed garbage on its channel: it answers what
    //! it can with an error, keeps serving, and leaves when asked.
    use super::*;
    use crate::sys::ExitCause;
    use crate::wire::FromWorker;
    use concurrent_futures_remote::auth::CallKey;
    use concurrent_futures_remote::call::CallSite;
    use concurrent_futures_remote::{CodeMap, install_panic_capture};

    fn triple(x: u32) -> u32 {
        3 * x
    }

    fn reply(results: &wire::Receiver) -> (u64, Result<Vec<u8>, RefusalReason>) {
        let envelope = results.recv().expect("the worker answers");
        match wire::decode_from_worker(envelope.bytes()) {
            Some(FromWorker::Done { id, outcome }) => (
                id,
                outcome.map(<[u8]>::to_vec).map_err(|f| match f {
                    Failure::Refused { reason, .. } => reason,
                    other => panic!("expected a refusal, got {other:?}"),
                }),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_worker_refuses_what_it_cannot_vouch_for_and_keeps_serving() {
        concurrent_futures_testkit::watchdog(|| {
            // What the pool's fork does first, so that the child takes no lock another thread of
            // this test binary may hold.
            crate::launch::warm_up_ipc_channel().unwrap();
            install_panic_capture();
            CodeMap::get().unwrap();
            let (tasks, tasks_rx) = wire::channel().unwrap();
            let (results_tx, results) = wire::channel().unwrap();
            let held = (std::io::stdout().lock(), std::io::stderr().lock());
            // SAFETY: as in `launch::fork_worker`: the child is this multi-threaded process with
            // every other thread stopped forever (at worst a hang, never undefined behaviour),
            // and the locks the worker loop takes were prepared above (stdout and stderr are
            // held by this thread, the child's only one); the child runs only the worker loop.
            let pid = match unsafe { nix::unistd::fork() }.unwrap() {
                nix::unistd::ForkResult::Child => serve_channels(tasks_rx, results_tx),
                nix::unistd::ForkResult::Parent { child } => child.as_raw(),
            };
            drop(held);
            drop((tasks_rx, results_tx));
            let key = CallKey::generate().unwrap();
            let settings = |key: &CallKey| {
                wire::encode_init(&wire::Init {
                    version: Version::ours(),
                    key: key.clone(),
                    initializer: None,
                    max_tasks: None,
                })
            };
            // A task before the settings: no key yet, refused by id.
            let early = wire::encode_task(0, key.seal(CallSite::of(triple)), &5u32).unwrap();
            wire::send(&tasks, early).unwrap();
            assert_eq!(reply(&results), (0, Err(RefusalReason::BeforeSettings)));
            wire::send(&tasks, settings(&key)).unwrap();
            // Second settings with another key: ignored, the first key stays.
            let other = CallKey::generate().unwrap();
            wire::send(&tasks, settings(&other)).unwrap();

            // Not a message at all: logged by the worker, no reply, still serving.
            wire::send(&tasks, vec![9, 9, 9]).unwrap();
            // A task whose call site is truncated: refused by id.
            let mut truncated =
                wire::encode_task(1, key.seal(CallSite::of(triple)), &5u32).unwrap();
            truncated.truncate(12);
            wire::send(&tasks, truncated).unwrap();
            assert_eq!(reply(&results), (1, Err(RefusalReason::Malformed)));
            // An authentic site whose function lies outside this executable's code: refused,
            // not called (a pool never seals one; this test does, to reach the second check).
            let bad = key.seal(CallSite::of(triple).with_function_at(usize::MAX / 4));
            wire::send(&tasks, wire::encode_task(2, bad, &5u32).unwrap()).unwrap();
            assert_eq!(reply(&results), (2, Err(RefusalReason::OutsideCode)));
            // A site sealed with the key of the settings the worker ignored: refused.
            let foreign = other.seal(CallSite::of(triple));
            wire::send(&tasks, wire::encode_task(4, foreign, &5u32).unwrap()).unwrap();
            assert_eq!(reply(&results), (4, Err(RefusalReason::Unauthenticated)));
            // And a good one still runs.
            wire::send(
                &tasks,
                wire::encode_task(3, key.seal(CallSite::of(triple)), &5u32).unwrap(),
            )
            .unwrap();
            let (id, outcome) = reply(&results);
            assert_eq!(
                (id, postcard::from_bytes::<u32>(&outcome.unwrap()).unwrap()),
                (3, 15)
            );

            wire::send(&tasks, wire::encode_exit()).unwrap();
            assert!(
                results.recv().is_err(),
                "the worker left and closed its channel"
            );
            assert_eq!(crate::sys::wait_child(pid), ExitCause::Code(0));
        });
    }
}
