//! Fault injection for this crate's own integration tests. Compiled only with the
//! `test-support` feature, which only the crate's dev-dependency on itself turns on; not part
//! of the API.

use std::time::Duration;

/// Makes this process, if it turns out a worker rank, wait `delay` after `MPI_Init` and before
/// its first MPI call (its hello): a rank that comes up late, which answers no connection in
/// the meantime. Call before [`bootstrap`](crate::bootstrap); only the first call counts.
pub fn delay_worker_hello(delay: Duration) {
    let _ = crate::bootstrap::HELLO_DELAY.set(delay);
}
