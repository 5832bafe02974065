//! What the panels show, computed from the stream state, the range summary and the clock.
//!
//! Contract: pure functions (tested on the host) so every number on screen has one
//! definition:
//! - the displayed range is `[to - range, to)` where `to` is the end of the window holding
//!   "now", or the end of the newest window when the server is ahead ([`range_bounds`]);
//! - total events = the sum of the windows whose start lies in that range ([`total_events`]);
//! - unique visitors/sessions come from the server's summary (uniques over a range are a
//!   HyperLogLog merge, never a sum of windows), never from here;
//! - event types are summed over the windows in range (per-window type counts are
//!   complete); pages, referrers, countries and devices come from the summary, and until it
//!   arrives from a sum of the windows' top lists ([`merge_counts`]), a lower bound;
//! - lag is the sum of the partitions' known lags ([`total_lag`]);
//! - the broker line says reachable, degraded (and why) or unreachable ([`broker_health`]);
//! - a top-list row of a segmented dimension filters by its value ([`filter_for`]: a
//!   referrer by its domain);
//! - goals: completions are summed over the windows in range (per-window completions are
//!   exact), converting visitors and conversion rate come from the summary (HyperLogLog
//!   merges over the range) ([`goal_rows`]);
//! - a segment's figures that miss events of the value say so ([`segment_note`]).

use std::collections::BTreeMap;

use pulseboard_model::agg::{Dimension, Filter, OTHER};
use pulseboard_model::proto::{
    Count, GoalInfo, PartitionStatus, SegmentNote, Status, Summary, WindowView,
};

use crate::chart::Bar;

/// `[from, to)` of a range of `range_ms` ending with the window that holds `now_ms`, or
/// with the newest window (`newest_end`) when that ends later. Without a window width
/// (before the first snapshot) the range ends at `now_ms`.
pub fn range_bounds(
    now_ms: i64,
    window_ms: i64,
    newest_end: Option<i64>,
    range_ms: i64,
) -> (i64, i64) {
    let mut to = if window_ms > 0 {
        now_ms - now_ms.rem_euclid(window_ms) + window_ms
    } else {
        now_ms
    };
    if let Some(end) = newest_end {
        to = to.max(end);
    }
    (to - range_ms, to)
}

/// `bounds` with the start aligned down to `step_ms` (the steps a long range's history is
/// loaded in), so that every step whose start lies in the range is wholly counted.
pub fn align_start((from, to): (i64, i64), step_ms: Option<i64>) -> (i64, i64) {
    match step_ms {
        Some(s) if s > 0 => (from - from.rem_euclid(s), to),
        _ => (from, to),
    }
}

/// Total events of `windows`.
pub fn total_events<'a>(windows: impl IntoIterator<Item = &'a WindowView>) -> u64 {
    windows.into_iter().map(|w| w.figures.events).sum()
}

/// The chart's bars for `windows` (one per window, oldest first).
pub fn bars<'a>(windows: impl IntoIterator<Item = &'a WindowView>) -> Vec<Bar> {
    windows
        .into_iter()
        .map(|w| Bar {
            start: w.start,
            end: w.end,
            events: w.figures.events,
            state: w.state,
        })
        .collect()
}

/// Adds up counts by key; ordered by count descending, then key ascending (the order the
/// server uses), cut to `top` entries.
pub fn merge_counts<'a>(lists: impl IntoIterator<Item = &'a [Count]>, top: usize) -> Vec<Count> {
    let mut by_key: BTreeMap<&str, u64> = BTreeMap::new();
    for list in lists {
        for c in list {
            *by_key.entry(c.key.as_str()).or_default() += c.count;
        }
    }
    sorted(by_key.into_iter().map(|(k, n)| (k.to_owned(), n)), top)
}

/// Event counts by type over `windows`, in the order of [`merge_counts`].
pub fn type_counts<'a>(
    windows: impl IntoIterator<Item = &'a WindowView>,
    top: usize,
) -> Vec<Count> {
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for w in windows {
        for (k, n) in &w.figures.by_type {
            *by_type.entry(k.as_str()).or_default() += n;
        }
    }
    sorted(by_type.into_iter().map(|(k, n)| (k.to_owned(), n)), top)
}

/// A `BTreeMap` of counts (as in `by_type`) as a top list.
pub fn map_counts(map: &BTreeMap<String, u64>, top: usize) -> Vec<Count> {
    sorted(map.iter().map(|(k, n)| (k.clone(), *n)), top)
}

fn sorted(entries: impl Iterator<Item = (String, u64)>, top: usize) -> Vec<Count> {
    let mut v: Vec<Count> = entries.map(|(key, count)| Count { key, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v.truncate(top);
    v
}

/// The filter a click on the row `key` of a list of `dim` sets: `None` for a row that is
/// no value (an empty key, "(direct)").
pub fn filter_for(dim: Dimension, key: &str) -> Option<Filter> {
    if key.is_empty() {
        return None;
    }
    Filter::parse(&format!("{}:{key}", dim.name())).ok()
}

/// Whether the row `key` of a list of `dim` is the value `filter` shows.
pub fn is_filtered(filter: Option<&Filter>, dim: Dimension, key: &str) -> bool {
    filter.is_some_and(|f| filter_for(dim, key).as_ref() == Some(f))
}

/// How a filter reads for people: `country = DE`, `referrer = google.com`,
/// `country: other values`.
pub fn filter_label(f: &Filter) -> String {
    if f.is_other() {
        format!("{}: the values in \"other\"", f.dimension)
    } else {
        format!("{} = {}", f.dimension, f.value)
    }
}

/// What to tell the viewer when a segment's figures miss events of the value (`None` when
/// they hold them all).
pub fn segment_note(note: &SegmentNote) -> Option<String> {
    if note.complete {
        return None;
    }
    let value = note
        .filter
        .split_once(':')
        .map_or(note.filter.as_str(), |(_, v)| v);
    let value = if value == OTHER {
        "the other values"
    } else {
        value
    };
    Some(format!(
        "Incomplete: {value} fell into \"other\" in {} window part{} of this range, so these figures are a lower bound ({} of {} events).",
        note.incomplete_parts,
        if note.incomplete_parts == 1 { "" } else { "s" },
        crate::format::grouped(note.events),
        crate::format::grouped(note.events_at_most),
    ))
}

/// One row of the goals panel.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalRow {
    /// The goal's name.
    pub name: String,
    /// Its rule (`type:signup`), when known.
    pub rule: String,
    /// Completions in the range (sum over windows).
    pub completions: u64,
    /// Converting visitors over the range (from the summary), when loaded.
    pub converting: Option<u64>,
    /// Conversion rate over the range (from the summary), when loaded.
    pub rate: Option<f64>,
}

/// The goals panel's rows: the goals of `info` (or, before it loads, those the windows and
/// the summary name), completions summed over `windows`, converting visitors and rate from
/// `summary`.
pub fn goal_rows<'a>(
    info: &[GoalInfo],
    windows: impl IntoIterator<Item = &'a WindowView>,
    summary: Option<&Summary>,
) -> Vec<GoalRow> {
    let mut completions: BTreeMap<&str, u64> = BTreeMap::new();
    let mut order: Vec<String> = info.iter().map(|g| g.name.clone()).collect();
    for w in windows {
        for g in &w.figures.goals {
            *completions.entry(g.name.as_str()).or_default() += g.completions;
            if !order.contains(&g.name) {
                order.push(g.name.clone());
            }
        }
    }
    if let Some(s) = summary {
        for g in &s.figures.goals {
            if !order.contains(&g.name) {
                order.push(g.name.clone());
            }
        }
    }
    order
        .into_iter()
        .map(|name| {
            let from_summary =
                summary.and_then(|s| s.figures.goals.iter().find(|g| g.name == name));
            GoalRow {
                rule: info
                    .iter()
                    .find(|g| g.name == name)
                    .map(|g| g.rule.clone())
                    .unwrap_or_default(),
                completions: completions.get(name.as_str()).copied().unwrap_or(0),
                converting: from_summary.map(|g| g.converting_visitors),
                rate: from_summary.map(|g| g.conversion_rate),
                name,
            }
        })
        .collect()
}

/// Sum of the partitions' lags, or `None` when no partition knows its lag.
pub fn total_lag(status: &Status) -> Option<i64> {
    let known: Vec<i64> = status.partitions.iter().filter_map(|p| p.lag).collect();
    (!known.is_empty()).then(|| known.iter().map(|l| (*l).max(0)).sum())
}

/// Who reads a partition, for the pipeline table: "this instance", or the owner's id (with
/// the URL of its dashboard when it gave one); "—" when unknown.
pub fn owner_label(p: &PartitionStatus) -> (String, Option<String>) {
    match (&p.owner, p.local) {
        (_, true) => ("this instance".to_owned(), None),
        (Some(o), false) => (
            o.id.clone(),
            Some(o.url.clone()).filter(|u| u.starts_with("http")),
        ),
        (None, false) => ("—".to_owned(), None),
    }
}

/// The group's instances in one line ("3 · this one reads 2 partitions"), when the server
/// shares a state topic with a group; `None` when it runs alone.
pub fn instances_line(status: &Status) -> Option<String> {
    status.state_topic.as_ref()?;
    let n = status.instances.len().max(1);
    let mine = status.partitions.iter().filter(|p| p.local).count();
    Some(format!(
        "{n} · this one reads {mine} of {} partitions",
        status.partitions.len()
    ))
}

/// Whether a wall display should say its figures are stale: the socket is down, or the
/// last message is more than `max_age_ms` old, or nothing has arrived `max_age_ms` after
/// the page opened.
pub fn is_stale(
    socket_up: bool,
    now_ms: f64,
    last_message_ms: Option<f64>,
    opened_ms: f64,
    max_age_ms: f64,
) -> bool {
    if !socket_up && last_message_ms.is_some() {
        return true;
    }
    let since = last_message_ms.unwrap_or(opened_ms);
    now_ms - since > max_age_ms
}

/// The broker line: a CSS class (`ok`, `warn`, `bad`) and its text, from the cluster
/// probe's last answer.
pub fn broker_health(s: &Status) -> (&'static str, String) {
    if !s.broker_reachable {
        return ("bad", format!("{} · unreachable", s.broker));
    }
    let c = &s.cluster;
    if !c.degraded {
        return ("ok", format!("{} · reachable", s.broker));
    }
    let mut why = Vec::new();
    if !c.missing_brokers.is_empty() {
        let ids: Vec<String> = c.missing_brokers.iter().map(i32::to_string).collect();
        let noun = if ids.len() == 1 { "broker" } else { "brokers" };
        why.push(format!("{noun} {} down", ids.join(", ")));
    }
    if c.under_replicated_partitions > 0 {
        why.push(format!(
            "{} under-replicated",
            c.under_replicated_partitions
        ));
    }
    if c.offline_partitions > 0 {
        why.push(format!("{} offline", c.offline_partitions));
    }
    (
        "warn",
        format!("{} · degraded: {}", s.broker, why.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::proto::{Figures, InstanceRef, WindowState};

    fn win(start: i64, events: u64, types: &[(&str, u64)]) -> WindowView {
        WindowView {
            site: None,
            start,
            end: start + 10_000,
            state: WindowState::Final,
            resolution: Default::default(),
            figures: Figures {
                events,
                by_type: types.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                ..Figures::default()
            },
            segment: None,
        }
    }

    fn c(key: &str, count: u64) -> Count {
        Count {
            key: key.into(),
            count,
        }
    }

    #[test]
    fn range_ends_with_the_window_holding_now() {
        assert_eq!(
            range_bounds(1_234_567, 10_000, None, 60_000),
            (1_180_000, 1_240_000)
        );
        assert_eq!(
            range_bounds(1_240_000, 10_000, None, 60_000),
            (1_190_000, 1_250_000)
        );
        assert_eq!(
            range_bounds(1_234_567, 10_000, Some(1_260_000), 60_000),
            (1_200_000, 1_260_000),
            "a server clock ahead of ours still shows its newest window"
        );
        assert_eq!(
            range_bounds(1_234_567, 0, None, 60_000),
            (1_174_567, 1_234_567)
        );
    }

    #[test]
    fn totals_and_bars_add_up() {
        let ws = [win(0, 3, &[]), win(10_000, 4, &[])];
        assert_eq!(total_events(&ws), 7);
        let b = bars(&ws);
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].start, 10_000);
        assert_eq!(b.iter().map(|b| b.events).sum::<u64>(), total_events(&ws));
    }

    #[test]
    fn merged_counts_are_ordered_like_the_server() {
        let a = vec![c("/a", 2), c("/b", 5)];
        let b = vec![c("/a", 3), c("/c", 5)];
        let m = merge_counts([a.as_slice(), b.as_slice()], 10);
        assert_eq!(m, vec![c("/a", 5), c("/b", 5), c("/c", 5)]);
        assert_eq!(merge_counts([a.as_slice()], 1), vec![c("/b", 5)]);
    }

    #[test]
    fn types_are_summed_over_windows() {
        let ws = [
            win(0, 3, &[("pageview", 2), ("click", 1)]),
            win(10_000, 2, &[("pageview", 2)]),
        ];
        assert_eq!(type_counts(&ws, 10), vec![c("pageview", 4), c("click", 1)]);
        assert_eq!(
            map_counts(&ws[0].figures.by_type, 1),
            vec![c("pageview", 2)]
        );
    }

    fn part(lag: Option<i64>) -> PartitionStatus {
        PartitionStatus {
            topic: "clicks".into(),
            lag,
            ..PartitionStatus::default()
        }
    }

    #[test]
    fn lag_is_the_sum_of_known_lags() {
        let mut st = Status {
            broker: "embedded".into(),
            broker_reachable: true,
            partitions: vec![part(Some(3)), part(None), part(Some(4))],
            ..Status::default()
        };
        assert_eq!(total_lag(&st), Some(7));
        st.partitions = vec![part(None)];
        assert_eq!(total_lag(&st), None);

        // The broker line follows the cluster probe.
        st.broker = "k:9092".into();
        assert_eq!(broker_health(&st), ("ok", "k:9092 · reachable".to_owned()));
        st.cluster.degraded = true;
        st.cluster.missing_brokers = vec![2];
        st.cluster.under_replicated_partitions = 3;
        assert_eq!(
            broker_health(&st),
            (
                "warn",
                "k:9092 · degraded: broker 2 down, 3 under-replicated".to_owned()
            )
        );
        st.broker_reachable = false;
        assert_eq!(broker_health(&st).0, "bad");
    }

    #[test]
    fn rows_filter_by_their_value_and_notes_say_what_is_missing() {
        let f = filter_for(Dimension::Referrer, "https://www.google.com/search").expect("f");
        assert_eq!(f.to_string(), "referrer:google.com");
        assert!(is_filtered(
            Some(&f),
            Dimension::Referrer,
            "https://google.com/"
        ));
        assert!(!is_filtered(Some(&f), Dimension::Country, "google.com"));
        assert_eq!(filter_for(Dimension::Referrer, ""), None);
        assert_eq!(
            filter_label(&filter_for(Dimension::Country, "DE").unwrap()),
            "country = DE"
        );
        let mut note = SegmentNote {
            filter: "country:SE".into(),
            complete: true,
            events: 812,
            events_at_least: 1_020,
            events_at_most: 1_020,
            incomplete_parts: 3,
        };
        assert_eq!(segment_note(&note), None);
        note.complete = false;
        assert_eq!(
            segment_note(&note).as_deref(),
            Some("Incomplete: SE fell into \"other\" in 3 window parts of this range, so these figures are a lower bound (812 of 1,020 events).")
        );
    }

    #[test]
    fn goal_rows_sum_completions_and_take_rates_from_the_summary() {
        use pulseboard_model::proto::GoalFigures;
        let g = |name: &str, completions, converting, rate| GoalFigures {
            name: name.into(),
            completions,
            converting_visitors: converting,
            conversion_rate: rate,
        };
        let mut a = win(0, 10, &[]);
        a.figures.goals = vec![g("signup", 2, 2, 0.2)];
        let mut b = win(10_000, 10, &[]);
        b.figures.goals = vec![g("signup", 3, 3, 0.3), g("old", 1, 1, 0.1)];
        let info = vec![
            GoalInfo {
                name: "signup".into(),
                rule: "type:signup".into(),
            },
            GoalInfo {
                name: "pricing".into(),
                rule: "type:pageview,url:/pricing".into(),
            },
        ];
        let summary = Summary {
            properties: Vec::new(),
            site: None,
            sites: Vec::new(),
            from: 0,
            to: 20_000,
            windows: 2,
            figures: Figures {
                goals: vec![g("signup", 5, 4, 0.25)],
                ..Figures::default()
            },
            segment: None,
            compare: None,
        };
        let rows = goal_rows(&info, [&a, &b], Some(&summary));
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["signup", "pricing", "old"]);
        assert_eq!(rows[0].completions, 5);
        assert_eq!((rows[0].converting, rows[0].rate), (Some(4), Some(0.25)));
        assert_eq!(rows[0].rule, "type:signup");
        assert_eq!((rows[1].completions, rows[1].converting), (0, None));
        assert_eq!(goal_rows(&info, [&a], None)[0].rate, None);
    }

    #[test]
    fn stale_when_down_or_silent() {
        assert!(!is_stale(true, 5_000.0, Some(1_000.0), 0.0, 10_000.0));
        assert!(
            is_stale(true, 12_000.0, Some(1_000.0), 0.0, 10_000.0),
            "silent for 11 s"
        );
        assert!(
            is_stale(false, 2_000.0, Some(1_000.0), 0.0, 10_000.0),
            "socket down"
        );
        assert!(
            !is_stale(false, 2_000.0, None, 0.0, 10_000.0),
            "still starting up"
        );
        assert!(
            is_stale(false, 11_000.0, None, 0.0, 10_000.0),
            "never got anything"
        );
    }

    #[test]
    fn a_partition_says_which_instance_reads_it() {
        let mine = PartitionStatus {
            local: true,
            ..PartitionStatus::default()
        };
        assert_eq!(owner_label(&mine), ("this instance".to_owned(), None));
        let theirs = PartitionStatus {
            owner: Some(InstanceRef {
                id: "ab12".into(),
                url: "http://10.0.0.2:8080".into(),
            }),
            ..PartitionStatus::default()
        };
        assert_eq!(
            owner_label(&theirs),
            ("ab12".to_owned(), Some("http://10.0.0.2:8080".to_owned()))
        );
        let mut status = Status {
            partitions: vec![mine, theirs],
            ..Status::default()
        };
        assert_eq!(instances_line(&status), None, "alone: no line");
        status.state_topic = Some("pulseboard-windows".into());
        status.instances = vec![Default::default(), Default::default()];
        assert_eq!(
            instances_line(&status).as_deref(),
            Some("2 · this one reads 1 of 2 partitions")
        );
    }

    #[test]
    fn a_long_range_starts_on_a_step() {
        assert_eq!(
            align_start((3_700_000, 9_000_000), Some(1_800_000)),
            (3_600_000, 9_000_000)
        );
        assert_eq!(
            align_start((3_700_000, 9_000_000), None),
            (3_700_000, 9_000_000)
        );
    }
}
