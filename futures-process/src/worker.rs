//! The worker's side: connect to the pool, then run tasks until the pool asks it to leave (or
//! closes the channel, or the worker reaches `max_tasks_per_child`).
//!
//! Python's `_process_worker`. The worker is single-threaded. A spawned or fork-server worker
//! closed every descriptor it inherited before connecting; a forked one keeps them, as Python's
//! fork does. It leaves with `_exit`, never through destructors, since a forked worker may hold
//! copies of locks another thread took.

use crate::call::CodeMap;
use crate::sys;
use crate::wire::{self, Failure, Hello, ToWorker};
use ipc_channel::ipc::IpcSender;
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
    install_panic_capture();
    IS_WORKER.store(true, Ordering::Relaxed);
    let mut max_tasks = None;
    let mut done = 0u64;
    loop {
        // The pool closing its end also means leave: it shut down or died.
        let Ok(envelope) = tasks.recv() else {
            sys::exit_now(0)
        };
        let message = envelope.bytes();
        match wire::decode_to_worker(message) {
            Ok(ToWorker::Init(init)) => {
                max_tasks = init.max_tasks;
                if let Some((site, args)) = init.initializer {
                    if let Err(failure) = run(site, &args) {
                        let text = match failure {
                            Failure::Panicked { message, traceback } => {
                                format!("{message}\n{traceback}")
                            }
                            Failure::Payload { message, .. } | Failure::Refused { message } => {
                                message
                            }
                        };
                        let _ = wire::send(&results, wire::encode_init_failed(&text));
                        sys::exit_now(INITIALIZER_FAILED);
                    }
                }
            }
            Ok(ToWorker::Exit) => sys::exit_now(0),
            Ok(ToWorker::Task { id, site, args }) => {
                let outcome = run(site, args);
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
                            message: format!("the worker could not send the result: {why}"),
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
                    message: format!("the worker refused a message it cannot decode: {why}"),
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

/// Runs one call: resolves it (refusing what is not this executable's code), then decodes,
/// calls and encodes, catching a panic anywhere in those steps.
fn run(site: crate::call::CallSite, args: &[u8]) -> Result<Vec<u8>, Failure> {
    let code = CodeMap::get().map_err(|why| Failure::Refused {
        message: format!("the worker cannot check the call: {why}"),
    })?;
    let Some((trampoline, function)) = site.resolve(code) else {
        return Err(Failure::Refused {
            message: "the worker refused a call outside this executable's code".into(),
        });
    };
    match panic::catch_unwind(AssertUnwindSafe(|| trampoline(function, args))) {
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

/// Installs, once per process, a panic hook that records a task's panic (its location and
/// backtrace, for the parent) instead of printing it, in a worker; elsewhere it calls the hook
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
            let backtrace = std::backtrace::Backtrace::force_capture();
            let text = format!("panicked at {location}\nstack backtrace:\n{backtrace}");
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

    fn reply(results: &wire::Receiver) -> (u64, Result<Vec<u8>, String>) {
        let envelope = results.recv().expect("the worker answers");
        match wire::decode_from_worker(envelope.bytes()) {
            Some(FromWorker::Done { id, outcome }) => (
                id,
                outcome.map(<[u8]>::to_vec).map_err(|f| match f {
                    Failure::Refused { message } => message,
                    other => format!("{other:?}"),
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
            // SAFETY: the child only runs the worker loop on the channels made above, with the
            // locks it may take held by this (its only) thread.
            let pid = match unsafe { nix::unistd::fork() }.unwrap() {
                nix::unistd::ForkResult::Child => serve_channels(tasks_rx, results_tx),
                nix::unistd::ForkResult::Parent { child } => child.as_raw(),
            };
            drop(held);
            drop((tasks_rx, results_tx));
            let init = wire::encode_init(&wire::Init {
                initializer: None,
                max_tasks: None,
            });
            wire::send(&tasks, init).unwrap();

            // Not a message at all: logged by the worker, no reply, still serving.
            wire::send(&tasks, vec![9, 9, 9]).unwrap();
            // A task whose call site is truncated: refused by id.
            let mut truncated = wire::encode_task(1, CallSite::of(triple), &5u32).unwrap();
            truncated.truncate(12);
            wire::send(&tasks, truncated).unwrap();
            let (id, outcome) = reply(&results);
            assert_eq!(id, 1);
            assert!(outcome.unwrap_err().contains("cannot decode"));
            // A task whose function lies outside this executable's code: refused, not called.
            let mut bad = CallSite::of(triple);
            bad.scramble_function_for_test();
            wire::send(&tasks, wire::encode_task(2, bad, &5u32).unwrap()).unwrap();
            let (id, outcome) = reply(&results);
            assert_eq!(id, 2);
            assert!(
                outcome
                    .unwrap_err()
                    .contains("outside this executable's code")
            );
            // And a good one still runs.
            wire::send(
                &tasks,
                wire::encode_task(3, CallSite::of(triple), &5u32).unwrap(),
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
