//! A sketch written against a reference sketch of the same row: a segment's or a goal's
//! visitors against the window's, a segment's sessions against the window's. Their items
//! are a subset of the reference's, so while both are sparse the sketch is the positions
//! of its entries in the reference's list (or of the reference's entries it lacks, when
//! those are fewer), Rice-coded: a few bits an entry instead of two or three bytes.
//!
//! Contract:
//! - [`Hll::encode_against`] writes the Rice-coded relative form when both sketches are
//!   sparse, `self` is not empty and every 25-bit index of `self` is in `reference`;
//!   otherwise it writes [`Hll::encode`]'s form, so any sketch can be written against any
//!   reference.
//! - The form (tag `p | 3 << 5 | 0x80`): a varint count (the sketch's entries: ≥ 1, at most
//!   what `p` keeps sparse and the reference holds), a flags byte (bit 0: the positions
//!   listed are those of the reference's entries *not* in the sketch; the other bits 0),
//!   the Rice parameter `k` (a byte, ≤ 24), then the listed positions (ascending; count of
//!   them, or the reference's entries less count with bit 0) as a bitstream of Rice codes
//!   (see `rice`) of the gaps, each the positions skipped since the one listed before, to
//!   a byte boundary. Then the own ranks: a varint count, and for each, ascending, the
//!   entry's ordinal in the sketch's list as its step from the one before (the first
//!   whole, every other ≥ 1) and its rank byte (the entry's rank differs from the
//!   reference's at that index: another item of the same index, or a rank that does not
//!   count at one of the two precisions). The encoder lists whichever of the positions
//!   takes fewer bytes (the sketch's own when equal), each with the `k` that takes the
//!   fewest bits (the smallest of equals): equal sketches against equal references encode
//!   to equal bytes.
//! - The form of earlier releases (tag `p | 3 << 5`) is still read: a varint count, then
//!   for each entry in order a varint `(gap << 1) | own_rank`, `gap` the positions skipped
//!   in the reference's list since the last entry, and when `own_rank` is set a rank byte.
//! - [`Hll::decode_against`] reads every form, given the same reference, and validates as
//!   [`Hll::decode`] does: a position past the reference, a bad flag or `k`, a bad Rice
//!   stream, an own rank that is invalid, equal to the reference's or out of order, an
//!   entry whose rank does not count at `p` but is not 1, a count out of range are each
//!   an [`HllError`].

use super::codec::{put_varint, take_varint, HllError, FORM_RELATIVE, VARIANT};
use super::rice::{best_k, BitReader, BitWriter, MAX_K};
use super::sparse::{index, is_valid, normalized, rank, SPARSE_MAX_RANK};
use super::{max_sparse, Hll, Repr, MAX_PRECISION, MIN_PRECISION};

/// Flag: the positions listed are those of the reference's entries not in the sketch.
const COMPLEMENT: u8 = 1;

/// The gaps between ascending positions: the positions skipped since the one before.
fn gaps(positions: impl Iterator<Item = usize>) -> Vec<u32> {
    let mut next = 0;
    positions
        .map(|pos| {
            let gap = (pos - next) as u32;
            next = pos + 1;
            gap
        })
        .collect()
}

impl Hll {
    /// Appends the sketch's encoding against `reference` (see the module docs) to `out`.
    pub fn encode_against(&self, reference: &Hll, out: &mut Vec<u8>) {
        let (Repr::Sparse(mine), Repr::Sparse(theirs)) = (&self.repr, &reference.repr) else {
            return self.encode(out);
        };
        if mine.is_empty() {
            return self.encode(out);
        }
        // Positions of my entries in the reference's list (both sorted by index), and the
        // ordinals of those whose rank is not the reference's.
        let mut at = Vec::with_capacity(mine.len());
        let mut own = Vec::new();
        let mut j = 0;
        for (i, &e) in mine.iter().enumerate() {
            // A search, not a walk: a segment's sketch holds a few of the window's entries.
            j += theirs[j..].partition_point(|&t| index(t) < index(e));
            match theirs.get(j) {
                Some(&t) if index(t) == index(e) => {
                    at.push(j);
                    if t != e {
                        own.push(i);
                    }
                }
                _ => return self.encode(out),
            }
        }
        let listed = gaps(at.iter().copied());
        let (k, bits) = best_k(&listed);
        // The entries it lacks are listed instead when that is shorter, which takes fewer
        // of them than it holds: only a sketch of most of the reference's entries is
        // worth the try.
        let (flags, k, gaps) = if at.len() * 2 > theirs.len() {
            let mut mine_at = at.iter().peekable();
            let missing = (0..theirs.len()).filter(|pos| mine_at.next_if_eq(&pos).is_none());
            let unlisted = gaps(missing);
            let (uk, ubits) = best_k(&unlisted);
            if ubits.div_ceil(8) < bits.div_ceil(8) {
                (COMPLEMENT, uk, unlisted)
            } else {
                (0, k, listed)
            }
        } else {
            (0, k, listed)
        };
        out.push(self.p | FORM_RELATIVE << 5 | VARIANT);
        put_varint(out, mine.len() as u32);
        out.push(flags);
        out.push(k);
        let mut w = BitWriter::new(out);
        for gap in gaps {
            w.rice(gap, k);
        }
        w.finish();
        put_varint(out, own.len() as u32);
        let mut before = 0;
        for (n, &i) in own.iter().enumerate() {
            put_varint(out, (if n == 0 { i } else { i - before }) as u32);
            out.push(rank(mine[i]) as u8);
            before = i;
        }
    }

    /// Decodes a sketch written by [`Hll::encode_against`] with the same `reference`, from
    /// the start of `bytes`: the sketch and the bytes it used.
    pub fn decode_against(bytes: &[u8], reference: &Hll) -> Result<(Hll, usize), HllError> {
        let Some(&tag) = bytes.first() else {
            return Err(HllError::Truncated);
        };
        let rice = match tag >> 5 {
            f if f == FORM_RELATIVE => false,
            f if f == FORM_RELATIVE | VARIANT >> 5 => true,
            _ => return Hll::decode(bytes),
        };
        let p = tag & 0x1f;
        if !(MIN_PRECISION..=MAX_PRECISION).contains(&p) {
            return Err(HllError::Precision(p));
        }
        let Repr::Sparse(theirs) = &reference.repr else {
            return Err(HllError::Tag(tag));
        };
        let rest = &bytes[1..];
        let (count, used) = take_varint(rest)?;
        let max = max_sparse(p);
        if count == 0 || count as usize > max || count as usize > theirs.len() {
            return Err(HllError::Size {
                count: u64::from(count),
                max: max.min(theirs.len()),
            });
        }
        let (list, used) = if rice {
            by_rice(p, count as usize, theirs, rest, used)?
        } else {
            by_varint(count as usize, theirs, rest, used)?
        };
        Ok((
            Hll {
                p,
                repr: Repr::Sparse(list),
            },
            1 + used,
        ))
    }
}

/// The Rice-coded relative form after its count (`rest[..used]`): the sketch's list of
/// `count` entries and the bytes used after the tag.
fn by_rice(
    p: u8,
    count: usize,
    theirs: &[u32],
    rest: &[u8],
    mut used: usize,
) -> Result<(Vec<u32>, usize), HllError> {
    let flags = *rest.get(used).ok_or(HllError::Truncated)?;
    let k = *rest.get(used + 1).ok_or(HllError::Truncated)?;
    used += 2;
    if flags & !COMPLEMENT != 0 {
        return Err(HllError::Flags(flags));
    }
    if k > MAX_K {
        return Err(HllError::Rice(k));
    }
    let complement = flags & COMPLEMENT != 0;
    let n = if complement {
        theirs.len() - count
    } else {
        count
    };
    let mut r = BitReader::new(&rest[used..]);
    if !r.can_hold(n, 1 + u32::from(k)) {
        return Err(HllError::Truncated);
    }
    let mut listed = Vec::with_capacity(n);
    let mut next = 0usize;
    for _ in 0..n {
        // The largest gap that stays inside the reference.
        let most = theirs
            .len()
            .checked_sub(next + 1)
            .ok_or(HllError::Entry(next as u64))?;
        let gap = r
            .rice(k, u32::try_from(most).unwrap_or(u32::MAX))?
            .ok_or(HllError::Entry(next as u64))?;
        let pos = next + gap as usize;
        listed.push(pos);
        next = pos + 1;
    }
    used += r.finish()?;
    let mut list: Vec<u32> = if complement {
        let mut skip = listed.iter().peekable();
        theirs
            .iter()
            .enumerate()
            .filter(|(pos, _)| skip.next_if_eq(&pos).is_none())
            .map(|(_, &t)| t)
            .collect()
    } else {
        listed.iter().map(|&pos| theirs[pos]).collect()
    };
    debug_assert_eq!(list.len(), count);
    let (owns, n) = take_varint(&rest[used..])?;
    used += n;
    if owns as usize > count {
        return Err(HllError::Size {
            count: u64::from(owns),
            max: count,
        });
    }
    let mut before: Option<usize> = None;
    for _ in 0..owns {
        let (step, n) = take_varint(&rest[used..])?;
        used += n;
        let &r = rest.get(used).ok_or(HllError::Truncated)?;
        used += 1;
        let i = match before {
            None => Some(step as usize),
            Some(b) if step > 0 => b.checked_add(step as usize),
            Some(_) => None,
        }
        .filter(|&i| i < count)
        .ok_or(HllError::Entry(u64::from(step)))?;
        let t = list[i];
        let e = (index(t) << 6) | u32::from(r);
        if u32::from(r) > SPARSE_MAX_RANK || !is_valid(e) || e == t {
            return Err(HllError::Entry(u64::from(e)));
        }
        list[i] = e;
        before = Some(i);
    }
    if let Some(&e) = list.iter().find(|&&e| normalized(e, p) != e) {
        return Err(HllError::Entry(u64::from(e)));
    }
    Ok((list, used))
}

/// The relative form of earlier releases after its count (`rest[..used]`): the sketch's
/// list of `count` entries and the bytes used after the tag.
fn by_varint(
    count: usize,
    theirs: &[u32],
    rest: &[u8],
    mut used: usize,
) -> Result<(Vec<u32>, usize), HllError> {
    let mut list = Vec::with_capacity(count);
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
            // (A rank byte above 63 would spill into the index.)
            if u32::from(r) > SPARSE_MAX_RANK || !is_valid(e) || e == t {
                return Err(HllError::Entry(u64::from(e)));
            }
            e
        } else {
            t
        };
        list.push(e);
        next = pos + 1;
    }
    Ok((list, used))
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
            if sub.estimate() >= 10 && out.first().is_some_and(|t| t >> 5 == 7) {
                assert!(
                    out.len() * 2 < own.len(),
                    "{} against {}",
                    out.len(),
                    own.len()
                );
            }
        }
        // Another item of an index the reference has, or a rank that counts at the
        // reference's precision only: its own rank is written.
        let reference = Hll {
            p: 14,
            repr: Repr::Sparse(vec![5, 2048 << 6 | 6, 8192 << 6 | 7, 8193 << 6 | 1]),
        };
        let sub = Hll {
            p: 12,
            repr: Repr::Sparse(vec![9, 2048 << 6 | 1, 8193 << 6 | 1]),
        };
        let mut out = Vec::new();
        sub.encode_against(&reference, &mut out);
        assert_eq!(out[0] >> 5, 7);
        assert_eq!(Hll::decode_against(&out, &reference), Ok((sub, out.len())));
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
