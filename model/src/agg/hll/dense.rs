//! The dense form of a [`super::Hll`]: 2^p registers of 6 bits, packed four to three bytes.
//!
//! Contract:
//! - Register `i` is bits `6(i mod 4)..6(i mod 4)+6` of the little-endian 24-bit group at
//!   byte `3(i div 4)`; [`dense_bytes`] is `3 · 2^(p−2)` (12,288 at p = 14).
//! - A hash's register index is its top `p` bits, its rank the leading zeros of the other
//!   `64 − p` bits + 1, at most [`max_rank`] = `65 − p` (which fits in 6 bits for p ≥ 2).
//! - [`Registers::fold_to`] lowers the precision exactly: what the same hashes would give
//!   at the lower precision (HLL++: register `j` goes to `j >> (p − q)`, the dropped index
//!   bits leading its rank).
//! - [`Registers::from_packed`] checks every register against [`max_rank`].

use std::fmt;

/// Bytes of the packed registers at precision `p`.
pub(super) const fn dense_bytes(p: u8) -> usize {
    3 << (p - 2)
}

/// Largest rank at precision `p`: the rank of an all-zero rest of `64 − p` bits.
pub(super) const fn max_rank(p: u8) -> u8 {
    65 - p
}

/// The register index and rank of a 64-bit hash at precision `p`.
pub(super) fn index_rank(h: u64, p: u8) -> (usize, u8) {
    let q = 64 - u32::from(p);
    let rank = (h << p).leading_zeros().min(q) + 1;
    ((h >> q) as usize, rank as u8)
}

/// 2^p registers of 6 bits (p is known from the length: a sketch stays 32 bytes).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Registers {
    packed: Box<[u8]>,
}

impl fmt::Debug for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nonzero = self.iter().filter(|&r| r != 0).count();
        write!(f, "Registers(p = {}, {nonzero} non-zero)", self.precision())
    }
}

fn unpack(g: &[u8]) -> [u8; 4] {
    let v = u32::from(g[0]) | u32::from(g[1]) << 8 | u32::from(g[2]) << 16;
    [0, 6, 12, 18].map(|s| (v >> s) as u8 & 63)
}

fn pack(regs: [u8; 4], g: &mut [u8]) {
    let v = regs
        .iter()
        .enumerate()
        .fold(0u32, |v, (k, &r)| v | u32::from(r) << (6 * k));
    g.copy_from_slice(&v.to_le_bytes()[..3]);
}

impl Registers {
    /// All zero.
    pub(super) fn new(p: u8) -> Self {
        Registers {
            packed: vec![0; dense_bytes(p)].into_boxed_slice(),
        }
    }

    /// The precision: `3 · 2^(p−2)` bytes.
    pub(super) fn precision(&self) -> u8 {
        (self.packed.len() / 3).trailing_zeros() as u8 + 2
    }

    /// Registers from their packed bytes, checked (`None`: the index and value of the first
    /// register out of range, or the length is wrong).
    pub(super) fn from_packed(p: u8, packed: &[u8]) -> Result<Self, Option<(usize, u8)>> {
        if packed.len() != dense_bytes(p) {
            return Err(None);
        }
        let r = Registers {
            packed: packed.into(),
        };
        let bad = r.iter().enumerate().find(|&(_, v)| v > max_rank(p));
        match bad {
            Some(bad) => Err(Some(bad)),
            None => Ok(r),
        }
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.packed.len()
    }

    /// Raises register `i` to `rank` if it is lower (`i` < 2^p, `rank` ≤ [`max_rank`]).
    pub(super) fn set_max(&mut self, i: usize, rank: u8) {
        let g = &mut self.packed[3 * (i / 4)..3 * (i / 4) + 3];
        let mut regs = unpack(g);
        if regs[i % 4] < rank {
            regs[i % 4] = rank;
            pack(regs, g);
        }
    }

    /// Counts a 64-bit hash.
    pub(super) fn insert_hash(&mut self, h: u64) {
        let (i, rank) = index_rank(h, self.precision());
        self.set_max(i, rank);
    }

    /// Every register, in index order.
    pub(super) fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.packed.chunks_exact(3).flat_map(unpack)
    }

    /// Raises each register to `other`'s (same precision).
    pub(super) fn max_with(&mut self, other: &Registers) {
        debug_assert_eq!(self.packed.len(), other.packed.len());
        for (g, h) in self
            .packed
            .chunks_exact_mut(3)
            .zip(other.packed.chunks_exact(3))
        {
            let (a, b) = (unpack(g), unpack(h));
            if a.iter().zip(&b).any(|(x, y)| x < y) {
                pack([0, 1, 2, 3].map(|k| a[k].max(b[k])), g);
            }
        }
    }

    /// The same hashes' registers at precision `q` ≤ `p`.
    pub(super) fn fold_to(&self, q: u8) -> Registers {
        let p = self.precision();
        if q >= p {
            return self.clone();
        }
        let shift = u32::from(p - q);
        let mut out = Registers::new(q);
        for (j, r) in self.iter().enumerate().filter(|&(_, r)| r != 0) {
            let low = (j as u32) & ((1 << shift) - 1);
            let rank = if low != 0 {
                (low.leading_zeros() - (32 - shift) + 1) as u8
            } else {
                shift as u8 + r
            };
            out.set_max(j >> shift, rank);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_pack_six_bits_each_and_fold_exactly() {
        let mut rng = fastrand::Rng::with_seed(4);
        let hashes: Vec<u64> = (0..5_000).map(|_| rng.u64(..) >> rng.u32(0..3)).collect();
        for p in [4u8, 10, 12, 14, 18] {
            let mut r = Registers::new(p);
            let mut plain = vec![0u8; 1 << p];
            for &h in &hashes {
                r.insert_hash(h);
                let (i, k) = index_rank(h, p);
                plain[i] = plain[i].max(k);
            }
            assert_eq!(r.iter().collect::<Vec<_>>(), plain, "p={p}");
            assert_eq!(r.heap_bytes(), (1 << p) * 6 / 8);
            assert_eq!(r.precision(), p);
            assert_eq!(Registers::from_packed(p, &r.packed), Ok(r.clone()));
            for q in 4..=p {
                let mut direct = Registers::new(q);
                hashes.iter().for_each(|&h| direct.insert_hash(h));
                assert_eq!(r.fold_to(q), direct, "{p} → {q}");
            }
        }
        let mut top = Registers::new(4);
        top.set_max(15, max_rank(4));
        top.set_max(0, 1);
        assert_eq!(top.iter().collect::<Vec<_>>()[15], 61);
        let mut bad = top.packed.to_vec();
        bad[11] |= 0xfc; // register 15 = 63
        assert_eq!(Registers::from_packed(4, &bad), Err(Some((15, 63))));
        assert_eq!(Registers::from_packed(4, &bad[1..]), Err(None));
    }
}
