//! Carrying a function to a worker without registering it.
//!
//! Parent and worker run the same executable (a fork of it, or a re-exec of `/proc/self/exe`),
//! so a function sits at the same distance from any other function in both, whatever address
//! the loader chose. A [`CallSite`] is two such distances from [`anchor`]: the user's
//! `fn(A) -> R`, and a *trampoline* monomorphised for `A` and `R` that decodes the argument,
//! calls the function and encodes the result. The worker turns the distances back into
//! addresses, and only jumps to one that lies in the executable's own code (see [`CodeMap`]).

use crate::wire::Failure;
use concurrent_futures_core::{Payload, PayloadStage};
use serde::{Deserialize, Serialize};

/// What a worker calls: decodes the argument bytes, runs the function at `function`, encodes
/// its result.
pub(crate) type Trampoline = fn(function: usize, args: &[u8]) -> Result<Vec<u8>, Failure>;

/// The point every offset is measured from. Never inlined, so it has an address of its own.
#[inline(never)]
fn anchor() -> usize {
    std::hint::black_box(0x5eed)
}

fn address_of_anchor() -> usize {
    anchor as fn() -> usize as usize
}

/// A function and its trampoline, as distances from [`anchor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallSite {
    trampoline: i64,
    function: i64,
}

fn offset(address: usize) -> i64 {
    address.wrapping_sub(address_of_anchor()) as i64
}

impl CallSite {
    /// `f` called on one argument.
    pub(crate) fn of<A: Payload, R: Payload>(f: fn(A) -> R) -> CallSite {
        CallSite {
            trampoline: offset(call_one::<A, R> as Trampoline as usize),
            function: offset(f as usize),
        }
    }

    /// `f` mapped over a chunk of arguments (`Vec<A>` in, `Vec<R>` out).
    pub(crate) fn chunk_of<A: Payload, R: Payload>(f: fn(A) -> R) -> CallSite {
        CallSite {
            trampoline: offset(call_chunk::<A, R> as Trampoline as usize),
            function: offset(f as usize),
        }
    }

    /// Points the function far outside any code, for tests of the worker's refusal.
    #[cfg(test)]
    pub(crate) fn scramble_function_for_test(&mut self) {
        self.function = i64::MAX / 2;
    }

    /// The trampoline and the function's address in this process, if both lie in code of this
    /// executable.
    pub(crate) fn resolve(self, code: &CodeMap) -> Option<(Trampoline, usize)> {
        let base = address_of_anchor();
        let trampoline = base.wrapping_add(self.trampoline as usize);
        let function = base.wrapping_add(self.function as usize);
        if !code.contains(trampoline) || !code.contains(function) {
            return None;
        }
        // SAFETY: `trampoline` lies in this executable's code, at the distance from `anchor`
        // that `CallSite::of`/`chunk_of` measured from a `Trampoline` in the same executable,
        // and a function pointer has the size of `usize`.
        let trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(trampoline) };
        Some((trampoline, function))
    }
}

fn decode<A: Payload>(bytes: &[u8]) -> Result<A, Failure> {
    postcard::from_bytes(bytes).map_err(|e| Failure::payload(PayloadStage::DecodeArgument, e))
}

fn encode<R: Payload>(value: &R) -> Result<Vec<u8>, Failure> {
    postcard::to_allocvec(value).map_err(|e| Failure::payload(PayloadStage::EncodeResult, e))
}

fn call_one<A: Payload, R: Payload>(function: usize, args: &[u8]) -> Result<Vec<u8>, Failure> {
    // SAFETY: `CallSite::of::<A, R>` paired this trampoline with an `fn(A) -> R` at this
    // address, so the types agree; a pointer to a function has the size of `usize`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let arg = decode::<A>(args)?;
    encode(&f(arg))
}

fn call_chunk<A: Payload, R: Payload>(function: usize, args: &[u8]) -> Result<Vec<u8>, Failure> {
    // SAFETY: as in `call_one`, from `CallSite::chunk_of::<A, R>`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let chunk = decode::<Vec<A>>(args)?;
    let results: Vec<R> = chunk.into_iter().map(f).collect();
    encode(&results)
}

/// The address ranges of this executable's code, read from `/proc/self/maps` once it can be
/// read: the worker refuses a call whose addresses fall outside them instead of jumping there.
#[derive(Debug)]
pub(crate) struct CodeMap {
    ranges: Vec<(usize, usize)>,
}

impl CodeMap {
    /// This executable's map, read once per process. A forked worker (or the fork server's)
    /// inherits it already read: call it before forking.
    ///
    /// A read that fails (for want of a descriptor, say) is not kept: the next call reads
    /// again, so that a passing shortage does not leave every later task refused.
    pub(crate) fn get() -> Result<&'static CodeMap, String> {
        static MAP: std::sync::OnceLock<CodeMap> = std::sync::OnceLock::new();
        if let Some(map) = MAP.get() {
            return Ok(map);
        }
        let map = CodeMap::of_this_executable()?;
        Ok(MAP.get_or_init(|| map))
    }

    /// The executable mappings of the file that holds [`anchor`].
    pub(crate) fn of_this_executable() -> Result<CodeMap, String> {
        let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| {
            format!(
                "cannot read /proc/self/maps to check call sites: {}",
                crate::sys::describe(&e)
            )
        })?;
        let anchor = address_of_anchor();
        let parsed: Vec<(usize, usize, bool, &str)> =
            maps.lines().filter_map(parse_map_line).collect();
        let file = parsed
            .iter()
            .find(|(start, end, _, _)| (*start..*end).contains(&anchor))
            .map(|(_, _, _, path)| *path);
        let ranges = parsed
            .iter()
            .filter(|(_, _, exec, path)| *exec && Some(*path) == file)
            .map(|(start, end, _, _)| (*start, *end))
            .collect::<Vec<_>>();
        if ranges.is_empty() {
            return Err("/proc/self/maps shows no code of this executable".to_owned());
        }
        Ok(CodeMap { ranges })
    }

    fn contains(&self, address: usize) -> bool {
        self.ranges
            .iter()
            .any(|&(start, end)| (start..end).contains(&address))
    }
}

/// `start-end perms offset dev inode path` → (start, end, executable, path).
fn parse_map_line(line: &str) -> Option<(usize, usize, bool, &str)> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or("");
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
        perms.as_bytes().get(2) == Some(&b'x'),
        path,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(x: u32) -> u32 {
        3 * x
    }

    #[test]
    fn a_call_site_resolves_and_runs_in_this_process() {
        let site = CallSite::of(triple);
        let (trampoline, function) = site
            .resolve(&CodeMap::of_this_executable().unwrap())
            .unwrap();
        let out = trampoline(function, &postcard::to_allocvec(&14u32).unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<u32>(&out).unwrap(), 42);
    }

    #[test]
    fn an_address_outside_the_code_is_refused() {
        let mut site = CallSite::of(triple);
        site.function = i64::MAX / 2;
        assert!(
            site.resolve(&CodeMap::of_this_executable().unwrap())
                .is_none()
        );
    }

    #[test]
    fn a_bad_argument_is_a_decode_failure_not_a_crash() {
        let (trampoline, function) = CallSite::of(triple)
            .resolve(&CodeMap::of_this_executable().unwrap())
            .unwrap();
        match trampoline(function, &[]) {
            Err(Failure::Payload { stage, .. }) => {
                assert_eq!(stage, crate::wire::Stage::DecodeArgument)
            }
            other => panic!("expected a decode failure, got {other:?}"),
        }
    }
}
