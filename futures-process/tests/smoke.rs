//! Quick checks while building.
use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};

concurrent_futures_process::bootstrap_before_main!();

fn square(x: u64) -> u64 {
    x * x
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

#[test]
fn each_method_runs_a_task() {
    for method in [
        StartMethod::ForkServer,
        StartMethod::Spawn,
        StartMethod::Fork,
    ] {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(2)
            .start_method(method)
            .build()
            .unwrap();
        assert_eq!(
            pool.submit(square, 12).unwrap().result(None).unwrap(),
            144,
            "{method:?}"
        );
        assert_ne!(
            pool.submit(pid, ()).unwrap().result(None).unwrap(),
            std::process::id()
        );
        pool.shutdown(true, false);
        assert!(pool.worker_pids().is_empty());
    }
}
