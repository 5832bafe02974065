//! Sites: every figure of one site, counted exactly, beside the whole traffic.
//!
//! Contract:
//! - An event's `site` ([`Event::site`]) names the site it belongs to. An [`Aggregate`]
//!   counted with [`AggSpec::max_sites`] > 0 keeps, in its [`Sites`], for each site of its
//!   events a whole aggregate of that site's events (goals and segment tables included, at
//!   full precision): the aggregate a Pulseboard that only ever saw that site would have.
//!   Events without a site are in the whole traffic and in no site.
//! - Lean when there is one site: while every event of an aggregate is of the same site,
//!   [`Sites`] holds only its name (the aggregate's own figures are the site's); the first
//!   event of another site (or without one) makes the copy. An aggregate of events without
//!   sites holds nothing.
//! - At most `max_sites` sites per aggregate have their own: the first ones seen; a later
//!   site's events go to "other sites" ([`OTHER_SITES`]), which [`Sites::overflow`] reports.
//!   Merging keeps every site while at most `max_sites` meet, else those with the most
//!   events (then the smaller name), folding the others into "other sites". So with no more
//!   sites than the bound, merge is commutative and associative and any split merges to the
//!   one-pass result; beyond it, totals stay exact and every event of a site is either in
//!   its aggregate or in "other sites".
//! - [`Aggregate::site`] reads one site's aggregate (or "other sites"'), whatever the form.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{AggSpec, Aggregate};
use crate::event::Event;

/// The name that selects the events of the sites beyond the bound.
pub const OTHER_SITES: &str = "(other sites)";
/// Default `--max-sites`.
pub const DEFAULT_MAX_SITES: usize = 10;
/// Largest `--max-sites`.
pub const MAX_SITES: usize = 200;

/// What a reader of one site names it by ([`super::Keep::Site`]): a hash of its name.
pub fn site_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// The sites of an aggregate (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sites {
    /// Every event of the aggregate is of this site.
    sole: Option<String>,
    /// Each site's own aggregate (empty while `sole` is set).
    table: BTreeMap<String, Aggregate>,
    /// The events of sites beyond the bound.
    other: Option<Box<Aggregate>>,
    /// The bound this table was counted with (0: not known yet).
    max: usize,
}

impl Sites {
    /// Holds no site.
    pub fn is_empty(&self) -> bool {
        self.sole.is_none() && self.table.is_empty() && self.other.is_none()
    }

    /// The one site every event is of, when so.
    pub fn sole(&self) -> Option<&str> {
        self.sole.as_deref()
    }

    /// Each site with its own aggregate, by name (the sole site's is the aggregate itself:
    /// see [`Aggregate::site`]).
    pub fn table(&self) -> impl Iterator<Item = (&str, &Aggregate)> {
        self.table.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The events of the sites beyond the bound, if any came.
    pub fn overflow(&self) -> Option<&Aggregate> {
        self.other.as_deref()
    }

    /// The bound counted with.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Each site's own aggregate and "other sites"', to change in place.
    pub fn subs_mut(&mut self) -> impl Iterator<Item = &mut Aggregate> {
        self.table.values_mut().chain(self.other.as_deref_mut())
    }

    /// Built from stored parts; `Err` says what is wrong with them.
    pub fn from_parts(
        sole: Option<String>,
        table: Vec<(String, Aggregate)>,
        other: Option<Aggregate>,
        max: usize,
    ) -> Result<Sites, &'static str> {
        if sole.is_some() && (!table.is_empty() || other.is_some()) {
            return Err("a sole site beside a site table");
        }
        if table.len() > max.max(1) || max > MAX_SITES {
            return Err("more sites than the bound");
        }
        let n = table.len();
        let table: BTreeMap<String, Aggregate> = table.into_iter().collect();
        if table.len() != n {
            return Err("a site twice");
        }
        if table
            .values()
            .chain(other.iter())
            .any(|a| !a.sites.is_empty())
        {
            return Err("sites within a site");
        }
        Ok(Sites {
            sole,
            table,
            other: other.map(Box::new),
            max,
        })
    }
}

impl Aggregate {
    /// The aggregate of `site`'s events ([`OTHER_SITES`]: of the sites beyond the bound);
    /// `None` when it has none here.
    pub fn site(&self, site: &str) -> Option<&Aggregate> {
        if self.sites.sole.as_deref() == Some(site) {
            return Some(self);
        }
        if site == OTHER_SITES {
            return self.sites.other.as_deref();
        }
        self.sites.table.get(site)
    }

    /// The sites with their events, by name (the sole site, or the table's).
    pub fn site_events(&self) -> Vec<(&str, u64)> {
        match &self.sites.sole {
            Some(s) => vec![(s.as_str(), self.events)],
            None => self
                .sites
                .table
                .iter()
                .map(|(k, a)| (k.as_str(), a.events))
                .collect(),
        }
    }

    /// The sites in table form, as their own: a sole site's aggregate is a copy of this
    /// one's (figures and tables). For putting this aggregate's sites beside fresher figures.
    pub fn sites_detached(&self) -> Sites {
        self.sites_as_table().into_owned()
    }

    /// A copy without the sites: what a site's own aggregate is made of.
    fn without_sites(&self) -> Aggregate {
        let mut a = self.clone();
        a.sites = Arc::default();
        a
    }

    /// The sites in table form: the sole site's aggregate copied out (see the module docs).
    fn sites_as_table(&self) -> Cow<'_, Sites> {
        match &self.sites.sole {
            None => Cow::Borrowed(&self.sites),
            Some(s) => Cow::Owned(Sites {
                sole: None,
                table: BTreeMap::from([(s.clone(), self.without_sites())]),
                other: None,
                max: self.sites.max,
            }),
        }
    }

    /// Counts `ev` into the sites (before the aggregate's own figures take it): the
    /// sole site, or the event's site's own aggregate, or "other sites".
    pub(super) fn add_site(&mut self, ev: &Event, spec: &AggSpec, add: impl Fn(&mut Aggregate)) {
        if self.events == 0 && self.sites.is_empty() {
            if let Some(s) = &ev.site {
                let sites = Arc::make_mut(&mut self.sites);
                sites.sole = Some(s.clone());
                sites.max = spec.max_sites;
            }
            return;
        }
        if self.sites.sole.is_some() && self.sites.sole == ev.site {
            return;
        }
        if self.sites.sole.is_some() {
            let table = self.sites_as_table().into_owned();
            self.sites = Arc::new(table);
        }
        let Some(site) = &ev.site else {
            return;
        };
        let sites = Arc::make_mut(&mut self.sites);
        sites.max = sites.max.max(spec.max_sites);
        if let Some(a) = sites.table.get_mut(site) {
            add(a);
        } else if sites.table.len() < sites.max {
            let mut a = Aggregate::new();
            add(&mut a);
            sites.table.insert(site.clone(), a);
        } else {
            add(sites.other.get_or_insert_with(Box::default));
        }
    }

    /// Merges the sites of `other` into this aggregate's, before the figures are merged
    /// (a sole site's copy is made of the figures as they were).
    pub(super) fn merge_sites(&mut self, other: &Aggregate) {
        if other.events == 0 && other.sites.is_empty() {
            return;
        }
        if self.events == 0 && self.sites.is_empty() {
            self.sites = other.sites.clone();
            return;
        }
        if self.sites.sole.is_some() && self.sites.sole == other.sites.sole {
            return;
        }
        if self.sites.is_empty() && other.sites.is_empty() {
            return;
        }
        let mut mine = self.sites_as_table().into_owned();
        let theirs = other.sites_as_table();
        mine.max = mine.max.max(theirs.max);
        for (name, a) in &theirs.table {
            match mine.table.get_mut(name) {
                Some(m) => m.merge(a),
                None => {
                    mine.table.insert(name.clone(), a.clone());
                }
            }
        }
        if let Some(o) = &theirs.other {
            mine.other.get_or_insert_with(Box::default).merge(o);
        }
        while mine.table.len() > mine.max.max(1) {
            // The site with the fewest events (then the larger name) goes to "other sites".
            let Some(smallest) = mine
                .table
                .iter()
                .min_by(|(ka, a), (kb, b)| a.events.cmp(&b.events).then(kb.cmp(ka)))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(a) = mine.table.remove(&smallest) {
                mine.other.get_or_insert_with(Box::default).merge(&a);
            }
        }
        self.sites = Arc::new(mine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::{spec, wide_events};
    use proptest::prelude::*;

    fn with_sites(events: &[Event], sites: &[&str]) -> Vec<Event> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut e = e.clone();
                // A visitor stays on one site; every 13th event has none.
                e.site = (i % 13 != 0).then(|| sites[e.visitor.len() % sites.len()].to_owned());
                e
            })
            .collect()
    }

    fn counted(events: &[Event], max_sites: usize) -> Aggregate {
        counted_with(
            events,
            &AggSpec {
                max_sites,
                ..spec(5)
            },
        )
    }

    fn counted_with(events: &[Event], spec: &AggSpec) -> Aggregate {
        let mut a = Aggregate::new();
        for e in events {
            a.add_with(e, spec);
        }
        a
    }

    /// What a Pulseboard that only ever saw `site` counts.
    fn alone(events: &[Event], site: &str) -> Aggregate {
        let only: Vec<Event> = events
            .iter()
            .filter(|e| e.site.as_deref() == Some(site))
            .cloned()
            .collect();
        let mut a = counted(&only, 10);
        a.sites = Arc::default();
        a
    }

    fn site_of(a: &Aggregate, site: &str) -> Aggregate {
        let mut s = a.site(site).cloned().unwrap_or_default();
        s.sites = Arc::default();
        s
    }

    #[test]
    fn each_sites_figures_are_those_of_a_pulseboard_that_saw_only_it() {
        let events = with_sites(
            &wide_events(3, 4_000),
            &["a.example", "b.example", "c.example"],
        );
        let all = counted(&events, 10);
        for site in ["a.example", "b.example", "c.example"] {
            assert_eq!(site_of(&all, site), alone(&events, site), "{site}");
        }
        let in_sites: u64 = all.site_events().iter().map(|(_, n)| n).sum();
        let siteless = events.iter().filter(|e| e.site.is_none()).count() as u64;
        assert_eq!(in_sites + siteless, all.events);
        assert!(all.sites.overflow().is_none());
        assert_eq!(all.site("d.example"), None);
    }

    #[test]
    fn one_site_costs_a_name_and_its_figures_are_the_aggregates() {
        let mut events = wide_events(4, 500);
        for e in &mut events {
            e.site = Some("only.example".into());
        }
        let a = counted(&events, 10);
        assert_eq!(a.sites.sole(), Some("only.example"));
        assert_eq!(a.sites.table().count(), 0);
        assert_eq!(site_of(&a, "only.example"), alone(&events, "only.example"));
        // Bytes: a name more than the same aggregate without a site.
        let mut plain = a.clone();
        plain.sites = Arc::default();
        let grown = a.to_bytes().len() - plain.to_bytes().len();
        assert!(grown <= 3 + "only.example".len(), "{grown} bytes");
        // Events without a site hold nothing.
        let none = counted(&wide_events(4, 500), 10);
        assert!(none.sites.is_empty());
    }

    #[test]
    fn sites_beyond_the_bound_go_to_other_sites_and_are_reported() {
        let names = ["s0", "s1", "s2", "s3", "s4"];
        let events = with_sites(&wide_events(5, 2_000), &names);
        let a = counted(&events, 3);
        assert_eq!(a.sites.table().count(), 3);
        let other = a.sites.overflow().expect("other sites");
        let kept: u64 = a.site_events().iter().map(|(_, n)| n).sum();
        let siteless = events.iter().filter(|e| e.site.is_none()).count() as u64;
        assert_eq!(kept + other.events + siteless, a.events);
        assert_eq!(a.site(OTHER_SITES).map(|o| o.events), Some(other.events));
        // The first three sites seen keep theirs, exactly.
        for (name, _) in a.site_events() {
            assert_eq!(site_of(&a, name), alone(&events, name));
        }
    }

    #[test]
    fn a_row_with_sites_reads_back_whole_or_in_part() {
        use crate::agg::{Dimension, Keep};
        let events = with_sites(&wide_events(6, 1_500), &["a.example", "b.example"]);
        let a = counted(&events, 10);
        let bytes = a.to_bytes();
        assert_eq!(bytes[0], 7, "a row with sites");
        assert_eq!(Aggregate::from_bytes(&bytes).as_ref(), Ok(&a));
        let figures = Aggregate::decode(&bytes, Keep::Figures).expect("figures");
        assert!(figures.sites.is_empty() && figures.segments.is_empty());
        assert_eq!(figures, a.figures_only());
        let sites = Aggregate::decode(&bytes, Keep::Sites).expect("sites");
        assert!(sites.segments.is_empty());
        let one = Aggregate::decode(&bytes, Keep::SiteDimension(Dimension::Country)).expect("one");
        for name in ["a.example", "b.example"] {
            let whole = a.site(name).expect("site");
            assert_eq!(sites.site(name).cloned(), Some(whole.figures_only()));
            let got = one.site(name).expect("site");
            assert_eq!(got.segments.tables().count(), 1);
            assert_eq!(
                got.segments.table(Dimension::Country),
                whole.segments.table(Dimension::Country)
            );
        }
        // A segment of the whole traffic with the sites listed: that table and the sites'
        // figures, nothing more.
        let listing = Aggregate::decode(&bytes, Keep::DimensionAndSites(Dimension::Country))
            .expect("listing");
        assert_eq!(listing.segments.tables().count(), 1);
        assert_eq!(
            listing.segments.table(Dimension::Country),
            a.segments.table(Dimension::Country)
        );
        assert_eq!(listing.sites, sites.sites);
        // One site's read skips the others' rows unread.
        let one = Aggregate::decode(
            &bytes,
            Keep::Site(site_hash("b.example"), Some(Dimension::Country)),
        )
        .expect("one site");
        assert_eq!(one.site("a.example"), None, "skipped");
        let b = one.site("b.example").expect("the site read");
        let whole_b = a.site("b.example").expect("site");
        assert_eq!(b.events, whole_b.events);
        assert_eq!(
            b.segments.table(Dimension::Country),
            whole_b.segments.table(Dimension::Country)
        );
        // A row of one sole site: its own tables are the site's, read with the site's.
        let mut only = events.clone();
        only.retain(|e| e.site.as_deref() == Some("a.example"));
        let sole = counted(&only, 10).to_bytes();
        let read = Aggregate::decode(&sole, Keep::SiteDimension(Dimension::Country)).expect("sole");
        let site = read.site("a.example").expect("the sole site");
        assert_eq!(
            site.segments.table(Dimension::Country),
            counted(&only, 10).segments.table(Dimension::Country)
        );
        assert!(site.segments.table(Dimension::Country).is_some());
        // Cut anywhere: an error, never a panic.
        let step = (bytes.len() / 300).max(1);
        for cut in (0..bytes.len())
            .step_by(step)
            .chain(bytes.len() - 40..bytes.len())
        {
            assert!(
                Aggregate::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_split_merges_to_the_one_pass_sites(
            cuts in proptest::collection::vec(0usize..600, 0..5),
            seed in any::<u64>(),
            n_sites in 1usize..4,
        ) {
            let names = ["x.example", "y.example", "z.example"];
            let events = with_sites(&wide_events(seed % 7, 600), &names[..n_sites]);
            // Without segments: their tables keep 20 URLs each, so over these many URLs a
            // merge is only within bounds (see `segment`); the sites' own part is exact.
            let spec = AggSpec {
                max_sites: 10,
                segments: crate::agg::SegmentSpec::NONE,
                ..spec(5)
            };
            let whole = counted_with(&events, &spec);
            let mut cuts: Vec<usize> = cuts;
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([events.len()]) {
                parts.push(counted_with(&events[prev..c.max(prev)], &spec));
                prev = c.max(prev);
            }
            let mut rng = fastrand::Rng::with_seed(seed);
            while parts.len() > 1 {
                let b = parts.swap_remove(rng.usize(0..parts.len()));
                let i = rng.usize(0..parts.len());
                parts[i].merge(&b);
            }
            let merged = parts.pop().unwrap_or_default();
            prop_assert_eq!(&merged.sites, &whole.sites);
            let read = Aggregate::from_bytes(&merged.to_bytes());
            prop_assert_eq!(read.as_ref(), Ok(&whole));
            prop_assert_eq!(merged, whole);
        }
    }
}
