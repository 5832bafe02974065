//! What the panels show, computed from the live state, the range summary and the clock.
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
//! - the broker line says reachable, degraded (and why) or unreachable ([`broker_health`]).

use std::collections::BTreeMap;

use pulseboard_model::proto::{Count, Status, WindowView};

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

/// Sum of the partitions' lags, or `None` when no partition knows its lag.
pub fn total_lag(status: &Status) -> Option<i64> {
    let known: Vec<i64> = status.partitions.iter().filter_map(|p| p.lag).collect();
    (!known.is_empty()).then(|| known.iter().map(|l| (*l).max(0)).sum())
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
    use pulseboard_model::proto::{Figures, PartitionStatus, WindowState};

    fn win(start: i64, events: u64, types: &[(&str, u64)]) -> WindowView {
        WindowView {
            start,
            end: start + 10_000,
            state: WindowState::Final,
            resolution: Default::default(),
            figures: Figures {
                events,
                by_type: types.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                ..Figures::default()
            },
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
