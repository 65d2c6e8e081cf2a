//! The `ProcessPoolExecutor` example of Python's `concurrent.futures` documentation, on the MPI
//! pool (mpi4py's `MPIPoolExecutor`): which of six large numbers are prime, checked by MPI
//! worker ranks with `map`.
//!
//! ```text
//! cargo run --release --features mpi --example primes_mpi        # spawns 2 workers
//! mpirun -n 3 target/release/examples/primes_mpi                 # ranks 1 and 2 serve
//! ```

use concurrent_futures::{Executor, MpiPoolExecutor};

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
    // A worker rank (spawned, or above 0 under mpirun) serves here and exits.
    let _session = concurrent_futures::mpi::bootstrap().expect("MPI starts");

    let executor = MpiPoolExecutor::new().expect("the workers start");
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
