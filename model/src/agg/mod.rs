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
//! - [`Aggregate::add_with`] counts every event by type, visitor, session, referrer,
//!   referrer domain (`sources`), country and device, page views (type `pageview`) by URL,
//!   the completions and converting visitors of each goal of its [`AggSpec`], and the
//!   event into the segment tables of the spec's dimensions ([`segment`]).
//!   [`Aggregate::add`] is the same without goals and segments.
//! - [`Aggregate::merge_figures`] merges everything but the segment tables: what a view of
//!   the whole traffic needs, without the cost of the sub-aggregates.
//! - Memory is bounded whatever the input (see [`hll`], [`top`] and [`segment`] for the
//!   bounds and the error guarantees above their capacities).
//! - [`Aggregate::to_bytes`] / [`Aggregate::from_bytes`] are the storage format
//!   (a version byte followed by postcard; the segment tables come last, each as its own
//!   length-prefixed bytes, so [`Aggregate::decode`] can skip them or all but one).
//!   Version 3 is written; version 2 (before sources, goals and segments) is still read.
//!   Corrupt input yields [`AggError`], never a panic.

pub mod goal;
pub mod hll;
pub mod segment;
pub mod top;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Event;

pub use goal::{check_goals, conversion_rate, Goal, GoalCounts, GoalError, UrlPattern, MAX_GOALS};
pub use hll::{Hll, HLL_PRECISION, HLL_REGISTERS};
pub use segment::{
    referrer_domain, Coverage, Dimension, Filter, FilterError, SegmentSpec, SegmentTable, Segments,
    OTHER,
};
pub use top::{KeyHasher, TopCounts, SEGMENT_TOP_CAP, TOP_CAP};

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

/// Storage format version written by [`Aggregate::to_bytes`] (3: referrer domains, goals
/// and segment tables). Version 2 is still read.
pub const AGG_FORMAT_VERSION: u8 = 3;

/// What a window counts beyond the basics: the segment tables and the goals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggSpec {
    /// Which dimensions get sub-aggregates, and how many values each.
    pub segments: SegmentSpec,
    /// The goals counted.
    pub goals: Vec<Goal>,
}

impl AggSpec {
    /// No segments, no goals: what [`Aggregate::add`] counts.
    pub const NONE: AggSpec = AggSpec {
        segments: SegmentSpec::NONE,
        goals: Vec::new(),
    };
}

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
    /// Events by referrer domain ([`referrer_domain`]; all types).
    pub sources: TopCounts,
    /// Completions and converting visitors, by goal name.
    pub goals: BTreeMap<String, GoalCounts>,
    /// Sub-aggregates by segment (last: readers may skip it).
    pub segments: Segments,
}

/// What is worked out once per event and used by the aggregate and its sub-aggregates.
pub(crate) struct Facts<'e> {
    visitor: u64,
    session: Option<u64>,
    /// The referrer's domain.
    pub(crate) domain: Option<Cow<'e, str>>,
    /// Bit `i`: the event completes goal `i` of the spec.
    goals: u32,
}

impl<'e> Facts<'e> {
    fn of(ev: &'e Event, goals: &[Goal]) -> Self {
        let hash = |s: &str| xxhash_rust::xxh3::xxh3_64(s.as_bytes());
        let mut mask = 0u32;
        for (i, g) in goals.iter().take(32).enumerate() {
            if g.matches(ev) {
                mask |= 1 << i;
            }
        }
        Facts {
            visitor: hash(&ev.visitor),
            session: ev.session.as_deref().map(hash),
            domain: ev.referrer.as_deref().and_then(referrer_domain),
            goals: mask,
        }
    }
}

/// What [`Aggregate::decode`] decodes of the segment tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Everything.
    All,
    /// No segment table (the figures of the whole traffic only).
    Figures,
    /// The table of one dimension.
    Dimension(Dimension),
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

    /// Sets the capacity of every top list (reducing those that hold more keys).
    pub fn set_top_cap(&mut self, cap: usize) {
        for t in self.tops_mut() {
            t.set_cap(cap);
        }
    }

    /// Accounts one event (no goals, no segments: see [`Aggregate::add_with`]).
    pub fn add(&mut self, ev: &Event) {
        self.add_with(ev, &AggSpec::NONE);
    }

    /// Accounts one event, with the goals and segments of `spec`.
    pub fn add_with(&mut self, ev: &Event, spec: &AggSpec) {
        let facts = Facts::of(ev, &spec.goals);
        self.add_facts(ev, &facts, &spec.goals);
        for &dim in &spec.segments.dimensions {
            let value = match dim {
                Dimension::Referrer => facts.domain.clone(),
                _ => dim.value_of(ev),
            };
            if let Some(v) = value {
                // Disjoint fields: the table is changed while the count is read.
                let counts = match dim {
                    Dimension::Country => &self.countries,
                    Dimension::Device => &self.devices,
                    Dimension::Type => &self.by_type,
                    Dimension::Referrer => &self.sources,
                };
                self.segments.table_mut(dim, spec.segments.top_n).add(
                    (dim, &v),
                    || counts.get(&v),
                    ev,
                    &facts,
                    &spec.goals,
                );
            }
        }
    }

    /// Accounts one event whose [`Facts`] are known (not into segments).
    pub(crate) fn add_facts(&mut self, ev: &Event, facts: &Facts<'_>, goals: &[Goal]) {
        self.add_facts_skipping(ev, facts, goals, None);
    }

    /// [`Aggregate::add_facts`] without the counts of dimension `skip` (a segment's own).
    pub(crate) fn add_facts_skipping(
        &mut self,
        ev: &Event,
        facts: &Facts<'_>,
        goals: &[Goal],
        skip: Option<Dimension>,
    ) {
        self.events += 1;
        if skip != Some(Dimension::Type) {
            self.by_type.add(&ev.kind, 1);
        }
        self.visitors.insert_hash(facts.visitor);
        if let Some(s) = facts.session {
            self.sessions.insert_hash(s);
        }
        if ev.kind == "pageview" {
            self.urls.add(&ev.url, 1);
        }
        if let Some(r) = &ev.referrer {
            self.referrers.add(r, 1);
        }
        if let Some(c) = ev
            .country
            .as_ref()
            .filter(|_| skip != Some(Dimension::Country))
        {
            self.countries.add(c, 1);
        }
        if let Some(d) = ev
            .device
            .as_ref()
            .filter(|_| skip != Some(Dimension::Device))
        {
            self.devices.add(d, 1);
        }
        if let Some(d) = facts
            .domain
            .as_ref()
            .filter(|_| skip != Some(Dimension::Referrer))
        {
            self.sources.add(d, 1);
        }
        if facts.goals != 0 {
            for (i, g) in goals.iter().take(32).enumerate() {
                if facts.goals & (1 << i) == 0 {
                    continue;
                }
                let counts = match self.goals.get_mut(g.name.as_str()) {
                    Some(c) => c,
                    None => self.goals.entry(g.name.clone()).or_default(),
                };
                counts.completions += 1;
                counts.visitors.insert_hash(facts.visitor);
            }
        }
    }

    /// Folds `other` into `self`, segment tables included.
    pub fn merge(&mut self, other: &Aggregate) {
        self.merge_figures(other);
        self.segments.merge(&other.segments);
    }

    /// Folds everything of `other` but its segment tables into `self`.
    pub fn merge_figures(&mut self, other: &Aggregate) {
        self.events = self.events.saturating_add(other.events);
        self.by_type.merge(&other.by_type);
        self.visitors.merge(&other.visitors);
        self.sessions.merge(&other.sessions);
        self.urls.merge(&other.urls);
        self.referrers.merge(&other.referrers);
        self.countries.merge(&other.countries);
        self.devices.merge(&other.devices);
        self.sources.merge(&other.sources);
        for (name, g) in &other.goals {
            match self.goals.get_mut(name) {
                Some(mine) => mine.merge(g),
                None => {
                    self.goals.insert(name.clone(), g.clone());
                }
            }
        }
    }

    /// True when every top counter is exact.
    pub fn is_exact(&self) -> bool {
        [
            &self.by_type,
            &self.urls,
            &self.referrers,
            &self.countries,
            &self.devices,
            &self.sources,
        ]
        .iter()
        .all(|t| t.is_exact())
    }

    /// This aggregate's own count of events by the values of `dim` (what a segment's
    /// coverage is judged by).
    pub(crate) fn counts_by_mut(&mut self, dim: Dimension) -> &mut TopCounts {
        match dim {
            Dimension::Country => &mut self.countries,
            Dimension::Device => &mut self.devices,
            Dimension::Type => &mut self.by_type,
            Dimension::Referrer => &mut self.sources,
        }
    }

    pub fn counts_by(&self, dim: Dimension) -> &TopCounts {
        match dim {
            Dimension::Country => &self.countries,
            Dimension::Device => &self.devices,
            Dimension::Type => &self.by_type,
            Dimension::Referrer => &self.sources,
        }
    }

    /// The sub-aggregate `filter` selects, if this aggregate has one.
    pub fn segment(&self, filter: &Filter) -> Option<&Aggregate> {
        let t = self.segments.table(filter.dimension)?;
        if filter.is_other() {
            Some(t.other())
        } else {
            t.get(&filter.value)
        }
    }

    /// Folds the figures of the sub-aggregate `filter` selects into `into`, and what it
    /// covers of the value's events into `coverage` (see [`segment`]).
    pub fn fold_segment(&self, filter: &Filter, into: &mut Aggregate, coverage: &mut Coverage) {
        let sub = self.segment(filter);
        if let Some(s) = sub {
            into.merge_figures(s);
            if !filter.is_other() {
                // A value's sub-aggregate does not keep its own dimension's counts.
                into.counts_by_mut(filter.dimension)
                    .add(&filter.value, s.events);
            }
        }
        let covered = sub.map_or(0, |s| s.events);
        let (at_least, at_most) = if filter.is_other() {
            (covered, covered)
        } else {
            let counts = self.counts_by(filter.dimension);
            let c = counts.get(&filter.value);
            (
                c.max(covered),
                c.saturating_add(counts.error_bound()).max(covered),
            )
        };
        coverage.merge(&Coverage {
            events: covered,
            of_at_least: at_least,
            of_at_most: at_most,
            incomplete_parts: u64::from(covered < at_most),
        });
    }

    /// Storage encoding: [`AGG_FORMAT_VERSION`] followed by postcard.
    pub fn to_bytes(&self) -> Vec<u8> {
        let out = vec![AGG_FORMAT_VERSION];
        // Serialising into a Vec only fails on allocation failure.
        postcard::to_extend(self, out).expect("postcard serialisation into a Vec cannot fail")
    }

    /// Decodes [`Aggregate::to_bytes`] output (of this version or version 2).
    pub fn from_bytes(b: &[u8]) -> Result<Self, AggError> {
        Aggregate::decode(b, Keep::All)
    }

    /// Decodes [`Aggregate::to_bytes`] output, with only the segment tables `keep` says
    /// (the bytes of the others are skipped, not checked).
    pub fn decode(b: &[u8], keep: Keep) -> Result<Self, AggError> {
        let corrupt = |e: postcard::Error| AggError::Corrupt(e.to_string());
        let (&version, rest) = b
            .split_first()
            .ok_or_else(|| AggError::Corrupt("empty input".into()))?;
        match version {
            AGG_FORMAT_VERSION => {
                let (figures, tail) =
                    postcard::take_from_bytes::<FiguresWire>(rest).map_err(corrupt)?;
                let segments = match keep {
                    Keep::All => {
                        let (s, tail) =
                            postcard::take_from_bytes::<Segments>(tail).map_err(corrupt)?;
                        if !tail.is_empty() {
                            return Err(AggError::Corrupt(format!(
                                "{} trailing bytes",
                                tail.len()
                            )));
                        }
                        s
                    }
                    Keep::Figures => Segments::default(),
                    Keep::Dimension(d) => Segments::decode_one(tail, d).map_err(corrupt)?,
                };
                Ok(figures.with_segments(segments))
            }
            2 => {
                let (v2, tail) = postcard::take_from_bytes::<AggregateV2>(rest).map_err(corrupt)?;
                if !tail.is_empty() {
                    return Err(AggError::Corrupt(format!("{} trailing bytes", tail.len())));
                }
                Ok(v2.into())
            }
            found => Err(AggError::Version {
                found,
                expected: AGG_FORMAT_VERSION,
            }),
        }
    }
}

/// An [`Aggregate`] of the current version without its segment tables (decoded alone when
/// they are skipped): version 2's fields, then the ones version 3 added (postcard writes a
/// nested struct's fields in line, so this is the same layout as the flat one).
#[derive(Deserialize)]
struct FiguresWire {
    v2: AggregateV2,
    sources: TopCounts,
    goals: BTreeMap<String, GoalCounts>,
}

/// An [`Aggregate`] as format version 2 stored it.
#[derive(Deserialize)]
struct AggregateV2 {
    events: u64,
    by_type: TopCounts,
    visitors: Hll,
    sessions: Hll,
    urls: TopCounts,
    referrers: TopCounts,
    countries: TopCounts,
    devices: TopCounts,
}

impl FiguresWire {
    fn with_segments(self, segments: Segments) -> Aggregate {
        let v = self.v2;
        Aggregate {
            events: v.events,
            by_type: v.by_type,
            visitors: v.visitors,
            sessions: v.sessions,
            urls: v.urls,
            referrers: v.referrers,
            countries: v.countries,
            devices: v.devices,
            sources: self.sources,
            goals: self.goals,
            segments,
        }
    }
}

impl From<AggregateV2> for Aggregate {
    fn from(v2: AggregateV2) -> Self {
        FiguresWire {
            v2,
            sources: TopCounts::new(),
            goals: BTreeMap::new(),
        }
        .with_segments(Segments::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

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
        aggregate_with(events, &AggSpec::NONE)
    }

    fn aggregate_with(events: &[Event], spec: &AggSpec) -> Aggregate {
        let mut a = Aggregate::new();
        for e in events {
            a.add_with(e, spec);
        }
        a
    }

    /// Every dimension, N values each, and two goals (a type, a URL pattern).
    fn spec(top_n: usize) -> AggSpec {
        AggSpec {
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

    /// Splits `events` at `cuts`, aggregates each part, then merges the parts
    /// in an order and grouping chosen by `seed`.
    fn split_merge(events: &[Event], cuts: &[usize], seed: u64) -> Aggregate {
        split_merge_with(events, cuts, seed, &AggSpec::NONE)
    }

    fn split_merge_with(events: &[Event], cuts: &[usize], seed: u64, spec: &AggSpec) -> Aggregate {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([events.len()]) {
            parts.push(aggregate_with(&events[prev..c], spec));
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
                "https://www.gh/x",
            ])),
            prop::option::of(prop::sample::select(vec!["mobile", "desktop", "tablet"])),
        )
            .prop_map(|(k, v, s, u, r, d)| {
                let mut e = ev(
                    k,
                    &format!("v{v}"),
                    s.map(|s| format!("s{s}")).as_deref(),
                    &format!("/p{u}"),
                    r,
                );
                e.device = d.map(Into::into);
                e
            })
    }

    proptest! {
        #[test]
        fn merge_of_any_split_equals_one_pass_in_exact_mode(
            events in prop::collection::vec(small_event(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 1..4),
            seed in any::<u64>(),
        ) {
            // At most 3 values per dimension: every table stays exact with N = 4.
            let spec = spec(4);
            let one = aggregate_with(&events, &spec);
            let merged = split_merge_with(&events, &cuts, seed, &spec);
            prop_assert!(one.is_exact());
            prop_assert_eq!(&merged, &one);
            prop_assert_eq!(merged.urls.top(5), one.urls.top(5));
            prop_assert_eq!(Aggregate::from_bytes(&merged.to_bytes()), Ok(one.clone()));
            // The segment tables hold every value whole, and goals count what they match.
            for dim in Dimension::ALL {
                let values: BTreeMap<String, Vec<Event>> = events.iter().fold(BTreeMap::new(), |mut m, e| {
                    if let Some(v) = dim.value_of(e) {
                        m.entry(v.into_owned()).or_insert_with(Vec::new).push(e.clone());
                    }
                    m
                });
                for (v, evs) in &values {
                    let f = Filter { dimension: dim, value: v.clone() };
                    let (mut got, mut cov) = (Aggregate::new(), Coverage::default());
                    merged.fold_segment(&f, &mut got, &mut cov);
                    prop_assert!(cov.complete(), "{f}: {cov:?}");
                    prop_assert_eq!(cov.events, evs.len() as u64);
                    let mut want = aggregate_with(evs, &AggSpec { segments: SegmentSpec::NONE, ..spec.clone() });
                    want.set_top_cap(SEGMENT_TOP_CAP);
                    prop_assert_eq!(&got, &want, "{}", f);
                }
            }
            for g in &spec.goals {
                let done: Vec<&Event> = events.iter().filter(|e| g.matches(e)).collect();
                let counts = merged.goals.get(&g.name).cloned().unwrap_or_default();
                prop_assert_eq!(counts.completions, done.len() as u64);
                let mut h = Hll::new();
                for e in &done {
                    h.insert(&e.visitor);
                }
                prop_assert_eq!(counts.visitors, h);
            }
        }

        #[test]
        fn merge_is_commutative(
            a in prop::collection::vec(small_event(), 0..80),
            b in prop::collection::vec(small_event(), 0..80),
            top_n in 1usize..4,
        ) {
            // Commutative in every mode, also when the tables overflow N.
            let spec = spec(top_n);
            let (x, y) = (aggregate_with(&a, &spec), aggregate_with(&b, &spec));
            let mut xy = x.clone();
            xy.merge(&y);
            let mut yx = y.clone();
            yx.merge(&x);
            prop_assert_eq!(&xy, &yx);
            let mut id = x.clone();
            id.merge(&Aggregate::new());
            prop_assert_eq!(id, x.clone());
            let mut id = Aggregate::new();
            id.merge(&x);
            prop_assert_eq!(id, x);
        }

        #[test]
        fn above_n_values_totals_stay_whole_and_a_value_is_never_overcounted(
            events in prop::collection::vec(small_event(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 1..5),
            seed in any::<u64>(),
        ) {
            let spec = spec(2);
            let merged = split_merge_with(&events, &cuts, seed, &spec);
            let one = aggregate_with(&events, &spec);
            // Whatever the split, the figures of the whole traffic are those of one pass.
            let (mut a, mut b) = (Aggregate::new(), Aggregate::new());
            a.merge_figures(&merged);
            b.merge_figures(&one);
            prop_assert_eq!(a, b);
            for dim in Dimension::ALL {
                let with_value = events.iter().filter(|e| dim.value_of(e).is_some()).count() as u64;
                if let Some(t) = merged.segments.table(dim) {
                    prop_assert!(t.values().count() <= 2);
                    let sum: u64 = t.values().map(|(_, a)| a.events).sum::<u64>() + t.other().events;
                    prop_assert_eq!(sum, with_value, "{}", dim);
                } else {
                    prop_assert_eq!(with_value, 0);
                }
                let mut truth: BTreeMap<String, u64> = BTreeMap::new();
                for e in &events {
                    if let Some(v) = dim.value_of(e) {
                        *truth.entry(v.into_owned()).or_default() += 1;
                    }
                }
                for (v, n) in &truth {
                    let f = Filter { dimension: dim, value: v.clone() };
                    let (mut got, mut cov) = (Aggregate::new(), Coverage::default());
                    merged.fold_segment(&f, &mut got, &mut cov);
                    prop_assert!(cov.events <= *n, "{f}: {} > {n}", cov.events);
                    prop_assert_eq!(cov.complete(), cov.events == *n, "{}: {:?} of {}", f, cov, n);
                    prop_assert!(cov.of_at_least <= *n && *n <= cov.of_at_most);
                    prop_assert_eq!(got.events, cov.events);
                }
            }
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
        assert_eq!(a.sources.get("g"), 2, "referrer domains");
        assert!(
            a.goals.is_empty() && a.segments.is_empty(),
            "add counts no goals"
        );
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

    /// A version-2 aggregate as this project stored it before goals and segments (written by
    /// the previous release: four events, three visitors).
    const V2_BYTES: &str = "02040305636c69636b0108706167657669657702067369676e75700104000003f3c6c3a801b9be979102a9adeacc060004b8e3a48d048cfde8a709bfbc9dd1099197acba0c02012f01082f70726963696e67010200022668747470733a2f2f6e6577732e79636f6d62696e61746f722e636f6d2f6974656d3f69643d31011768747470733a2f2f7777772e676f6f676c652e636f6d2f01020003024445020246520102555301040002076465736b746f7002066d6f62696c65020400";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn a_version_2_aggregate_is_still_read() {
        let a = Aggregate::from_bytes(&hex(V2_BYTES)).expect("version 2 reads");
        assert_eq!(a.events, 4);
        assert_eq!(a.visitors.estimate(), 3);
        assert_eq!(a.sessions.estimate(), 4);
        assert_eq!(a.countries.get("DE"), 2);
        assert_eq!(a.by_type.get("signup"), 1);
        assert_eq!(a.urls.get("/pricing"), 1);
        assert!(a.sources.is_empty() && a.goals.is_empty() && a.segments.is_empty());
        // Written again, it is version 3, and reads back the same.
        let again = a.to_bytes();
        assert_eq!(again[0], AGG_FORMAT_VERSION);
        assert_eq!(Aggregate::from_bytes(&again), Ok(a.clone()));
        // Merged with a version-3 aggregate of the same kind of events, nothing is lost.
        let mut b = Aggregate::new();
        b.add_with(&ev("signup", "v9", None, "/signup", None), &spec(10));
        b.merge(&a);
        assert_eq!(b.events, 5);
        let mut wrong = hex(V2_BYTES);
        wrong.push(7);
        assert!(Aggregate::from_bytes(&wrong).is_err(), "trailing bytes");
    }

    #[test]
    fn decode_can_skip_the_segment_tables_or_keep_one() {
        let mut rng = fastrand::Rng::with_seed(3);
        let countries = ["DE", "US", "FR", "JP"];
        let mut a = Aggregate::new();
        for i in 0..500 {
            let mut e = ev(
                if i % 7 == 0 { "signup" } else { "pageview" },
                &format!("v{}", rng.u32(0..200)),
                Some(&format!("s{}", rng.u32(0..300))),
                &format!("/p{}", rng.u32(0..40)),
                Some(["https://a.example/", "https://b.example/x"][i % 2]),
            );
            e.country = Some(countries[rng.usize(0..4)].into());
            e.device = Some(["mobile", "desktop"][i % 2].into());
            a.add_with(&e, &spec(10));
        }
        let bytes = a.to_bytes();
        let all = Aggregate::from_bytes(&bytes).expect("all");
        assert_eq!(all, a);
        let figures = Aggregate::decode(&bytes, Keep::Figures).expect("figures");
        let mut want = Aggregate::new();
        want.merge_figures(&a);
        assert_eq!(figures, want);
        let one = Aggregate::decode(&bytes, Keep::Dimension(Dimension::Country)).expect("one");
        assert!(one.segments.table(Dimension::Device).is_none());
        assert_eq!(
            one.segments.table(Dimension::Country),
            a.segments.table(Dimension::Country)
        );
        let f = Filter::parse("country:JP").expect("filter");
        let (mut x, mut cx, mut y, mut cy) = (
            Aggregate::new(),
            Coverage::default(),
            Aggregate::new(),
            Coverage::default(),
        );
        one.fold_segment(&f, &mut x, &mut cx);
        a.fold_segment(&f, &mut y, &mut cy);
        assert_eq!((x, cx), (y, cy));
        assert!(cy.complete() && cy.events > 0);
        // Corruption in a table is found when that table is decoded.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 3] ^= 0xff;
        bad.truncate(n - 1);
        assert!(Aggregate::from_bytes(&bad).is_err());
    }

    #[test]
    fn the_first_n_values_of_a_window_get_a_table_and_the_rest_go_to_other() {
        let s = spec(2);
        let mut a = Aggregate::new();
        for c in ["DE", "US", "FR", "DE", "FR", "JP"] {
            let mut e = ev("pageview", c, None, "/", None);
            e.country = Some(c.into());
            a.add_with(&e, &s);
        }
        let t = a.segments.table(Dimension::Country).expect("table");
        let values: Vec<(&str, u64)> = t.values().map(|(k, a)| (k, a.events)).collect();
        assert_eq!(values, vec![("DE", 2), ("US", 1)]);
        assert_eq!(t.other().events, 3);
        let cov = |a: &Aggregate, v: &str| {
            let (mut x, mut c) = (Aggregate::new(), Coverage::default());
            a.fold_segment(
                &Filter::parse(&format!("country:{v}")).unwrap(),
                &mut x,
                &mut c,
            );
            c
        };
        assert!(cov(&a, "DE").complete());
        let fr = cov(&a, "FR");
        assert!(!fr.complete());
        assert_eq!((fr.events, fr.of_at_least, fr.of_at_most), (0, 2, 2));
        let other = cov(&a, OTHER);
        assert!(other.complete());
        assert_eq!(other.events, 3);
        // Merging another window where FR leads: the N biggest keep their tables.
        let mut b = Aggregate::new();
        for c in ["FR", "FR", "FR", "FR"] {
            let mut e = ev("pageview", c, None, "/", None);
            e.country = Some(c.into());
            b.add_with(&e, &s);
        }
        a.merge(&b);
        let t = a.segments.table(Dimension::Country).expect("table");
        let values: Vec<(&str, u64)> = t.values().map(|(k, a)| (k, a.events)).collect();
        assert_eq!(
            values,
            vec![("DE", 2), ("FR", 4)],
            "US (1) folded into other"
        );
        assert_eq!(t.other().events, 4);
        let fr = cov(&a, "FR");
        assert_eq!(
            (fr.events, fr.of_at_most),
            (4, 6),
            "FR's first two are in other"
        );
    }

    #[test]
    fn a_value_of_much_more_traffic_takes_the_place_of_the_smallest() {
        let s = spec(2);
        let mut a = Aggregate::new();
        for c in ["A", "B", "A", "C", "C", "C", "C", "C"] {
            let mut e = ev("pageview", c, None, "/", None);
            e.country = Some(c.into());
            a.add_with(&e, &s);
        }
        let t = a.segments.table(Dimension::Country).expect("table");
        let values: Vec<(&str, u64)> = t.values().map(|(k, a)| (k, a.events)).collect();
        // C's third event (3 > 2 × B's 1) takes B's place; C's first two stay in other.
        assert_eq!(values, vec![("A", 2), ("C", 3)]);
        assert_eq!(t.other().events, 3, "B's event and C's first two");
        let sum: u64 = values.iter().map(|(_, n)| n).sum::<u64>() + t.other().events;
        assert_eq!(sum, 8);
    }
}
