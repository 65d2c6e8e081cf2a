//! The shipped back end: `parking_lot` locks given a std-shaped API, std atomics and clock.

pub mod sync {
    pub use std::sync::Arc;

    pub mod atomic {
        pub use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
    }

    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A `parking_lot::Mutex` (no poisoning: a panicking callback never runs under our locks).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A `parking_lot::Condvar` whose waits take the guard by value, as std's and loom's do.
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }

        pub fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        /// Waits for a notification or for `deadline`; may return early.
        pub fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: super::time::Instant,
        ) -> MutexGuard<'a, T> {
            let _ = self.0.wait_until(&mut guard, deadline);
            guard
        }

        #[inline]
        pub fn notify_all(&self) {
            self.0.notify_all();
        }

        #[inline]
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
    }
}

pub mod cell {
    /// `core::cell::UnsafeCell` with loom's closure-based access API.
    #[derive(Debug)]
    pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub const fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }

        #[inline]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

pub mod time {
    pub use std::time::Instant;
}

pub mod thread {
    pub use std::thread::{JoinHandle, ThreadId, current, yield_now};

    /// Starts a named thread.
    pub fn spawn_named<F, T>(name: String, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        std::thread::Builder::new().name(name).spawn(f)
    }
}

pub(crate) use std::thread_local;

pub mod hint {
    /// One step of a bounded spin-wait.
    #[inline]
    pub fn spin() {
        std::hint::spin_loop();
    }

    /// How many steps a bounded spin-wait of `steps` may take (all of them here; none under
    /// loom, where each step would multiply the schedules to explore).
    #[inline]
    pub fn spin_limit(steps: u32) -> u32 {
        steps
    }
}
