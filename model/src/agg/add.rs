//! Counting one event into an [`Aggregate`]: [`Aggregate::add`] and
//! [`Aggregate::add_with`], and the facts worked out once per event (hashes of the visitor
//! and session, the referrer's domain, the goals it completes) that the aggregate and its
//! segment sub-aggregates share.
//!
//! Contract: [`Aggregate::add_with`] counts every event by type, visitor, session, referrer,
//! referrer domain (`sources`), country and device, page views (type `pageview`) by URL,
//! the completions and converting visitors of each goal of its [`AggSpec`], and the event
//! into the segment tables of the spec's dimensions. [`Aggregate::add`] is the same without
//! goals and segments. A segment's sub-aggregate does not count its own dimension.

use std::borrow::Cow;
use std::sync::Arc;

use super::top::key_hash;
use super::{referrer_domain, AggSpec, Aggregate, Dimension, Goal};
use crate::event::Event;

/// What is worked out once per event and used by the aggregate and its sub-aggregates:
/// the hashes of the visitor and the session (for the sketches), the referrer's domain, the
/// goals completed, and the [`key_hash`] of every field a top list counts, so the top-level
/// lists and those of every segment's sub-aggregate share one hashing of each field.
pub(crate) struct Facts<'e> {
    visitor: u64,
    session: Option<u64>,
    /// The referrer's domain.
    pub(crate) domain: Option<Cow<'e, str>>,
    /// Bit `i`: the event completes goal `i` of the spec.
    goals: u32,
    kind_key: u64,
    url_key: u64,
    referrer_key: u64,
    country_key: u64,
    device_key: u64,
    domain_key: u64,
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
        let domain = ev.referrer.as_deref().and_then(referrer_domain);
        let key = |s: Option<&str>| s.map_or(0, key_hash);
        Facts {
            visitor: hash(&ev.visitor),
            session: ev.session.as_deref().map(hash),
            goals: mask,
            kind_key: key_hash(&ev.kind),
            url_key: if ev.kind == "pageview" {
                key_hash(&ev.url)
            } else {
                0
            },
            referrer_key: key(ev.referrer.as_deref()),
            country_key: key(ev.country.as_deref()),
            device_key: key(ev.device.as_deref()),
            domain_key: key(domain.as_deref()),
            domain,
        }
    }

    /// The [`key_hash`] of the event's value of `dim` (not worked out for a property).
    pub(crate) fn key_of(&self, dim: Dimension) -> Option<u64> {
        match dim {
            Dimension::Country => Some(self.country_key),
            Dimension::Device => Some(self.device_key),
            Dimension::Type => Some(self.kind_key),
            Dimension::Referrer => Some(self.domain_key),
            Dimension::Prop(_) => None,
        }
    }
}

impl Aggregate {
    /// Accounts one event (no goals, no segments: see [`Aggregate::add_with`]).
    pub fn add(&mut self, ev: &Event) {
        self.add_with(ev, &AggSpec::NONE);
    }

    /// Accounts one event, with the goals and segments of `spec`.
    pub fn add_with(&mut self, ev: &Event, spec: &AggSpec) {
        let facts = Facts::of(ev, &spec.goals);
        if spec.max_sites > 0 && (ev.site.is_some() || !self.sites.is_empty()) {
            self.add_site(ev, spec, |a| a.add_counted(ev, &facts, spec));
        }
        self.add_counted(ev, &facts, spec);
    }

    /// Counts one event whose [`Facts`] are known into the figures, goals and segments
    /// (not into the sites).
    fn add_counted(&mut self, ev: &Event, facts: &Facts<'_>, spec: &AggSpec) {
        self.add_facts(ev, facts, &spec.goals);
        for &dim in &spec.segments.dimensions {
            let value = match dim {
                Dimension::Referrer => facts.domain.clone(),
                _ => dim.value_of(ev),
            };
            if let Some(v) = value {
                // Disjoint fields: the table is changed while the window's counts are read.
                let window = match dim {
                    Dimension::Country => &self.countries,
                    Dimension::Device => &self.devices,
                    Dimension::Type => &self.by_type,
                    Dimension::Referrer => &self.sources,
                    Dimension::Prop(_) => {
                        Arc::make_mut(&mut self.segments)
                            .table_mut(dim, spec.segments.top_n)
                            .add_prop((dim, &v), ev, facts, &spec.goals);
                        continue;
                    }
                };
                Arc::make_mut(&mut self.segments)
                    .table_mut(dim, spec.segments.top_n)
                    .add((dim, &v), window, ev, facts, &spec.goals);
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
            self.by_type.add_hashed(&ev.kind, facts.kind_key, 1);
        }
        self.visitors.insert_hash(facts.visitor);
        if let Some(s) = facts.session {
            self.sessions.insert_hash(s);
        }
        if ev.kind == "pageview" {
            self.urls.add_hashed(&ev.url, facts.url_key, 1);
        }
        if let Some(r) = &ev.referrer {
            self.referrers.add_hashed(r, facts.referrer_key, 1);
        }
        if let Some(c) = ev
            .country
            .as_ref()
            .filter(|_| skip != Some(Dimension::Country))
        {
            self.countries.add_hashed(c, facts.country_key, 1);
        }
        if let Some(d) = ev
            .device
            .as_ref()
            .filter(|_| skip != Some(Dimension::Device))
        {
            self.devices.add_hashed(d, facts.device_key, 1);
        }
        if let Some(d) = facts
            .domain
            .as_ref()
            .filter(|_| skip != Some(Dimension::Referrer))
        {
            self.sources.add_hashed(d, facts.domain_key, 1);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::{ev, spec};

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
