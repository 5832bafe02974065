//! Custom properties over a range: the top values of a `--property` key with their events
//! and visitors, as the summary lists them (`properties`) and the Properties panel shows
//! them.
//!
//! Contract:
//! - A property is a segment dimension (`prop.KEY`): each window keeps, per key, the
//!   window's counts of its values and a sub-aggregate for each of its top `--segment-top`
//!   values plus "(other)" (`pulseboard_model::agg::segment`). A view with
//!   [`View::table`](super::segments::View::table) reads that one table of each row (of the view's site, or of the
//!   whole traffic) and [`TablePart`] merges them over the range (a segment's table the
//!   same way, with the figures' counts of its dimension: an export's breakdown).
//! - A value's events are the merged counts (exact while a window saw at most 1,000
//!   values of the key); its visitors are the HyperLogLog merge of its own sub-aggregates,
//!   which hold all its events unless a window kept some in "(other)": then the value
//!   says `complete: false` and its visitors are a lower bound.
//! - A filtered view has no property tables (a segment's sub-aggregate keeps none): the
//!   summary lists no properties with a filter.

use std::collections::BTreeMap;

use pulseboard_model::agg::{Hll, SegmentTable, TopCounts, HLL_SUB_PRECISION};
use pulseboard_model::proto::{PropertyFigures, PropertyValue};

/// One dimension's table merged over windows (and partitions): a property's, or a
/// segment's (for an export).
#[derive(Debug, Clone, Default)]
pub struct TablePart {
    /// The windows' counts of the values (a property's table's own, a segment's the
    /// figures' list of its dimension).
    counts: TopCounts,
    /// Each value's own figures: events and visitors.
    values: BTreeMap<String, (u64, Hll)>,
    /// The "(other)" buckets': events and visitors (a merge keeps the lower precision).
    other: (u64, Hll),
}

impl TablePart {
    /// Adds a window's table, with the window's counts of the dimension's values.
    pub fn add(&mut self, t: &SegmentTable, counts: &TopCounts) {
        self.counts.merge(counts);
        for (v, sub) in t.values() {
            let (events, visitors) = self
                .values
                .entry(v.to_owned())
                .or_insert_with(|| (0, Hll::with_precision(HLL_SUB_PRECISION)));
            *events = events.saturating_add(sub.events);
            visitors.merge(&sub.visitors);
        }
        self.other.0 = self.other.0.saturating_add(t.other().events);
        self.other.1.merge(&t.other().visitors);
    }

    /// Adds another part (windows of a range).
    pub fn merge(&mut self, other: &TablePart) {
        self.counts.merge(&other.counts);
        for (v, (e, h)) in &other.values {
            let (events, visitors) = self
                .values
                .entry(v.clone())
                .or_insert_with(|| (0, Hll::with_precision(HLL_SUB_PRECISION)));
            *events = events.saturating_add(*e);
            visitors.merge(h);
        }
        self.other.0 = self.other.0.saturating_add(other.other.0);
        self.other.1.merge(&other.other.1);
    }

    /// The figures of property (or dimension) `key`: its `top` values with most events.
    pub fn figures(&self, key: &str, top: usize) -> PropertyFigures {
        let values: Vec<PropertyValue> = self
            .counts
            .top(top)
            .into_iter()
            .map(|(value, events)| {
                let (own, visitors) = self
                    .values
                    .get(&value)
                    .map_or((0, 0), |(e, h)| (*e, h.estimate()));
                PropertyValue {
                    value,
                    events,
                    unique_visitors: visitors,
                    complete: own >= events,
                }
            })
            .collect();
        let listed: u64 = values.iter().map(|v| v.events).sum();
        PropertyFigures {
            key: key.to_owned(),
            events: self.counts.total(),
            other_events: self.counts.total().saturating_sub(listed),
            other_visitors: self.other.1.estimate(),
            complete: values.iter().all(|v| v.complete),
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::prop::PropKey;
    use pulseboard_model::agg::{AggSpec, Aggregate, Dimension, SegmentSpec};
    use pulseboard_model::Event;

    #[test]
    fn a_range_lists_the_top_values_with_exact_events_and_says_when_visitors_are_partial() {
        let key = PropKey::register("plan").expect("plan");
        let spec = AggSpec {
            segments: SegmentSpec {
                dimensions: vec![Dimension::Prop(key)],
                top_n: 2,
            },
            ..Default::default()
        };
        let ev = |visitor: &str, plan: &str| Event {
            ts: 1_795_515_330_123,
            kind: "pageview".into(),
            visitor: visitor.into(),
            url: "/".into(),
            props: vec![("plan".into(), plan.into())],
            ..Default::default()
        };
        // Window 1: free ×3 (2 visitors), pro ×2; window 2: team first, then pro ×1, free ×1.
        let mut w1 = Aggregate::new();
        for (v, p) in [
            ("a", "free"),
            ("b", "free"),
            ("a", "free"),
            ("c", "pro"),
            ("d", "pro"),
        ] {
            w1.add_with(&ev(v, p), &spec);
        }
        let mut w2 = Aggregate::new();
        for (v, p) in [("e", "team"), ("f", "team"), ("c", "pro"), ("g", "free")] {
            w2.add_with(&ev(v, p), &spec);
        }
        let mut part = TablePart::default();
        for w in [&w1, &w2] {
            let dim = Dimension::Prop(key);
            let mut one = TablePart::default();
            one.add(
                w.segments.table(dim).expect("table"),
                w.counts_by(dim).expect("counts"),
            );
            part.merge(&one);
        }
        let f = part.figures("plan", 10);
        assert_eq!(f.key, "plan");
        assert_eq!(f.events, 9);
        let got: Vec<(&str, u64, u64, bool)> = f
            .values
            .iter()
            .map(|v| (v.value.as_str(), v.events, v.unique_visitors, v.complete))
            .collect();
        // In window 2 the table held team and pro: free's one event there went to "other".
        assert_eq!(
            got,
            vec![
                ("free", 4, 2, false),
                ("pro", 3, 2, true),
                ("team", 2, 2, true)
            ]
        );
        assert!(!f.complete);
        assert_eq!((f.other_events, f.other_visitors), (0, 1));
        let top1 = part.figures("plan", 1);
        assert_eq!(top1.other_events, 5, "pro and team beyond top=1");
    }
}
