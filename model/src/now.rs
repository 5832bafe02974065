//! Visitors now: who is on the site at wall-clock now.
//!
//! Contract:
//! - "Now" reaches back `span_ms` (`--now-window`, default 5 min) from a wall-clock instant
//!   `at` given by the caller (the clock is a parameter, so tests use synthetic time). Its
//!   windows are those overlapping `[at - span_ms, at]`: starts in [`now_range`]. The oldest
//!   may reach up to one window further back; windows starting after `at` (events stamped
//!   ahead of the clock) are not counted.
//! - [`visitors_now`] merges those windows: unique visitors (a HyperLogLog merge, never a
//!   sum), events, active pages (page views by URL) and sources (events by referrer domain).
//!   When nobody has sent an event for `span_ms` plus one window, it is 0 with empty lists:
//!   the figures clear when people leave.
//! - [`definition`] says this for people, with the span and window of the server.

use crate::agg::Aggregate;
use crate::proto::{Count, VisitorsNow};
use crate::time::format_duration_ms;
use crate::window::window_start;

/// Default reach of "now", ms (5 minutes).
pub const DEFAULT_NOW_SPAN_MS: i64 = 5 * 60_000;

/// The window starts `[from, to)` of the windows overlapping `[at - span_ms, at]`.
pub fn now_range(at: i64, span_ms: i64, width_ms: i64) -> (i64, i64) {
    let from = window_start(at.saturating_sub(span_ms.max(0)), width_ms);
    (from, at.saturating_add(1))
}

/// What "visitors now" means, for people.
pub fn definition(span_ms: i64, width_ms: i64) -> String {
    let span = format_duration_ms(span_ms);
    let width = format_duration_ms(width_ms);
    format!(
        "Visitors now: distinct visitors (HyperLogLog) with an event in the last {span}, \
         up to now (the {width} windows overlapping that time, so events up to {span} + {width} \
         old may count). Active pages are the page views and sources the referrer domains of \
         the same windows. With no event for {span} + {width}, all of it is 0."
    )
}

/// Visitors now at `at`, from the merge `agg` of the windows of [`now_range`] (their
/// starts in `[from, to)`), with lists of `top` entries.
pub fn visitors_now(
    agg: &Aggregate,
    at: i64,
    span_ms: i64,
    width_ms: i64,
    top: usize,
) -> VisitorsNow {
    let (from, _) = now_range(at, span_ms, width_ms);
    let list = |t: &crate::agg::TopCounts| {
        t.top(top)
            .into_iter()
            .map(|(key, count)| Count { key, count })
            .collect()
    };
    VisitorsNow {
        site: None,
        at,
        span_ms,
        from,
        to: window_start(at, width_ms).saturating_add(width_ms),
        visitors: agg.visitors.estimate(),
        events: agg.events,
        pages: list(&agg.urls),
        sources: list(&agg.sources),
        definition: definition(span_ms, width_ms),
        segment: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use std::collections::BTreeMap;

    const W: i64 = 10_000;
    const T0: i64 = 1_800_000_000_000;

    fn ev(ts: i64, visitor: &str, url: &str) -> Event {
        Event {
            ts,
            kind: "pageview".into(),
            visitor: visitor.into(),
            url: url.into(),
            referrer: Some("https://news.example/a".into()),
            ..Event::default()
        }
    }

    /// Windows of `events`, and "now" at `at` computed from them as the server does: merge
    /// the windows whose start is in `now_range`.
    fn now_at(events: &[Event], at: i64) -> VisitorsNow {
        let mut windows: BTreeMap<i64, Aggregate> = BTreeMap::new();
        for e in events {
            windows.entry(window_start(e.ts, W)).or_default().add(e);
        }
        let (from, to) = now_range(at, DEFAULT_NOW_SPAN_MS, W);
        let mut agg = Aggregate::new();
        for a in windows.range(from..to).map(|(_, a)| a) {
            agg.merge_figures(a);
        }
        visitors_now(&agg, at, DEFAULT_NOW_SPAN_MS, W, 10)
    }

    #[test]
    fn now_covers_the_windows_overlapping_the_span_up_to_the_clock() {
        assert_eq!(
            now_range(T0 + 1_234, 300_000, W),
            (T0 - 300_000, T0 + 1_235)
        );
        assert_eq!(now_range(T0, 300_000, W), (T0 - 300_000, T0 + 1));
    }

    #[test]
    fn visitors_now_counts_the_recent_and_clears_when_people_leave() {
        // Three visitors between 4 min and 1 min before T0; one of them twice.
        let events = vec![
            ev(T0 - 240_000, "a", "/"),
            ev(T0 - 120_000, "b", "/pricing"),
            ev(T0 - 60_000, "a", "/pricing"),
            ev(T0 - 60_000, "c", "/docs"),
            // Long ago, and ahead of the clock: neither is "now".
            ev(T0 - 3_600_000, "old", "/old"),
            ev(T0 + 60_000, "future", "/future"),
        ];
        let n = now_at(&events, T0);
        assert_eq!((n.visitors, n.events), (3, 4));
        assert_eq!(
            n.pages,
            vec![
                Count {
                    key: "/pricing".into(),
                    count: 2
                },
                Count {
                    key: "/".into(),
                    count: 1
                },
                Count {
                    key: "/docs".into(),
                    count: 1
                },
            ]
        );
        assert_eq!(n.sources[0].key, "news.example");
        assert_eq!(n.to, T0 + W);
        // Two minutes later a's first visit is over 5 min old (a is still here from
        // T0 - 60 s), and the event that was ahead of the clock is now a minute old.
        let n = now_at(&events, T0 + 120_000);
        assert_eq!((n.visitors, n.events), (4, 4));
        // Nobody has come for 5 min + one window since the last event (T0 + 60 s, at the
        // start of its window): everything is 0 and the lists are empty.
        let last = T0 + 60_000;
        let n = now_at(&events, last + DEFAULT_NOW_SPAN_MS + W);
        assert_eq!((n.visitors, n.events), (0, 0));
        assert!(n.pages.is_empty() && n.sources.is_empty());
        // Just before that, the last window still counts (it overlaps the span).
        let n = now_at(&events, last + DEFAULT_NOW_SPAN_MS + W - 1);
        assert_eq!((n.visitors, n.pages.len()), (1, 1));
    }

    #[test]
    fn the_definition_names_the_span_and_the_window() {
        let d = definition(300_000, 10_000);
        assert!(d.contains("last 5m"), "{d}");
        assert!(d.contains("10s windows"), "{d}");
    }
}
