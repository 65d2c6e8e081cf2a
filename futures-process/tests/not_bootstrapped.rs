//! A program that never called `bootstrap()` gets an error naming the line to add (never a
//! hang, never a recursive start of itself); the `Fork` method needs no bootstrap.
//! This binary deliberately has no `bootstrap_before_main!()`.

use concurrent_futures_process::{BuildError, ProcessPoolExecutor, StartMethod};

fn double(x: u32) -> u32 {
    2 * x
}

/// `build().unwrap()` in a program that forgot `bootstrap()` panics with the instruction,
/// readably (not `NotBootstrapped(ForkServer)`, not an escaped string).
fn unwrap_shows_the_line_to_add() {
    let panic = std::panic::catch_unwind(|| ProcessPoolExecutor::builder().build().unwrap())
        .expect_err("no bootstrap() yet in this binary");
    let message = panic
        .downcast_ref::<String>()
        .expect("unwrap() panics with a formatted message");
    assert_eq!(
        message,
        &format!(
            "called `Result::unwrap()` on an `Err` value: {}",
            BuildError::NotBootstrapped(StartMethod::ForkServer)
        )
    );
    assert!(
        message.contains("needs `concurrent_futures::process::bootstrap();` as the first line"),
        "{message}"
    );
}

/// One test, in order: the checks before and after a late `bootstrap()` share the process.
#[test]
fn a_missing_or_late_bootstrap_is_an_error_naming_the_line() {
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let err = ProcessPoolExecutor::builder()
            .start_method(method)
            .build()
            .unwrap_err();
        assert_eq!(err, BuildError::NotBootstrapped(method));
        let message = err.to_string();
        assert!(
            message.contains("concurrent_futures::process::bootstrap();"),
            "{message}"
        );
        assert!(message.contains("first line of `main`"), "{message}");
        assert!(message.contains("bootstrap_before_main!()"), "{message}");
        assert!(message.contains("async `main`"), "{message}");
    }
    unwrap_shows_the_line_to_add();
    // Too late: the test harness's threads already run.
    concurrent_futures_process::bootstrap();
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        match ProcessPoolExecutor::builder()
            .start_method(method)
            .build()
            .unwrap_err()
        {
            BuildError::Bootstrap(why) => {
                assert!(why.contains("before any thread"), "{why}");
                // The way out for an async `main`, whose runtime's threads start first.
                assert!(
                    why.contains("async `main`")
                        && why.contains("concurrent_futures::process::bootstrap_before_main!();"),
                    "{why}"
                );
            }
            other => panic!("expected a late-bootstrap error, got {other:?}"),
        }
    }
}

#[test]
fn fork_needs_no_bootstrap() {
    concurrent_futures_testkit::watchdog(|| {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(StartMethod::Fork)
            .build()
            .unwrap();
        assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
    });
}
