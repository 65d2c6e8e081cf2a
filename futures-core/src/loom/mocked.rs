//! The model-checked back end: loom's types, and a model clock driven by the test.

pub(crate) mod sync {
    pub(crate) use loom::sync::Arc;

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    }

    /// loom's mutex with the shipped API: no poisoning, and a guard that remembers its mutex so
    /// that a timed wait can release and re-take it.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    #[derive(Debug)]
    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a Mutex<T>,
        guard: loom::sync::MutexGuard<'a, T>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
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
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            let MutexGuard { mutex, guard } = guard;
            MutexGuard {
                mutex,
                guard: self.0.wait(guard).unwrap(),
            }
        }

        /// loom cannot time out a condvar wait, so a timed wait is modelled as what it may
        /// always be: a spurious wake-up. The lock is released, other threads run (the model
        /// clock may move), and the caller re-checks its predicate and the clock.
        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _deadline: super::time::Instant,
        ) -> MutexGuard<'a, T> {
            let mutex = guard.mutex;
            drop(guard);
            loom::thread::yield_now();
            mutex.lock()
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

pub(crate) mod cell {
    pub(crate) use loom::cell::UnsafeCell;
}

pub(crate) mod time {
    use loom::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    loom::lazy_static! {
        /// Nanoseconds on the model clock; fresh for every execution of a model.
        static ref NOW: AtomicU64 = AtomicU64::new(0);
    }

    /// A point on the model clock.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) struct Instant(u64);

    impl Instant {
        pub(crate) fn now() -> Self {
            Instant(NOW.load(Ordering::SeqCst))
        }

        pub(crate) fn checked_add(self, d: Duration) -> Option<Self> {
            u64::try_from(d.as_nanos())
                .ok()
                .and_then(|n| self.0.checked_add(n))
                .map(Instant)
        }

        pub(crate) fn saturating_duration_since(self, earlier: Self) -> Duration {
            Duration::from_nanos(self.0.saturating_sub(earlier.0))
        }
    }

    /// Moves the model clock forward; only loom models call this (from their timer thread).
    pub(crate) fn advance(d: Duration) {
        let n = u64::try_from(d.as_nanos()).expect("model clock step fits in u64");
        NOW.fetch_add(n, Ordering::SeqCst);
    }
}
