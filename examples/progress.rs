//! A progress bar over `as_completed`: 200 tasks on a `ThreadPoolExecutor`, reported with
//! `indicatif` as they complete.
//!
//! ```text
//! cargo run --release --example progress
//! ```
//!
//! `as_completed_all` (Python's `as_completed(fs)` without a timeout) knows how many futures are
//! left, so `indicatif`'s `.progress()` takes the bar's length from it; `as_completed` with a
//! timeout reports an exact upper bound in its `size_hint` for `progress_count`. The bar is
//! drawn on stderr, and hidden when stderr is not a terminal.

use concurrent_futures::{ThreadPoolExecutor, as_completed_all};
use indicatif::{ProgressIterator, ProgressStyle};

/// How many numbers below `limit` are prime: a task of a few milliseconds.
fn count_primes(limit: u64) -> usize {
    (2..limit)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count()
}

fn main() {
    let pool = ThreadPoolExecutor::new();
    let futures: Vec<_> = (0..200u64)
        .map(|i| {
            let limit = 20_000 + 500 * i;
            pool.submit(|limit| (limit, count_primes(limit)), limit)
                .expect("the pool is running")
        })
        .collect();

    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} tasks, {elapsed}")
        .expect("a valid template");
    let mut largest = (0, 0);
    for future in as_completed_all(&futures).progress_with_style(style) {
        let (limit, primes) = future.result(None).expect("counting never fails");
        largest = largest.max((limit, primes));
    }
    println!(
        "{} tasks done; {} primes below {}",
        futures.len(),
        largest.1,
        largest.0
    );
}
