//! [`bootstrap`]: the `if __name__ == "__main__":` of Rust.

use crate::launch::WORKER_ENV;
use crate::{forkserver, sys};
use std::sync::atomic::{AtomicBool, Ordering};

static BOOTSTRAPPED: AtomicBool = AtomicBool::new(false);

/// Exit code of a spawned worker that reached `bootstrap()` with other threads running.
const LATE_BOOTSTRAP: i32 = 3;

/// Makes this program able to run a [`ProcessPoolExecutor`](crate::ProcessPoolExecutor):
/// call it on the first line of `main`.
///
/// In the program itself it starts the fork server (while the program still has one thread,
/// which is what makes forking safe) and returns. Called later, once the program has other
/// threads, it starts nothing, and pools then refuse to start with an error that says so (a
/// spawned worker would run everything before the call again). In a worker that the
/// [`Spawn`](crate::StartMethod::Spawn) method started by running the program again, it never
/// returns: the process serves its pool and exits, so none of `main` runs twice (and if threads
/// were already running there, it exits at once with an error on stderr). A pool with
/// the `ForkServer` or `Spawn` method refuses to start in a program that never called it, with
/// an error naming this line.
///
/// Where the first line of `main` is already too late, put
/// [`bootstrap_before_main!()`](crate::bootstrap_before_main) at the top level of the file
/// instead: in an async `main` (`#[tokio::main]` and its kind start the runtime's threads before
/// the first line of the body), and in test binaries and benches, which have no `main` of their
/// own.
///
/// # Examples
///
/// ```
/// use concurrent_futures_process::{ProcessPoolExecutor, bootstrap};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() {
///     bootstrap();
///     let pool = ProcessPoolExecutor::builder().max_workers(2).build().unwrap();
///     assert_eq!(pool.submit(square, 12).unwrap().result(None).unwrap(), 144);
/// }
/// ```
///
/// # Differences from Python
///
/// Python's `spawn` and `forkserver` import the main module in the child, so unguarded
/// top-level code runs again there; here the child stops at this call, and forgetting it is an
/// error at pool creation instead of a recursive start.
pub fn bootstrap() {
    if let Some(spec) = std::env::var_os(WORKER_ENV) {
        // The variable must not reach the processes a task starts (they would take themselves
        // for workers), but removing it is sound only while no other thread can read the
        // environment: a spawned worker that has other threads at this point did not call
        // `bootstrap()` first, and refuses to serve (its pool sees it exit before connecting).
        match sys::thread_count() {
            Some(1) => {
                // SAFETY: this process has one thread (counted just now by the kernel; only
                // this thread could start another, and it does not before this call), so no
                // other thread reads or writes the environment meanwhile.
                unsafe { std::env::remove_var(WORKER_ENV) };
            }
            threads => {
                eprintln!(
                    "concurrent-futures: this spawned worker reached bootstrap() with {} \
                     threads; call it on the first line of `main`, before any thread starts",
                    threads.map_or("an unknown number of".into(), |n| n.to_string())
                );
                sys::exit_now(LATE_BOOTSTRAP)
            }
        }
        let spec = spec.to_string_lossy().into_owned();
        let Some((server, token)) = spec.split_once('\t') else {
            sys::exit_now(2)
        };
        let Ok(token) = token.parse() else {
            sys::exit_now(2)
        };
        // No descriptor to close: the launcher marked every inherited one close-on-exec.
        crate::worker::serve(server, token);
    }
    if BOOTSTRAPPED.swap(true, Ordering::AcqRel) {
        return;
    }
    match sys::thread_count() {
        Some(1) => forkserver::start(),
        Some(n) => forkserver::unavailable(format!(
            "bootstrap() ran when the program already had {n} threads, so no fork server was \
             started; call it on the first line of `main`, before any thread is created (in an \
             async `main`, whose runtime starts threads before its first line, put \
             `concurrent_futures::process::bootstrap_before_main!();` at the top level instead)"
        )),
        None => forkserver::unavailable("cannot read /proc/self/status to count threads".into()),
    }
}

/// Calls [`bootstrap`](crate::bootstrap) before `main`: the one line an async `main`
/// (`#[tokio::main]`, `#[async_std::main]`) needs, and what integration tests and benches use,
/// whose `main` you do not write. Put it once at the top level of the binary's own source file.
///
/// It registers a constructor (an `.init_array` entry), which the loader runs before `main`
/// and before any runtime starts a thread: the fork server starts there, and a spawned worker
/// serves its pool there, so the child never runs `main`, the async runtime or the test
/// harness.
///
/// # Examples
///
/// An async `main`, where `bootstrap()` on the first line would come too late (the runtime's
/// threads already run, and pools would refuse to start):
///
/// ```ignore
/// concurrent_futures::process::bootstrap_before_main!();
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[tokio::main]
/// async fn main() {
///     let pool = concurrent_futures::ProcessPoolExecutor::new().unwrap();
///     assert_eq!(pool.submit(square, 7).unwrap().await.unwrap(), 49);
/// }
/// ```
///
/// (The repository's `tokio_main` example runs this with both pools.) A plain `main`:
///
/// ```
/// concurrent_futures_process::bootstrap_before_main!();
///
/// fn main() {
///     // The fork server is already running.
///     let pool = concurrent_futures_process::ProcessPoolExecutor::new().unwrap();
///     pool.shutdown(true, false);
/// }
/// ```
///
/// # Caveats
///
/// * Put it in the binary's own crate (`main.rs`, the test or bench file), not in a library:
///   a linker may drop a library's unreferenced constructor, and one that is kept runs in
///   every program that links the library.
/// * It runs before `main`, where a panic aborts the process; `bootstrap` does not panic.
/// * A constructor of another library that starts a thread before this one runs (rare; their
///   order is unspecified) makes it refuse, as a late `bootstrap()` does: pools then fail to
///   build with an error that says so.
/// * It is an ELF constructor: Linux only, like the process pool itself.
#[macro_export]
macro_rules! bootstrap_before_main {
    () => {
        const _: () = {
            extern "C" fn __concurrent_futures_bootstrap() {
                $crate::bootstrap();
            }
            // SAFETY (of the `unsafe` attribute): `.init_array` holds pointers to
            // `extern "C" fn()` that the loader calls once, with no arguments, before `main`;
            // this entry is exactly such a pointer.
            #[used]
            #[unsafe(link_section = ".init_array")]
            static __CONCURRENT_FUTURES_BOOTSTRAP: extern "C" fn() = __concurrent_futures_bootstrap;
        };
    };
}
