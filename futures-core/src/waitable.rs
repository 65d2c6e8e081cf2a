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
