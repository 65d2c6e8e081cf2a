//! The model-checked back end: loom's types, and a model clock driven by the test.

pub mod sync {
    pub use loom::sync::Arc;

    pub mod atomic {
        pub use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
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

        /// A timed wait that really blocks: the thread sleeps on the condition variable until it
        /// is notified or the model clock passes `deadline` (a model's timer thread calls
        /// `time::advance`, which wakes it through the same lock and condvar). So a lost
        /// wake-up on a timed wait is a deadlock that loom reports, unless the model lets the
        /// clock pass the deadline.
        pub fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            deadline: super::time::Instant,
        ) -> MutexGuard<'a, T> {
            let mutex = guard.mutex;
            let wake = super::time::Wake::new(mutex, self);
            let Some(timer) = super::time::arm(deadline, wake) else {
                // Already past: a timed wait that returns at once (the caller re-checks).
                return guard;
            };
            let guard = self.wait(guard);
            if super::time::disarm(&timer) {
                return guard;
            }
            // The clock fired our timer: it may still be using our mutex and condvar. Let it
            // finish (it needs the lock) before the caller may free them.
            drop(guard);
            while !timer.has_fired() {
                loom::thread::yield_now();
            }
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
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    loom::lazy_static! {
        /// Nanoseconds on the model clock; fresh for every execution of a model.
        static ref NOW: AtomicU64 = AtomicU64::new(0);
        /// Timed waits in progress. `advance` moves `NOW` only with this locked, and a waiter
        /// arms its timer with it locked, so "is the deadline past?" and "arm the timer" are
        /// one step as far as the clock is concerned.
        static ref TIMERS: loom::sync::Mutex<Timers> = loom::sync::Mutex::new(Timers::default());
    }

    #[derive(Default)]
    struct Timers {
        next_id: u64,
        armed: Vec<(u64, u64, Arc<AtomicBool>, Wake)>,
    }

    /// How the clock wakes one timed waiter: lock its mutex, notify its condvar, unlock. Taking
    /// the waiter's lock means the notification cannot fall between the waiter arming its
    /// timer and sleeping (it holds the lock throughout).
    #[derive(Debug)]
    pub struct Wake {
        mutex: *const (),
        condvar: *const super::sync::Condvar,
        notify: unsafe fn(*const (), *const super::sync::Condvar),
    }

    // SAFETY: a `Wake` only travels to the thread that advances the clock, which uses it while
    // the waiter is inside `wait_until` (see `Condvar::wait_until`); the mutex and condvar it
    // points to are `Sync` there, as the waiter's own use of them requires.
    unsafe impl Send for Wake {}
    // SAFETY: as for `Send`: shared only through the timer registry, used by one thread.
    unsafe impl Sync for Wake {}

    impl Wake {
        pub(super) fn new<T>(
            mutex: &super::sync::Mutex<T>,
            condvar: &super::sync::Condvar,
        ) -> Wake {
            /// # Safety
            /// `mutex` and `condvar` must point to live values, `mutex` to a `Mutex<T>`.
            unsafe fn notify<T>(mutex: *const (), condvar: *const super::sync::Condvar) {
                // SAFETY: the caller's contract: both are alive, and `mutex` has type
                // `Mutex<T>` (it was made from one in `Wake::new::<T>`).
                let (mutex, condvar) =
                    unsafe { (&*mutex.cast::<super::sync::Mutex<T>>(), &*condvar) };
                let _guard = mutex.lock();
                condvar.notify_all();
            }
            Wake {
                mutex: (mutex as *const super::sync::Mutex<T>).cast(),
                condvar,
                notify: notify::<T>,
            }
        }
    }

    /// An armed timer, held by its waiter.
    #[derive(Debug)]
    pub struct Timer {
        id: u64,
        fired: Arc<AtomicBool>,
    }

    impl Timer {
        /// Whether the clock has finished waking this timer's waiter.
        pub fn has_fired(&self) -> bool {
            self.fired.load(Ordering::SeqCst)
        }
    }

    /// Arms a timer for `deadline`, or returns `None` if the clock is already past it.
    pub(super) fn arm(deadline: Instant, wake: Wake) -> Option<Timer> {
        let mut timers = TIMERS.lock().unwrap();
        if Instant::now() >= deadline {
            return None;
        }
        let id = timers.next_id;
        timers.next_id += 1;
        let fired = Arc::new(AtomicBool::new(false));
        timers.armed.push((id, deadline.0, fired.clone(), wake));
        Some(Timer { id, fired })
    }

    /// Removes a timer that has not fired; `false` if the clock took it already.
    pub(super) fn disarm(timer: &Timer) -> bool {
        let mut timers = TIMERS.lock().unwrap();
        match timers.armed.iter().position(|(id, ..)| *id == timer.id) {
            Some(i) => {
                timers.armed.swap_remove(i);
                true
            }
            None => false,
        }
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

    /// Moves the model clock forward and wakes every timed wait whose deadline it passed; only
    /// loom models call this (from their timer thread).
    pub fn advance(d: Duration) {
        let n = u64::try_from(d.as_nanos()).expect("model clock step fits in u64");
        let due = {
            let mut timers = TIMERS.lock().unwrap();
            let now = NOW.fetch_add(n, Ordering::SeqCst) + n;
            let (due, armed) = std::mem::take(&mut timers.armed)
                .into_iter()
                .partition(|(_, at, ..)| *at <= now);
            timers.armed = armed;
            due
        };
        // Outside `TIMERS`: a waiter holds its own lock while it arms or disarms a timer.
        for (_, _, fired, wake) in due {
            // SAFETY: the waiter cannot leave `wait_until` (so its mutex and condvar live on)
            // until `fired` is set below: its `disarm` fails, and it waits for `fired`.
            unsafe { (wake.notify)(wake.mutex, wake.condvar) };
            fired.store(true, Ordering::SeqCst);
        }
    }
}

pub mod thread {
    pub use loom::thread::{JoinHandle, ThreadId, current, yield_now};

    /// Starts a (named) loom thread.
    pub fn spawn_named<F, T>(name: String, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        loom::thread::Builder::new().name(name).spawn(f)
    }
}

pub(crate) use loom::thread_local;

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
