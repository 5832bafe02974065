//! The bars of the events chart: a [`Bar`] is a window, or several merged when the range is
//! long; [`bucket_factor`] picks how many windows a bar spans, [`bucket`] merges them on
//! epoch-aligned edges, [`per_bucket`] spreads another period's items over the same bars.
//!
//! Contract: pure, tested on the host; merging loses no events.

use pulseboard_model::proto::WindowState;

/// One bar of the events chart: a window, or several merged when the range is long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Start, epoch ms (inclusive).
    pub start: i64,
    /// End, epoch ms (exclusive).
    pub end: i64,
    /// Events in it.
    pub events: u64,
    /// Live if any window in it is live, else revised if any is revised, else final.
    pub state: WindowState,
}

/// Multiples of the window width a bar may span.
pub(super) const BUCKET_FACTORS: [i64; 12] = [1, 2, 3, 6, 12, 30, 60, 90, 180, 360, 720, 1440];

/// How many windows one bar spans so that `span_ms` needs at most `max_bars` bars, and one
/// more: a range whose start is aligned to its step (a 30-day range on 2-hour steps) holds
/// one partial bucket more than its length, which must not double every bar.
pub fn bucket_factor(span_ms: i64, window_ms: i64, max_bars: usize) -> i64 {
    if window_ms <= 0 {
        return 1;
    }
    let windows = (span_ms + window_ms - 1) / window_ms;
    let max = max_bars.max(1) as i64 + 1;
    BUCKET_FACTORS
        .iter()
        .copied()
        .find(|f| (windows + f - 1) / f <= max)
        .unwrap_or(BUCKET_FACTORS[BUCKET_FACTORS.len() - 1])
}

/// Merges bars (sorted by start) into buckets of `bucket_ms` aligned to the epoch, so a
/// bucket's edges do not move as time passes. Events add up; see [`Bar::state`].
pub fn bucket(bars: &[Bar], bucket_ms: i64) -> Vec<Bar> {
    if bucket_ms <= 0 {
        return bars.to_vec();
    }
    let mut out: Vec<Bar> = Vec::new();
    for b in bars {
        let start = b.start - b.start.rem_euclid(bucket_ms);
        match out.last_mut() {
            Some(last) if last.start == start => {
                last.events += b.events;
                last.state = last.state.most_live(b.state);
            }
            _ => out.push(Bar {
                start,
                end: start + bucket_ms,
                events: b.events,
                state: b.state,
            }),
        }
    }
    out
}

/// Events per bucket of `bucket_ms` (epoch-aligned) of `bars`: a bar narrower than a bucket
/// adds to the bucket holding its start, a wider one (an hour of history under 10-minute
/// bars) is spread evenly over the buckets it covers. Ordered by bucket start.
pub fn per_bucket(bars: &[Bar], bucket_ms: i64) -> Vec<(i64, f64)> {
    let mut out: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    if bucket_ms <= 0 {
        return Vec::new();
    }
    for b in bars {
        let width = (b.end - b.start).max(1);
        if width <= bucket_ms {
            *out.entry(b.start - b.start.rem_euclid(bucket_ms))
                .or_default() += b.events as f64;
            continue;
        }
        let share = b.events as f64 * bucket_ms as f64 / width as f64;
        let mut t = b.start - b.start.rem_euclid(bucket_ms);
        while t < b.end {
            *out.entry(t).or_default() += share;
            t += bucket_ms;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::bar;
    use WindowState::*;

    #[test]
    fn bucket_factor_bounds_the_bar_count() {
        assert_eq!(bucket_factor(15 * 60_000, 10_000, 360), 1);
        assert_eq!(bucket_factor(3_600_000, 10_000, 360), 1);
        assert_eq!(
            bucket_factor(24 * 3_600_000, 10_000, 360),
            30,
            "24 h → 288 bars of 5 min"
        );
        assert_eq!(bucket_factor(3_600_000, 10_000, 100), 6);
        // 30 days aligned to 2-hour steps: bars of 2 h (the API's step), not 4.
        let d30 = 30 * 24 * 3_600_000 + 7_000_000;
        assert_eq!(bucket_factor(d30, 10_000, 360), 720);
        assert_eq!(
            bucket_factor(7 * 24 * 3_600_000 + 1_700_000, 10_000, 360),
            180
        );
        assert_eq!(bucket_factor(3_600_000, 0, 100), 1);
    }

    #[test]
    fn bucket_adds_events_and_keeps_the_liveliest_state() {
        let bars = [
            bar(0, 1, Final),
            bar(10, 2, Revised),
            bar(20, 3, Final),
            bar(30, 4, Final),
            bar(40, 5, Live),
            bar(60, 6, Final),
        ];
        let b = bucket(&bars, 30);
        assert_eq!(
            b,
            vec![
                Bar {
                    start: 0,
                    end: 30,
                    events: 6,
                    state: Revised
                },
                Bar {
                    start: 30,
                    end: 60,
                    events: 9,
                    state: Live
                },
                Bar {
                    start: 60,
                    end: 90,
                    events: 6,
                    state: Final
                },
            ]
        );
        let total: u64 = b.iter().map(|b| b.events).sum();
        assert_eq!(
            total,
            bars.iter().map(|b| b.events).sum::<u64>(),
            "bucketing loses nothing"
        );
        assert_eq!(
            bucket(&bars, 10),
            bars.to_vec(),
            "one window per bucket is the identity"
        );
        assert_eq!(
            bucket(&[bar(-10, 1, Final)], 30)[0].start,
            -30,
            "aligned below zero too"
        );
    }
}
