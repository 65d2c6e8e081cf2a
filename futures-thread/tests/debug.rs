//! `{:?}` of a pool names its type, as `#[derive(Debug)]` would, with what a user debugging it
//! wants to see.
#![cfg(not(loom))]

use concurrent_futures_thread::ThreadPoolExecutor;

#[test]
fn the_pools_debug_names_its_type() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .build()
        .unwrap();
    let text = format!("{pool:?}");
    assert!(text.starts_with("ThreadPoolExecutor {"), "{text}");
    assert!(text.contains("max_workers: 3"), "{text}");
}
