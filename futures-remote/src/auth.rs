//! Which calls a worker runs: only call sites its own pool made.
//!
//! A [`CallSite`] names two places in the executable, and a worker jumps to them. Checked
//! only for "both lie in the code", a corrupted or forged message could make a worker call
//! any function: `std::process::abort` behind a valid trampoline, or a function through the
//! trampoline of other argument types (undefined behaviour). So every pool draws a secret
//! [`CallKey`] from the operating system's CSPRNG when it is built, and tags every call site
//! it makes with a MAC under that key ([`CallKey::seal`]); its workers run a site only once
//! its tag checks out ([`CallKey::open`]), and refuse anything else by task id.
//!
//! # Why this is sound
//!
//! * **Only the pool can make a tag.** The MAC is SipHash-2-4 with a 128-bit key and a
//!   128-bit output: a pseudo-random function made for short inputs such as this one. Without
//!   the key, a valid tag for a pair the pool never sealed is a guess with odds of 2⁻¹²⁸ (an
//!   online guess at that, one round trip through the worker per try).
//! * **The pool seals only real pairs.** The only caller of [`CallKey::seal`] with a user's
//!   function is [`CallSite::of`]/[`CallSite::chunk_of`], which take the `fn(A) -> R` and pick
//!   the trampoline monomorphised for the same `A` and `R`: the compiler checked the pairing.
//!   The tag covers both places, so neither can be swapped alone. The trampoline is the type
//!   tag: which instance of it a site names fixes `A` and `R`.
//! * **The key stays private.** It lives in the pool's memory and reaches a worker only in
//!   the worker's first message ([`Init`](crate::wire::Init)), on the private channel that
//!   only the pool and that worker hold, whatever the start method or transport (never on a
//!   command line or in the environment). A worker takes the key from its first settings message only, so a
//!   later message cannot replace it. Each pool has its own key: a site sealed by another pool
//!   (of the same program or not) is refused like a forgery.
//! * **Comparison in constant time**, so the time a refusal takes says nothing about how many
//!   bytes of a guessed tag were right.
//!
//! Replaying an authentic site with other arguments is allowed: it is a call the pool makes
//! anyway, and arguments are only ever decoded by serde, never used as addresses.
//!
//! [`Version`] goes with it: the hand-shake carries the wire protocol and the place of this
//! copy of the crate in the executable, so that two copies of the crate in one program (whose
//! messages and call sites mean different things) refuse each other.

use crate::call::{self, CallSite};
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher24};
use std::fmt;
use std::hash::Hasher;
use std::io::{self, Read};

/// The wire protocol: raised whenever a message's layout or meaning changes.
pub const PROTOCOL: u32 = 4;

/// Put before the MAC's input, so that a tag made for a call site means nothing elsewhere.
const DOMAIN: &[u8; 16] = b"cf-call-site-mac";

/// A pool's secret key for tagging its call sites. Its `Debug` never shows the key.
#[derive(Clone, Serialize, Deserialize)]
pub struct CallKey([u8; 16]);

/// A call site and its tag, as a task message carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSite {
    /// The site: only its tag is secret.
    pub site: CallSite,
    tag: [u8; 16],
}

impl SealedSite {
    /// Another site under this one's tag: what a forger who copied a real message's tag
    /// would send.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn with_site(self, site: CallSite) -> SealedSite {
        SealedSite { site, ..self }
    }
}

/// A call site whose tag checked out under the worker's key: only [`CallKey::open`] makes
/// one, so holding one means this pool sealed the site.
#[derive(Debug, Clone, Copy)]
pub struct Verified(CallSite);

impl Verified {
    /// The site this pool sealed.
    pub fn site(self) -> CallSite {
        self.0
    }
}

impl CallKey {
    /// A fresh key from the operating system's CSPRNG (`getrandom(2)`, or `/dev/urandom`
    /// where that call does not exist).
    pub fn generate() -> io::Result<CallKey> {
        let mut key = [0; 16];
        fill_from_os(&mut key)?;
        Ok(CallKey(key))
    }

    fn mac(&self, site: &CallSite) -> [u8; 16] {
        let (trampoline, function) = site.offsets();
        let mut input = [0; 16 + 4 + 8 + 8];
        input[..16].copy_from_slice(DOMAIN);
        input[16..20].copy_from_slice(&PROTOCOL.to_le_bytes());
        input[20..28].copy_from_slice(&trampoline.to_le_bytes());
        input[28..].copy_from_slice(&function.to_le_bytes());
        let mut hasher = SipHasher24::new_with_key(&self.0);
        hasher.write(&input);
        hasher.finish128().as_bytes()
    }

    /// Tags `site` as made by this pool.
    pub fn seal(&self, site: CallSite) -> SealedSite {
        SealedSite {
            site,
            tag: self.mac(&site),
        }
    }

    /// The site, if its tag is the one this key gives it.
    pub fn open(&self, sealed: &SealedSite) -> Option<Verified> {
        constant_time_eq(&self.mac(&sealed.site), &sealed.tag).then_some(Verified(sealed.site))
    }
}

impl fmt::Debug for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallKey(..)")
    }
}

/// Whether `a == b`, in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= std::hint::black_box(x ^ y);
    }
    std::hint::black_box(difference) == 0
}

fn fill_from_os(buffer: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: `getrandom` writes at most `rest.len()` bytes to `rest`, which is valid and
        // writable for that long; flags 0 means the CSPRNG behind `/dev/urandom`, waiting
        // only until it has been seeded once at boot.
        let n = unsafe { nix::libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n >= 0 {
            filled += n as usize;
            continue;
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(nix::libc::EINTR) => continue,
            Some(nix::libc::ENOSYS) => {
                return std::fs::File::open("/dev/urandom")?.read_exact(rest);
            }
            _ => return Err(error),
        }
    }
    Ok(())
}

/// What the two sides of a hand-shake must agree on: the wire protocol, and which build of
/// the crate they are (where this copy's code sits in the executable: the same in every
/// process that runs this program, and different for a second copy of the crate in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// Where this copy of the crate lies in the executable (0 if the loader does not say).
    pub build: u64,
}

impl Version {
    /// This process's.
    pub fn ours() -> Version {
        Version {
            protocol: PROTOCOL,
            build: call::place_of_this_copy(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "protocol {}, build {:#x} (crate {})",
            self.protocol,
            self.build,
            env!("CARGO_PKG_VERSION")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(x: u32) -> u32 {
        3 * x
    }

    fn square(x: u32) -> u32 {
        x * x
    }

    #[test]
    fn a_site_opens_only_under_the_key_that_sealed_it() {
        let key = CallKey::generate().unwrap();
        let other = CallKey::generate().unwrap();
        let sealed = key.seal(CallSite::of(triple));
        assert_eq!(key.open(&sealed).unwrap().site(), CallSite::of(triple));
        assert!(other.open(&sealed).is_none(), "another pool's key");
    }

    #[test]
    fn a_tag_moved_to_another_site_or_flipped_does_not_open() {
        let key = CallKey::generate().unwrap();
        let mut moved = key.seal(CallSite::of(triple));
        moved.site = CallSite::of(square);
        assert!(key.open(&moved).is_none());
        for bit in 0..128 {
            let mut flipped = key.seal(CallSite::of(triple));
            flipped.tag[bit / 8] ^= 1 << (bit % 8);
            assert!(key.open(&flipped).is_none(), "bit {bit}");
        }
    }

    #[test]
    fn keys_differ_and_never_show_in_debug() {
        let (a, b) = (CallKey::generate().unwrap(), CallKey::generate().unwrap());
        assert_ne!(a.0, b.0);
        assert_eq!(format!("{a:?}"), "CallKey(..)");
    }

    #[test]
    fn constant_time_eq_is_equality() {
        let a = [7; 16];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[15] = 8;
        assert!(!constant_time_eq(&a, &b));
    }
}
