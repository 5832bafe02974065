//! Mergeable per-window aggregates: the [`Aggregate`] of one window (or of a merge of
//! windows), built from the sketches of [`hll`] and [`top`], its [`goal`] counts and
//! [`segment`] sub-aggregates, and its storage encoding.
//!
//! Contract:
//! - [`Aggregate`] is a commutative monoid under [`Aggregate::merge`] with
//!   [`Aggregate::new`] as the identity: merging partial aggregates of any split of an
//!   event stream gives the same [`Hll`] registers, event totals, goal counts and (while
//!   exact) the same [`TopCounts`] and segment tables as aggregating the whole stream in one
//!   pass. Uniques over a range are therefore a merge, never a sum.
//! - Distinct counts (visitors, sessions) are [`Hll`]s of precision [`HLL_PRECISION`]
//!   (σ ≈ 0.81 %); goals' converting visitors and every figure of a segment's
//!   sub-aggregate, of [`HLL_SUB_PRECISION`] (σ ≈ 1.6 %, see [`hll`] for the measurements).
//!   A merge keeps the lower precision, so a segment's figures over a range stay at it.
//! - [`Aggregate::add_with`] counts every event by type, visitor, session, referrer,
//!   referrer domain (`sources`), country and device, page views (type `pageview`) by URL,
//!   the completions and converting visitors of each goal of its [`AggSpec`], and the
//!   event into the segment tables of the spec's dimensions ([`segment`]).
//!   [`Aggregate::add`] is the same without goals and segments.
//! - [`Aggregate::merge_figures`] merges everything but the segment tables: what a view of
//!   the whole traffic needs, without the cost of the sub-aggregates.
//! - Memory is bounded whatever the input (see [`hll`], [`top`] and [`segment`] for the
//!   bounds and the error guarantees above their capacities).
//! - [`Aggregate::to_bytes`] / [`Aggregate::from_bytes`] are the storage format: the row
//!   format of `codec` (version 6: a dictionary of the row's keys, varints, Rice-coded
//!   sketches; the segment tables come last, each length-prefixed, so
//!   [`Aggregate::decode`] can skip them or all but one). Versions 5, 3 (HyperLogLogs in
//!   their old form) and 2 (before sources, goals and segments) are still read. Corrupt
//!   input yields [`AggError`], never a panic.
//!
//! Files: the type, its [`AggSpec`] and accessors here; `add` (counting one event, with what
//! is worked out once per event), `merge` (merging aggregates, reading a segment),
//! `storage` (the storage format and its versions: [`AggError`], [`Keep`]), `codec` (row
//! formats 6 and 5) and `legacy` (the mirror types of versions 2 and 3). Their items are re-exported here.

pub mod goal;
pub mod hll;
pub mod prop;
pub mod segment;
pub mod site;
pub mod top;

mod add;
mod codec;
mod legacy;
mod merge;
mod storage;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use goal::{check_goals, conversion_rate, Goal, GoalCounts, GoalError, UrlPattern, MAX_GOALS};
pub use hll::{Hll, HllError, HLL_PRECISION, HLL_SUB_PRECISION};
pub use segment::{
    referrer_domain, Coverage, Dimension, Filter, FilterError, SegmentSpec, SegmentTable, Segments,
    OTHER,
};
pub use site::{Sites, DEFAULT_MAX_SITES, MAX_SITES, OTHER_SITES};
pub use storage::{AggError, Keep, AGG_FORMAT_VERSION};
pub use top::{key_hash, KeyHasher, TopCounts, SEGMENT_TOP_CAP, TOP_CAP};

pub(crate) use add::Facts;

/// What a window counts beyond the basics: the segment tables and the goals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggSpec {
    /// Which dimensions get sub-aggregates, and how many values each.
    pub segments: SegmentSpec,
    /// The goals counted.
    pub goals: Vec<Goal>,
    /// How many sites per window get their own aggregate ([`site`]); 0: none.
    pub max_sites: usize,
}

impl AggSpec {
    /// No segments, no goals: what [`Aggregate::add`] counts.
    pub const NONE: AggSpec = AggSpec {
        segments: SegmentSpec::NONE,
        goals: Vec::new(),
        max_sites: 0,
    };
}

/// Everything the dashboard shows for one window (or a merge of windows).
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// Events by referrer domain ([`referrer_domain`]; all types).
    pub sources: TopCounts,
    /// Completions and converting visitors, by goal name.
    pub goals: BTreeMap<String, GoalCounts>,
    /// Sub-aggregates by segment (last: readers may skip it). Shared, not copied, when the
    /// aggregate is cloned: a copy that only reads them (the hub's, the store's) costs a
    /// reference; the first change after such a copy copies them once.
    pub segments: Arc<Segments>,
    /// Each site's own aggregate ([`site`]; last in storage too). Shared when cloned, as
    /// the segment tables are.
    pub sites: Arc<Sites>,
}

impl Aggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        Aggregate::default()
    }

    /// An empty aggregate whose top lists track at most `cap` keys each.
    pub fn with_top_cap(cap: usize) -> Self {
        let mut a = Aggregate::new();
        a.set_top_cap(cap);
        a
    }

    /// An empty sub-aggregate of a segment: top lists of [`SEGMENT_TOP_CAP`] keys, distinct
    /// counts at [`HLL_SUB_PRECISION`].
    pub(crate) fn segment_sub() -> Self {
        let mut a = Aggregate::with_top_cap(SEGMENT_TOP_CAP);
        a.fold_hll_to(HLL_SUB_PRECISION);
        a
    }

    /// Lowers the precision of every distinct count (visitors, sessions, goals' visitors) to
    /// `p`, if it is higher ([`Hll::fold_to`]).
    pub fn fold_hll_to(&mut self, p: u8) {
        self.visitors.fold_to(p);
        self.sessions.fold_to(p);
        for g in self.goals.values_mut() {
            g.visitors.fold_to(p);
        }
    }

    /// Cuts every top list to `k` keys (Misra–Gries: see [`TopCounts::reduce_to`]).
    pub fn reduce_tops_to(&mut self, k: usize) {
        for t in self.tops_mut() {
            t.reduce_to(k);
        }
    }

    fn tops_mut(&mut self) -> [&mut TopCounts; 6] {
        [
            &mut self.by_type,
            &mut self.urls,
            &mut self.referrers,
            &mut self.countries,
            &mut self.devices,
            &mut self.sources,
        ]
    }

    /// A copy without the segment tables: what a view of the whole traffic needs (the
    /// hub's live figures), a fraction of the whole to copy.
    pub fn figures_only(&self) -> Aggregate {
        Aggregate {
            events: self.events,
            by_type: self.by_type.clone(),
            visitors: self.visitors.clone(),
            sessions: self.sessions.clone(),
            urls: self.urls.clone(),
            referrers: self.referrers.clone(),
            countries: self.countries.clone(),
            devices: self.devices.clone(),
            sources: self.sources.clone(),
            goals: self.goals.clone(),
            segments: Arc::default(),
            sites: Arc::default(),
        }
    }

    /// Sets the capacity of every top list, or keeps what a list holds when it is more
    /// ([`TopCounts::set_cap_keeping`]).
    pub fn set_top_cap_keeping(&mut self, cap: usize) {
        for t in self.tops_mut() {
            t.set_cap_keeping(cap);
        }
    }

    /// Sets the capacity of every top list (reducing those that hold more keys).
    pub fn set_top_cap(&mut self, cap: usize) {
        for t in self.tops_mut() {
            t.set_cap(cap);
        }
    }

    /// True when every top counter is exact.
    pub fn is_exact(&self) -> bool {
        self.tops().iter().all(|t| t.is_exact())
    }

    /// The six top lists.
    fn tops(&self) -> [&TopCounts; 6] {
        [
            &self.by_type,
            &self.urls,
            &self.referrers,
            &self.countries,
            &self.devices,
            &self.sources,
        ]
    }

    /// Bytes it holds in memory: the struct and its heap (top lists, sketches, goals, the
    /// segment tables and the sites, shared ones counted whole): what a window costs while
    /// it is open.
    pub fn memory_bytes(&self) -> usize {
        let tops: usize = self.tops().iter().map(|t| t.heap_bytes()).sum();
        let goals: usize = self
            .goals
            .iter()
            .map(|(n, g)| n.capacity() + g.visitors.heap_bytes() + 64)
            .sum();
        let tables: usize = self
            .segments
            .tables()
            .map(|(_, t)| {
                t.counts().heap_bytes()
                    + t.other().memory_bytes()
                    + t.values()
                        .map(|(k, a)| k.len() + a.memory_bytes())
                        .sum::<usize>()
            })
            .sum();
        let sites: usize = self
            .sites
            .table()
            .map(|(k, a)| k.len() + a.memory_bytes())
            .sum::<usize>()
            + self.sites.overflow().map_or(0, Aggregate::memory_bytes);
        std::mem::size_of::<Aggregate>()
            + tops
            + self.visitors.heap_bytes()
            + self.sessions.heap_bytes()
            + goals
            + tables
            + sites
    }

    /// This aggregate's own list of events by the values of `dim` among its figures (a
    /// property has none: its counts are its table's).
    pub(crate) fn counts_by_mut(&mut self, dim: Dimension) -> Option<&mut TopCounts> {
        Some(match dim {
            Dimension::Country => &mut self.countries,
            Dimension::Device => &mut self.devices,
            Dimension::Type => &mut self.by_type,
            Dimension::Referrer => &mut self.sources,
            Dimension::Prop(_) => return None,
        })
    }

    /// This aggregate's own count of events by the values of `dim` (what a segment's
    /// coverage is judged by): a property's is its table's; `None` when it has no table.
    pub fn counts_by(&self, dim: Dimension) -> Option<&TopCounts> {
        match dim {
            Dimension::Country => Some(&self.countries),
            Dimension::Device => Some(&self.devices),
            Dimension::Type => Some(&self.by_type),
            Dimension::Referrer => Some(&self.sources),
            Dimension::Prop(_) => self.segments.table(dim).map(SegmentTable::counts),
        }
    }
}

/// Fixtures shared by the tests of the child modules.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    pub(super) fn ev(
        kind: &str,
        visitor: &str,
        session: Option<&str>,
        url: &str,
        referrer: Option<&str>,
    ) -> Event {
        Event {
            props: Vec::new(),
            site: None,
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

    pub(super) fn aggregate(events: &[Event]) -> Aggregate {
        aggregate_with(events, &AggSpec::NONE)
    }

    pub(super) fn aggregate_with(events: &[Event], spec: &AggSpec) -> Aggregate {
        let mut a = Aggregate::new();
        for e in events {
            a.add_with(e, spec);
        }
        a
    }

    /// Every dimension, N values each, and two goals (a type, a URL pattern).
    pub(super) fn spec(top_n: usize) -> AggSpec {
        AggSpec {
            max_sites: 0,
            segments: SegmentSpec {
                dimensions: Dimension::ALL.to_vec(),
                top_n,
            },
            goals: vec![
                Goal::parse("signup").expect("goal"),
                Goal::parse("deep=url:/p1*").expect("goal"),
            ],
        }
    }

    /// Events over many distinct URLs (above TOP_CAP) with a few heavy hitters.
    pub(super) fn wide_events(seed: u64, n: usize) -> Vec<Event> {
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
}
