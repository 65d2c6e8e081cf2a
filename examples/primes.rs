//! The `ProcessPoolExecutor` example of Python's `concurrent.futures` documentation: which of
//! six large numbers are prime, checked in parallel by worker processes with `map`.
//!
//! ```text
//! cargo run --release --example primes
//! ```

use concurrent_futures::{Executor, ProcessPoolExecutor};

const PRIMES: [u64; 6] = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
];

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64;
    (3..=sqrt_n).step_by(2).all(|i| !n.is_multiple_of(i))
}

fn main() {
    // Python's `if __name__ == '__main__':` — starts the fork server; a worker stops here.
    concurrent_futures::process::bootstrap();

    let executor = ProcessPoolExecutor::new().expect("bootstrap() ran first");
    let results = executor
        .map(is_prime, PRIMES)
        .expect("the executor is running");
    for (number, prime) in PRIMES.iter().zip(results) {
        let prime = prime.expect("is_prime does not fail");
        println!(
            "{number} is prime: {}",
            if prime { "True" } else { "False" }
        );
    }
}
