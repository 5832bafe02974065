//! A sketch written against a reference sketch of the same row: a segment's or a goal's
//! visitors against the window's, a segment's sessions against the window's. Their items
//! are a subset of the reference's, so while both are sparse the sketch is the positions
//! of its entries in the reference's list: about a byte an entry instead of three or four.
//!
//! Contract:
//! - [`Hll::encode_against`] writes the form `relative` (tag `3 << 5 | p`) when both
//!   sketches are sparse and every 25-bit index of `self` is in `reference`; otherwise it
//!   writes [`Hll::encode`]'s form, so any sketch can be written against any reference.
//! - The form: a varint count (≥ 1, at most what `p` keeps sparse), then for each entry in
//!   order a varint `(gap << 1) | own_rank`, `gap` the positions skipped in the reference's
//!   list since the last entry, and when `own_rank` is set a rank byte (the entry's rank
//!   differs from the reference's at that index: another item of the same index).
//! - [`Hll::decode_against`] reads either form, given the same reference, and validates as
//!   [`Hll::decode`] does: a position past the reference, a bad rank, a count out of range
//!   are each an [`HllError`].

use super::codec::{put_varint, take_varint, HllError, FORM_RELATIVE};
use super::sparse::{index, is_valid, rank};
use super::{max_sparse, Hll, Repr, MAX_PRECISION, MIN_PRECISION};

impl Hll {
    /// Appends the sketch's encoding against `reference` (see the module docs) to `out`.
    pub fn encode_against(&self, reference: &Hll, out: &mut Vec<u8>) {
        let (Repr::Sparse(mine), Repr::Sparse(theirs)) = (&self.repr, &reference.repr) else {
            return self.encode(out);
        };
        if mine.is_empty() {
            return self.encode(out);
        }
        // Positions of my entries in the reference's list (both sorted by index).
        let mut at = Vec::with_capacity(mine.len());
        let mut j = 0;
        for &e in mine {
            while j < theirs.len() && index(theirs[j]) < index(e) {
                j += 1;
            }
            match theirs.get(j) {
                Some(&t) if index(t) == index(e) => at.push((j, t != e)),
                _ => return self.encode(out),
            }
        }
        out.push(self.p | FORM_RELATIVE << 5);
        put_varint(out, mine.len() as u32);
        let mut next = 0;
        for (&e, &(pos, own)) in mine.iter().zip(&at) {
            put_varint(out, ((pos - next) as u32) << 1 | u32::from(own));
            if own {
                out.push(rank(e) as u8);
            }
            next = pos + 1;
        }
    }

    /// Decodes a sketch written by [`Hll::encode_against`] with the same `reference`, from
    /// the start of `bytes`: the sketch and the bytes it used.
    pub fn decode_against(bytes: &[u8], reference: &Hll) -> Result<(Hll, usize), HllError> {
        let Some(&tag) = bytes.first() else {
            return Err(HllError::Truncated);
        };
        if tag >> 5 != FORM_RELATIVE {
            return Hll::decode(bytes);
        }
        let p = tag & 0x1f;
        if !(MIN_PRECISION..=MAX_PRECISION).contains(&p) {
            return Err(HllError::Precision(p));
        }
        let Repr::Sparse(theirs) = &reference.repr else {
            return Err(HllError::Tag(tag));
        };
        let rest = &bytes[1..];
        let (count, mut used) = take_varint(rest)?;
        let max = max_sparse(p);
        if count == 0 || count as usize > max || count as usize > theirs.len() {
            return Err(HllError::Size {
                count: u64::from(count),
                max: max.min(theirs.len()),
            });
        }
        let mut list = Vec::with_capacity(count as usize);
        let mut next = 0usize;
        for _ in 0..count {
            let (v, n) = take_varint(&rest[used..])?;
            used += n;
            let pos = next + (v >> 1) as usize;
            let &t = theirs.get(pos).ok_or(HllError::Entry(u64::from(v)))?;
            let e = if v & 1 == 1 {
                let &r = rest.get(used).ok_or(HllError::Truncated)?;
                used += 1;
                let e = (index(t) << 6) | u32::from(r);
                if !is_valid(e) || e == t {
                    return Err(HllError::Entry(u64::from(e)));
                }
                e
            } else {
                t
            };
            list.push(e);
            next = pos + 1;
        }
        Ok((
            Hll {
                p,
                repr: Repr::Sparse(list),
            },
            1 + used,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(p: u8, items: impl Iterator<Item = u64>) -> Hll {
        let mut h = Hll::with_precision(p);
        for i in items {
            h.insert(&format!("v{i}"));
        }
        h
    }

    #[test]
    fn a_subset_is_written_as_positions_and_reads_back_the_same() {
        let window = of(14, 0..2_000);
        for (p, sub) in [
            (12, of(12, (0..2_000).step_by(7))),
            (12, of(12, 0..1)),
            (14, of(14, 1_000..1_900)),
            (12, Hll::with_precision(12)),
            // Not a subset, dense, or against a dense reference: the sketch's own form.
            (12, of(12, 1_990..2_010)),
            (12, of(12, 0..2_000)),
        ] {
            let mut out = Vec::new();
            sub.encode_against(&window, &mut out);
            let (back, used) = Hll::decode_against(&out, &window).expect("decodes");
            assert_eq!((used, back.precision()), (out.len(), p));
            assert_eq!(back, sub);
            let mut own = Vec::new();
            sub.encode(&mut own);
            if sub.estimate() >= 10 && out.first().is_some_and(|t| t >> 5 == 3) {
                assert!(
                    out.len() * 2 < own.len(),
                    "{} against {}",
                    out.len(),
                    own.len()
                );
            }
        }
        // Another item of an index the reference has: its own rank is written.
        let mut sub = Hll::with_precision(12);
        let mut list = match &window.repr {
            Repr::Sparse(l) => l[..3].to_vec(),
            Repr::Dense(_) => panic!("sparse"),
        };
        list[1] = (index(list[1]) << 6) | (rank(list[1]) % 40 + 1);
        sub.repr = Repr::Sparse(list);
        let mut out = Vec::new();
        sub.encode_against(&window, &mut out);
        assert_eq!(out[0] >> 5, 3);
        assert_eq!(Hll::decode_against(&out, &window).expect("decodes").0, sub);
    }

    #[test]
    fn a_bad_relative_sketch_is_an_error() {
        let window = of(14, 0..100);
        let sub = of(12, 0..50);
        let mut out = Vec::new();
        sub.encode_against(&window, &mut out);
        assert!(Hll::decode_against(&out[..out.len() - 1], &window).is_err());
        assert!(
            Hll::decode_against(&out, &of(14, 0..10)).is_err(),
            "shorter reference"
        );
        assert!(
            Hll::decode_against(&out, &of(14, 0..100_000)).is_err(),
            "dense reference"
        );
        let mut big = out.clone();
        big[1] = 0x7f;
        assert!(Hll::decode_against(&big, &window).is_err());
    }
}
