//! The sparse form of a [`super::Hll`] (HLL++, Heule et al. 2013): a sorted list of `u32`
//! entries `(idx25 << 6) | rank`, one per 25-bit index.
//!
//! Contract:
//! - [`entry`] of a 64-bit hash: `idx25` its top 25 bits, `rank` the leading zeros of the
//!   other 39 bits + 1 (40 when they are all zero). A list holds, for each `idx25` seen, the
//!   largest rank, ordered by `idx25` (so by entry value), with no duplicate index.
//! - [`project`] maps an entry to the register index and rank at precision `p` that the
//!   full hash would have had: the bits of `idx25` below the top `p` lead the rank.
//! - [`insert`] and [`union`] keep a list valid; [`insert`] never lets the capacity grow
//!   past the limit it is given (but for the entry that takes the list past it).

/// Bits of the sparse index.
pub(super) const SPARSE_BITS: u32 = 25;
/// Bits of the hash left for the rank of a sparse entry.
const REST_BITS: u32 = 64 - SPARSE_BITS;
/// Largest rank of a sparse entry: the rank of an all-zero rest.
pub(super) const SPARSE_MAX_RANK: u32 = REST_BITS + 1;

/// The sparse entry of a 64-bit hash.
pub(super) fn entry(h: u64) -> u32 {
    let idx = (h >> REST_BITS) as u32;
    let rank = (h << SPARSE_BITS).leading_zeros().min(REST_BITS) + 1;
    (idx << 6) | rank
}

/// The 25-bit index of an entry.
pub(super) fn index(e: u32) -> u32 {
    e >> 6
}

/// The rank of an entry.
pub(super) fn rank(e: u32) -> u32 {
    e & 63
}

/// Whether `e` is an entry [`entry`] can make.
pub(super) fn is_valid(e: u32) -> bool {
    (1..=SPARSE_MAX_RANK).contains(&rank(e)) && index(e) < 1 << SPARSE_BITS
}

/// The register index and rank at precision `p` (≤ 25) of the hash behind entry `e`.
pub(super) fn project(e: u32, p: u8) -> (usize, u8) {
    let shift = SPARSE_BITS - u32::from(p);
    let idx = index(e);
    let low = idx & ((1 << shift) - 1);
    let rank = if low != 0 {
        // The dropped index bits are the first bits of the register's rest.
        low.leading_zeros() - (32 - shift) + 1
    } else {
        shift + rank(e)
    };
    ((idx >> shift) as usize, rank as u8)
}

/// The entry as a sketch of precision `p` keeps it: when the index bits below the top `p`
/// are not all zero they make the register's rank and the entry's own rank never counts,
/// so it is set to 1 (one form per index at a precision: fewer bytes to write, and lists
/// of the same items are equal).
pub(super) fn normalized(e: u32, p: u8) -> u32 {
    let shift = SPARSE_BITS - u32::from(p);
    if index(e) & ((1 << shift) - 1) != 0 {
        (index(e) << 6) | 1
    } else {
        e
    }
}

/// Whether an entry of precision `p` carries a rank that counts (its low index bits are 0).
pub(super) fn keeps_rank(idx: u32, p: u8) -> bool {
    let shift = SPARSE_BITS - u32::from(p);
    idx & ((1 << shift) - 1) == 0
}

/// Adds entry `e` to the sorted list (keeping the larger rank of an index already there).
/// Grows the capacity by doubling, but not past `limit` entries (one more only for the
/// entry that takes the list past `limit`, when the sketch turns dense).
pub(super) fn insert(list: &mut Vec<u32>, e: u32, limit: usize) {
    match list.binary_search_by_key(&index(e), |&x| index(x)) {
        Ok(i) => {
            if list[i] < e {
                list[i] = e;
            }
        }
        Err(i) => {
            if list.len() == list.capacity() {
                let want = (list.len() * 2).max(4).min(limit).max(list.len() + 1);
                list.reserve_exact(want - list.len());
            }
            list.insert(i, e);
        }
    }
}

/// The union of two valid lists: each index with the larger of its ranks.
pub(super) fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        match index(x).cmp(&index(y)) {
            std::cmp::Ordering::Less => {
                out.push(x);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(y);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(x.max(y));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out.shrink_to_fit();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `list` is valid: valid entries, indices strictly increasing.
    fn is_valid_list(list: &[u32]) -> bool {
        list.iter().all(|&e| is_valid(e)) && list.windows(2).all(|w| index(w[0]) < index(w[1]))
    }

    /// The register index and rank of a hash at precision `p`, straight from its bits.
    fn direct(h: u64, p: u8) -> (usize, u8) {
        let q = 64 - u32::from(p);
        let rank = (h << p).leading_zeros().min(q) + 1;
        ((h >> q) as usize, rank as u8)
    }

    #[test]
    fn a_projected_entry_has_the_register_of_its_hash() {
        let mut rng = fastrand::Rng::with_seed(1);
        let special = [0u64, 1, u64::MAX, 1 << 39, 1 << 38, (1 << 39) - 1, 1 << 63];
        let hashes = special
            .into_iter()
            .chain((0..20_000).map(|_| rng.u64(..) >> rng.u32(0..64)));
        for h in hashes {
            let e = entry(h);
            assert!(is_valid(e), "{h:#x}");
            for p in 4..=18 {
                assert_eq!(project(e, p), direct(h, p), "h={h:#x} p={p}");
            }
        }
        assert_eq!(rank(entry(0)), SPARSE_MAX_RANK);
        assert_eq!(rank(entry(1 << 38)), 1);
    }

    #[test]
    fn insert_and_union_keep_one_entry_per_index_with_the_largest_rank() {
        let mut rng = fastrand::Rng::with_seed(2);
        let (mut a, mut b, mut all) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..3_000 {
            // Few indices, so that ranks meet.
            let h = (rng.u64(0..64) << 58) | rng.u64(0..1 << 39) >> rng.u32(0..39);
            let e = entry(h);
            insert(if i % 3 == 0 { &mut a } else { &mut b }, e, 100);
            insert(&mut all, e, 100);
        }
        for l in [&a, &b, &all] {
            assert!(is_valid_list(l));
            assert!(l.capacity() <= 100);
        }
        assert_eq!(union(&a, &b), all);
        assert_eq!(union(&b, &a), all);
        assert!(!is_valid_list(&[entry(5), entry(5)]));
        assert!(!is_valid_list(&[0]));
    }
}
