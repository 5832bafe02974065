//! Time axis ticks: the round step for a span ([`time_step`], 1 s … 7 days) and tick times
//! at round local times on the viewer's clock ([`time_ticks`]): local midnights for days,
//! Mondays for weeks.
//!
//! Contract: pure; the caller passes the zone offset (local time minus UTC, ms), so the
//! rules are tested on the host for any zone.

/// A day, ms.
pub const DAY_MS: i64 = 24 * 3_600_000;
/// A week, ms; week ticks fall on Mondays (the epoch's day 4).
const WEEK_MS: i64 = 7 * DAY_MS;

/// Steps a time axis may use, in ms.
const TIME_STEPS: [i64; 19] = [
    1_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    2 * 60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    DAY_MS,
    2 * DAY_MS,
    WEEK_MS,
];

/// The smallest of the time steps (1 s … 7 days) giving at most `target` ticks over
/// `span_ms`.
pub fn time_step(span_ms: i64, target: usize) -> i64 {
    let target = target.max(1) as i64;
    TIME_STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= target)
        .unwrap_or(TIME_STEPS[TIME_STEPS.len() - 1])
}

/// Tick times (epoch ms) in `[from, to]` at a round local time (for example every 5 min on
/// the viewer's clock). `tz_offset_ms` is local time minus UTC (+3 600 000 for UTC+1).
pub fn time_ticks(from: i64, to: i64, target: usize, tz_offset_ms: i64) -> Vec<i64> {
    if to <= from {
        return Vec::new();
    }
    let step = time_step(to - from, target);
    // Weeks start on Monday: 1970-01-05 was one.
    let phase = if step == WEEK_MS { 4 * DAY_MS } else { 0 };
    let local = from + tz_offset_ms - phase;
    let first_local = local + (step - local.rem_euclid(step)) % step + phase;
    let mut out = Vec::new();
    let mut t = first_local - tz_offset_ms;
    while t <= to {
        out.push(t);
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_fall_on_round_local_times() {
        // 15 minutes from 10:03:20 UTC, about 6 ticks → every 5 min (3 ticks of 2 min is too many).
        let from = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000 + 200_000;
        let to = from + 15 * 60_000;
        let ticks = time_ticks(from, to, 6, 0);
        assert!(ticks.iter().all(|t| t % 300_000 == 0), "{ticks:?}");
        assert!(ticks.iter().all(|t| *t >= from && *t <= to));
        assert_eq!(ticks.len(), 3);
        // In UTC+5:30, hourly ticks sit on the local hour, not the UTC one.
        let ist = 5 * 3_600_000 + 30 * 60_000;
        let ticks = time_ticks(0, 6 * 3_600_000, 6, ist);
        assert!(
            ticks.iter().all(|t| (t + ist) % 3_600_000 == 0),
            "{ticks:?}"
        );
        assert!(time_ticks(10, 10, 5, 0).is_empty());
    }

    #[test]
    fn multi_day_ranges_tick_on_local_midnights_and_mondays() {
        let day = DAY_MS;
        // 7 days from a Wednesday noon UTC (2026-12-02): one tick a day, at midnight.
        let from = 1_796_212_800_000 - 1_796_212_800_000 % day + day / 2;
        let ticks = time_ticks(from, from + 7 * day, 7, 0);
        assert_eq!(ticks.len(), 7);
        assert!(ticks.iter().all(|t| t % day == 0), "{ticks:?}");
        // In UTC-5 the ticks are at its midnights.
        let ticks = time_ticks(from, from + 7 * day, 7, -5 * 3_600_000);
        assert!(ticks.iter().all(|t| (t - 5 * 3_600_000) % day == 0));
        // 30 days: weekly, on Mondays (epoch day 4 was a Monday).
        let ticks = time_ticks(from, from + 30 * day, 7, 0);
        assert!((4..=5).contains(&ticks.len()), "{ticks:?}");
        assert!(
            ticks.iter().all(|t| t % day == 0 && (t / day - 4) % 7 == 0),
            "{ticks:?}"
        );
    }

    #[test]
    fn time_step_grows_with_the_span() {
        assert_eq!(time_step(5 * 60_000, 6), 60_000);
        assert_eq!(time_step(60 * 60_000, 6), 10 * 60_000);
        assert_eq!(time_step(24 * 3_600_000, 6), 6 * 3_600_000);
        assert_eq!(time_step(7 * DAY_MS, 7), DAY_MS);
        assert_eq!(time_step(30 * DAY_MS, 7), WEEK_MS);
        assert_eq!(time_step(1_000 * DAY_MS, 6), WEEK_MS);
    }
}
