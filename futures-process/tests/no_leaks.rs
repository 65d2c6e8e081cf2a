//! No zombies and no leaked descriptors: 200 pools (every start method; some broken by a
//! crashing task, some by a failing initializer, some never used) are created and shut down,
//! and this process's open descriptors and descendant processes are counted before and after.
//! One test in its own binary, so no other test opens anything meanwhile.

use concurrent_futures_process::{ProcessPoolExecutor, StartMethod};
use concurrent_futures_testkit::procfs::{descendants, open_fds};

concurrent_futures_process::bootstrap_before_main!();

fn square(x: u64) -> u64 {
    x * x
}

fn crash(_: ()) -> u8 {
    std::process::abort()
}

fn failing_init(_: ()) {
    panic!("error in initializer")
}

fn one_pool(i: usize) {
    let method = [
        StartMethod::ForkServer,
        StartMethod::Spawn,
        StartMethod::Fork,
    ][i % 3];
    let mut builder = ProcessPoolExecutor::builder()
        .max_workers(2)
        .start_method(method);
    if i % 20 == 7 {
        builder = builder.initializer(failing_init, ());
    }
    let pool = builder.build().unwrap();
    match i % 10 {
        // Never used: no process is ever started.
        0 => {}
        // Broken by a crashing task.
        3 => {
            let _ = pool.submit(crash, ()).map(|f| f.result(None));
        }
        _ => {
            let futures: Vec<_> = (0..3).filter_map(|x| pool.submit(square, x).ok()).collect();
            for f in futures {
                let _ = f.result(None);
            }
        }
    }
    pool.shutdown(true, false);
}

#[test]
fn two_hundred_pools_leave_no_descriptor_and_no_process_behind() {
    concurrent_futures_testkit::watchdog_for(std::time::Duration::from_secs(240), || {
        // Warm up once: the launcher thread, the fork server's reader, ipc-channel's statics.
        for i in 0..3 {
            one_pool(i + 1);
        }
        let (fds, processes) = (open_fds(), descendants());
        assert!(
            processes.iter().all(|&(_, state)| state != 'Z'),
            "{processes:?}"
        );
        for i in 0..200 {
            one_pool(i);
        }
        assert_eq!(
            descendants(),
            processes,
            "a worker or a zombie was left behind"
        );
        assert_eq!(open_fds(), fds, "a descriptor was leaked");
    });
}
