//! [`Waitable`]: what `wait` and `as_completed` accept, so futures of different result types
//! (and from different executors) can be waited on together.

use crate::waiter::{FutureId, Waiter};
use crate::{Completion, Future};

mod sealed {
    pub trait Sealed {}
}

/// A future of any result type, seen only as something that completes.
///
/// Implemented by [`Future<T>`] for every `T`, and by references, boxes and `Arc`s of anything
/// waitable, so `&dyn Waitable` mixes result types. It is sealed: only this crate's futures keep
/// the promise that each watcher hears of each completion exactly once.
///
/// A pair `(future, tag)` is waitable too, as its future: `wait` and `as_completed` hand back
/// what they were given, so the tag comes back with its future (several pairs of one future
/// count as that future once: the first pair given is the one handed back). Iterating a
/// `HashMap<Future<T>, V>` gives such pairs (Python's `{executor.submit(...): url}` idiom), and a
/// tag saying which typed future a `&dyn Waitable` is brings mixed result types back to their
/// types without matching ids by hand.
///
/// # Examples
///
/// ```
/// use concurrent_futures_core::{Completion, Future, Waitable};
///
/// let a = Future::<i32>::new();
/// let b = Future::<String>::new();
/// b.set_result("done".to_owned()).unwrap();
/// let both: [&dyn Waitable; 2] = [&a, &b];
/// assert_eq!(both[0].completion(), None);
/// assert_eq!(both[1].completion(), Some(Completion::Returned));
/// ```
///
/// Tagged pairs: each future comes back with its tag, whatever its result type.
///
/// ```
/// use concurrent_futures_core::{Future, Waitable};
///
/// enum Job<'a> {
///     Count(&'a Future<usize>),
///     Name(&'a Future<String>),
/// }
///
/// let count = Future::new();
/// let name = Future::new();
/// name.set_result("ready".to_owned()).unwrap();
/// let jobs: [(&dyn Waitable, Job); 2] = [(&count, Job::Count(&count)), (&name, Job::Name(&name))];
/// let (_, done) = jobs.iter().find(|(f, _)| f.completion().is_some()).unwrap();
/// match done {
///     Job::Count(f) => panic!("not finished: {f:?}"),
///     Job::Name(f) => assert_eq!(f.result(None).unwrap(), "ready"),
/// }
/// ```
pub trait Waitable: sealed::Sealed {
    /// The future's identity (equal for clones of one future).
    fn id(&self) -> FutureId;

    /// How the future completed, if it has in the sense of `wait` (finished, or cancelled and
    /// notified). Reads one atomic word; takes no lock.
    fn completion(&self) -> Option<Completion>;

    /// Installs `waiter`, or, if the future has already completed, reports the completion to it
    /// at once. Either way the waiter hears of this future's completion exactly once.
    fn add_waiter(&self, waiter: &Waiter);

    /// Removes `waiter` if it is installed.
    fn remove_waiter(&self, waiter: &Waiter);
}

impl<T> sealed::Sealed for Future<T> {}

impl<T> Waitable for Future<T> {
    #[inline]
    fn id(&self) -> FutureId {
        Future::id(self)
    }

    #[inline]
    fn completion(&self) -> Option<Completion> {
        Future::completion(self)
    }

    fn add_waiter(&self, waiter: &Waiter) {
        Future::add_waiter(self, waiter)
    }

    fn remove_waiter(&self, waiter: &Waiter) {
        Future::remove_waiter(self, waiter)
    }
}

macro_rules! forward_waitable {
    ($($ty:ty),*) => {$(
        impl<W: Waitable + ?Sized> sealed::Sealed for $ty {}

        impl<W: Waitable + ?Sized> Waitable for $ty {
            #[inline]
            fn id(&self) -> FutureId {
                (**self).id()
            }

            #[inline]
            fn completion(&self) -> Option<Completion> {
                (**self).completion()
            }

            fn add_waiter(&self, waiter: &Waiter) {
                (**self).add_waiter(waiter)
            }

            fn remove_waiter(&self, waiter: &Waiter) {
                (**self).remove_waiter(waiter)
            }
        }
    )*};
}

forward_waitable!(&W, Box<W>, std::sync::Arc<W>);

impl<F: Waitable, K> sealed::Sealed for (F, K) {}

/// A future and a tag (a map's value, an index, an enum saying which typed future it is):
/// waitable as its future, so `wait` and `as_completed` hand the tag back with it.
impl<F: Waitable, K> Waitable for (F, K) {
    #[inline]
    fn id(&self) -> FutureId {
        self.0.id()
    }

    #[inline]
    fn completion(&self) -> Option<Completion> {
        self.0.completion()
    }

    fn add_waiter(&self, waiter: &Waiter) {
        self.0.add_waiter(waiter)
    }

    fn remove_waiter(&self, waiter: &Waiter) {
        self.0.remove_waiter(waiter)
    }
}
