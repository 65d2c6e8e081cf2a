//! Catching panics from tasks and callbacks, and reading their messages.

use std::any::Any;

/// The message of a panic payload: the `&str` or `String` given to `panic!`, or a placeholder
/// for a payload of another type (from `std::panic::panic_any`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    }
}
