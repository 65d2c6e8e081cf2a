//! A panic in a `Drop` that runs on one of the pool's courier threads — a result whose caller
//! dropped its future, so the courier drops the last handle — must not kill the courier: it
//! still reaps its worker, the pool keeps serving, and `shutdown(wait)` returns. (Before, the
//! courier died, the worker's next result was never read and `shutdown(wait)` hung.)

use concurrent_futures_process::StartMethod;
use concurrent_futures_testkit::{GateKey, ProcessGate};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
mod common;
use common::pool;

concurrent_futures_process::bootstrap_before_main!();

/// The test's own process: only there does a [`PanicOnDrop`] panic (a worker drops its copy
/// after encoding it, and must not report that as the task's panic).
static POOL_PROCESS: AtomicU32 = AtomicU32::new(0);

/// A result whose `Drop` panics in the pool's process.
#[derive(Debug, Serialize, Deserialize)]
struct PanicOnDrop(u32);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if POOL_PROCESS.load(Ordering::SeqCst) == std::process::id() {
            panic!("PanicOnDrop dropped");
        }
    }
}

fn after_gate(gate: GateKey) -> PanicOnDrop {
    gate.wait();
    PanicOnDrop(1)
}

fn double(x: u32) -> u32 {
    2 * x
}

fn a_result_whose_drop_panics_on_a_courier_leaves_the_pool_serving(method: StartMethod) {
    POOL_PROCESS.store(std::process::id(), Ordering::SeqCst);
    let pool = pool(method, 1);
    let gate = ProcessGate::new();
    // Dropped before its result arrives: the courier completes it and drops the last handle.
    drop(pool.submit(after_gate, gate.key()).unwrap());
    gate.open();
    assert_eq!(pool.submit(double, 21).unwrap().result(None).unwrap(), 42);
    pool.shutdown(true, false);
}

per_method!(a_result_whose_drop_panics_on_a_courier_leaves_the_pool_serving);
