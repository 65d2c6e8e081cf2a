//! `wait` and `as_completed`: the module functions of Python's `concurrent.futures`.
//!
//! * [`wait`] blocks until a [`ReturnWhen`] condition holds or a timeout passes, and splits the
//!   futures into [`DoneAndNotDone`].
//! * [`as_completed`] yields futures as they complete: the finished ones first, then the rest in
//!   completion order; [`as_completed_all`] is its form without a timeout, an
//!   [`ExactSizeIterator`] for progress bars.
//!
//! Both take any iterable of [`Waitable`]s — futures from any executor, of any result type (mix
//! them as `&dyn Waitable`) — and collapse duplicates. Both hang a
//! [`Waiter`](concurrent_futures_core::waiter::Waiter) from core on each unfinished future and
//! always take it down again.
//!
//! # Examples
//!
//! ```
//! use concurrent_futures_core::{Future, Waitable};
//! use concurrent_futures_wait::{ReturnWhen, as_completed, wait};
//! use std::thread;
//!
//! let futures: Vec<Future<u64>> = (0..4).map(|_| Future::new()).collect();
//! for (i, f) in futures.iter().enumerate() {
//!     let f = f.clone();
//!     thread::spawn(move || f.set_result(i as u64 * 10).unwrap());
//! }
//! let mut total = 0;
//! for f in as_completed(&futures, None) {
//!     total += f.unwrap().result(None).unwrap();
//! }
//! assert_eq!(total, 60);
//!
//! let outcome = wait(&futures, None, ReturnWhen::AllCompleted);
//! assert_eq!((outcome.done.len(), outcome.not_done.len()), (4, 0));
//! ```
//!
//! [`Waitable`]: concurrent_futures_core::Waitable
#![deny(missing_docs)]

mod as_completed;
mod unique;
mod wait;

pub use as_completed::{AsCompleted, AsCompletedAll, as_completed, as_completed_all};
pub use wait::{DoneAndNotDone, ReturnWhen, wait};
