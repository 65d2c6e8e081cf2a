//! [`watchdog`]: a hung test fails, with a message, instead of stalling CI.

use std::panic::{UnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The time a test body gets under [`watchdog`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `body` under a [`DEFAULT_TIMEOUT`] watchdog; see [`watchdog_for`].
pub fn watchdog<R: Send + 'static>(body: impl FnOnce() -> R + Send + UnwindSafe + 'static) -> R {
    watchdog_for(DEFAULT_TIMEOUT, body)
}

/// Runs `body` on its own thread and returns what it returns. If it panics, the panic is
/// re-raised here; if it has not finished after `timeout`, this panics with a report naming the
/// test thread and how long it ran (the hung thread is left behind; the test binary still exits).
///
/// # Examples
///
/// ```
/// use concurrent_futures_testkit::watchdog_for;
/// use std::time::Duration;
///
/// assert_eq!(watchdog_for(Duration::from_secs(5), || 2 + 2), 4);
///
/// let hung = std::panic::catch_unwind(|| {
///     watchdog_for(Duration::from_millis(50), || loop {
///         std::thread::park();
///     })
/// });
/// assert!(hung.is_err());
/// ```
pub fn watchdog_for<R: Send + 'static>(
    timeout: Duration,
    body: impl FnOnce() -> R + Send + UnwindSafe + 'static,
) -> R {
    watchdog_dumping(timeout, || String::from("(no dump given)"), body)
}

/// As [`watchdog_for`], and on a hang the panic message adds `dump()`: the test's own account
/// of its state (which futures are pending, which gates are open, …). Every hang report ends
/// with where this process's threads and its descendants wait ([`describe_tree`]), and their
/// stacks where `gdb` is installed ([`stacks_of_tree`]).
///
/// [`describe_tree`]: crate::procfs::describe_tree
/// [`stacks_of_tree`]: crate::procfs::stacks_of_tree
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::Future;
/// use concurrent_futures_testkit::watchdog_dumping;
/// use std::time::Duration;
///
/// let f = Future::<u8>::new();
/// let probe = f.clone();
/// let hung = std::panic::catch_unwind(move || {
///     watchdog_dumping(Duration::from_millis(50), move || format!("{probe:?}"), move || f.result(None))
/// });
/// let message = *hung.unwrap_err().downcast::<String>().unwrap();
/// assert!(message.contains("state=pending"), "{message}");
/// // And where the hung thread waits (a futex, here), among this process's threads.
/// assert!(message.contains("(watched)"), "{message}");
/// ```
pub fn watchdog_dumping<R: Send + 'static>(
    timeout: Duration,
    dump: impl FnOnce() -> String,
    body: impl FnOnce() -> R + Send + UnwindSafe + 'static,
) -> R {
    let name = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    thread::Builder::new()
        .name(format!("{name} (watched)"))
        .spawn(move || {
            let _ = tx.send(catch_unwind(body));
        })
        .expect("spawn the watched test thread");
    match rx.recv_timeout(timeout) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!(
            "watchdog: `{name}` still running after {:.1?} (limit {timeout:?}); it is hung — \
             look for a future never completed, a gate never opened, or a lost wake-up\n\
             dump: {}\n\
             where this process's threads and its children's wait:\n{}\n{}",
            started.elapsed(),
            dump(),
            crate::procfs::describe_tree(std::process::id()),
            crate::procfs::stacks_of_tree(std::process::id()),
        ),
    }
}
