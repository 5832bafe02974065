//! HyperLogLog distinct counting (HLL++ sparse form, 6-bit dense registers, Ertl's
//! estimator), at a precision chosen per level of the aggregates.
//!
//! Contract:
//! - [`Hll`] hashes items with the full 64-bit xxh3 ([`Hll::insert`]; [`Hll::insert_hash`]
//!   takes that hash) and has a precision p in 4..=18: [`Hll::new`] is the top level,
//!   [`HLL_PRECISION`] (p = 14: visitors and sessions of a window or range);
//!   [`HLL_SUB_PRECISION`] (p = 12) is the level of segment sub-aggregates and goals.
//! - Sparse while small: the sorted HLL++ entries (a 25-bit index and the rank of the other
//!   39 bits, one per index, see `sparse`), counted by linear counting over the 2^25
//!   buckets: exact in practice for small sets (two items share a bucket with probability
//!   n²/2^26: one in a million at n = 8, 1.5 % at n = 1,000, and the formula expects that).
//!   It turns dense only when its entries (4 bytes each) would take more than the dense
//!   registers: 2^p registers of 6 bits, packed (see `dense`), estimated by Ertl's improved
//!   estimator (2017). Sparse and dense sketches of the same items at the same precision
//!   compare equal (the sparse one projected onto the registers).
//! - [`Hll::merge`] is commutative and associative, also across precisions: the result has
//!   the lower precision, and a sketch folds down to it exactly (the same registers as the
//!   same items inserted at that precision). At one precision, merging sketches of any
//!   split of a stream gives the sketch of the whole stream, in the same form. [`Hll::new`]
//!   is the identity for every sketch of precision ≤ 14.
//! - Memory is bounded whatever the input: at most the dense size, `3 · 2^(p−2)` bytes.
//! - [`Hll::encode`] / [`Hll::decode`] are a compact, self-delimiting codec (see `codec`),
//!   and serde goes through it; decoding validates (corrupt input is an [`HllError`], never
//!   a panic or an out-of-range register). The sketches of aggregate format versions 2
//!   and 3 are read by `LegacyHll` (see `legacy` for their conversion).
//!
//! # Precision, error and size
//!
//! Measured by the ignored test `accuracy` in `tests.rs` (`cargo test -p
//! pulseboard-model --release --lib -- --ignored --nocapture accuracy`): the root mean
//! square of (estimate − n)/n over 1,000 seeds, n the exact count of a `HashSet` (a quarter
//! of the insertions repeat an earlier item), and the largest error of any seed and n:
//!
//! | p | σ theory | n = 100 | 300 | 1,000 | 3,000 | 10,000 | 30,000 | 100,000 | largest | sparse up to | dense bytes |
//! |---|---|---|---|---|---|---|---|---|---|---|---|
//! | 10 | 3.25 % | 0.00 % | 2.25 % | 2.40 % | 2.68 % | 3.11 % | 3.10 % | 3.24 % | 13.0 % | 192 | 768 |
//! | 11 | 2.30 % | 0.00 % | 0.00 % | 1.68 % | 1.82 % | 2.13 % | 2.13 % | 2.25 % | 7.4 % | 384 | 1,536 |
//! | 12 | 1.62 % | 0.00 % | 0.00 % | 1.14 % | 1.19 % | 1.40 % | 1.46 % | 1.53 % | 5.3 % | 768 | 3,072 |
//! | 13 | 1.15 % | 0.00 % | 0.00 % | 0.01 % | 0.81 % | 0.91 % | 0.96 % | 1.04 % | 3.8 % | 1,536 | 6,144 |
//! | 14 | 0.81 % | 0.00 % | 0.00 % | 0.01 % | 0.01 % | 0.61 % | 0.65 % | 0.73 % | 3.1 % | 3,072 | 12,288 |
//!
//! (σ theory is 1.04/√2^p; "sparse up to" counts entries, about the items.) So:
//! - the top level, p = 14: σ ≈ 0.81 % (measured ≤ 0.73 %), exact in practice up to
//!   ~3,000 items; 12,288 bytes dense (was 16,384).
//! - segment sub-aggregates and goals, p = 12: σ ≈ 1.6 % (measured ≤ 1.53 %), exact in
//!   practice up to 768 items; 3,072 bytes dense: a quarter of p = 14's bytes for twice its
//!   error, in the sketches a window has dozens of (two per sub-aggregate, one per goal and
//!   sub-aggregate). p = 11 would halve the bytes again for 2.3 %, p = 13 double them for
//!   1.15 %.
//!
//! Bytes of a sketch, in memory (`heap_bytes`) / encoded (`encode`), by distinct items:
//!
//! | items | p = 14 | p = 12 |
//! |---|---|---|
//! | 100 | sparse 512 / 252 | sparse 512 / 251 |
//! | 700 | sparse 4,096 / 1,495 | sparse 3,072 / 1,493 |
//! | 1,000 | sparse 4,096 / 2,080 | dense 3,072 / 4,097 |
//! | 10,000 | dense 12,288 / 16,385 | dense 3,072 / 4,097 |
//! | 100,000 | dense 12,288 / 16,385 | dense 3,072 / 4,097 |
//!
//! (The sparse list grows by doubling, never past the dense size. Encoded, a sparse entry
//! takes about 17–20 bits, Rice-coded (near the entropy of its index: 2.1 bytes at 700
//! entries, 2.5 at 100; by index, the form before, it took 3); a dense sketch a byte a
//! register, which compresses better than the packed 6 bits. Before both: 512 / 496 bytes at
//! 100 items, and 16,384 / 16,388 from 513 on.)

mod codec;
#[cfg(test)]
mod codec_tests;
mod dense;
mod estimate;
mod legacy;
mod relative;
mod rice;
mod sparse;
#[cfg(test)]
mod tests;

pub use codec::HllError;
pub(crate) use legacy::LegacyHll;

use dense::{dense_bytes, Registers};

/// Smallest precision.
pub const MIN_PRECISION: u8 = 4;
/// Largest precision (192 KiB dense).
pub const MAX_PRECISION: u8 = 18;
/// Precision of the top level ([`Hll::new`]): σ ≈ 0.81 %, 12 KiB dense.
pub const HLL_PRECISION: u8 = 14;
/// Precision of segment sub-aggregates and goals: σ ≈ 1.6 %, 3 KiB dense.
pub const HLL_SUB_PRECISION: u8 = 12;

/// Most entries a sparse sketch of precision `p` keeps: no more bytes than dense.
pub(super) fn max_sparse(p: u8) -> usize {
    dense_bytes(p) / 4
}

#[derive(Debug, Clone)]
enum Repr {
    /// Sorted HLL++ entries (see `sparse`), at most [`max_sparse`].
    Sparse(Vec<u32>),
    /// 2^p packed registers.
    Dense(Registers),
}

/// A HyperLogLog sketch (see the module docs).
#[derive(Debug, Clone)]
pub struct Hll {
    p: u8,
    repr: Repr,
}

impl Default for Hll {
    fn default() -> Self {
        Hll::new()
    }
}

/// The registers of a sparse list at precision `p`.
fn registers_of(list: &[u32], p: u8) -> Registers {
    let mut regs = Registers::new(p);
    for &e in list {
        let (i, rank) = sparse::project(e, p);
        regs.set_max(i, rank);
    }
    regs
}

/// Equal when of the same precision and holding the same information: the same sparse
/// entries, the same registers, or (sparse against dense) the same registers once the
/// sparse side is projected onto them.
impl PartialEq for Hll {
    fn eq(&self, other: &Self) -> bool {
        self.p == other.p
            && match (&self.repr, &other.repr) {
                (Repr::Sparse(a), Repr::Sparse(b)) => a == b,
                (Repr::Dense(a), Repr::Dense(b)) => a == b,
                (Repr::Sparse(s), Repr::Dense(d)) | (Repr::Dense(d), Repr::Sparse(s)) => {
                    registers_of(s, self.p) == *d
                }
            }
    }
}

impl Eq for Hll {}

impl Hll {
    /// An empty sketch of the top level's precision, [`HLL_PRECISION`].
    pub fn new() -> Self {
        Hll::with_precision(HLL_PRECISION)
    }

    /// An empty sketch of precision `p`.
    ///
    /// # Panics
    /// When `p` is not in [`MIN_PRECISION`]..=[`MAX_PRECISION`].
    pub fn with_precision(p: u8) -> Self {
        assert!(
            (MIN_PRECISION..=MAX_PRECISION).contains(&p),
            "HyperLogLog precision {p} is out of 4..=18"
        );
        Hll {
            p,
            repr: Repr::Sparse(Vec::new()),
        }
    }

    /// Its precision.
    pub fn precision(&self) -> u8 {
        self.p
    }

    /// Adds an item (hashed with xxh3-64).
    pub fn insert(&mut self, item: &str) {
        self.insert_hash(xxhash_rust::xxh3::xxh3_64(item.as_bytes()));
    }

    /// Adds an item by its full 64-bit xxh3 hash (what [`Hll::insert`] computes).
    pub fn insert_hash(&mut self, h: u64) {
        match &mut self.repr {
            Repr::Dense(regs) => regs.insert_hash(h),
            Repr::Sparse(list) => {
                let limit = max_sparse(self.p);
                sparse::insert(list, sparse::normalized(sparse::entry(h), self.p), limit);
                if list.len() > limit {
                    self.densify();
                }
            }
        }
    }

    fn densify(&mut self) {
        if let Repr::Sparse(list) = &self.repr {
            self.repr = Repr::Dense(registers_of(list, self.p));
        }
    }

    /// Lowers the precision to `p` (nothing when it is not lower): exactly the sketch the
    /// same items would give at `p`, dense if its entries are more than `p` keeps sparse.
    pub fn fold_to(&mut self, p: u8) {
        if p >= self.p {
            return;
        }
        let p = p.max(MIN_PRECISION);
        self.p = p;
        match &mut self.repr {
            Repr::Sparse(list) if list.len() > max_sparse(p) => self.densify(),
            Repr::Sparse(list) => list.iter_mut().for_each(|e| *e = sparse::normalized(*e, p)),
            Repr::Dense(regs) => *regs = regs.fold_to(p),
        }
    }

    /// Folds `other` into `self` (union of the counted sets, at the lower precision).
    pub fn merge(&mut self, other: &Hll) {
        let p = self.p.min(other.p);
        self.fold_to(p);
        match (&mut self.repr, &other.repr) {
            (Repr::Sparse(mine), Repr::Sparse(theirs)) => {
                if !theirs.is_empty() {
                    *mine = sparse::union(mine, theirs);
                    if mine.len() > max_sparse(p) {
                        self.densify();
                    } else if other.p != p {
                        mine.iter_mut().for_each(|e| *e = sparse::normalized(*e, p));
                    }
                }
            }
            (Repr::Dense(mine), Repr::Sparse(theirs)) => {
                for &e in theirs {
                    let (i, rank) = sparse::project(e, p);
                    mine.set_max(i, rank);
                }
            }
            (_, Repr::Dense(theirs)) => {
                self.densify();
                if let Repr::Dense(mine) = &mut self.repr {
                    if other.p > p {
                        mine.max_with(&theirs.fold_to(p));
                    } else {
                        mine.max_with(theirs);
                    }
                }
            }
        }
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Sparse(list) => list.is_empty(),
            Repr::Dense(regs) => regs.iter().all(|r| r == 0),
        }
    }

    /// True while the sketch keeps the sparse entries.
    pub fn is_sparse(&self) -> bool {
        matches!(self.repr, Repr::Sparse(_))
    }

    /// Heap bytes held (the sparse list's capacity, or the packed registers).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Sparse(list) => list.capacity() * 4,
            Repr::Dense(regs) => regs.heap_bytes(),
        }
    }

    /// Estimated number of distinct items: linear counting over the 2^25 buckets while
    /// sparse (exact in practice for small sets), Ertl's improved estimator once dense.
    pub fn estimate(&self) -> u64 {
        match &self.repr {
            Repr::Sparse(list) => estimate::linear_counting(list.len()).round() as u64,
            Repr::Dense(regs) => {
                let mut counts = vec![0u32; 66 - usize::from(self.p)];
                for r in regs.iter() {
                    counts[usize::from(r)] += 1;
                }
                estimate::ertl_estimate(&counts, self.p).round() as u64
            }
        }
    }
}
