//! A worker started by `Spawn` or `ForkServer` holds none of the pool process's descriptors,
//! even one without close-on-exec (a worker holding another worker's channel would hide that
//! worker's death); a `Fork` worker inherits them, as Python's `fork` does.

mod common;

use common::{StartMethod, pool};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

concurrent_futures_process::bootstrap_before_main!();

/// What the worker's descriptors point at.
fn open_files(_: ()) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .collect()
}

fn worker_sees_a_leaky_descriptor(method: StartMethod) -> bool {
    let file = std::env::temp_dir().join(format!("cf-leaky-{}-{method:?}", std::process::id()));
    let opened = std::fs::File::create(&file).unwrap();
    // `dup` makes a copy without close-on-exec: what a careless library leaves behind.
    let leaky = nix::unistd::dup(&opened).unwrap();
    assert!(leaky.as_raw_fd() > 2);
    let ex = pool(method, 1);
    let seen = ex.submit(open_files, ()).unwrap().result(None).unwrap();
    drop(ex);
    std::fs::remove_file(&file).unwrap();
    seen.contains(&file)
}

#[test]
fn a_spawned_worker_holds_no_descriptor_of_the_pool() {
    concurrent_futures_testkit::watchdog(|| {
        assert!(!worker_sees_a_leaky_descriptor(StartMethod::Spawn));
    });
}

#[test]
fn a_fork_server_worker_holds_no_descriptor_of_the_pool() {
    concurrent_futures_testkit::watchdog(|| {
        assert!(!worker_sees_a_leaky_descriptor(StartMethod::ForkServer));
    });
}

#[test]
fn a_forked_worker_inherits_the_pools_descriptors() {
    concurrent_futures_testkit::watchdog(|| {
        assert!(worker_sees_a_leaky_descriptor(StartMethod::Fork));
    });
}
