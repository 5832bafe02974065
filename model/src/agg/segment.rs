//! Segments: per-window sub-aggregates by a low-cardinality dimension, so that every figure
//! can be shown for one country, device, event type or referrer domain.
//!
//! Contract:
//! - A [`Dimension`] names what an event is segmented by: `country`, `device`, `type`, or
//!   `referrer` (the referrer's domain, [`referrer_domain`]). A [`Filter`]
//!   (`country:DE`) picks one value of one dimension; the value `(other)` ([`OTHER`]) picks
//!   the "other" bucket.
//! - For each configured dimension a window keeps a [`SegmentTable`]: a sub-aggregate (an
//!   [`Aggregate`] without segments, top lists of [`SEGMENT_TOP_CAP`] keys) for each of at
//!   most N values (`top_n`), and one sub-aggregate, "other", for the events of every
//!   other value. While adding events, the first N distinct values of the window get their
//!   own sub-aggregate (the values of most traffic come first with high probability); a
//!   later value goes to "other", until the window's own count of it (its top list for the
//!   dimension) exceeds twice the window's count of the member with the fewest events:
//!   then that member is folded into "other" and the value takes its place (as in
//!   Space-Saving, members and challengers judged alike by their whole-window counts, so
//!   that a value of much traffic is not left in "other" for a whole window because it came
//!   late; the factor two keeps values from trading places back and forth). An event without a value
//!   for the dimension (no country) is in neither. So a window holds at most
//!   dimensions × (N + 1) sub-aggregates, whatever the cardinality.
//! - Merging tables (partitions of one window, a revision into a stored row) adds the
//!   sub-aggregates of the same value and the "other" buckets; when more than N values
//!   result, the N with the most events (then the smaller key) keep theirs and the rest are
//!   folded into "other". Merge is commutative; it is associative, and any split merges to
//!   the one-pass table, as long as no more than N distinct values meet (exact mode).
//!   Beyond that only the guarantees below hold.
//! - Guarantees in every mode: the events of the values' sub-aggregates and of "other" add
//!   up to the events that have a value; a value's sub-aggregate holds a subset of its
//!   events (never more); and [`Coverage`] tells whether it holds all of them: it compares
//!   the sub-aggregate's events with the aggregate's own count of that value (its top list
//!   for the dimension, exact up to its capacity, bounded above by `count + error` beyond).
//!   A filtered figure whose coverage is incomplete is a lower bound, and the API says so
//!   instead of silently undercounting.
//! - A sub-aggregate counts distinct values (visitors, sessions, goals' converting visitors)
//!   at [`super::HLL_SUB_PRECISION`] (σ ≈ 1.6 %, 3 KiB once dense; see [`super::hll`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::prop::{PropKey, PROP_PREFIX};

use super::top::{TopCounts, SEGMENT_TOP_CAP};
use super::{Aggregate, Facts};
use crate::event::{Event, MAX_FIELD_BYTES};

/// The filter value that selects the "other" bucket of a dimension.
pub const OTHER: &str = "(other)";
/// Default number of values per window and dimension with their own sub-aggregate.
pub const DEFAULT_SEGMENT_TOP: usize = 10;
/// Most values per window and dimension with their own sub-aggregate.
pub const MAX_SEGMENT_TOP: usize = 100;

/// What events are segmented by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// The event's country.
    Country,
    /// The event's device class.
    Device,
    /// The event's type.
    Type,
    /// The domain of the event's referrer ([`referrer_domain`]).
    Referrer,
    /// A custom property of the event (`--property KEY`, see [`super::prop`]).
    Prop(PropKey),
}

impl Dimension {
    /// Every dimension, in the order of the default `--segment-dimensions`.
    pub const ALL: [Dimension; 4] = [
        Dimension::Country,
        Dimension::Device,
        Dimension::Type,
        Dimension::Referrer,
    ];

    /// Its name in filters and flags: `country`, `device`, `type`, `referrer`; a property's
    /// is its key after `prop.` (`prop.plan`).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Country => "country",
            Dimension::Device => "device",
            Dimension::Type => "type",
            Dimension::Referrer => "referrer",
            Dimension::Prop(k) => k.dimension_name(),
        }
    }

    /// The dimension called `name` (`prop.KEY` for a property registered before: see
    /// [`PropKey::known`]).
    pub fn from_name(name: &str) -> Option<Dimension> {
        if let Some(key) = name.strip_prefix(PROP_PREFIX) {
            return PropKey::known(key).map(Dimension::Prop);
        }
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The property's key, if it is one.
    pub fn prop(self) -> Option<PropKey> {
        match self {
            Dimension::Prop(k) => Some(k),
            _ => None,
        }
    }

    /// The value of `ev` for this dimension, if it has one.
    pub fn value_of<'e>(self, ev: &'e Event) -> Option<Cow<'e, str>> {
        match self {
            Dimension::Country => ev.country.as_deref().map(Cow::Borrowed),
            Dimension::Device => ev.device.as_deref().map(Cow::Borrowed),
            Dimension::Type => Some(Cow::Borrowed(ev.kind.as_str())),
            Dimension::Referrer => ev.referrer.as_deref().and_then(referrer_domain),
            Dimension::Prop(k) => ev.prop(k.as_str()).map(Cow::Borrowed),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The domain of a referrer URL, lower case, without a leading `www.`, a port or user
/// information: `https://www.Google.com:443/search?q=x` → `google.com`. A referrer without
/// a scheme is read as `host/path`. `None` when there is no host.
pub fn referrer_domain(referrer: &str) -> Option<Cow<'_, str>> {
    let rest = match referrer.find("://") {
        Some(i) => &referrer[i + 3..],
        None => referrer.strip_prefix("//").unwrap_or(referrer),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        // [IPv6]:port
        &host_port[..=host_port.find(']')?]
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let host = host.trim_end_matches('.');
    let host = match host.get(..4) {
        Some(w) if w.eq_ignore_ascii_case("www.") && host.len() > 4 => &host[4..],
        _ => host,
    };
    if host.is_empty() {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("{0:?} is not a filter: write DIMENSION:VALUE, e.g. country:DE")]
    Syntax(String),
    #[error("{0:?} is not a dimension: use country, device, type, referrer or prop.KEY for a property of --property")]
    Dimension(String),
    #[error("the value of a {0} filter is empty")]
    EmptyValue(Dimension),
    #[error("the value is longer than {MAX_FIELD_BYTES} bytes")]
    TooLong,
}

/// One value of one dimension: the segment a view shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    /// The dimension.
    pub dimension: Dimension,
    /// The value ([`OTHER`] for the "other" bucket).
    pub value: String,
}

impl Filter {
    /// `country:DE`, `device:mobile`, `type:signup`, `referrer:news.ycombinator.com` (a
    /// referrer may also be given as a URL: its domain is taken), `country:(other)`.
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        let (dim, value) = s
            .split_once(':')
            .ok_or_else(|| FilterError::Syntax(s.to_owned()))?;
        let dimension = Dimension::from_name(dim.trim())
            .ok_or_else(|| FilterError::Dimension(dim.trim().to_owned()))?;
        if value.is_empty() {
            return Err(FilterError::EmptyValue(dimension));
        }
        if value.len() > MAX_FIELD_BYTES {
            return Err(FilterError::TooLong);
        }
        let value = match dimension {
            Dimension::Referrer if value != OTHER => referrer_domain(value)
                .ok_or(FilterError::EmptyValue(dimension))?
                .into_owned(),
            _ => value.to_owned(),
        };
        Ok(Filter { dimension, value })
    }

    /// [`Filter::parse`] for a client (the browser) that learns the property keys from the
    /// filters it is given: a `prop.KEY` filter registers its key ([`PropKey::register`]).
    /// Never on the server, which knows its keys (`--property`) and refuses others.
    pub fn parse_registering(s: &str) -> Result<Filter, FilterError> {
        if let Some(key) = s
            .split_once(':')
            .and_then(|(d, _)| d.trim().strip_prefix(PROP_PREFIX))
        {
            PropKey::register(key).map_err(|_| FilterError::Dimension(s.to_owned()))?;
        }
        Filter::parse(s)
    }

    /// Whether it selects the "other" bucket.
    pub fn is_other(&self) -> bool {
        self.value == OTHER
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dimension, self.value)
    }
}

/// Which dimensions are segmented, and how many values per window get a sub-aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpec {
    /// The dimensions (none: no segments).
    pub dimensions: Vec<Dimension>,
    /// Values per window and dimension with their own sub-aggregate (N).
    pub top_n: usize,
}

impl SegmentSpec {
    /// No segments.
    pub const NONE: SegmentSpec = SegmentSpec {
        dimensions: Vec::new(),
        top_n: DEFAULT_SEGMENT_TOP,
    };
}

impl Default for SegmentSpec {
    fn default() -> Self {
        SegmentSpec::NONE
    }
}

/// How much of a filtered value's events its sub-aggregates hold: `events` out of a true
/// count that lies in `[of_at_least, of_at_most]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Events in the sub-aggregates shown.
    pub events: u64,
    /// Lower bound of the value's true event count.
    pub of_at_least: u64,
    /// Upper bound of the value's true event count.
    pub of_at_most: u64,
    /// Windows (or partitions of windows) whose sub-aggregate lacks some of the value's events.
    pub incomplete_parts: u64,
}

impl Coverage {
    /// Adds the coverage of another part of the range.
    pub fn merge(&mut self, other: &Coverage) {
        self.events = self.events.saturating_add(other.events);
        self.of_at_least = self.of_at_least.saturating_add(other.of_at_least);
        self.of_at_most = self.of_at_most.saturating_add(other.of_at_most);
        self.incomplete_parts = self.incomplete_parts.saturating_add(other.incomplete_parts);
    }

    /// True when the sub-aggregates hold every event of the value.
    pub fn complete(&self) -> bool {
        self.events >= self.of_at_most
    }
}

/// One dimension's sub-aggregates in a window. Equality compares what it holds (N, the
/// members and "other", a property's counts), not what it remembers to save lookups.
#[derive(Debug, Clone, Default)]
pub struct SegmentTable {
    top_n: usize,
    values: BTreeMap<String, Aggregate>,
    other: Aggregate,
    /// A property's table only: the window's count of events by the property's values (the
    /// figures count the other dimensions' values; a property's are counted here).
    counts: TopCounts,
    /// A lower bound of the window's count of the member with the fewest events (0: look).
    smallest: u64,
}

impl PartialEq for SegmentTable {
    fn eq(&self, other: &Self) -> bool {
        self.top_n == other.top_n
            && self.values == other.values
            && self.other == other.other
            && self.counts == other.counts
    }
}

impl SegmentTable {
    fn new(top_n: usize) -> Self {
        SegmentTable {
            top_n: top_n.clamp(1, MAX_SEGMENT_TOP),
            values: BTreeMap::new(),
            other: Aggregate::segment_sub(),
            counts: TopCounts::default(),
            smallest: 0,
        }
    }

    /// Accounts an event of `value` of property `dim`: into the table's own counts of the
    /// property's values, then as [`SegmentTable::add`] does with those as the window's.
    pub(crate) fn add_prop(
        &mut self,
        (dim, value): (Dimension, &str),
        ev: &Event,
        facts: &Facts<'_>,
        goals: &[super::Goal],
    ) {
        let mut counts = std::mem::take(&mut self.counts);
        counts.add(value, 1);
        self.add((dim, value), &counts, ev, facts, goals);
        self.counts = counts;
    }

    /// A property's table: the window's count of events by its values (empty for the
    /// other dimensions, whose counts are the figures').
    pub fn counts(&self) -> &TopCounts {
        &self.counts
    }

    /// Accounts an event of `value` of dimension `dim` (this table's). `window` is the
    /// window's own count of events by the values of `dim` (this event included): members
    /// and challengers are judged by it alike, as Space-Saving judges them.
    ///
    /// A value's sub-aggregate does not count its own dimension (a country's would list
    /// one country with all its events): [`SegmentTable::own_list`] puts that entry back
    /// wherever a sub-aggregate is read whole or leaves for "other".
    pub(crate) fn add(
        &mut self,
        (dim, value): (Dimension, &str),
        window: &TopCounts,
        ev: &Event,
        facts: &Facts<'_>,
        goals: &[super::Goal],
    ) {
        if let Some(sub) = self.values.get_mut(value) {
            sub.add_facts_skipping(ev, facts, goals, Some(dim));
            return;
        }
        if self.values.len() >= self.top_n {
            // The member with the fewest events in the window gives way to a value of more
            // than twice as many. Window counts only grow, so the member's count remembered
            // from the last look is a lower bound: most events of other values are settled
            // against it without a lookup.
            let challenger = match facts.key_of(dim) {
                Some(key) => window.get_hashed(value, key),
                None => window.get(value),
            };
            if challenger <= self.smallest.saturating_mul(2) {
                self.other.add_facts(ev, facts, goals);
                return;
            }
            let smallest = self
                .values
                .keys()
                .map(|k| (window.get(k), k))
                .min_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
                .map(|(n, k)| (n, k.clone()));
            match smallest {
                Some((n, k)) if challenger > n.saturating_mul(2) => {
                    if let Some(mut sub) = self.values.remove(&k) {
                        Self::own_list(&mut sub, dim, &k);
                        self.other.merge(&sub);
                    }
                }
                other => {
                    self.smallest = other.map_or(0, |(n, _)| n);
                    self.other.add_facts(ev, facts, goals);
                    return;
                }
            }
            // The new member may be the smallest now: look again next time.
            self.smallest = 0;
        }
        let mut sub = Aggregate::segment_sub();
        sub.add_facts_skipping(ev, facts, goals, Some(dim));
        self.values.insert(value.to_owned(), sub);
    }

    /// Puts back, into the sub-aggregate of `value`, the one entry of its own dimension it
    /// does not keep: `value` with all its events.
    /// (A property's sub-aggregate has no list of the property's values: nothing to put.)
    pub(crate) fn own_list(sub: &mut Aggregate, dim: Dimension, value: &str) {
        let events = sub.events;
        if let Some(list) = sub.counts_by_mut(dim) {
            list.add(value, events);
        }
    }

    fn merge(&mut self, dim: Dimension, other: &SegmentTable) {
        self.top_n = self.top_n.max(other.top_n);
        self.smallest = 0;
        self.counts.merge(&other.counts);
        for (v, sub) in &other.values {
            match self.values.get_mut(v) {
                Some(mine) => mine.merge(sub),
                None => {
                    self.values.insert(v.clone(), sub.clone());
                }
            }
        }
        self.other.merge(&other.other);
        self.fold_excess(dim);
    }

    /// Keeps the `top_n` values with the most events (then the smaller key); folds the rest
    /// into "other".
    fn fold_excess(&mut self, dim: Dimension) {
        if self.values.len() <= self.top_n {
            return;
        }
        let mut ranked: Vec<(&String, u64)> =
            self.values.iter().map(|(k, a)| (k, a.events)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let drop: Vec<String> = ranked[self.top_n..]
            .iter()
            .map(|(k, _)| (*k).clone())
            .collect();
        for k in drop {
            if let Some(mut sub) = self.values.remove(&k) {
                Self::own_list(&mut sub, dim, &k);
                self.other.merge(&sub);
            }
        }
    }

    /// The values with their own sub-aggregate.
    pub fn values(&self) -> impl Iterator<Item = (&str, &Aggregate)> {
        self.values.iter().map(|(k, a)| (k.as_str(), a))
    }

    /// The sub-aggregate of `value`, if it has one.
    pub fn get(&self, value: &str) -> Option<&Aggregate> {
        self.values.get(value)
    }

    /// The "other" bucket.
    pub fn other(&self) -> &Aggregate {
        &self.other
    }

    /// N: values with their own sub-aggregate at most.
    pub fn top_n(&self) -> usize {
        self.top_n
    }
}

impl SegmentTable {
    /// A table of N = `top_n` made of stored parts, checked: N in range, no more values
    /// than N, none twice, no nested tables; the sub-aggregates' top lists get their cap
    /// (or keep what they hold, stored under a larger one by an earlier release).
    /// A property's table comes with its `counts`.
    pub(crate) fn from_parts(
        top_n: usize,
        values: Vec<(String, Aggregate)>,
        mut other: Aggregate,
        counts: TopCounts,
    ) -> Result<SegmentTable, &'static str> {
        if !(1..=MAX_SEGMENT_TOP).contains(&top_n) || values.len() > top_n {
            return Err("segment table exceeds its size");
        }
        let mut t = SegmentTable::new(top_n);
        t.counts = counts;
        for (k, mut sub) in values {
            if !sub.segments.is_empty() {
                return Err("nested segments");
            }
            sub.set_top_cap_keeping(SEGMENT_TOP_CAP);
            if t.values.insert(k, sub).is_some() {
                return Err("duplicate segment value");
            }
        }
        if !other.segments.is_empty() {
            return Err("nested segments");
        }
        other.set_top_cap_keeping(SEGMENT_TOP_CAP);
        t.other = other;
        Ok(t)
    }
}

/// The segment tables of a window, one per dimension.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segments {
    tables: BTreeMap<Dimension, SegmentTable>,
}

impl Segments {
    /// True when no dimension has a table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The table of `dim`, if this window has one.
    pub fn table(&self, dim: Dimension) -> Option<&SegmentTable> {
        self.tables.get(&dim)
    }

    /// Every sub-aggregate of every table (the values' and "other").
    pub(crate) fn subs_mut(&mut self) -> impl Iterator<Item = &mut Aggregate> {
        self.tables
            .values_mut()
            .flat_map(|t| t.values.values_mut().chain(std::iter::once(&mut t.other)))
    }

    /// Every table, by dimension.
    pub(crate) fn tables(&self) -> impl Iterator<Item = (Dimension, &SegmentTable)> {
        self.tables.iter().map(|(d, t)| (*d, t))
    }

    /// Sets the table of `dim`; false when it had one already.
    pub(crate) fn insert(&mut self, dim: Dimension, table: SegmentTable) -> bool {
        self.tables.insert(dim, table).is_none()
    }

    /// The table of `dim`, made with `top_n` if there is none yet.
    pub(crate) fn table_mut(&mut self, dim: Dimension, top_n: usize) -> &mut SegmentTable {
        self.tables
            .entry(dim)
            .or_insert_with(|| SegmentTable::new(top_n))
    }

    /// Folds `other` into `self` (see the module docs).
    pub fn merge(&mut self, other: &Segments) {
        for (dim, t) in &other.tables {
            match self.tables.get_mut(dim) {
                Some(mine) => mine.merge(*dim, t),
                None => {
                    self.tables.insert(*dim, t.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
