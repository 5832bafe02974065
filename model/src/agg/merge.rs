//! Merging aggregates and reading a segment out of one: [`Aggregate::merge`],
//! [`Aggregate::merge_figures`], [`Aggregate::segment`] and [`Aggregate::fold_segment`].
//!
//! Contract:
//! - [`Aggregate::merge`] makes [`Aggregate`] a commutative monoid with [`Aggregate::new`]
//!   as the identity: merging partial aggregates of any split of an event stream gives the
//!   same HyperLogLog registers, event totals, goal counts and (while exact) the same top
//!   lists and segment tables as one pass. Above the capacities totals stay exact and
//!   counts stay within the bounds of [`super::top`] and [`super::segment`].
//! - [`Aggregate::merge_figures`] merges everything but the segment tables.
//! - [`Aggregate::fold_segment`] adds what a filter selects, and what it covers of the
//!   value's events ([`Coverage`]): never more than the value's events.

use std::sync::Arc;

use super::{Aggregate, Coverage, Filter};

impl Aggregate {
    /// Folds `other` into `self`, segment tables included.
    pub fn merge(&mut self, other: &Aggregate) {
        self.merge_sites(other);
        self.merge_figures(other);
        if !other.segments.is_empty() {
            Arc::make_mut(&mut self.segments).merge(&other.segments);
        }
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
    /// covers of the value's events into `coverage` (see [`segment`](super::segment)).
    pub fn fold_segment(&self, filter: &Filter, into: &mut Aggregate, coverage: &mut Coverage) {
        let sub = self.segment(filter);
        if let Some(s) = sub {
            into.merge_figures(s);
            if !filter.is_other() {
                // A value's sub-aggregate does not keep its own dimension's counts.
                if let Some(list) = into.counts_by_mut(filter.dimension) {
                    list.add(&filter.value, s.events);
                }
            }
        }
        let covered = sub.map_or(0, |s| s.events);
        let (at_least, at_most) = if filter.is_other() {
            (covered, covered)
        } else {
            let (c, error) = self
                .counts_by(filter.dimension)
                .map_or((0, 0), |l| (l.get(&filter.value), l.error_bound()));
            (c.max(covered), c.saturating_add(error).max(covered))
        };
        coverage.merge(&Coverage {
            events: covered,
            of_at_least: at_least,
            of_at_most: at_most,
            incomplete_parts: u64::from(covered < at_most),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::{aggregate, aggregate_with, ev, spec, wide_events};
    use crate::agg::{
        AggSpec, Dimension, Hll, SegmentSpec, TopCounts, HLL_SUB_PRECISION, OTHER, SEGMENT_TOP_CAP,
        TOP_CAP,
    };
    use crate::event::Event;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

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
                    want.fold_hll_to(HLL_SUB_PRECISION);
                    prop_assert_eq!(&got, &want, "{}", f);
                }
            }
            for g in &spec.goals {
                let done: Vec<&Event> = events.iter().filter(|e| g.matches(e)).collect();
                let counts = merged.goals.get(&g.name).cloned().unwrap_or_default();
                prop_assert_eq!(counts.completions, done.len() as u64);
                let mut h = Hll::with_precision(HLL_SUB_PRECISION);
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
}
