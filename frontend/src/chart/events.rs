//! The events chart's whole layout for one render ([`events_layout`]): bars merged to fit,
//! their rectangles, the count and time axes, the comparison line and the annotation
//! markers, in an [`EVENTS_W`] × [`EVENTS_H`] box.
//!
//! Contract: pure (the caller passes the zone offset), tested on the host; the component
//! only draws what it returns.

use super::{
    bars::{bucket, bucket_factor, per_bucket, Bar, BUCKET_FACTORS},
    geometry::{bar_rects, Rect},
    scale::{nice_ticks, Linear},
    time_axis::{time_step, time_ticks, DAY_MS},
};

/// Width of the events chart's SVG coordinate system (it is stretched to its box).
pub const EVENTS_W: f64 = 1000.0;
/// Height of the events chart's SVG coordinate system.
pub const EVENTS_H: f64 = 300.0;
/// Window width assumed before the server has said (before the first snapshot), ms.
const ASSUMED_WINDOW_MS: i64 = 10_000;

/// The events chart for one render, in an [`EVENTS_W`] × [`EVENTS_H`] box.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsLayout {
    /// The bars (windows merged into buckets) with their rectangles, oldest first.
    pub bars: Vec<(Bar, Rect)>,
    /// The count axis: `(count, y)` of each tick above 0; the last is the top of the axis.
    pub y_ticks: Vec<(u64, f64)>,
    /// The time axis: `(time, x)` of each tick, leaving out ticks so close to the right
    /// edge that their label would stick out of the box.
    pub x_ticks: Vec<(i64, f64)>,
    /// Time between two ticks of the time axis, ms (a day or more: label them by date).
    pub x_step: i64,
    /// Width of one bar, ms.
    pub bucket_ms: i64,
    /// Width of one window, ms.
    pub window_ms: i64,
    /// The comparison period's line (events per bar, at each bar's middle), when there is one.
    pub compare: Vec<(f64, f64)>,
    /// Annotations in the range: `(time, x)`.
    pub markers: Vec<(i64, f64)>,
}

/// Lays out the events chart of `windows` (one bar per window, oldest first) over
/// `[from, to)`: windows are merged so that at most `max_bars` bars are drawn
/// ([`bucket_factor`], [`bucket`]), the count axis is [`nice_ticks`] of the tallest bar
/// and the time axis [`time_ticks`] on the viewer's clock (`tz_offset_ms`, local minus
/// UTC). A `window_ms` of 0 (not known yet) is taken as 10 s.
pub fn events_layout(
    windows: &[Bar],
    bounds: (i64, i64),
    window_ms: i64,
    max_bars: usize,
    tz_offset_ms: i64,
) -> EventsLayout {
    events_layout_with(windows, bounds, window_ms, max_bars, tz_offset_ms, &[], &[])
}

/// [`events_layout`] with the comparison period's items (`earlier`, already moved onto
/// this range) drawn as a line of events per bar ([`per_bucket`]), and annotation times
/// (`marks`) as markers. A bar is never narrower than the widest item (history steps).
/// The count axis covers the line too.
pub fn events_layout_with(
    windows: &[Bar],
    (from, to): (i64, i64),
    window_ms: i64,
    max_bars: usize,
    tz_offset_ms: i64,
    earlier: &[Bar],
    marks: &[i64],
) -> EventsLayout {
    let window_ms = if window_ms > 0 {
        window_ms
    } else {
        ASSUMED_WINDOW_MS
    };
    let mut factor = bucket_factor(to - from, window_ms, max_bars);
    let widest = windows.iter().map(|b| b.end - b.start).max().unwrap_or(0);
    if widest > window_ms * factor {
        factor = BUCKET_FACTORS
            .iter()
            .copied()
            .find(|f| window_ms * f >= widest)
            .unwrap_or(BUCKET_FACTORS[BUCKET_FACTORS.len() - 1]);
    }
    let bucket_ms = window_ms * factor;
    let bars = bucket(windows, bucket_ms);
    let line: Vec<(i64, f64)> = per_bucket(earlier, bucket_ms)
        .into_iter()
        .filter(|(t, _)| *t >= from - from.rem_euclid(bucket_ms) && *t < to)
        .collect();
    let line_max = line.iter().map(|(_, v)| v.ceil() as u64).max().unwrap_or(0);
    let max = bars
        .iter()
        .map(|b| b.events)
        .max()
        .unwrap_or(0)
        .max(line_max);
    let ticks = nice_ticks(max as f64, 4);
    let y_max = ticks.last().copied().unwrap_or(1.0);
    let rects = bar_rects(&bars, from, to, y_max, EVENTS_W, EVENTS_H);
    let ys = Linear::new((0.0, y_max), (EVENTS_H, 0.0));
    let xs = Linear::new((from as f64, to as f64), (0.0, EVENTS_W));
    // Days and weeks: a tick a day on a week (7 labels), weekly on a month.
    let x_target = if to - from > DAY_MS * 3 / 2 { 7 } else { 6 };
    EventsLayout {
        bars: bars.into_iter().zip(rects).collect(),
        y_ticks: ticks
            .iter()
            .skip(1)
            .map(|t| (*t as u64, ys.map(*t)))
            .collect(),
        x_step: time_step(to - from, x_target),
        x_ticks: time_ticks(from, to, x_target, tz_offset_ms)
            .into_iter()
            .map(|t| (t, xs.map(t as f64)))
            .filter(|(_, x)| *x <= EVENTS_W * 0.96)
            .collect(),
        bucket_ms,
        window_ms,
        compare: line
            .iter()
            .map(|(t, v)| (xs.map((*t + bucket_ms / 2) as f64), ys.map(*v)))
            .collect(),
        markers: marks
            .iter()
            .filter(|t| (from..to).contains(*t))
            .map(|t| (*t, xs.map(*t as f64)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::{bar, close};
    use pulseboard_model::proto::WindowState::*;

    #[test]
    fn events_layout_draws_windows_on_round_axes() {
        let windows = [bar(0, 5, Final), bar(10_000, 12, Live)];
        let windows: Vec<Bar> = windows
            .iter()
            .map(|b| Bar {
                end: b.start + 10_000,
                ..*b
            })
            .collect();
        let l = events_layout(&windows, (0, 900_000), 10_000, 360, 0);
        assert_eq!((l.bucket_ms, l.window_ms), (10_000, 10_000));
        // 12 events: ticks every 5 up to 15, 15 at the top of the 300-unit box.
        let counts: Vec<u64> = l.y_ticks.iter().map(|t| t.0).collect();
        assert_eq!(counts, vec![5, 10, 15]);
        let ys = l.y_ticks.iter().map(|t| t.1);
        assert!(ys.zip([200.0, 100.0, 0.0]).all(|(y, e)| close(y, e)));
        // 15 min: a tick every 5 min; the one at the right edge is left out.
        let x: Vec<i64> = l.x_ticks.iter().map(|(t, _)| *t).collect();
        assert_eq!(x, vec![0, 300_000, 600_000]);
        assert!(close(l.x_ticks[1].1, 1000.0 / 3.0));
        assert_eq!(l.bars.len(), 2);
        let (b, r) = l.bars[0];
        assert_eq!(b, windows[0]);
        // One window is 1000/90 units wide, less a 15% gap; 5 of 15 is a third of 300.
        let slot = 1000.0 / 90.0;
        assert!(close(r.x, slot * 0.075) && close(r.w, slot * 0.85), "{r:?}");
        assert!(close(r.y, 200.0) && close(r.h, 100.0), "{r:?}");
    }

    #[test]
    fn events_layout_merges_windows_of_a_long_range() {
        let windows: Vec<Bar> = [(0, 5, Final), (10_000, 12, Live), (300_000, 1, Final)]
            .into_iter()
            .map(|(start, events, state)| Bar {
                start,
                end: start + 10_000,
                events,
                state,
            })
            .collect();
        let l = events_layout(&windows, (0, 86_400_000), 10_000, 360, 0);
        assert_eq!(l.bucket_ms, 300_000, "24 h of 10 s windows: 5 min bars");
        let bars: Vec<Bar> = l.bars.iter().map(|(b, _)| *b).collect();
        assert_eq!(
            bars,
            vec![
                Bar {
                    start: 0,
                    end: 300_000,
                    events: 17,
                    state: Live
                },
                Bar {
                    start: 300_000,
                    end: 600_000,
                    events: 1,
                    state: Final
                },
            ]
        );
        assert_eq!(l.y_ticks.last().map(|t| t.0), Some(20));
    }

    #[test]
    fn events_layout_ticks_follow_the_viewer_clock_and_assume_a_width() {
        let nepal = (5 * 60 + 45) * 60_000;
        let l = events_layout(&[], (0, 3_600_000), 0, 360, nepal);
        assert_eq!(
            l.window_ms, 10_000,
            "width unknown before the first snapshot"
        );
        assert!(l.bars.is_empty());
        assert_eq!(
            l.y_ticks,
            vec![(1, 0.0)],
            "an empty chart still has an axis"
        );
        assert!(!l.x_ticks.is_empty());
        assert!(
            l.x_ticks.iter().all(|(t, _)| (t + nepal) % 600_000 == 0),
            "{:?}",
            l.x_ticks
        );
    }

    #[test]
    fn the_earlier_period_is_spread_per_bar_and_lifts_the_axis() {
        let bar = |start: i64, end: i64, events: u64| Bar {
            start,
            end,
            events,
            state: Final,
        };
        // An hour of history over 10-minute buckets: six sixths; 10 s windows add up.
        let per = per_bucket(
            &[
                bar(0, 3_600_000, 600),
                bar(3_600_000, 3_610_000, 5),
                bar(3_610_000, 3_620_000, 7),
            ],
            600_000,
        );
        assert_eq!(per.len(), 7);
        assert!(per[..6].iter().all(|(_, v)| (*v - 100.0).abs() < 1e-9));
        assert_eq!(per[6], (3_600_000, 12.0));
        // Bars of 10 s windows over 15 min, the earlier line twice as high: the axis
        // covers the line, and the markers in range are placed.
        let windows: Vec<Bar> = (0..90)
            .map(|i| bar(i * 10_000, i * 10_000 + 10_000, 10))
            .collect();
        let earlier: Vec<Bar> = (0..15)
            .map(|i| bar(i * 60_000, i * 60_000 + 60_000, 120))
            .collect();
        let l = events_layout_with(
            &windows,
            (0, 900_000),
            10_000,
            360,
            0,
            &earlier,
            &[450_000, 5_000_000],
        );
        assert_eq!(l.bucket_ms, 10_000);
        assert_eq!(l.compare.len(), 90);
        assert_eq!(l.y_ticks.last().map(|t| t.0), Some(20));
        assert!(
            l.compare.iter().all(|(_, y)| (*y - 0.0).abs() < 1e-9),
            "20 of 20: at the top"
        );
        assert_eq!(l.markers, vec![(450_000, 500.0)]);
        // Items wider than the bars the range would take widen the bars.
        let steps = vec![bar(0, 1_800_000, 50), bar(1_800_000, 3_600_000, 60)];
        let l = events_layout(&steps, (0, 3_600_000), 10_000, 360, 0);
        assert_eq!(l.bucket_ms, 1_800_000);
        assert_eq!(l.bars.len(), 2);
    }
}
