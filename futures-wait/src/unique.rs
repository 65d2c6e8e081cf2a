//! Duplicates collapse: `set(fs)` by identity, keeping first-seen order.

use concurrent_futures_core::{FutureId, Waitable};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Below this many futures a linear scan beats hashing.
const LINEAR_SCAN_MAX: usize = 16;

/// Hashes a [`FutureId`] (an address) with one multiply; addresses are already unique, only
/// their low bits are poorly spread (allocations are aligned).
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        let p = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = p ^ (p >> 29);
    }
}

pub(crate) type IdBuildHasher = BuildHasherDefault<IdHasher>;
pub(crate) type IdMap<V> = HashMap<FutureId, V, IdBuildHasher>;

/// The futures of `fs`, each once, in first-seen order.
pub(crate) fn unique<F: Waitable>(fs: impl IntoIterator<Item = F>) -> Vec<F> {
    let iter = fs.into_iter();
    let mut out: Vec<F> = Vec::with_capacity(iter.size_hint().0);
    let mut seen: Option<HashSet<FutureId, IdBuildHasher>> = None;
    for f in iter {
        let id = f.id();
        let fresh = match &mut seen {
            Some(seen) => seen.insert(id),
            None if out.len() < LINEAR_SCAN_MAX => out.iter().all(|g| g.id() != id),
            None => {
                let mut set = HashSet::with_capacity_and_hasher(
                    out.capacity().max(64),
                    IdBuildHasher::default(),
                );
                set.extend(out.iter().map(|g| g.id()));
                let fresh = set.insert(id);
                seen = Some(set);
                fresh
            }
        };
        if fresh {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use concurrent_futures_core::Future;

    #[test]
    fn duplicates_collapse_in_first_seen_order_for_small_and_large_inputs() {
        for n in [1, 5, LINEAR_SCAN_MAX, LINEAR_SCAN_MAX + 1, 500] {
            let fs: Vec<Future<()>> = (0..n).map(|_| Future::new()).collect();
            let input = fs.iter().chain(fs.iter().rev()).chain(fs.iter());
            let out = unique(input);
            assert_eq!(out.len(), n);
            assert!(out.iter().zip(&fs).all(|(a, b)| a.id() == b.id()));
        }
    }
}
