//! `Debug` for [`Future`], shaped like Python's `repr`.

use super::{Future, Outcome};
use crate::State;
use std::fmt;

/// Shaped like Python's repr: `<Future at 0x7f.. state=pending>`,
/// `<Future at 0x7f.. state=finished returned i32>`,
/// `<Future at 0x7f.. state=finished raised Panicked>`.
impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word();
        let state = State::from_word(word);
        write!(
            f,
            "<Future at {:#x} state={}",
            self.id().as_usize(),
            state.description()
        )?;
        if let Ok(outcome) = self.outcome(word) {
            match outcome {
                Outcome::Returned(_) => write!(f, " returned {}", short_type_name::<T>())?,
                Outcome::Raised(e) => write!(f, " raised {}", e.kind_name())?,
            }
        }
        f.write_str(">")
    }
}

/// `std::any::type_name` without module paths: `alloc::vec::Vec<alloc::string::String>` becomes
/// `Vec<String>`, as Python's repr shows a bare class name.
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (i, c) in full.char_indices() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            continue;
        }
        push_last_segment(&mut out, &full[segment_start..i]);
        out.push(c);
        segment_start = i + c.len_utf8();
    }
    push_last_segment(&mut out, &full[segment_start..]);
    out
}

fn push_last_segment(out: &mut String, path: &str) {
    out.push_str(path.rsplit("::").next().unwrap_or(path));
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::short_type_name;

    #[test]
    fn short_type_name_strips_paths() {
        assert_eq!(short_type_name::<i32>(), "i32");
        assert_eq!(short_type_name::<Vec<String>>(), "Vec<String>");
        assert_eq!(
            short_type_name::<(u8, Option<String>)>(),
            "(u8, Option<String>)"
        );
    }
}
