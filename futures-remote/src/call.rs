//! Carrying a function to a worker without registering it: [`CallSite`] and [`CodeMap`].
//!
//! Parent and worker run the same executable (a fork of it, a re-exec of `/proc/self/exe`, or
//! the same binary started by a launcher), so a function sits at the same distance from any
//! other function in both, whatever address the loader chose. A [`CallSite`] is two such
//! distances from one function of this crate (its `anchor`): the user's
//! `fn(A) -> R`, and a *trampoline* monomorphised for `A` and `R` that decodes the argument,
//! calls the function and encodes the result. The worker turns the distances back into
//! addresses only for a site its pool sealed (see [`crate::auth`]), and, as a second line of
//! defence, only jumps to one that lies in the executable's own code (see [`CodeMap`]).

use crate::auth::Verified;
use crate::wire::Failure;
use concurrent_futures_core::{Payload, PayloadStage};
use serde::{Deserialize, Serialize};

/// What a worker calls: decodes the argument bytes, runs the function at `function`, encodes
/// its result.
///
/// # Safety
///
/// `function` must be the address of an `fn(A) -> R` for the `A` and `R` this trampoline was
/// monomorphised for: the address [`CallSite::of`] (or [`CallSite::chunk_of`]) paired with it.
pub(crate) type Trampoline = unsafe fn(function: usize, args: &[u8]) -> Result<Vec<u8>, Failure>;

/// The point every offset is measured from. Never inlined, so it has an address of its own.
#[inline(never)]
fn anchor() -> usize {
    std::hint::black_box(0x5eed)
}

fn address_of_anchor() -> usize {
    anchor as fn() -> usize as usize
}

/// Where this copy of the crate's code lies in the executable: [`anchor`]'s distance from the
/// executable's load address. The same in every process running this program (whatever the
/// address-space randomisation), and different for each copy of the crate linked into it.
/// Asks the dynamic loader (no file is read, so it works without a free descriptor); 0 if it
/// does not know the address.
pub(crate) fn place_of_this_copy() -> u64 {
    let mut info = std::mem::MaybeUninit::<nix::libc::Dl_info>::zeroed();
    // SAFETY: `dladdr` reads the loader's tables for the address of a function of this
    // program and writes only into `info`, a valid, writable `Dl_info`.
    let found = unsafe { nix::libc::dladdr(address_of_anchor() as *const _, info.as_mut_ptr()) };
    if found == 0 {
        return 0;
    }
    // SAFETY: `dladdr` succeeded, so it filled `info` (and it was zeroed before, so every
    // field is initialised either way).
    let info = unsafe { info.assume_init() };
    address_of_anchor().wrapping_sub(info.dli_fbase as usize) as u64
}

/// A function and its trampoline, as distances from a point in this crate's code: what a task
/// message names to call. Only [`CallSite::of`] and [`CallSite::chunk_of`] make one, and a
/// worker runs one only once its pool sealed it ([`CallKey::seal`](crate::auth::CallKey::seal)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSite {
    trampoline: i64,
    function: i64,
}

fn offset(address: usize) -> i64 {
    address.wrapping_sub(address_of_anchor()) as i64
}

impl CallSite {
    /// `f` called on one argument.
    pub fn of<A: Payload, R: Payload>(f: fn(A) -> R) -> CallSite {
        CallSite {
            trampoline: offset(call_one::<A, R> as Trampoline as usize),
            function: offset(f as usize),
        }
    }

    /// `f` mapped over a chunk of arguments (`Vec<A>` in, `Vec<R>` out).
    pub fn chunk_of<A: Payload, R: Payload>(f: fn(A) -> R) -> CallSite {
        CallSite {
            trampoline: offset(call_chunk::<A, R> as Trampoline as usize),
            function: offset(f as usize),
        }
    }

    /// The same trampoline with the function at `address` instead: a pair no pool ever
    /// sealed, for tests of the worker's refusal.
    #[cfg(any(test, feature = "test-support"))]
    #[doc(hidden)]
    pub fn with_function_at(self, address: usize) -> CallSite {
        CallSite {
            function: offset(address),
            ..self
        }
    }

    /// The two distances, trampoline first: what a call site's tag covers.
    pub fn offsets(&self) -> (i64, i64) {
        (self.trampoline, self.function)
    }
}

/// The trampoline and the function's address in this process of a site this pool sealed, if
/// both lie in code of this executable.
///
/// Calling the trampoline on the function is then sound: the pool made the pair with
/// [`CallSite::of`] or [`CallSite::chunk_of`] (only they make sites, and only the pool seals
/// them), so the function is an `fn(A) -> R` for the trampoline's `A` and `R`.
pub(crate) fn resolve(verified: Verified, code: &CodeMap) -> Option<(Trampoline, usize)> {
    let site = verified.site();
    let base = address_of_anchor();
    let trampoline = base.wrapping_add(site.trampoline as usize);
    let function = base.wrapping_add(site.function as usize);
    if !code.contains(trampoline) || !code.contains(function) {
        return None;
    }
    // SAFETY: the site is `Verified`, so this pool measured `trampoline`'s distance from
    // `anchor` on a `Trampoline` (`call_one` or `call_chunk`), in a process running this same
    // executable image and this same copy of the crate (a fork of it, a fork of its fork
    // server, or a re-exec of `/proc/self/exe`, which names the running image even if its file
    // was replaced; the hand-shake's `Version` refuses another copy of the crate). The same
    // distance from this copy's `anchor` is therefore that `Trampoline` here, and a function
    // pointer has the size of `usize`.
    let trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(trampoline) };
    Some((trampoline, function))
}

fn decode<A: Payload>(bytes: &[u8]) -> Result<A, Failure> {
    postcard::from_bytes(bytes).map_err(|e| Failure::payload(PayloadStage::DecodeArgument, e))
}

fn encode<R: Payload>(value: &R) -> Result<Vec<u8>, Failure> {
    postcard::to_allocvec(value).map_err(|e| Failure::payload(PayloadStage::EncodeResult, e))
}

/// # Safety
///
/// See [`Trampoline`].
unsafe fn call_one<A: Payload, R: Payload>(
    function: usize,
    args: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: the caller passes the address of an `fn(A) -> R` (the `Trampoline` contract),
    // and a pointer to a function has the size of `usize`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let arg = decode::<A>(args)?;
    encode(&f(arg))
}

/// # Safety
///
/// See [`Trampoline`].
unsafe fn call_chunk<A: Payload, R: Payload>(
    function: usize,
    args: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: as in `call_one`: the caller passes the address of an `fn(A) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let chunk = decode::<Vec<A>>(args)?;
    let results: Vec<R> = chunk.into_iter().map(f).collect();
    encode(&results)
}

/// The address ranges of this executable's code, read from `/proc/self/maps` once it can be
/// read: the worker refuses a call whose addresses fall outside them instead of jumping there.
#[derive(Debug)]
pub struct CodeMap {
    ranges: Vec<(usize, usize)>,
}

impl CodeMap {
    /// This executable's map, read once per process. A forked worker (or the fork server's)
    /// inherits it already read: call it before forking.
    ///
    /// A read that fails (for want of a descriptor, say) is not kept: the next call reads
    /// again, so that a passing shortage does not leave every later task refused.
    pub fn get() -> Result<&'static CodeMap, String> {
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
                describe(&e)
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

/// `error` in words; running out of descriptors is said so, with the limit named, since that
/// is the one a user can act on (close descriptors, or raise the limit).
fn describe(error: &std::io::Error) -> String {
    use nix::libc;
    match error.raw_os_error() {
        Some(libc::EMFILE) => {
            match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
                Ok((soft, _)) => format!("too many open files (RLIMIT_NOFILE = {soft})"),
                Err(_) => "too many open files (RLIMIT_NOFILE reached)".to_owned(),
            }
        }
        Some(libc::ENFILE) => "too many open files in the system (ENFILE)".to_owned(),
        _ => error.to_string(),
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
    use crate::auth::CallKey;

    fn triple(x: u32) -> u32 {
        3 * x
    }

    fn verified(site: CallSite) -> Verified {
        let key = CallKey::generate().unwrap();
        key.open(&key.seal(site)).unwrap()
    }

    #[test]
    fn a_call_site_resolves_and_runs_in_this_process() {
        let site = verified(CallSite::of(triple));
        let map = CodeMap::of_this_executable().unwrap();
        let (trampoline, function) = resolve(site, &map).unwrap();
        // SAFETY: a verified site's pair, from `CallSite::of(triple)`.
        let out = unsafe { trampoline(function, &postcard::to_allocvec(&14u32).unwrap()) };
        assert_eq!(postcard::from_bytes::<u32>(&out.unwrap()).unwrap(), 42);
    }

    #[test]
    fn an_address_outside_the_code_is_refused() {
        let mut site = CallSite::of(triple);
        site.function = i64::MAX / 2;
        let map = CodeMap::of_this_executable().unwrap();
        assert!(resolve(verified(site), &map).is_none());
    }

    #[test]
    fn the_loader_places_this_crate_inside_the_executables_code() {
        let place = place_of_this_copy();
        assert_ne!(place, 0);
        let map = CodeMap::of_this_executable().unwrap();
        let base = address_of_anchor() - place as usize;
        assert!(
            map.ranges.iter().all(|(start, _)| *start >= base),
            "the load address lies below every code mapping"
        );
        assert!(map.contains(address_of_anchor()));
        assert_eq!(place, place_of_this_copy());
    }

    #[test]
    fn a_bad_argument_is_a_decode_failure_not_a_crash() {
        let site = verified(CallSite::of(triple));
        let map = CodeMap::of_this_executable().unwrap();
        let (trampoline, function) = resolve(site, &map).unwrap();
        // SAFETY: a verified site's pair, from `CallSite::of(triple)`.
        match unsafe { trampoline(function, &[]) } {
            Err(Failure::Payload { stage, .. }) => {
                assert_eq!(stage, crate::wire::Stage::DecodeArgument)
            }
            other => panic!("expected a decode failure, got {other:?}"),
        }
    }
}
