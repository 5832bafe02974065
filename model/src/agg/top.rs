//! Bounded counts by key: exact up to [`TOP_CAP`] keys, a mergeable Misra–Gries summary
//! above.
//!
//! Contract:
//! - [`TopCounts`] is a commutative monoid under [`TopCounts::merge`] with
//!   [`TopCounts::new`] as the identity; while exact, merging the counts of any split of a
//!   stream gives the counts of the whole stream.
//! - It never holds more than its capacity of keys ([`TOP_CAP`], or the smaller one given to
//!   [`TopCounts::with_cap`]: the sub-aggregates of segments keep [`SEGMENT_TOP_CAP`]).
//!   Above that it is a mergeable Misra–Gries summary (Agarwal et al., "Mergeable
//!   Summaries"): every reported count `c` of a key with true count `t` satisfies
//!   `t - error_bound() <= c <= t`, and `error_bound() <= total() / (cap + 1)`, so every
//!   key with `t > total() / (cap + 1)` is reported. [`TopCounts::total`] is always exact.
//!   A merge keeps the larger capacity of the two; equality ignores the capacity.
//! - [`TopCounts::top`] orders by count descending, then key ascending.
//! - Deserialising validates: more than [`TOP_CAP`] keys, zero or duplicate counters, or
//!   counters above the total are an error, never a panic.

use std::hash::Hasher;

use hashbrown::HashTable;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum number of keys a [`TopCounts`] tracks (by default).
pub const TOP_CAP: usize = 1000;

/// Keys a top list of a segment's sub-aggregate tracks: twice what a panel of a filtered
/// view shows (10), so that what leads a range of windows is in each window's list, and
/// far smaller than [`TOP_CAP`], since a window keeps up to (dimensions × (N + 1))
/// sub-aggregates (see [`crate::agg::segment`]). Above it a list is a Misra–Gries summary
/// (counts are lower bounds within `events / 21` of the truth).
pub const SEGMENT_TOP_CAP: usize = 20;

/// A fast hasher for the short keys of [`TopCounts`] (SipHash showed in profiles): 8 bytes
/// at a time, multiply-rotate, and a final avalanche. Maps are capped at [`TOP_CAP`] keys
/// and probed with SIMD groups, so even crafted collisions cost little.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h ^ u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59))
                .wrapping_mul(K)
                .rotate_left(29);
        }
        self.0 = h;
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0 ^ u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        // murmur3's fmix64: every input bit affects every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The hash a [`TopCounts`] files `key` under ([`KeyHasher`] over its bytes): worked out
/// once per event field, it serves every list the field is counted in
/// ([`TopCounts::add_hashed`]).
pub fn key_hash(key: &str) -> u64 {
    let mut h = KeyHasher::default();
    h.write(key.as_bytes());
    h.finish()
}

/// One tracked key: where its bytes are in the arena, its hash and its count.
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    off: u32,
    len: u32,
    count: u64,
}

/// Counts by key with bounded memory: exact while at most its capacity ([`TOP_CAP`] by
/// default) of distinct keys were seen, a mergeable Misra–Gries summary of that capacity
/// afterwards (see the module docs for the guarantees).
///
/// The keys live end to end in one string (an arena) and the table holds their places:
/// adding a key already known allocates nothing, and a copy is two allocations whatever
/// the number of keys.
///
/// Equality compares counters, `total` and `error_bound` (not the capacity).
#[derive(Debug, Clone)]
pub struct TopCounts {
    arena: String,
    slots: HashTable<Slot>,
    /// Bytes of the arena whose keys were dropped (reclaimed once they are half of it).
    dead: usize,
    total: u64,
    /// Sum of all Misra–Gries decrements applied (max undercount of any key).
    error: u64,
    /// Most keys tracked.
    cap: usize,
}

impl Default for TopCounts {
    fn default() -> Self {
        TopCounts::with_cap(TOP_CAP)
    }
}

impl PartialEq for TopCounts {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total
            && self.error == other.error
            && self.len() == other.len()
            && self.entries().all(|(k, c)| other.get(k) == c)
    }
}

impl Eq for TopCounts {}

impl TopCounts {
    /// An empty counter of capacity [`TOP_CAP`].
    pub fn new() -> Self {
        TopCounts::default()
    }

    /// An empty counter that tracks at most `cap` keys (at least 1).
    pub fn with_cap(cap: usize) -> Self {
        TopCounts {
            arena: String::new(),
            slots: HashTable::new(),
            dead: 0,
            total: 0,
            error: 0,
            cap: cap.max(1),
        }
    }

    fn key_of<'a>(arena: &'a str, slot: &Slot) -> &'a str {
        let start = slot.off as usize;
        arena
            .get(start..start + slot.len as usize)
            .unwrap_or_default()
    }

    /// The tracked `(key, count)` pairs, in no order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.slots
            .iter()
            .map(|s| (Self::key_of(&self.arena, s), s.count))
    }

    /// Most keys tracked.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Sets the capacity to `cap` (at least 1), reducing the counters when they hold more.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        if self.len() > self.cap {
            self.reduce();
        }
    }

    /// Sets the capacity to `cap`, or to the keys held when they are more (a list stored by
    /// a release whose cap was larger keeps what it holds, exactly).
    pub fn set_cap_keeping(&mut self, cap: usize) {
        self.cap = cap.max(self.len()).max(1);
    }

    /// Adds `n` occurrences of `key`.
    pub fn add(&mut self, key: &str, n: u64) {
        self.add_hashed(key, key_hash(key), n);
    }

    /// [`TopCounts::add`] with the key's [`key_hash`] already worked out.
    pub fn add_hashed(&mut self, key: &str, hash: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.total = self.total.saturating_add(n);
        let arena = &self.arena;
        if let Some(s) = self.slots.find_mut(hash, |s| Self::key_of(arena, s) == key) {
            s.count = s.count.saturating_add(n);
            return;
        }
        self.insert_new(key, hash, n);
        if self.len() > self.cap {
            self.reduce();
        }
    }

    /// Files a key that is not tracked yet.
    fn insert_new(&mut self, key: &str, hash: u64, count: u64) {
        // Keys are at most a few KiB (events cap their fields); an arena past 4 GiB cannot
        // happen under the capacity, and would only make the key unreadable, not unsafe.
        let slot = Slot {
            hash,
            off: u32::try_from(self.arena.len()).unwrap_or(u32::MAX),
            len: u32::try_from(key.len()).unwrap_or(0),
            count,
        };
        self.arena.push_str(key);
        self.slots.insert_unique(hash, slot, |s| s.hash);
    }

    /// Folds `other` into `self`: counters are added, then reduced back to the larger
    /// capacity of the two if needed. Commutative.
    pub fn merge(&mut self, other: &TopCounts) {
        self.cap = self.cap.max(other.cap);
        self.total = self.total.saturating_add(other.total);
        self.error = self.error.saturating_add(other.error);
        for theirs in other.slots.iter() {
            let key = Self::key_of(&other.arena, theirs);
            let arena = &self.arena;
            match self
                .slots
                .find_mut(theirs.hash, |s| Self::key_of(arena, s) == key)
            {
                Some(mine) => mine.count = mine.count.saturating_add(theirs.count),
                None => self.insert_new(key, theirs.hash, theirs.count),
            }
        }
        if self.len() > self.cap {
            self.reduce();
        }
    }

    /// Misra–Gries reduction to its capacity.
    fn reduce(&mut self) {
        self.reduce_to(self.cap);
    }

    /// Cuts the summary to at most `k` keys (Misra–Gries reduction with capacity `k`):
    /// the `(k+1)`-th largest counter is subtracted from every counter, the ones no longer
    /// positive go, and the error bound grows by that amount. [`TopCounts::total`] stays
    /// exact and every reported count stays a lower bound within [`TopCounts::error_bound`]
    /// of the truth. Used for roll-ups, whose top lists are kept shorter than a window's.
    pub fn reduce_to(&mut self, k: usize) {
        if self.len() <= k {
            return;
        }
        let delta = if k == 0 {
            self.slots.iter().map(|s| s.count).max().unwrap_or(0)
        } else {
            let mut values: Vec<u64> = self.slots.iter().map(|s| s.count).collect();
            // Index `k` in descending order = the (k+1)-th largest.
            let (_, &mut delta, _) = values.select_nth_unstable_by(k, |a, b| b.cmp(a));
            delta
        };
        let mut dropped = 0usize;
        self.slots.retain(|s| {
            if s.count > delta {
                s.count -= delta;
                true
            } else {
                dropped += s.len as usize;
                false
            }
        });
        self.error = self.error.saturating_add(delta);
        self.dead += dropped;
        if self.dead * 2 > self.arena.len() {
            self.compact();
        }
    }

    /// Rewrites the arena with the live keys only.
    fn compact(&mut self) {
        let mut arena = String::with_capacity(self.arena.len() - self.dead);
        for s in self.slots.iter_mut() {
            let key = Self::key_of(&self.arena, s);
            s.off = u32::try_from(arena.len()).unwrap_or(u32::MAX);
            arena.push_str(key);
        }
        self.arena = arena;
        self.dead = 0;
    }

    /// The `n` largest counters, count descending then key ascending.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(&str, u64)> = self.entries().collect();
        let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if n < all.len() {
            all.select_nth_unstable_by(n, order);
            all.truncate(n);
        }
        all.sort_unstable_by(order);
        all.into_iter().map(|(k, c)| (k.to_owned(), c)).collect()
    }

    /// The (possibly under-)count of `key`; 0 when not tracked.
    pub fn get(&self, key: &str) -> u64 {
        self.get_hashed(key, key_hash(key))
    }

    /// [`TopCounts::get`] with the key's [`key_hash`] already worked out.
    pub fn get_hashed(&self, key: &str, hash: u64) -> u64 {
        self.slots
            .find(hash, |s| Self::key_of(&self.arena, s) == key)
            .map_or(0, |s| s.count)
    }

    /// Number of tracked keys (at most the capacity).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Exact sum of every count ever added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Maximum amount by which any reported count may be below the truth
    /// (0 while exact).
    pub fn error_bound(&self) -> u64 {
        self.error
    }

    /// True while every count is exact (no Misra–Gries reduction happened).
    pub fn is_exact(&self) -> bool {
        self.error == 0
    }

    /// All tracked `(key, count)` pairs in key order.
    pub fn sorted_entries(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.entries().collect();
        v.sort_unstable();
        v
    }

    /// The tracked `(key, count)` pairs, count descending then key ascending (all of them:
    /// [`TopCounts::top`] without the copies).
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.entries().collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// A counter of capacity `cap` made of stored parts, checked as a stored one must be:
    /// at most `cap` keys, none twice, no zero counter, counters adding up to at most
    /// `total`.
    pub(crate) fn from_parts<'k>(
        cap: usize,
        entries: impl IntoIterator<Item = (&'k str, u64)>,
        total: u64,
        error: u64,
    ) -> Result<TopCounts, &'static str> {
        let mut t = TopCounts::with_cap(cap);
        let mut sum = 0u64;
        for (k, c) in entries {
            if t.len() >= t.cap {
                return Err("top counts exceed capacity");
            }
            if c == 0 {
                return Err("zero counter in top counts");
            }
            let hash = key_hash(k);
            if t.get_hashed(k, hash) != 0 {
                return Err("duplicate key in top counts");
            }
            sum = sum.saturating_add(c);
            t.insert_new(k, hash, c);
        }
        if sum > total {
            return Err("top counts exceed their total");
        }
        t.total = total;
        t.error = error;
        Ok(t)
    }

    /// Heap bytes held (the arena and the table).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.slots.capacity() * (std::mem::size_of::<Slot>() + 1)
    }
}

#[derive(Serialize)]
struct TopWireRef<'a> {
    entries: Vec<(&'a str, u64)>,
    total: u64,
    error: u64,
}

#[derive(Deserialize)]
struct TopWire {
    entries: Vec<(String, u64)>,
    total: u64,
    error: u64,
}

impl Serialize for TopCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TopWireRef {
            entries: self.sorted_entries(),
            total: self.total,
            error: self.error,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TopCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = TopWire::deserialize(d)?;
        TopCounts::from_parts(
            TOP_CAP,
            w.entries.iter().map(|(k, c)| (k.as_str(), *c)),
            w.total,
            w.error,
        )
        .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn top_counts_memory_stays_bounded_with_unbounded_keys() {
        let mut t = TopCounts::new();
        for i in 0..50_000u32 {
            t.add(&format!("k{i}"), 1);
            t.add("hot", 1);
            assert!(t.len() <= TOP_CAP);
        }
        assert_eq!(t.total(), 100_000);
        assert!(!t.is_exact());
        assert!(t.get("hot") + t.error_bound() >= 50_000);
        assert_eq!(t.top(1)[0].0, "hot");
    }

    #[test]
    fn top_counts_exact_up_to_cap_and_approximate_after() {
        let mut t = TopCounts::new();
        for i in 0..TOP_CAP {
            t.add(&format!("k{i}"), 2);
        }
        assert!(t.is_exact());
        assert_eq!(t.len(), TOP_CAP);
        assert_eq!(t.get("k7"), 2);
        t.add("one-more", 1);
        assert!(!t.is_exact());
        assert_eq!(t.error_bound(), 1);
        assert_eq!(t.get("k7"), 1);
        assert_eq!(t.get("one-more"), 0);
        assert_eq!(t.total(), 2 * TOP_CAP as u64 + 1);
    }

    #[test]
    fn a_smaller_capacity_bounds_the_keys_and_a_merge_keeps_the_larger() {
        let mut small = TopCounts::with_cap(3);
        for (k, n) in [("a", 5), ("b", 4), ("c", 3)] {
            small.add(k, n);
        }
        assert!(small.is_exact());
        small.add("d", 1);
        assert_eq!(small.len(), 3);
        assert!(!small.is_exact());
        let a = small.get("a");
        assert!(a <= 5 && a + small.error_bound() >= 5, "{a}");
        let mut big = TopCounts::new();
        big.add("x", 1);
        let mut merged = big.clone();
        merged.merge(&small);
        assert_eq!(merged.cap(), TOP_CAP);
        let mut other_way = small.clone();
        other_way.merge(&big);
        assert_eq!(other_way, merged, "commutative whatever the capacities");
        let mut shrunk = merged.clone();
        shrunk.set_cap(2);
        assert!(shrunk.len() <= 2);
        assert_eq!(shrunk.total(), merged.total());
    }

    #[test]
    fn reduce_to_keeps_the_total_and_heavy_hitters_within_the_bound() {
        let mut t = TopCounts::new();
        let mut truth = HashMap::new();
        for i in 0..500u64 {
            let n = if i < 5 { 1_000 + i } else { 1 + i % 7 };
            t.add(&format!("k{i}"), n);
            truth.insert(format!("k{i}"), n);
        }
        let total = t.total();
        t.reduce_to(20);
        assert!(t.len() <= 20);
        assert_eq!(t.total(), total);
        assert!(!t.is_exact());
        for (k, n) in &truth {
            let c = t.get(k);
            assert!(c <= *n && c + t.error_bound() >= *n, "{k}: {c} vs {n}");
        }
        let top: Vec<String> = t.top(5).into_iter().map(|(k, _)| k).collect();
        assert_eq!(top, vec!["k4", "k3", "k2", "k1", "k0"]);
        let mut small = TopCounts::new();
        small.add("a", 2);
        small.reduce_to(5);
        assert!(
            small.is_exact() && small.get("a") == 2,
            "under the cap: untouched"
        );
    }

    #[test]
    fn top_orders_by_count_then_key() {
        let mut t = TopCounts::new();
        for (k, n) in [("b", 3), ("a", 3), ("c", 5), ("d", 1), ("e", 3)] {
            t.add(k, n);
        }
        t.add("zero", 0);
        assert_eq!(t.get("zero"), 0);
        let top: Vec<(String, u64)> = t.top(4);
        let keys: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["c", "a", "b", "e"]);
        assert_eq!(t.top(100).len(), 5);
        assert!(t.top(0).is_empty());
    }
}
