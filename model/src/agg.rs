//! Mergeable per-window aggregates: HyperLogLog distinct counts, bounded top-k
//! counters and the [`Aggregate`] that combines them.
//!
//! Contract:
//! - Every type here is a commutative monoid under `merge` with `new()` as the
//!   identity: merging partial aggregates of any split of an event stream gives
//!   the same [`Hll`] registers, event totals and (while exact) the same
//!   [`TopCounts`] as aggregating the whole stream in one pass.
//! - [`Hll`] counts exactly (up to 32-bit hash collisions) up to 512 distinct items,
//!   then switches to 16,384 registers (standard error ≈ 0.81 %).
//! - Memory is bounded whatever the input: an [`Hll`] never exceeds 16 KiB of
//!   registers and a [`TopCounts`] never holds more than [`TOP_CAP`] keys.
//! - Above [`TOP_CAP`] distinct keys [`TopCounts`] is a mergeable Misra–Gries
//!   summary (Agarwal et al., "Mergeable Summaries"): every reported count `c`
//!   of a key with true count `t` satisfies `t - error_bound() <= c <= t`, and
//!   `error_bound() <= total() / (TOP_CAP + 1)`, so every key with
//!   `t > total() / (TOP_CAP + 1)` is reported.
//! - [`Aggregate::to_bytes`] / [`Aggregate::from_bytes`] are the storage format
//!   (a version byte followed by postcard); corrupt input yields [`AggError`],
//!   never a panic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::Event;

// ---------------------------------------------------------------------------
// HyperLogLog

/// Register index bits: 16,384 registers, standard error ≈ 0.81 % when dense.
pub const HLL_PRECISION: u32 = 14;
/// Number of dense registers.
pub const HLL_REGISTERS: usize = 1 << HLL_PRECISION;
/// Hash bits used: the top 32 bits of xxh3-64. Plenty for a window's distinct counts
/// (registers saturate near 16,384 · 2^18 ≈ 4·10^9 distinct values).
const HLL_HASH_BITS: u32 = 32;
/// Largest register value: the rank of an all-zero remainder.
const HLL_MAX_RANK: u8 = (HLL_HASH_BITS - HLL_PRECISION + 1) as u8;
/// Distinct hashes kept exactly before switching to dense registers.
const HLL_SPARSE_MAX: usize = HLL_REGISTERS / 8 / 4;

/// Sparse: the sorted distinct 32-bit hashes themselves, so small counts are exact
/// (two different inputs collide with probability n²/2³³: ≈ 3·10⁻⁵ at the 512 limit),
/// where registers would already merge colliding inputs (≈ 4 % at n = 38). Dense: the
/// registers, derived from the same hashes, so both paths agree register for register.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum HllRepr {
    Sparse(Vec<u32>),
    Dense(Vec<u8>),
}

/// A HyperLogLog sketch (p = 14) with an exact sparse mode for small cardinalities.
#[derive(Debug, Clone)]
pub struct Hll {
    repr: HllRepr,
}

impl Default for Hll {
    fn default() -> Self {
        Hll::new()
    }
}

/// Equal when they hold the same information: identical sparse hash sets, identical
/// registers, or (sparse against dense) the same registers once the sparse side is
/// projected onto them.
impl PartialEq for Hll {
    fn eq(&self, other: &Self) -> bool {
        match (&self.repr, &other.repr) {
            (HllRepr::Dense(a), HllRepr::Dense(b)) => a == b,
            (HllRepr::Sparse(a), HllRepr::Sparse(b)) => a == b,
            _ => self.nonzero().eq(other.nonzero()),
        }
    }
}

impl Eq for Hll {}

/// Register index and rank of a 32-bit hash.
fn register_of(h: u32) -> (usize, u8) {
    let idx = (h >> (HLL_HASH_BITS - HLL_PRECISION)) as usize;
    let rest = h << HLL_PRECISION;
    let rank = (rest.leading_zeros().min(HLL_HASH_BITS - HLL_PRECISION) + 1) as u8;
    (idx, rank)
}

impl Hll {
    /// An empty sketch.
    pub fn new() -> Self {
        Hll {
            repr: HllRepr::Sparse(Vec::new()),
        }
    }

    /// Adds an item (hashed with xxh3).
    pub fn insert(&mut self, item: &str) {
        self.insert_hash(xxhash_rust::xxh3::xxh3_64(item.as_bytes()));
    }

    /// Adds an item by its 64-bit hash (its top 32 bits are used).
    pub fn insert_hash(&mut self, h: u64) {
        let h = (h >> 32) as u32;
        match &mut self.repr {
            HllRepr::Dense(regs) => set_max(regs, h),
            HllRepr::Sparse(hashes) => {
                if let Err(i) = hashes.binary_search(&h) {
                    hashes.insert(i, h);
                    if hashes.len() > HLL_SPARSE_MAX {
                        self.densify();
                    }
                }
            }
        }
    }

    fn densify(&mut self) {
        if let HllRepr::Sparse(hashes) = &self.repr {
            let mut regs = vec![0u8; HLL_REGISTERS];
            for &h in hashes {
                set_max(&mut regs, h);
            }
            self.repr = HllRepr::Dense(regs);
        }
    }

    /// Non-zero registers in index order (for a sparse sketch: its projection).
    fn nonzero(&self) -> Box<dyn Iterator<Item = (usize, u8)> + '_> {
        match &self.repr {
            // Sorted hashes give ascending register indices: fold runs of equal index.
            HllRepr::Sparse(hashes) => {
                let mut it = hashes.iter().map(|&h| register_of(h)).peekable();
                Box::new(std::iter::from_fn(move || {
                    let (idx, mut rank) = it.next()?;
                    while let Some(&(i, r)) = it.peek() {
                        if i != idx {
                            break;
                        }
                        rank = rank.max(r);
                        it.next();
                    }
                    Some((idx, rank))
                }))
            }
            HllRepr::Dense(regs) => Box::new(
                regs.iter()
                    .enumerate()
                    .filter(|(_, &r)| r != 0)
                    .map(|(i, &r)| (i, r)),
            ),
        }
    }

    /// Folds `other` into `self` (union of the counted sets).
    pub fn merge(&mut self, other: &Hll) {
        match (&mut self.repr, &other.repr) {
            (HllRepr::Sparse(mine), HllRepr::Sparse(theirs)) => {
                let merged = merge_sorted(mine, theirs);
                let too_big = merged.len() > HLL_SPARSE_MAX;
                self.repr = HllRepr::Sparse(merged);
                if too_big {
                    self.densify();
                }
            }
            (HllRepr::Dense(mine), HllRepr::Sparse(theirs)) => {
                for &h in theirs {
                    set_max(mine, h);
                }
            }
            (_, HllRepr::Dense(theirs)) => {
                self.densify();
                if let HllRepr::Dense(mine) = &mut self.repr {
                    for (m, &t) in mine.iter_mut().zip(theirs) {
                        if *m < t {
                            *m = t;
                        }
                    }
                }
            }
        }
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.nonzero().next().is_none()
    }

    /// True while the sketch keeps the exact hashes.
    pub fn is_sparse(&self) -> bool {
        matches!(self.repr, HllRepr::Sparse(_))
    }

    /// Estimated number of distinct items: exact (up to hash collisions) while sparse,
    /// Ertl's improved estimator over the registers once dense.
    pub fn estimate(&self) -> u64 {
        if let HllRepr::Sparse(hashes) = &self.repr {
            return hashes.len() as u64;
        }
        let mut counts = [0u32; HLL_MAX_RANK as usize + 1];
        let mut nonzero = 0u32;
        for (_, r) in self.nonzero() {
            counts[usize::from(r.min(HLL_MAX_RANK))] += 1;
            nonzero += 1;
        }
        counts[0] = HLL_REGISTERS as u32 - nonzero;
        ertl_estimate(&counts).round() as u64
    }

    fn validate(repr: HllRepr) -> Result<Hll, String> {
        match &repr {
            HllRepr::Dense(regs) => {
                if regs.len() != HLL_REGISTERS {
                    return Err(format!("HLL has {} registers", regs.len()));
                }
                if regs.iter().any(|&r| r > HLL_MAX_RANK) {
                    return Err("HLL register out of range".into());
                }
            }
            HllRepr::Sparse(hashes) => {
                if hashes.len() > HLL_SPARSE_MAX {
                    return Err("sparse HLL too large".into());
                }
                if hashes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("sparse HLL hashes not sorted".into());
                }
            }
        }
        Ok(Hll { repr })
    }
}

fn set_max(regs: &mut [u8], h: u32) {
    let (idx, rank) = register_of(h);
    if let Some(r) = regs.get_mut(idx) {
        if *r < rank {
            *r = rank;
        }
    }
}

/// Union of two sorted, distinct lists.
fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x <= y {
            out.push(x);
            i += 1;
            if x == y {
                j += 1;
            }
        } else {
            out.push(y);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_old = z;
        z += x * y;
        y += y;
        if z_old == z {
            return z;
        }
    }
}

/// Ertl's τ function (2017, Algorithm 6).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_old = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z_old == z {
            return z / 3.0;
        }
    }
}

/// Improved raw estimator from Ertl, "New cardinality estimation algorithms
/// for HyperLogLog sketches" (2017), given the register-value histogram.
fn ertl_estimate(counts: &[u32]) -> f64 {
    let m = HLL_REGISTERS as f64;
    let q = (HLL_HASH_BITS - HLL_PRECISION) as usize;
    let mut z = m * tau(1.0 - f64::from(counts[q + 1]) / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + f64::from(counts[k]));
    }
    z += m * sigma(f64::from(counts[0]) / m);
    let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
    if z.is_infinite() {
        return 0.0;
    }
    alpha_inf * m * m / z
}

impl Serialize for Hll {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.repr.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hll {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Hll::validate(HllRepr::deserialize(d)?).map_err(D::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// TopCounts

/// Maximum number of keys a [`TopCounts`] tracks.
pub const TOP_CAP: usize = 1000;

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

type KeyMap = HashMap<String, u64, BuildHasherDefault<KeyHasher>>;

/// Counts by key with bounded memory: exact while at most [`TOP_CAP`]
/// distinct keys were seen, a mergeable Misra–Gries summary of capacity
/// [`TOP_CAP`] afterwards (see the module docs for the guarantees).
///
/// Equality compares counters, `total` and `error_bound`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopCounts {
    counts: KeyMap,
    total: u64,
    /// Sum of all Misra–Gries decrements applied (max undercount of any key).
    error: u64,
}

impl TopCounts {
    /// An empty counter.
    pub fn new() -> Self {
        TopCounts::default()
    }

    /// Adds `n` occurrences of `key`.
    pub fn add(&mut self, key: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.total = self.total.saturating_add(n);
        if let Some(c) = self.counts.get_mut(key) {
            *c = c.saturating_add(n);
            return;
        }
        self.counts.insert(key.to_owned(), n);
        if self.counts.len() > TOP_CAP {
            self.reduce();
        }
    }

    /// Folds `other` into `self`: counters are added, then reduced back to
    /// [`TOP_CAP`] keys if needed. Commutative.
    pub fn merge(&mut self, other: &TopCounts) {
        self.total = self.total.saturating_add(other.total);
        self.error = self.error.saturating_add(other.error);
        for (k, &n) in &other.counts {
            match self.counts.get_mut(k.as_str()) {
                Some(c) => *c = c.saturating_add(n),
                None => {
                    self.counts.insert(k.clone(), n);
                }
            }
        }
        if self.counts.len() > TOP_CAP {
            self.reduce();
        }
    }

    /// Misra–Gries reduction: subtract the (TOP_CAP+1)-th largest counter from
    /// every counter and drop the ones that are no longer positive.
    fn reduce(&mut self) {
        let mut values: Vec<u64> = self.counts.values().copied().collect();
        // Index TOP_CAP in descending order = the (k+1)-th largest.
        let (_, &mut delta, _) = values.select_nth_unstable_by(TOP_CAP, |a, b| b.cmp(a));
        self.counts.retain(|_, c| {
            if *c > delta {
                *c -= delta;
                true
            } else {
                false
            }
        });
        self.error = self.error.saturating_add(delta);
    }

    /// The `n` largest counters, count descending then key ascending.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(&String, u64)> = self.counts.iter().map(|(k, &c)| (k, c)).collect();
        let order =
            |a: &(&String, u64), b: &(&String, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if n < all.len() {
            all.select_nth_unstable_by(n, order);
            all.truncate(n);
        }
        all.sort_unstable_by(order);
        all.into_iter().map(|(k, c)| (k.clone(), c)).collect()
    }

    /// The (possibly under-)count of `key`; 0 when not tracked.
    pub fn get(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// Number of tracked keys (at most [`TOP_CAP`]).
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
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
        let mut v: Vec<(&str, u64)> = self.counts.iter().map(|(k, &c)| (k.as_str(), c)).collect();
        v.sort_unstable();
        v
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
        if w.entries.len() > TOP_CAP {
            return Err(D::Error::custom("top counts exceed capacity"));
        }
        let mut counts = KeyMap::with_capacity_and_hasher(w.entries.len(), Default::default());
        let mut sum = 0u64;
        for (k, c) in w.entries {
            if c == 0 {
                return Err(D::Error::custom("zero counter in top counts"));
            }
            sum = sum.saturating_add(c);
            if counts.insert(k, c).is_some() {
                return Err(D::Error::custom("duplicate key in top counts"));
            }
        }
        if sum > w.total {
            return Err(D::Error::custom("top counts exceed their total"));
        }
        Ok(TopCounts {
            counts,
            total: w.total,
            error: w.error,
        })
    }
}

// ---------------------------------------------------------------------------
// Aggregate

/// Errors loading a stored [`Aggregate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    /// The bytes do not decode.
    #[error("stored aggregate is corrupt or from an incompatible version: {0}")]
    Corrupt(String),
    /// The format version byte is unknown.
    #[error(
        "stored aggregate is corrupt or from an incompatible version: format version {found}, expected {expected}"
    )]
    Version {
        /// Version byte found.
        found: u8,
        /// Version this build writes.
        expected: u8,
    },
}

/// Storage format version written by [`Aggregate::to_bytes`].
pub const AGG_FORMAT_VERSION: u8 = 2;

/// Everything the dashboard shows for one window (or a merge of windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Aggregate {
    /// Number of events.
    pub events: u64,
    /// Events by type.
    pub by_type: TopCounts,
    /// Distinct visitors.
    pub visitors: Hll,
    /// Distinct sessions.
    pub sessions: Hll,
    /// Page views (type `pageview`) by URL.
    pub urls: TopCounts,
    /// Events by referrer (all types).
    pub referrers: TopCounts,
    /// Events by country (all types).
    pub countries: TopCounts,
    /// Events by device (all types).
    pub devices: TopCounts,
}

impl Aggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        Aggregate::default()
    }

    /// Accounts one event.
    pub fn add(&mut self, ev: &Event) {
        self.events += 1;
        self.by_type.add(&ev.kind, 1);
        self.visitors.insert(&ev.visitor);
        if let Some(s) = &ev.session {
            self.sessions.insert(s);
        }
        if ev.kind == "pageview" {
            self.urls.add(&ev.url, 1);
        }
        if let Some(r) = &ev.referrer {
            self.referrers.add(r, 1);
        }
        if let Some(c) = &ev.country {
            self.countries.add(c, 1);
        }
        if let Some(d) = &ev.device {
            self.devices.add(d, 1);
        }
    }

    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: &Aggregate) {
        self.events = self.events.saturating_add(other.events);
        self.by_type.merge(&other.by_type);
        self.visitors.merge(&other.visitors);
        self.sessions.merge(&other.sessions);
        self.urls.merge(&other.urls);
        self.referrers.merge(&other.referrers);
        self.countries.merge(&other.countries);
        self.devices.merge(&other.devices);
    }

    /// True when every top counter is exact.
    pub fn is_exact(&self) -> bool {
        [
            &self.by_type,
            &self.urls,
            &self.referrers,
            &self.countries,
            &self.devices,
        ]
        .iter()
        .all(|t| t.is_exact())
    }

    /// Storage encoding: [`AGG_FORMAT_VERSION`] followed by postcard.
    pub fn to_bytes(&self) -> Vec<u8> {
        let out = vec![AGG_FORMAT_VERSION];
        // Serialising into a Vec only fails on allocation failure.
        postcard::to_extend(self, out).expect("postcard serialisation into a Vec cannot fail")
    }

    /// Decodes [`Aggregate::to_bytes`] output.
    pub fn from_bytes(b: &[u8]) -> Result<Self, AggError> {
        let (&version, rest) = b
            .split_first()
            .ok_or_else(|| AggError::Corrupt("empty input".into()))?;
        if version != AGG_FORMAT_VERSION {
            return Err(AggError::Version {
                found: version,
                expected: AGG_FORMAT_VERSION,
            });
        }
        let (agg, tail) = postcard::take_from_bytes::<Aggregate>(rest)
            .map_err(|e| AggError::Corrupt(e.to_string()))?;
        if !tail.is_empty() {
            return Err(AggError::Corrupt(format!("{} trailing bytes", tail.len())));
        }
        Ok(agg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(
        kind: &str,
        visitor: &str,
        session: Option<&str>,
        url: &str,
        referrer: Option<&str>,
    ) -> Event {
        Event {
            ts: 1_795_515_330_123,
            kind: kind.into(),
            visitor: visitor.into(),
            session: session.map(Into::into),
            url: url.into(),
            referrer: referrer.map(Into::into),
            country: Some(if visitor.len() % 2 == 0 { "DE" } else { "US" }.into()),
            device: None,
        }
    }

    fn aggregate(events: &[Event]) -> Aggregate {
        let mut a = Aggregate::new();
        for e in events {
            a.add(e);
        }
        a
    }

    /// Splits `events` at `cuts`, aggregates each part, then merges the parts
    /// in an order and grouping chosen by `seed`.
    fn split_merge(events: &[Event], cuts: &[usize], seed: u64) -> Aggregate {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([events.len()]) {
            parts.push(aggregate(&events[prev..c]));
            prev = c;
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        while parts.len() > 1 {
            let i = rng.usize(0..parts.len());
            let b = parts.swap_remove(i);
            let j = rng.usize(0..parts.len());
            if rng.bool() {
                parts[j].merge(&b);
            } else {
                let mut b = b;
                b.merge(&parts[j]);
                parts[j] = b;
            }
        }
        parts.pop().unwrap_or_default()
    }

    fn small_event() -> impl Strategy<Value = Event> {
        (
            prop::sample::select(vec!["pageview", "pageview", "click", "signup"]),
            0u8..30,
            prop::option::of(0u8..10),
            0u8..12,
            prop::option::of(prop::sample::select(vec![
                "https://g/",
                "https://hn/",
                "https://gh/",
            ])),
        )
            .prop_map(|(k, v, s, u, r)| {
                ev(
                    k,
                    &format!("v{v}"),
                    s.map(|s| format!("s{s}")).as_deref(),
                    &format!("/p{u}"),
                    r,
                )
            })
    }

    proptest! {
        #[test]
        fn merge_of_any_split_equals_one_pass_in_exact_mode(
            events in prop::collection::vec(small_event(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 1..4),
            seed in any::<u64>(),
        ) {
            let one = aggregate(&events);
            let merged = split_merge(&events, &cuts, seed);
            prop_assert!(one.is_exact());
            prop_assert_eq!(&merged, &one);
            prop_assert_eq!(merged.urls.top(5), one.urls.top(5));
            prop_assert_eq!(Aggregate::from_bytes(&merged.to_bytes()), Ok(one));
        }

        #[test]
        fn merge_is_commutative(
            a in prop::collection::vec(small_event(), 0..80),
            b in prop::collection::vec(small_event(), 0..80),
        ) {
            let (x, y) = (aggregate(&a), aggregate(&b));
            let mut xy = x.clone();
            xy.merge(&y);
            let mut yx = y.clone();
            yx.merge(&x);
            prop_assert_eq!(xy, yx);
            let mut id = x.clone();
            id.merge(&Aggregate::new());
            prop_assert_eq!(id, x);
        }
    }

    /// Events over many distinct URLs (above TOP_CAP) with a few heavy hitters.
    fn wide_events(seed: u64, n: usize) -> Vec<Event> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| {
                let url = if rng.u8(0..4) == 0 {
                    format!("/hot{}", rng.u8(0..5))
                } else {
                    format!("/cold{}", rng.u32(0..3_000))
                };
                let kind = if rng.u8(0..10) == 0 {
                    "click"
                } else {
                    "pageview"
                };
                ev(
                    kind,
                    &format!("v{}", rng.u32(0..5_000)),
                    Some(&format!("s{}", rng.u32(0..2_000))),
                    &url,
                    None,
                )
            })
            .collect()
    }

    fn truth(events: &[Event]) -> HashMap<String, u64> {
        let mut m = HashMap::new();
        for e in events.iter().filter(|e| e.kind == "pageview") {
            *m.entry(e.url.clone()).or_insert(0) += 1;
        }
        m
    }

    fn assert_within_bound(t: &TopCounts, truth: &HashMap<String, u64>) {
        let total: u64 = truth.values().sum();
        assert_eq!(t.total(), total);
        assert!(t.len() <= TOP_CAP);
        assert!(
            t.error_bound() <= total / (TOP_CAP as u64 + 1),
            "{} > {}",
            t.error_bound(),
            total
        );
        for (k, &n) in truth {
            let c = t.get(k);
            assert!(c <= n, "{k}: {c} > {n}");
            assert!(
                c + t.error_bound() >= n,
                "{k}: {c} + {} < {n}",
                t.error_bound()
            );
            if n * TOP_CAP as u64 > total {
                assert!(c > 0, "heavy hitter {k} ({n} of {total}) missing");
            }
        }
        for (k, c) in t.top(TOP_CAP) {
            assert!(truth.contains_key(&k) && c > 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn merge_above_cap_keeps_exact_totals_and_bounded_counts(
            seed in any::<u64>(),
            cuts in prop::collection::vec(any::<usize>(), 1..4),
            merge_seed in any::<u64>(),
        ) {
            let events = wide_events(seed, 6_000);
            let one = aggregate(&events);
            let merged = split_merge(&events, &cuts, merge_seed);
            prop_assert!(!one.urls.is_exact());
            prop_assert_eq!(merged.events, one.events);
            prop_assert_eq!(&merged.by_type, &one.by_type);
            prop_assert_eq!(&merged.visitors, &one.visitors);
            prop_assert_eq!(&merged.sessions, &one.sessions);
            let t = truth(&events);
            assert_within_bound(&one.urls, &t);
            assert_within_bound(&merged.urls, &t);
            // the heavy hitters lead the top list in both
            let hot = |a: &Aggregate| {
                let mut v: Vec<String> = a.urls.top(5).into_iter().map(|(k, _)| k).collect();
                v.sort();
                v
            };
            prop_assert_eq!(hot(&merged), hot(&one));
            prop_assert_eq!(Aggregate::from_bytes(&merged.to_bytes()), Ok(merged));
        }
    }

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

    fn hll_of(range: std::ops::Range<u64>) -> Hll {
        let mut h = Hll::new();
        for i in range {
            h.insert(&format!("visitor-{i}"));
        }
        h
    }

    #[test]
    fn hll_estimate_is_within_1_5_percent_from_1k_to_100k() {
        let mut h = Hll::new();
        let mut n = 0u64;
        for target in [
            1_000u64, 2_000, 3_000, 5_000, 7_500, 10_000, 20_000, 30_000, 50_000, 75_000, 100_000,
        ] {
            while n < target {
                h.insert(&format!("visitor-{n}"));
                n += 1;
            }
            let est = h.estimate() as f64;
            let err = (est - n as f64).abs() / n as f64;
            assert!(err <= 0.015, "n={n} est={est} err={err}");
        }
    }

    #[test]
    fn hll_is_accurate_for_small_cardinalities() {
        let mut h = Hll::new();
        assert_eq!(h.estimate(), 0);
        assert!(h.is_empty());
        for n in 1..=1_000u64 {
            h.insert(&format!("u{n}"));
            h.insert(&format!("u{n}")); // duplicates do not count
            let est = h.estimate();
            let tol = ((n as f64) * 0.015).max(1.0);
            assert!((est as f64 - n as f64).abs() <= tol, "n={n} est={est}");
        }
        assert!(!h.is_empty());
    }

    #[test]
    fn hll_counts_small_sets_exactly() {
        // Register collisions made 38 visitors read as 37 (a 2.6 % error) in a window;
        // up to the sparse limit the count is exact.
        for seed in 0..200u64 {
            let mut h = Hll::new();
            for n in 1..=60u64 {
                h.insert(&format!("v-{seed}-{n}"));
                assert_eq!(h.estimate(), n, "seed={seed}");
            }
        }
    }

    #[test]
    fn hll_merge_equals_inserting_everything() {
        for (a, b) in [
            (0..100, 50..300),
            (0..5_000, 2_000..40_000),
            (0..10, 0..20_000),
        ] {
            let mut m = hll_of(a.clone());
            m.merge(&hll_of(b.clone()));
            let all = hll_of(a.start.min(b.start)..a.end.max(b.end));
            assert_eq!(m, all);
            assert_eq!(m.estimate(), all.estimate());
            let mut m2 = hll_of(b);
            m2.merge(&hll_of(a));
            assert_eq!(m2, all);
        }
    }

    #[test]
    fn hll_sparse_is_exact_and_holds_the_same_registers_as_dense() {
        for n in [0u64, 1, 10, 100, 400, 512] {
            let sparse = hll_of(0..n);
            assert!(sparse.is_sparse(), "n={n}");
            let mut dense = sparse.clone();
            dense.densify();
            assert!(!dense.is_sparse());
            assert_eq!(sparse.estimate(), n, "sparse counts exactly");
            let tol = ((n as f64) * 0.015).max(1.0);
            assert!(
                (dense.estimate() as f64 - n as f64).abs() <= tol,
                "n={n} dense={}",
                dense.estimate()
            );
            assert_eq!(sparse, dense);
            assert_eq!(dense, sparse);
            // merging sparse into dense and dense into sparse agree too
            let mut a = hll_of(n..2 * n + 5);
            a.merge(&dense);
            let mut b = hll_of(n..2 * n + 5);
            b.densify();
            b.merge(&sparse);
            assert_eq!(a, b);
            assert_eq!(a.estimate(), b.estimate());
        }
        assert!(!hll_of(0..5_000).is_sparse());
    }

    #[test]
    fn hll_postcard_round_trips_compactly() {
        for n in [0u64, 7, 300, 50_000] {
            let h = hll_of(0..n);
            let bytes = postcard::to_allocvec(&h).unwrap();
            let back: Hll = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, h);
            assert_eq!(back.is_sparse(), h.is_sparse());
            assert!(bytes.len() <= HLL_REGISTERS + 8, "{}", bytes.len());
            if h.is_sparse() {
                assert!(
                    bytes.len() <= HLL_REGISTERS / 8 + 8,
                    "n={n} {}",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn aggregate_add_counts_pageview_urls_only_and_optional_fields() {
        let mut a = Aggregate::new();
        a.add(&ev("pageview", "v1", Some("s1"), "/a", Some("https://g/")));
        a.add(&ev("click", "v1", Some("s1"), "/b", Some("https://g/")));
        a.add(&ev("pageview", "v2", None, "/a", None));
        assert_eq!(a.events, 3);
        assert_eq!(a.by_type.get("pageview"), 2);
        assert_eq!(a.by_type.get("click"), 1);
        assert_eq!(a.urls.get("/a"), 2);
        assert_eq!(a.urls.get("/b"), 0);
        assert_eq!(a.referrers.get("https://g/"), 2);
        assert_eq!(a.countries.total(), 3);
        assert_eq!(a.devices.total(), 0);
        assert_eq!(a.visitors.estimate(), 2);
        assert_eq!(a.sessions.estimate(), 1);
    }

    #[test]
    fn aggregate_bytes_round_trip_and_reject_corruption() {
        let events = wide_events(5, 3_000);
        let a = aggregate(&events);
        let bytes = a.to_bytes();
        assert_eq!(Aggregate::from_bytes(&bytes), Ok(a.clone()));
        assert_eq!(
            Aggregate::from_bytes(&Aggregate::new().to_bytes()),
            Ok(Aggregate::new())
        );
        assert!(matches!(
            Aggregate::from_bytes(&[]),
            Err(AggError::Corrupt(_))
        ));
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 99;
        let err = Aggregate::from_bytes(&wrong_version).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("stored aggregate is corrupt or from an incompatible version"));
        assert!(Aggregate::from_bytes(&bytes[..bytes.len() / 2]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Aggregate::from_bytes(&trailing).is_err());
        // arbitrary garbage never panics
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..2_000 {
            let mut b = bytes.clone();
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(0..b.len());
                b[i] = rng.u8(..);
            }
            let _ = Aggregate::from_bytes(&b);
            let len = rng.usize(0..64);
            let junk: Vec<u8> = std::iter::once(AGG_FORMAT_VERSION)
                .chain((0..len).map(|_| rng.u8(..)))
                .collect();
            let _ = Aggregate::from_bytes(&junk);
        }
    }
}
