//! The worker's side, over any transport: run tasks until the pool asks the worker to leave
//! (or closes its end, or the worker reaches `max_tasks_per_child`). Python's `_process_worker`.
//!
//! The loop is single-threaded. It runs only call sites its pool sealed (see [`crate::auth`]),
//! with the key from its first settings message. It never exits the process itself: it returns
//! a [`ServeEnd`], and the engine leaves as its transport requires (the process engine with
//! `_exit`, never through destructors, since a forked worker may hold copies of locks another
//! thread took).

use crate::auth::{CallKey, SealedSite, Version};
use crate::call::{self, CodeMap};
use crate::refused::{CallRefused, RefusalReason};
use crate::wire::{self, Failure, ToWorker};
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a worker's serve loop exchanges whole messages with its pool.
pub trait WorkerLink {
    /// The next whole message from the pool, or `None` once the pool has closed its end.
    fn recv(&mut self) -> Option<Vec<u8>>;
    /// Sends one whole message to the pool; `false` if the pool is gone.
    fn send(&mut self, message: Vec<u8>) -> bool;
}

/// Exit code of a worker whose initializer failed (Python: the process returns normally).
pub const INITIALIZER_FAILED: i32 = 1;
/// Exit code of a worker whose settings came from another protocol or build.
pub const VERSION_MISMATCH: i32 = 71;

/// Why [`serve`] returned: the worker should now leave, with [`exit_code`](ServeEnd::exit_code).
#[must_use = "the worker should leave with the end's exit code"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServeEnd {
    /// The pool asked the worker to leave ([`encode_exit`](crate::wire::encode_exit)).
    Exit,
    /// The pool closed its end ([`WorkerLink::recv`] gave `None`): it shut down or died.
    PoolClosed,
    /// A task's report could not be sent ([`WorkerLink::send`] gave `false`): the pool is gone.
    PoolGone,
    /// The worker ran its `max_tasks` tasks.
    MaxTasks,
    /// The initializer failed (reported to the pool before returning).
    InitializerFailed,
    /// The settings came from another protocol or build (reported to the pool before
    /// returning).
    VersionMismatch,
}

impl ServeEnd {
    /// The process's exit code for this end: [`INITIALIZER_FAILED`], [`VERSION_MISMATCH`], or
    /// 0.
    pub fn exit_code(self) -> i32 {
        match self {
            ServeEnd::InitializerFailed => INITIALIZER_FAILED,
            ServeEnd::VersionMismatch => VERSION_MISMATCH,
            ServeEnd::Exit | ServeEnd::PoolClosed | ServeEnd::PoolGone | ServeEnd::MaxTasks => 0,
        }
    }
}

thread_local! {
    /// Where the last panic happened and the backtrace at that point, for the parent.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Serves the pool on `link` until it is time to leave, and says why.
///
/// Marks this process a worker first ([`install_panic_capture`]: a task's panic is recorded
/// for the pool instead of printed). A task before the settings, one whose call site its
/// pool did not seal, or one that lies outside the executable's code is refused by id; a
/// message that is not one is logged and ignored; the loop keeps serving after either.
pub fn serve<L: WorkerLink + ?Sized>(link: &mut L) -> ServeEnd {
    install_panic_capture();
    IS_WORKER.store(true, Ordering::Relaxed);
    // The pool's key, from the first settings message; until then no task runs.
    let mut key: Option<CallKey> = None;
    let mut max_tasks = None;
    let mut done = 0u64;
    loop {
        // The pool closing its end also means leave: it shut down or died.
        let Some(message) = link.recv() else {
            return ServeEnd::PoolClosed;
        };
        match wire::decode_to_worker(&message) {
            Ok(ToWorker::Init(init)) if key.is_none() => {
                let ours = Version::ours();
                if init.version != ours {
                    let text = format!(
                        "the worker ({ours}) refused settings from another protocol or build \
                         ({})",
                        init.version
                    );
                    let _ = link.send(wire::encode_init_failed(&text, ""));
                    return ServeEnd::VersionMismatch;
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
                        Failure::Refused { reason, detail } => {
                            (CallRefused::new(reason, detail).to_string(), String::new())
                        }
                    };
                    let _ = link.send(wire::encode_init_failed(&text, &traceback));
                    return ServeEnd::InitializerFailed;
                }
                if had_initializer {
                    let _ = link.send(wire::encode_ready());
                }
            }
            Ok(ToWorker::Init(_)) => {
                // The key is taken once: a later message cannot replace it.
                log::error!(
                    target: "concurrent_futures",
                    "worker {}: refused a second settings message", pid()
                );
            }
            Ok(ToWorker::Exit) => return ServeEnd::Exit,
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
                drop(message);
                if !link.send(reply) {
                    return ServeEnd::PoolGone;
                }
                done += 1;
                if max_tasks == Some(done) {
                    return ServeEnd::MaxTasks;
                }
            }
            Err(why) => {
                let failure = Failure::Refused {
                    reason: RefusalReason::Malformed,
                    detail: why.clone(),
                };
                if let Some(id) = wire::task_id(&message) {
                    let _ = link.send(wire::encode_done(id, Err(failure)));
                } else {
                    log::error!(target: "concurrent_futures", "worker {}: {why}", pid());
                }
            }
        }
    }
}

/// This process's id, for the log.
fn pid() -> i32 {
    std::process::id() as i32
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
/// that was there before. [`serve`] installs it; an engine that forks its workers installs it
/// in the pool's process before forking, so that the forked worker needs no lock to install it
/// (another thread of the parent may hold the hook's lock at the moment of the fork).
pub fn install_panic_capture() {
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
