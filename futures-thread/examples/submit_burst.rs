//! Profiling aid: submit 100,000 no-op tasks to a 2-worker pool, then wait for all; ten times.
use concurrent_futures_thread::ThreadPoolExecutor;
use std::time::Instant;

fn main() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    for _ in 0..10 {
        let t = Instant::now();
        let fs: Vec<_> = (0..100_000).map(|_| pool.submit(|| ()).unwrap()).collect();
        fs.iter().for_each(|f| f.result(None).unwrap());
        println!("{:.0} tasks/s", 100_000.0 / t.elapsed().as_secs_f64());
    }
}
