//! The binary codec of a [`Hll`]: [`Hll::encode`], [`Hll::decode`], and serde through them.
//!
//! Contract:
//! - Self-delimiting: one tag byte, bits 0–4 the precision (4..=18), bits 5–6 the form,
//!   bit 7 a variant of it:
//!   - `0` empty: nothing follows;
//!   - `0` with bit 7: sparse, Rice-coded: a LEB128 varint count (≥ 1, at most what the
//!     precision keeps sparse), the Rice parameter (a byte), then a bitstream of each
//!     index's step from the one before and its rank only where it counts at `p` (see
//!     `rice`);
//!   - `1` sparse: a LEB128 varint count (same bounds), then the sorted entries as LEB128
//!     varints, the first whole and each other as its difference from the one before;
//!   - `1` with bit 7, sparse by index: the count, then each index as its step from the one
//!     before (a varint), its rank byte only where it counts at `p` (see
//!     `sparse::normalized`);
//!   - `2` dense: the 2^p registers packed 6 bits each (`3 · 2^(p−2)` bytes);
//!   - `2` with bit 7, dense a byte a register (what is stored is compressed, and small
//!     ranks compress far better a byte each than six bits across byte borders);
//!   - `3` (with or without bit 7): written against a reference sketch, read only by
//!     [`Hll::decode_against`] (see `relative`).
//! - [`Hll::encode`] writes a sparse sketch Rice-coded, or by index when that is shorter
//!   (a sketch of one or two entries), and a dense one a byte a register: canonical, equal
//!   sketches of the same form encode to the same bytes (an empty sketch is always the
//!   one-byte form). Every form above is read.
//! - [`Hll::decode`] validates and returns the bytes it used: a bad tag, a precision out of
//!   range, a truncated input, a sparse list that is too long, unsorted, has duplicate
//!   indices, an index of 2^25 or more or invalid ranks, a bad Rice stream (see `rice`),
//!   and a register above the largest rank are each an [`HllError`], never a panic; it
//!   allocates no more than the sketch's bounded size.
//! - serde: [`Hll`] serialises as the bytes of [`Hll::encode`] (`serialize_bytes`) and
//!   deserialises through [`Hll::decode`], which must use all of them.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::dense::{dense_bytes, max_rank, Registers};
use super::rice;
use super::sparse::{index, is_valid, keeps_rank, normalized, rank, SPARSE_MAX_RANK};
use super::{max_sparse, Hll, Repr, MAX_PRECISION, MIN_PRECISION};

const FORM_EMPTY: u8 = 0;
const FORM_SPARSE: u8 = 1;
const FORM_DENSE: u8 = 2;
/// The form `relative` reads the sketch against (see `relative`).
pub(super) const FORM_RELATIVE: u8 = 3;
/// Tag bit 7: the variant of a form.
pub(super) const VARIANT: u8 = 0x80;
/// The sparse form Rice-coded: the empty form's variant.
const RICE: u8 = FORM_EMPTY << 5 | VARIANT;
/// The sparse form by index (the ranks that count only); the form without the variant
/// (every entry whole) is still read.
const BY_INDEX: u8 = FORM_SPARSE << 5 | VARIANT;
/// The dense form a byte a register: what [`Hll::encode`] writes; the packed form without
/// the variant is still read.
const BY_BYTE: u8 = FORM_DENSE << 5 | VARIANT;

/// Why bytes are not a [`Hll`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// The input ends inside the sketch.
    #[error("HyperLogLog sketch truncated")]
    Truncated,
    /// The tag byte names no form.
    #[error("HyperLogLog tag byte {0:#04x} is unknown")]
    Tag(u8),
    /// The precision is out of 4..=18.
    #[error("HyperLogLog precision {0} is out of 4..=18")]
    Precision(u8),
    /// A sparse list of no entry, or of more than its precision keeps sparse.
    #[error("sparse HyperLogLog of {count} entries (1 to {max} at this precision)")]
    Size {
        /// Entries announced.
        count: u64,
        /// Most entries kept sparse at the sketch's precision.
        max: usize,
    },
    /// A sparse entry that is invalid, or not after the one before.
    #[error("sparse HyperLogLog entry {0:#x} is invalid or out of order")]
    Entry(u64),
    /// A dense register above the largest rank of the precision.
    #[error("HyperLogLog register {index} is {value}, above the largest rank")]
    Register {
        /// Register index.
        index: usize,
        /// Its value.
        value: u8,
    },
    /// A varint longer than a `u32`'s.
    #[error("HyperLogLog varint overflows")]
    Varint,
    /// A Rice parameter above 24.
    #[error("HyperLogLog Rice parameter {0} is above 24")]
    Rice(u8),
    /// Bits after the last value of a Rice-coded stream that are not zero.
    #[error("HyperLogLog bitstream has nonzero padding")]
    Padding,
    /// A flags byte with unknown bits.
    #[error("HyperLogLog flags {0:#04x} are unknown")]
    Flags(u8),
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 varint of at most 32 bits, and the bytes it used.
pub(super) fn take_varint(b: &[u8]) -> Result<(u32, usize), HllError> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(5) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(v)
                .map(|v| (v, i + 1))
                .map_err(|_| HllError::Varint);
        }
    }
    Err(if b.len() < 5 {
        HllError::Truncated
    } else {
        HllError::Varint
    })
}

impl Hll {
    /// Appends the sketch's encoding (see the module docs) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.repr {
            Repr::Sparse(list) if list.is_empty() => out.push(self.p | FORM_EMPTY << 5),
            Repr::Sparse(list) => {
                let rice = rice::encode(self.p | RICE, self.p, list);
                if rice.len() <= by_index_len(self.p, list) {
                    out.extend_from_slice(&rice);
                } else {
                    out.push(self.p | BY_INDEX);
                    put_varint(out, list.len() as u32);
                    let mut prev = 0;
                    for &e in list {
                        put_varint(out, index(e) - prev);
                        prev = index(e);
                        if keeps_rank(prev, self.p) {
                            out.push(rank(e) as u8);
                        }
                    }
                }
            }
            Repr::Dense(regs) => {
                // A byte a register: a third more than packed, but what is stored is
                // compressed, and registers of mostly small ranks compress far better one
                // to a byte than six bits each across byte borders.
                out.push(self.p | BY_BYTE);
                out.extend(regs.iter());
            }
        }
    }

    /// Decodes a sketch from the start of `bytes`: the sketch and the bytes it used.
    pub fn decode(bytes: &[u8]) -> Result<(Hll, usize), HllError> {
        let (&tag, rest) = bytes.split_first().ok_or(HllError::Truncated)?;
        let p = tag & 0x1f;
        let form = tag & !0x1f;
        if form & !VARIANT == FORM_RELATIVE << 5 {
            // Written against a reference: `decode_against` reads it.
            return Err(HllError::Tag(tag));
        }
        if !(MIN_PRECISION..=MAX_PRECISION).contains(&p) {
            return Err(HllError::Precision(p));
        }
        match form {
            RICE => rice::decode(p, rest),
            BY_INDEX => by_index(p, rest),
            BY_BYTE => {
                let bytes = rest.get(..1 << p).ok_or(HllError::Truncated)?;
                let mut regs = Registers::new(p);
                for (index, &value) in bytes.iter().enumerate() {
                    if value > max_rank(p) {
                        return Err(HllError::Register { index, value });
                    }
                    regs.set_max(index, value);
                }
                let repr = Repr::Dense(regs);
                Ok((Hll { p, repr }, 1 + (1 << p)))
            }
            f if f == FORM_EMPTY << 5 => Ok((Hll::with_precision(p), 1)),
            f if f == FORM_SPARSE << 5 => whole_entries(p, rest),
            f if f == FORM_DENSE << 5 => {
                let packed = rest.get(..dense_bytes(p)).ok_or(HllError::Truncated)?;
                let regs = Registers::from_packed(p, packed).map_err(|bad| match bad {
                    Some((index, value)) => HllError::Register { index, value },
                    None => HllError::Truncated,
                })?;
                debug_assert!(regs.iter().all(|r| r <= max_rank(p)));
                let repr = Repr::Dense(regs);
                Ok((Hll { p, repr }, 1 + dense_bytes(p)))
            }
            _ => Err(HllError::Tag(tag)),
        }
    }
}

/// Bytes of the sparse form by index of `list` at precision `p` (tag included).
pub(super) fn by_index_len(p: u8, list: &[u32]) -> usize {
    let varint = |v: u32| (32 - (v | 1).leading_zeros()).div_ceil(7) as usize;
    let mut prev = 0;
    let entries: usize = list
        .iter()
        .map(|&e| {
            let step = index(e) - prev;
            prev = index(e);
            varint(step) + usize::from(keeps_rank(prev, p))
        })
        .sum();
    1 + varint(list.len() as u32) + entries
}

/// The sparse form of whole entries (earlier releases): after the tag, the count, then
/// each entry as its difference from the one before (the first whole).
fn whole_entries(p: u8, rest: &[u8]) -> Result<(Hll, usize), HllError> {
    let (count, mut used) = take_varint(rest)?;
    let max = max_sparse(p);
    if count == 0 || count as usize > max {
        let count = u64::from(count);
        return Err(HllError::Size { count, max });
    }
    let mut list = Vec::with_capacity(count as usize);
    let mut prev: Option<u32> = None;
    for _ in 0..count {
        let (delta, n) = take_varint(&rest[used..])?;
        used += n;
        let base = prev.unwrap_or(0);
        let e = base
            .checked_add(delta)
            .filter(|&e| is_valid(e) && prev.is_none_or(|q| index(q) < index(e)));
        let e = e.ok_or(HllError::Entry(u64::from(base) + u64::from(delta)))?;
        prev = Some(e);
        list.push(normalized(e, p));
    }
    let repr = Repr::Sparse(list);
    Ok((Hll { p, repr }, 1 + used))
}

/// The sparse form by index ([`BY_INDEX`]): after the tag, the count, then each entry's
/// index as its step from the one before (the first whole), followed by its rank only
/// where the rank counts at `p` (see `sparse::normalized`).
fn by_index(p: u8, rest: &[u8]) -> Result<(Hll, usize), HllError> {
    let (count, mut used) = take_varint(rest)?;
    let max = max_sparse(p);
    if count == 0 || count as usize > max {
        let count = u64::from(count);
        return Err(HllError::Size { count, max });
    }
    let mut list = Vec::with_capacity(count as usize);
    let mut prev: Option<u32> = None;
    for _ in 0..count {
        let (step, n) = take_varint(&rest[used..])?;
        used += n;
        let idx = match prev {
            None => Some(step),
            Some(q) if step > 0 => q.checked_add(step),
            Some(_) => None,
        }
        .filter(|&i| i < 1 << 25)
        .ok_or(HllError::Entry(u64::from(step)))?;
        let rank = if keeps_rank(idx, p) {
            let &r = rest.get(used).ok_or(HllError::Truncated)?;
            used += 1;
            if r == 0 || u32::from(r) > SPARSE_MAX_RANK {
                return Err(HllError::Entry(u64::from(r)));
            }
            u32::from(r)
        } else {
            1
        };
        list.push((idx << 6) | rank);
        prev = Some(idx);
    }
    let repr = Repr::Sparse(list);
    Ok((Hll { p, repr }, 1 + used))
}

impl Serialize for Hll {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::new();
        self.encode(&mut out);
        s.serialize_bytes(&out)
    }
}

/// Bytes that must hold one whole sketch.
fn whole<E: serde::de::Error>(bytes: &[u8]) -> Result<Hll, E> {
    match Hll::decode(bytes).map_err(E::custom)? {
        (h, used) if used == bytes.len() => Ok(h),
        (_, used) => Err(E::custom(format!(
            "{} bytes after a HyperLogLog sketch",
            bytes.len() - used
        ))),
    }
}

impl<'de> Deserialize<'de> for Hll {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Hll;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the bytes of a HyperLogLog sketch")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Hll, E> {
                whole(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Hll, A::Error> {
                // Self-describing formats (JSON) may give the bytes as a sequence.
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    if bytes.len() > 1 + dense_bytes(MAX_PRECISION) {
                        return Err(A::Error::custom("HyperLogLog sketch too long"));
                    }
                    bytes.push(b);
                }
                whole(&bytes)
            }
        }
        d.deserialize_bytes(V)
    }
}
