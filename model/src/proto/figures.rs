//! What a window, or a range of windows, counted: the [`Figures`] a
//! [`WindowView`](super::WindowView) and a [`Summary`](super::Summary) share (flattened
//! into their own JSON object), each goal's [`GoalFigures`], and the [`SegmentNote`] of a
//! view filtered by a segment.
//!
//! Contract:
//! - One definition of what a count, a unique or a top list means, built from an
//!   [`Aggregate`] by [`Figures::from_aggregate`] or [`Figures::with_goals`].
//! - Top lists ([`Count`]) are ordered by count descending, then key ascending, and
//!   `approximate` is true when any of the underlying counters left exact mode.
//! - Goals list the configured goals in their order, with zeros where a window or range
//!   has no completion; conversion rate = converting visitors ÷ unique visitors, both
//!   HyperLogLog estimates of the same window or range.
//! - A [`SegmentNote`] says whether a filtered view holds every event of the value
//!   (`complete`) or is a lower bound.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agg::{conversion_rate, Aggregate, Coverage, Goal, TopCounts};

/// One `(key, count)` entry of a top list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Count {
    /// The counted key (URL, referrer, country, ...).
    pub key: String,
    /// Its count (a lower bound when approximate).
    pub count: u64,
}

fn counts(t: &TopCounts, n: usize) -> Vec<Count> {
    t.top(n)
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect()
}

fn type_map(t: &TopCounts) -> BTreeMap<String, u64> {
    t.sorted_entries()
        .into_iter()
        .map(|(k, c)| (k.to_owned(), c))
        .collect()
}

/// What a window, or a range of windows, counted: events, uniques and top lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    /// Number of events.
    pub events: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// Estimated distinct visitors (over a range: from the HyperLogLog merge, never a sum).
    pub unique_visitors: u64,
    /// Estimated distinct sessions (over a range: from the HyperLogLog merge).
    pub unique_sessions: u64,
    /// Most viewed URLs (page views).
    pub top_urls: Vec<Count>,
    /// Most common referrers.
    pub top_referrers: Vec<Count>,
    /// Events by country, largest first.
    pub countries: Vec<Count>,
    /// Events by device, largest first.
    pub devices: Vec<Count>,
    /// True when any top list is approximate.
    pub approximate: bool,
    /// The goals: completions, converting visitors, conversion rate.
    #[serde(default)]
    pub goals: Vec<GoalFigures>,
}

/// One goal's figures in a window or over a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoalFigures {
    /// The goal's name.
    pub name: String,
    /// Events that completed it.
    pub completions: u64,
    /// Distinct visitors who completed it (HyperLogLog estimate; over a range a merge).
    pub converting_visitors: u64,
    /// `converting_visitors / unique_visitors` of the same window or range, from 0 to 1.
    pub conversion_rate: f64,
}

impl GoalFigures {
    /// The figures of the goal `name` in `agg` (zeros when it has no completion there).
    pub fn of(agg: &Aggregate, name: &str) -> Self {
        let (completions, converting) = agg
            .goals
            .get(name)
            .map_or((0, 0), |g| (g.completions, g.visitors.estimate()));
        GoalFigures {
            name: name.to_owned(),
            completions,
            converting_visitors: converting,
            conversion_rate: conversion_rate(converting, agg.visitors.estimate()),
        }
    }
}

impl Figures {
    /// The figures of `agg` with top lists cut to `top_n` entries, and the goals it holds
    /// completions of (by name).
    pub fn from_aggregate(agg: &Aggregate, top_n: usize) -> Self {
        let mut f = Figures::base(agg, top_n);
        f.goals = agg.goals.keys().map(|n| GoalFigures::of(agg, n)).collect();
        f
    }

    /// The figures of `agg` with top lists cut to `top_n` entries and the figures of each of
    /// `goals`, in their order.
    pub fn with_goals(agg: &Aggregate, top_n: usize, goals: &[Goal]) -> Self {
        let mut f = Figures::base(agg, top_n);
        f.goals = goals
            .iter()
            .map(|g| GoalFigures::of(agg, &g.name))
            .collect();
        f
    }

    fn base(agg: &Aggregate, top_n: usize) -> Self {
        Figures {
            events: agg.events,
            by_type: type_map(&agg.by_type),
            unique_visitors: agg.visitors.estimate(),
            unique_sessions: agg.sessions.estimate(),
            top_urls: counts(&agg.urls, top_n),
            top_referrers: counts(&agg.referrers, top_n),
            countries: counts(&agg.countries, top_n),
            devices: counts(&agg.devices, top_n),
            approximate: !agg.is_exact(),
            goals: Vec::new(),
        }
    }
}

/// What a view of one site (`site=`) holds of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SiteNote {
    /// The site shown (`(other sites)`: the sites beyond `--max-sites`).
    pub site: String,
    /// True unless some windows counted more sites than `--max-sites` and this one had no
    /// figures of its own there: its events of those windows, if any, are then counted
    /// under "(other sites)", and the figures are a lower bound.
    pub complete: bool,
    /// The events of "(other sites)" in those windows: at most this many of the site's are
    /// missing.
    pub missing_at_most: u64,
}

/// One site's figures over a range (see [`crate::agg::Sites`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SiteFigures {
    /// The site's name (the events' `site`); `(other sites)` for the sites beyond
    /// `--max-sites`.
    pub site: String,
    /// Its events.
    pub events: u64,
    /// Its distinct visitors (HyperLogLog, as the whole traffic's).
    pub unique_visitors: u64,
    /// Its distinct sessions.
    pub unique_sessions: u64,
}

impl SiteFigures {
    /// The figures of `site`'s aggregate.
    pub fn of(site: &str, agg: &Aggregate) -> Self {
        SiteFigures {
            site: site.to_owned(),
            events: agg.events,
            unique_visitors: agg.visitors.estimate(),
            unique_sessions: agg.sessions.estimate(),
        }
    }
}

/// What a view filtered by a segment holds of the value's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentNote {
    /// The filter, as `dimension:value`.
    pub filter: String,
    /// True when the figures hold every event of the value. False when some windows (or
    /// partitions of them) kept the value in their "other" bucket: the figures are then a
    /// lower bound.
    pub complete: bool,
    /// Events the figures hold.
    pub events: u64,
    /// The value's events in the same windows lie between these two (equal while the
    /// windows' own counts of the dimension are exact).
    pub events_at_least: u64,
    pub events_at_most: u64,
    /// Windows (partitions of windows, before the merge) whose figures lack some events of
    /// the value.
    pub incomplete_parts: u64,
}

impl SegmentNote {
    /// The note of `filter` with `coverage`.
    pub fn new(filter: &crate::agg::Filter, coverage: &Coverage) -> Self {
        SegmentNote {
            filter: filter.to_string(),
            complete: coverage.complete(),
            events: coverage.events,
            events_at_least: coverage.of_at_least,
            events_at_most: coverage.of_at_most,
            incomplete_parts: coverage.incomplete_parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tests::ev;
    use crate::proto::{Summary, WindowState, WindowView};

    #[test]
    fn window_view_reflects_the_aggregate_with_ordered_top_lists() {
        let mut agg = Aggregate::new();
        for e in [
            ev("pageview", "/b", Some("https://g/")),
            ev("pageview", "/a", None),
            ev("pageview", "/b", None),
            ev("click", "/c", Some("https://g/")),
            ev("pageview", "/a", None),
            ev("pageview", "/z", None),
        ] {
            agg.add(&e);
        }
        let v = WindowView::from_aggregate(0, 10_000, WindowState::Live, &agg, 2);
        assert_eq!(v.figures.events, 6);
        assert_eq!(v.figures.by_type.get("pageview"), Some(&5));
        assert_eq!(v.figures.by_type.get("click"), Some(&1));
        assert_eq!(
            v.figures.top_urls,
            vec![
                Count {
                    key: "/a".into(),
                    count: 2
                },
                Count {
                    key: "/b".into(),
                    count: 2
                }
            ]
        );
        assert_eq!(
            v.figures.top_referrers,
            vec![Count {
                key: "https://g/".into(),
                count: 2
            }]
        );
        assert_eq!(v.figures.unique_visitors, 4);
        assert_eq!(v.figures.unique_sessions, 1);
        assert!(!v.figures.approximate);
        let s = Summary::from_aggregate(0, 20_000, 2, &agg, 10);
        assert_eq!(s.figures.top_urls.len(), 3); // /c was a click, not a page view
        assert_eq!(
            s.figures.countries,
            vec![Count {
                key: "DE".into(),
                count: 6
            }]
        );
    }

    #[test]
    fn window_view_and_summary_json_is_pinned() {
        let mut agg = Aggregate::new();
        for e in [
            ev("pageview", "/b", Some("https://g/")),
            ev("click", "/c", None),
            ev("pageview", "/b", None),
        ] {
            agg.add(&e);
        }
        let figures = r#""events":3,"by_type":{"click":1,"pageview":2},"unique_visitors":2,"unique_sessions":1,"top_urls":[{"key":"/b","count":2}],"top_referrers":[{"key":"https://g/","count":1}],"countries":[{"key":"DE","count":3}],"devices":[{"key":"mobile","count":3}],"approximate":false,"goals":[]"#;
        let v = WindowView::from_aggregate(10_000, 20_000, WindowState::Revised, &agg, 10);
        let json = serde_json::to_string(&v).expect("window json");
        assert_eq!(
            json,
            format!(
                r#"{{"start":10000,"end":20000,"state":"revised","resolution":"window",{figures}}}"#
            )
        );
        assert_eq!(serde_json::from_str::<WindowView>(&json).ok(), Some(v));
        let s = Summary::from_aggregate(0, 30_000, 3, &agg, 10);
        let json = serde_json::to_string(&s).expect("summary json");
        assert_eq!(
            json,
            format!(r#"{{"from":0,"to":30000,"windows":3,{figures}}}"#)
        );
        assert_eq!(serde_json::from_str::<Summary>(&json).ok(), Some(s));
    }

    #[test]
    fn goals_and_the_segment_note_are_pinned() {
        use crate::agg::{AggSpec, Filter, Goal};
        let spec = AggSpec {
            goals: vec![
                Goal::parse("signup").unwrap(),
                Goal::parse("pricing=url:/pricing").unwrap(),
            ],
            ..AggSpec::default()
        };
        let mut agg = Aggregate::new();
        for e in [
            ev("signup", "/signup", None),
            ev("pageview", "/a", None),
            ev("pageview", "/b", None),
            ev("pageview", "/c", None),
        ] {
            agg.add_with(&e, &spec);
        }
        let f = Figures::with_goals(&agg, 10, &spec.goals);
        assert_eq!(
            serde_json::to_string(&f.goals).unwrap(),
            r#"[{"name":"signup","completions":1,"converting_visitors":1,"conversion_rate":0.25},{"name":"pricing","completions":0,"converting_visitors":0,"conversion_rate":0.0}]"#
        );
        // Without the configured list, the goals the aggregate holds.
        assert_eq!(
            Figures::from_aggregate(&agg, 10).goals,
            f.goals[..1].to_vec()
        );
        let cov = crate::agg::Coverage {
            events: 3,
            of_at_least: 5,
            of_at_most: 5,
            incomplete_parts: 1,
        };
        let mut s = Summary::from_aggregate(0, 10, 1, &agg, 0);
        s.segment = Some(SegmentNote::new(
            &Filter::parse("country:DE").unwrap(),
            &cov,
        ));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["segment"].to_string(),
            r#"{"complete":false,"events":3,"events_at_least":5,"events_at_most":5,"filter":"country:DE","incomplete_parts":1}"#
        );
        assert!(
            serde_json::to_value(Summary::from_aggregate(0, 10, 1, &agg, 0))
                .unwrap()
                .get("segment")
                .is_none()
        );
    }

    #[test]
    fn figures_are_the_same_in_a_window_and_a_summary() {
        let mut agg = Aggregate::new();
        agg.add(&ev("pageview", "/a", Some("https://g/")));
        let v = WindowView::from_aggregate(0, 10_000, WindowState::Final, &agg, 10);
        let s = Summary::from_aggregate(0, 10_000, 1, &agg, 10);
        assert_eq!(v.figures, s.figures);
        assert_eq!(v.figures, Figures::from_aggregate(&agg, 10));
        assert_eq!(v.figures.events, 1);
    }
}
