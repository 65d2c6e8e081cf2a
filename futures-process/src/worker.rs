//! The worker's side: connect to the pool, then run tasks until the pool asks it to leave (or
//! closes the channel, or the worker reaches `max_tasks_per_child`).
//!
//! Python's `_process_worker`. The worker is single-threaded. A spawned worker starts with no
//! descriptor of the pool's (all were close-on-exec); a fork-server worker closed the fork
//! server's and keeps what the program had open at `bootstrap`; a forked one keeps them all,
//! as Python's fork does. It runs only call sites its pool sealed (see `auth.rs`), with the key
//! from its first settings message. It leaves with `_exit`, never through destructors, since a forked worker may hold
//! copies of locks another thread took.

use crate::auth::{CallKey, SealedSite, Version};
use crate::call::{self, CodeMap};
use crate::refused::RefusalReason;
use crate::sys;
use crate::wire::{self, Failure, Hello, ToWorker};
use ipc_channel::ipc::IpcSender;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// Where the last panic happened and the backtrace at that point, for the parent.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Exit code of a worker that could not reach its pool at all.
const CANNOT_CONNECT: i32 = 70;
/// Exit code of a worker whose initializer failed (Python: the process returns normally).
const INITIALIZER_FAILED: i32 = 1;
/// Exit code of a worker whose settings came from another protocol or build.
const VERSION_MISMATCH: i32 = 71;

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
    install_panic_capture();
    IS_WORKER.store(true, Ordering::Relaxed);
    // The pool's key, from the first settings message; until then no task runs.
    let mut key: Option<CallKey> = None;
    let mut max_tasks = None;
    let mut done = 0u64;
    loop {
        // The pool closing its end also means leave: it shut down or died.
        let Ok(envelope) = tasks.recv() else {
            sys::exit_now(0)
        };
        let message = envelope.bytes();
        match wire::decode_to_worker(message) {
            Ok(ToWorker::Init(init)) if key.is_none() => {
                let ours = Version::ours();
                if init.version != ours {
                    let text = format!(
                        "the worker ({ours}) refused settings from another protocol or build \
                         ({})",
                        init.version
                    );
                    let _ = wire::send(&results, wire::encode_init_failed(&text, ""));
                    sys::exit_now(VERSION_MISMATCH);
                }
                max_tasks = init.max_tasks;
                let key = key.insert(init.key);
                let had_initializer = init.initializer.is_some();
                if let Some((site, args)) = init.initializer
                    && let Err(failure) = run(key, &site, &args)
                {
                    let (text, traceback) = match failure {
                        Failure::Panicked { message, traceback } => (message, traceback),
                        Failure::Payload { message, .. } | Failure::Unreadable { message } => {
                            (message, String::new())
                        }
                        Failure::Refused { reason, detail } => (
                            crate::refused::CallRefused::new(reason, detail).to_string(),
                            String::new(),
                        ),
                    };
                    let _ = wire::send(&results, wire::encode_init_failed(&text, &traceback));
                    sys::exit_now(INITIALIZER_FAILED);
                }
                if had_initializer {
                    let _ = wire::send(&results, wire::encode_ready());
                }
            }
            Ok(ToWorker::Init(_)) => {
                // The key is taken once: a later message cannot replace it.
                log::error!(
                    target: "concurrent_futures",
                    "worker {}: refused a second settings message", sys::pid()
                );
            }
            Ok(ToWorker::Exit) => sys::exit_now(0),
            Ok(ToWorker::Task { id, site, args }) => {
                let outcome = match &key {
                    Some(key) => run(key, &site, args),
                    None => Err(Failure::Refused {
                        reason: RefusalReason::BeforeSettings,
                        detail: String::new(),
                    }),
                };
                let reply = wire::encode_done(id, outcome);
                // Free the argument before reporting, as Python drops its call item.
                drop(envelope);
                match wire::send(&results, reply) {
                    Ok(()) => {}
                    Err(wire::SendError::Gone) => sys::exit_now(0),
                    // Most often no descriptor for a large result's shared memory: say so in
                    // a small message instead, so that the future fails with the reason.
                    Err(wire::SendError::Local(why)) => {
                        let failure = Failure::Refused {
                            reason: RefusalReason::ResultNotSent,
                            detail: why,
                        };
                        if wire::send(&results, wire::encode_done(id, Err(failure))).is_err() {
                            sys::exit_now(0);
                        }
                    }
                }
                done += 1;
                if max_tasks == Some(done) {
                    sys::exit_now(0);
                }
            }
            Err(why) => {
                let failure = Failure::Refused {
                    reason: RefusalReason::Malformed,
                    detail: why.clone(),
                };
                if let Some(id) = wire::task_id(message) {
                    let _ = wire::send(&results, wire::encode_done(id, Err(failure)));
                } else {
                    log::error!(target: "concurrent_futures", "worker {}: {why}", sys::pid());
                }
            }
        }
    }
}

/// Runs one call: checks its tag under the pool's key and resolves it (refusing a site the
/// pool did not seal, one outside this executable's code, or any while the code map cannot be
/// read), then decodes, calls and encodes, catching a panic anywhere in those steps.
fn run(key: &CallKey, site: &SealedSite, args: &[u8]) -> Result<Vec<u8>, Failure> {
    let refuse = |reason, detail| Err(Failure::Refused { reason, detail });
    let code = match CodeMap::get() {
        Ok(code) => code,
        Err(why) => return refuse(RefusalReason::Unverifiable, why),
    };
    let Some(verified) = key.open(site) else {
        return refuse(RefusalReason::Unauthenticated, String::new());
    };
    let Some((trampoline, function)) = call::resolve(verified, code) else {
        return refuse(RefusalReason::OutsideCode, String::new());
    };
    // SAFETY: `resolve` gave the pair of a site this pool sealed: `function` is the
    // `fn(A) -> R` that `CallSite::of`/`chunk_of` paired with this trampoline.
    let call = || unsafe { trampoline(function, args) };
    match panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(outcome) => outcome,
        Err(payload) => Err(Failure::Panicked {
            message: concurrent_futures_core::panic_message(&*payload),
            traceback: LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default(),
        }),
    }
}

/// Whether this process is a worker (set once, in the worker, before its first task).
static IS_WORKER: AtomicBool = AtomicBool::new(false);

/// Installs, once per process, a panic hook that records a task's panic (its location and,
/// when the worker's environment asks for one, its backtrace: the remote traceback the parent
/// gets) instead of printing it, in a worker; elsewhere it calls the hook
/// that was there before. The `Fork` method installs it in the pool's process before forking,
/// so that the forked worker needs no lock to install it (another thread of the parent may
/// hold the hook's lock at the moment of the fork).
pub(crate) fn install_panic_capture() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IS_WORKER.load(Ordering::Relaxed) {
                return previous(info);
            }
            let location = info.location().map(|l| l.to_string()).unwrap_or_default();
            // As std's own hook does: a backtrace only if `RUST_LIB_BACKTRACE` or
            // `RUST_BACKTRACE` (in the worker's environment) asks for one; capturing costs
            // milliseconds and makes the text a hundred lines long.
            let backtrace = Backtrace::capture();
            let text = match backtrace.status() {
                BacktraceStatus::Captured => {
                    format!("panicked at {location}\nstack backtrace:\n{backtrace}")
                }
                _ => format!(
                    "panicked at {location}\nnote: run with `RUST_BACKTRACE=1` environment \
                     variable to display the worker's backtrace"
                ),
            };
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
        }));
    });
}

#[cfg(test)]
mod tests {
    //! A real worker (a fork of this test process) fed garbage on its channel: it answers what
    //! it can with an error, keeps serving, and leaves when asked.
    use super::*;
    use crate::call::CallSite;
    use crate::sys::ExitCause;
    use crate::wire::{Failure, FromWorker};

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
