//! Rice codes in an LSB-first bitstream, and the sparse form written with them: what
//! [`Hll::encode`] writes of a sparse sketch (see `codec`), and what the form written
//! against a reference codes its positions with (see `relative`).
//!
//! Contract:
//! - A bitstream fills each byte from its least significant bit up; a value of `w` bits
//!   goes least significant bit first. It ends at a byte boundary: the bits after its last
//!   value are zero (a reader refuses others, so a sketch has one encoding).
//! - The Rice code of `v` with parameter `k` (0..=[`MAX_K`]): `v >> k` in unary (that many
//!   one bits, then a zero bit), then the `k` low bits of `v`. [`best_k`] is the smallest
//!   `k` that codes a list of values in the fewest bits.
//! - The sparse form (tag `p | 0x80`): a LEB128 varint count (≥ 1, at most what `p` keeps
//!   sparse), the parameter `k` (one byte), then a bitstream: each entry's 25-bit index as
//!   its step from the one before (the first whole) in Rice code, followed by its rank in
//!   6 bits only where the rank counts at `p` (`sparse::keeps_rank`; elsewhere it is 1).
//! - Decoding validates: a `k` above [`MAX_K`], a unary run that takes an index to 2^25
//!   or beyond (an error before reading further), a step of 0 after the first, a rank
//!   outside 1..=40, nonzero padding, a truncated stream are each an [`HllError`]; it
//!   allocates no more than the count the precision allows and the input can hold.

use super::codec::{put_varint, take_varint, HllError};
use super::sparse::{index, keeps_rank, rank, SPARSE_BITS, SPARSE_MAX_RANK};
use super::{max_sparse, Hll, Repr, MAX_PRECISION, MIN_PRECISION};

/// The largest Rice parameter.
pub(super) const MAX_K: u8 = 24;

/// Bits of a rank in the stream.
const RANK_BITS: u32 = 6;

/// Appends bits to a byte vector, least significant bit first.
pub(super) struct BitWriter<'o> {
    out: &'o mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'o> BitWriter<'o> {
    pub(super) fn new(out: &'o mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// The `width` (≤ 32) low bits of `v`.
    pub(super) fn bits(&mut self, v: u32, width: u32) {
        debug_assert!(width <= 32 && (width == 32 || v >> width == 0));
        self.acc |= u64::from(v) << self.n;
        self.n += width;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// `q` one bits, then a zero bit.
    fn unary(&mut self, mut q: u32) {
        while q >= 32 {
            self.bits(u32::MAX, 32);
            q -= 32;
        }
        self.bits((1 << q) - 1, q + 1);
    }

    /// The Rice code of `v` with parameter `k`.
    pub(super) fn rice(&mut self, v: u32, k: u8) {
        self.unary(v >> k);
        self.bits(v & ((1 << k) - 1), u32::from(k));
    }

    /// Writes the last bits, padded with zeros to the byte.
    pub(super) fn finish(self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Reads bits from a slice, least significant bit first.
pub(super) struct BitReader<'a> {
    b: &'a [u8],
    /// Bits read.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        BitReader { b, pos: 0 }
    }

    /// Whether `n` values of at least `bits` bits each can be in what is left.
    pub(super) fn can_hold(&self, n: usize, bits: u32) -> bool {
        (n as u64) * u64::from(bits) <= (self.b.len() * 8 - self.pos) as u64
    }

    /// `width` (≤ 32) bits.
    pub(super) fn bits(&mut self, width: u32) -> Result<u32, HllError> {
        let mut v = 0u64;
        let mut got = 0;
        while got < width {
            let &byte = self.b.get(self.pos >> 3).ok_or(HllError::Truncated)?;
            let off = (self.pos & 7) as u32;
            let take = (8 - off).min(width - got);
            let chunk = (u64::from(byte) >> off) & ((1 << take) - 1);
            v |= chunk << got;
            got += take;
            self.pos += take as usize;
        }
        Ok(v as u32)
    }

    /// A unary run of at most `most` one bits and its zero bit: `None` as soon as the run
    /// is longer (the rest is not read).
    fn unary(&mut self, most: u32) -> Result<Option<u32>, HllError> {
        let mut q = 0u32;
        loop {
            let &byte = self.b.get(self.pos >> 3).ok_or(HllError::Truncated)?;
            let off = (self.pos & 7) as u32;
            // One bits from `off` up, to the first zero (bits above the byte read as 0).
            let ones = (!(u32::from(byte) >> off)).trailing_zeros().min(8 - off);
            if q.saturating_add(ones) > most {
                return Ok(None);
            }
            q += ones;
            if ones < 8 - off {
                self.pos += ones as usize + 1;
                return Ok(Some(q));
            }
            self.pos += ones as usize;
        }
    }

    /// A Rice-coded value of at most `most`: `None` when it is larger (its unary run is
    /// not read past what `most` allows).
    pub(super) fn rice(&mut self, k: u8, most: u32) -> Result<Option<u32>, HllError> {
        let Some(q) = self.unary(most >> k)? else {
            return Ok(None);
        };
        let v = q << k | self.bits(u32::from(k))?;
        Ok((v <= most).then_some(v))
    }

    /// Ends the stream: the bytes it took, its padding checked.
    pub(super) fn finish(self) -> Result<usize, HllError> {
        let used = self.pos.div_ceil(8);
        let off = self.pos & 7;
        if off != 0 && self.b[self.pos >> 3] >> off != 0 {
            return Err(HllError::Padding);
        }
        Ok(used)
    }
}

/// Bits of the Rice code of `v` with parameter `k`.
fn rice_bits(v: u32, k: u8) -> u64 {
    u64::from(v >> k) + 1 + u64::from(k)
}

/// The parameter that codes `values` in the fewest bits (the smallest of equals), and
/// those bits.
///
/// The size is convex in `k` (from `k` to `k + 1` each value saves `⌊v / 2^(k+1)⌋` plus its
/// bit `k` of quotient and pays one bit of remainder, and the savings shrink as `k` grows),
/// so the smallest best `k` is the first whose successor is no smaller: a binary search,
/// a dozen passes over the values instead of one per `k`.
pub(super) fn best_k(values: &[u32]) -> (u8, u64) {
    let bits = |k: u8| -> u64 { values.iter().map(|&v| rice_bits(v, k)).sum() };
    let (mut lo, mut hi) = (0, MAX_K);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if bits(mid) <= bits(mid + 1) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    (lo, bits(lo))
}

/// The steps between the indices of a sparse list (the first whole).
fn steps(list: &[u32]) -> Vec<u32> {
    let mut prev = 0;
    list.iter()
        .map(|&e| {
            let step = index(e) - prev;
            prev = index(e);
            step
        })
        .collect()
}

/// A sparse list of precision `p` in the Rice-coded form, led by `tag`.
pub(super) fn encode(tag: u8, p: u8, list: &[u32]) -> Vec<u8> {
    let steps = steps(list);
    let (k, _) = best_k(&steps);
    let mut out = Vec::with_capacity(3 + list.len() * 3);
    out.push(tag);
    put_varint(&mut out, list.len() as u32);
    out.push(k);
    let mut w = BitWriter::new(&mut out);
    for (&e, &step) in list.iter().zip(&steps) {
        w.rice(step, k);
        if keeps_rank(index(e), p) {
            w.bits(rank(e), RANK_BITS);
        }
    }
    w.finish();
    out
}

/// Decodes the Rice-coded sparse form of precision `p` from `rest` (after the tag): the
/// sketch and the bytes it used, the tag included.
pub(super) fn decode(p: u8, rest: &[u8]) -> Result<(Hll, usize), HllError> {
    if !(MIN_PRECISION..=MAX_PRECISION).contains(&p) {
        return Err(HllError::Precision(p));
    }
    let (count, mut used) = take_varint(rest)?;
    let max = max_sparse(p);
    if count == 0 || count as usize > max {
        let count = u64::from(count);
        return Err(HllError::Size { count, max });
    }
    let &k = rest.get(used).ok_or(HllError::Truncated)?;
    used += 1;
    if k > MAX_K {
        return Err(HllError::Rice(k));
    }
    let mut r = BitReader::new(&rest[used..]);
    let count = count as usize;
    if !r.can_hold(count, 1 + u32::from(k)) {
        return Err(HllError::Truncated);
    }
    let mut list = Vec::with_capacity(count);
    let mut prev: Option<u32> = None;
    let last = (1u32 << SPARSE_BITS) - 1;
    for _ in 0..count {
        let base = prev.unwrap_or(0);
        let step = r
            .rice(k, last - base)?
            .filter(|&s| s > 0 || prev.is_none())
            .ok_or(HllError::Entry(u64::from(base) + 1))?;
        let idx = base + step;
        let rank = if keeps_rank(idx, p) {
            let r = r.bits(RANK_BITS)?;
            if r == 0 || r > SPARSE_MAX_RANK {
                return Err(HllError::Entry(u64::from(idx) << 6 | u64::from(r)));
            }
            r
        } else {
            1
        };
        list.push(idx << 6 | rank);
        prev = Some(idx);
    }
    used += r.finish()?;
    Ok((
        Hll {
            p,
            repr: Repr::Sparse(list),
        },
        1 + used,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_search_finds_the_smallest_best_k_of_a_scan(
            values in prop::collection::vec(0u32..(1 << 25), 0..300),
            shift in 0u32..25,
        ) {
            let values: Vec<u32> = values.iter().map(|v| v >> shift).collect();
            let mut scan = (0, u64::MAX);
            for k in 0..=MAX_K {
                let bits: u64 = values.iter().map(|&v| rice_bits(v, k)).sum();
                if bits < scan.1 {
                    scan = (k, bits);
                }
            }
            prop_assert_eq!(best_k(&values), scan);
        }
    }
}
