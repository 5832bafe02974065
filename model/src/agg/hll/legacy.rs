//! Sketches as aggregate format versions 2 and 3 stored them, converted into [`Hll`]s.
//!
//! Contract:
//! - [`LegacyHll`] deserialises the old serde form (`Sparse(Vec<u32>)`: the sorted top 32
//!   bits of the items' xxh3-64 hashes, at most 512; `Dense(Vec<u8>)`: 16,384 eight-bit
//!   registers, ranks from the 32-bit hash, at most 19), validating as the old code did.
//! - [`LegacyHll::into_hll`] gives a sketch at p = 14 that merges with new ones of the same
//!   items: old dense registers map one to one (a register of 19 meant "19 or more", and
//!   stays 19: an under-rank of probability 2^−18 per item); an old sparse hash `h32`
//!   becomes the entry of index `h32 >> 7`, ranked by its low 7 bits, 8 when they are all
//!   zero (then the true rank is 8 or more: such items, one in 128, may be under-ranked,
//!   which matters only if the sketch later turns dense).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::dense::Registers;
use super::{Hll, Repr, HLL_PRECISION};

/// Most hashes of an old sparse sketch.
const OLD_SPARSE_MAX: usize = 512;
/// Registers of an old dense sketch.
const OLD_REGISTERS: usize = 1 << 14;
/// Largest old register value (32-bit hashes, p = 14).
const OLD_MAX_RANK: u8 = 19;

#[derive(Deserialize)]
enum OldRepr {
    Sparse(Vec<u32>),
    Dense(Vec<u8>),
}

/// A sketch of aggregate format versions 2 and 3.
pub(crate) struct LegacyHll(OldRepr);

impl<'de> Deserialize<'de> for LegacyHll {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = OldRepr::deserialize(d)?;
        match &repr {
            OldRepr::Sparse(h) if h.len() > OLD_SPARSE_MAX => {
                return Err(D::Error::custom("sparse HLL too large"));
            }
            OldRepr::Sparse(h) if h.windows(2).any(|w| w[0] >= w[1]) => {
                return Err(D::Error::custom("sparse HLL hashes not sorted"));
            }
            OldRepr::Dense(r) if r.len() != OLD_REGISTERS => {
                return Err(D::Error::custom(format!("HLL has {} registers", r.len())));
            }
            OldRepr::Dense(r) if r.iter().any(|&v| v > OLD_MAX_RANK) => {
                return Err(D::Error::custom("HLL register out of range"));
            }
            _ => {}
        }
        Ok(LegacyHll(repr))
    }
}

impl LegacyHll {
    /// The sketch at p = 14 (see the module docs for what may be under-ranked).
    pub(crate) fn into_hll(self) -> Hll {
        let mut h = Hll::new();
        match self.0 {
            OldRepr::Sparse(hashes) => {
                let mut list: Vec<u32> = hashes
                    .iter()
                    .map(|&h32| {
                        let low = h32 & 0x7f;
                        let rank = if low == 0 {
                            8
                        } else {
                            low.leading_zeros() - 24
                        };
                        super::sparse::normalized((h32 >> 7) << 6 | rank, HLL_PRECISION)
                    })
                    .collect();
                // Sorted hashes give sorted indices; keep the largest rank of each.
                list.dedup_by(|later, kept| {
                    let same = *later >> 6 == *kept >> 6;
                    if same {
                        *kept = (*kept).max(*later);
                    }
                    same
                });
                h.repr = Repr::Sparse(list);
            }
            OldRepr::Dense(regs) => {
                let mut r = Registers::new(HLL_PRECISION);
                for (i, &v) in regs.iter().enumerate().filter(|&(_, &v)| v != 0) {
                    r.set_max(i, v);
                }
                h.repr = Repr::Dense(r);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An old sketch of items `0..n` (`visitor-{i}`), as the old code built it.
    fn old(n: u64) -> OldRepr {
        let hashes = (0..n)
            .map(|i| (xxhash_rust::xxh3::xxh3_64(format!("visitor-{i}").as_bytes()) >> 32) as u32);
        if n as usize <= OLD_SPARSE_MAX {
            let mut v: Vec<u32> = hashes.collect();
            v.sort_unstable();
            v.dedup();
            OldRepr::Sparse(v)
        } else {
            let mut regs = vec![0u8; OLD_REGISTERS];
            for h in hashes {
                let rank = ((h << 14).leading_zeros().min(18) + 1) as u8;
                let r = &mut regs[(h >> 18) as usize];
                *r = (*r).max(rank);
            }
            OldRepr::Dense(regs)
        }
    }

    #[test]
    fn old_sketches_convert_to_the_registers_of_their_items() {
        for n in [0u64, 1, 100, 512, 513, 5_000, 60_000] {
            let converted = LegacyHll(old(n)).into_hll();
            let mut new = Hll::new();
            (0..n).for_each(|i| new.insert(&format!("visitor-{i}")));
            if n as usize <= OLD_SPARSE_MAX {
                assert!(converted.is_sparse());
                assert_eq!(converted.estimate(), n, "n={n}");
                // The same indices; ranks lower only where the 7 low bits were zero.
                let (Repr::Sparse(a), Repr::Sparse(b)) = (&converted.repr, &new.repr) else {
                    panic!("sparse");
                };
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    assert_eq!(x >> 6, y >> 6);
                    assert!(x == y || (x & 63 == 8 && y & 63 > 8), "{x:#x} {y:#x}");
                }
            } else {
                // Dense: the same registers, unless a rest of 18 zero bits was seen.
                assert_eq!(converted, new, "n={n}");
            }
            // New sketches of the same items hold all the old ones knew.
            let mut merged = converted.clone();
            merged.merge(&new);
            assert_eq!(merged, new, "n={n}");
        }
    }
}
