//! The model-checked back end: loom's types, and a model clock driven by the test.

pub mod sync {
    pub use loom::sync::Arc;

    pub mod atomic {
        pub use loom::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
    }

    /// loom's mutex with the shipped API: no poisoning, and a guard that remembers its mutex so
    /// that a timed wait can release and re-take it.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    #[derive(Debug)]
    pub struct MutexGuard<'a, T> {
        mutex: &'a Mutex<T>,
        guard: loom::sync::MutexGuard<'a, T>,
    }

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: self,
                guard: self.0.lock().unwrap(),
            }
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.guard
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.guard
        }
    }

    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            let MutexGuard { mutex, guard } = guard;
            MutexGuard {
                mutex,
                guard: self.0.wait(guard).unwrap(),
            }
        }

        /// loom cannot time out a condvar wait, so a timed wait is modelled as what it may
        /// always be: a spurious wake-up. The lock is released, other threads run (the model
        /// clock may move), and the caller re-checks its predicate and the clock.
        pub fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _deadline: super::time::Instant,
        ) -> MutexGuard<'a, T> {
            let mutex = guard.mutex;
            drop(guard);
            loom::thread::yield_now();
            mutex.lock()
        }

        pub fn notify_all(&self) {
            self.0.notify_all();
        }

        pub fn notify_one(&self) {
            self.0.notify_one();
        }
    }
}

pub mod cell {
    pub use loom::cell::UnsafeCell;
}

pub mod time {
    use loom::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    loom::lazy_static! {
        /// Nanoseconds on the model clock; fresh for every execution of a model.
        static ref NOW: AtomicU64 = AtomicU64::new(0);
    }

    /// A point on the model clock.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Instant(u64);

    impl Instant {
        pub fn now() -> Self {
            Instant(NOW.load(Ordering::SeqCst))
        }

        pub fn checked_add(self, d: Duration) -> Option<Self> {
            u64::try_from(d.as_nanos())
                .ok()
                .and_then(|n| self.0.checked_add(n))
                .map(Instant)
        }

        pub fn saturating_duration_since(self, earlier: Self) -> Duration {
            Duration::from_nanos(self.0.saturating_sub(earlier.0))
        }
    }

    /// Moves the model clock forward; only loom models call this (from their timer thread).
    pub fn advance(d: Duration) {
        let n = u64::try_from(d.as_nanos()).expect("model clock step fits in u64");
        NOW.fetch_add(n, Ordering::SeqCst);
    }
}

pub mod thread {
    pub use loom::thread::{JoinHandle, current, yield_now};

    /// Starts a (named) loom thread.
    pub fn spawn_named<F, T>(name: String, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        loom::thread::Builder::new().name(name).spawn(f)
    }
}

pub mod hint {
    /// A spin step is a yield to loom, so other threads can make progress.
    pub fn spin() {
        loom::thread::yield_now();
    }

    /// Spin-waits shrink to nothing under loom (each step would multiply the schedules).
    pub fn spin_limit(_steps: u32) -> u32 {
        0
    }
}
