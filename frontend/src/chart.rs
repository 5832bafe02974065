//! Chart maths: scales, "nice" ticks, time ticks, bucketing, SVG geometry, and the whole
//! layout of the events chart ([`events_layout`]).
//!
//! Contract: pure functions of plain numbers (no DOM, no clock, no time zone lookup — the
//! caller passes the zone offset), so every rule here is tested on the host. Components in
//! `panels` only lay out what these functions return. Coordinates are SVG user units with
//! the origin at the top left; `y` grows downwards.

use pulseboard_model::proto::WindowState;

/// A linear map from a domain interval onto a range interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Linear {
    /// Maps `domain.0 → range.0` and `domain.1 → range.1`. An empty domain maps everything
    /// to `range.0`.
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Linear {
            d0: domain.0,
            d1: domain.1,
            r0: range.0,
            r1: range.1,
        }
    }

    /// The image of `v` (not clamped: values outside the domain land outside the range).
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 || !span.is_finite() {
            return self.r0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }

    /// The domain value whose image is `r`.
    pub fn invert(&self, r: f64) -> f64 {
        let span = self.r1 - self.r0;
        if span == 0.0 || !span.is_finite() {
            return self.d0;
        }
        self.d0 + (r - self.r0) / span * (self.d1 - self.d0)
    }
}

/// A step of 1, 2 or 5 × 10^k that cuts `span` into about `target` pieces.
pub fn nice_step(span: f64, target: usize) -> f64 {
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powi(raw.log10().floor() as i32);
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks for a count axis starting at 0: `0, step, 2·step, …` up to the first tick at or
/// above `max`, with about `target` intervals. Counts are whole, so the step is at least 1.
/// The last tick is the axis maximum.
pub fn nice_ticks(max: f64, target: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = nice_step(max, target).max(1.0);
    let n = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// Steps a time axis may use, in ms.
const TIME_STEPS: [i64; 17] = [
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
    24 * 3_600_000,
];

/// The smallest of the time steps (1 s … 24 h) giving at most `target` ticks over `span_ms`.
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
    let local = from + tz_offset_ms;
    let first_local = local + (step - local.rem_euclid(step)) % step;
    let mut out = Vec::new();
    let mut t = first_local - tz_offset_ms;
    while t <= to {
        out.push(t);
        t += step;
    }
    out
}

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
const BUCKET_FACTORS: [i64; 12] = [1, 2, 3, 6, 12, 30, 60, 90, 180, 360, 720, 1440];

/// How many windows one bar spans so that `span_ms` needs at most `max_bars` bars.
pub fn bucket_factor(span_ms: i64, window_ms: i64, max_bars: usize) -> i64 {
    if window_ms <= 0 {
        return 1;
    }
    let windows = (span_ms + window_ms - 1) / window_ms;
    let max = max_bars.max(1) as i64;
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

/// An axis-aligned rectangle in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (never negative).
    pub w: f64,
    /// Height (never negative).
    pub h: f64,
}

/// Geometry of a bar chart over `[from, to)` in a `width × height` box whose count axis
/// runs from 0 (bottom) to `y_max` (top). Each bar keeps a gap of 15% of its slot (at most
/// 3 units) to its neighbour; a bar with events is at least 1 unit tall so it stays visible.
pub fn bar_rects(
    bars: &[Bar],
    from: i64,
    to: i64,
    y_max: f64,
    width: f64,
    height: f64,
) -> Vec<Rect> {
    let xs = Linear::new((from as f64, to as f64), (0.0, width));
    let ys = Linear::new((0.0, y_max.max(1.0)), (height, 0.0));
    bars.iter()
        .map(|b| {
            let x0 = xs.map(b.start as f64).max(0.0);
            let x1 = xs.map(b.end as f64).min(width);
            let slot = (x1 - x0).max(0.0);
            let gap = (slot * 0.15).min(3.0);
            let mut y = ys.map(b.events as f64).clamp(0.0, height);
            if b.events > 0 && height - y < 1.0 {
                y = (height - 1.0).max(0.0);
            }
            Rect {
                x: x0 + gap / 2.0,
                y,
                w: (slot - gap).max(0.0),
                h: height - y,
            }
        })
        .collect()
}

fn num(v: f64) -> String {
    // Two decimals are plenty for SVG and keep the path short; drop a trailing ".00".
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// An SVG path through `points` (`M x y L x y …`); empty for no points.
pub fn line_path(points: &[(f64, f64)]) -> String {
    let mut out = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(if i == 0 { 'M' } else { 'L' });
        out.push_str(&num(*x));
        out.push(' ');
        out.push_str(&num(*y));
    }
    out
}

/// The closed area under `points` down to the horizontal line `baseline`; empty for fewer
/// than two points.
pub fn area_path(points: &[(f64, f64)], baseline: f64) -> String {
    if points.len() < 2 {
        return String::new();
    }
    let first = points[0].0;
    let last = points[points.len() - 1].0;
    format!(
        "{} L{} {} L{} {} Z",
        line_path(points),
        num(last),
        num(baseline),
        num(first),
        num(baseline)
    )
}

/// Points of a sparkline of `values` spread evenly over a `width × height` box, scaled so
/// the largest value touches the top.
pub fn spark_points(values: &[u64], width: f64, height: f64) -> Vec<(f64, f64)> {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len();
    let xs = Linear::new((0.0, (n.max(2) - 1) as f64), (0.0, width));
    let ys = Linear::new((0.0, max), (height, 0.0));
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (xs.map(i as f64), ys.map(*v as f64)))
        .collect()
}

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
    /// Width of one bar, ms.
    pub bucket_ms: i64,
    /// Width of one window, ms.
    pub window_ms: i64,
    /// The comparison period's line (events per bar, at each bar's middle), when there is one.
    pub compare: Vec<(f64, f64)>,
    /// Annotations in the range: `(time, x)`.
    pub markers: Vec<(i64, f64)>,
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
    EventsLayout {
        bars: bars.into_iter().zip(rects).collect(),
        y_ticks: ticks
            .iter()
            .skip(1)
            .map(|t| (*t as u64, ys.map(*t)))
            .collect(),
        x_ticks: time_ticks(from, to, 6, tz_offset_ms)
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
    use WindowState::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn linear_maps_and_inverts() {
        let s = Linear::new((0.0, 100.0), (300.0, 0.0));
        assert!(close(s.map(0.0), 300.0));
        assert!(close(s.map(100.0), 0.0));
        assert!(close(s.map(25.0), 225.0));
        assert!(close(s.invert(225.0), 25.0));
        let flat = Linear::new((5.0, 5.0), (0.0, 10.0));
        assert_eq!(
            flat.map(7.0),
            0.0,
            "an empty domain does not divide by zero"
        );
    }

    #[test]
    fn nice_step_uses_1_2_5() {
        assert!(close(nice_step(100.0, 5), 20.0));
        assert!(close(nice_step(1234.0, 4), 500.0));
        assert!(close(nice_step(9.0, 10), 1.0));
        assert!(close(nice_step(0.7, 5), 0.2));
        assert!(close(nice_step(0.0, 5), 1.0));
    }

    #[test]
    fn nice_ticks_cover_the_maximum_from_zero() {
        assert_eq!(nice_ticks(95.0, 4), vec![0.0, 50.0, 100.0]);
        assert_eq!(
            nice_ticks(100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(nice_ticks(1234.0, 4), vec![0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(
            nice_ticks(0.0, 4),
            vec![0.0, 1.0],
            "an empty chart still has an axis"
        );
        assert_eq!(
            nice_ticks(3.0, 10),
            vec![0.0, 1.0, 2.0, 3.0],
            "counts tick by whole numbers"
        );
    }

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
    fn time_step_grows_with_the_span() {
        assert_eq!(time_step(5 * 60_000, 6), 60_000);
        assert_eq!(time_step(60 * 60_000, 6), 10 * 60_000);
        assert_eq!(time_step(24 * 3_600_000, 6), 6 * 3_600_000);
        assert_eq!(time_step(1_000 * 24 * 3_600_000, 6), 24 * 3_600_000);
    }

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
        assert_eq!(bucket_factor(3_600_000, 0, 100), 1);
    }

    fn bar(start: i64, events: u64, state: WindowState) -> Bar {
        Bar {
            start,
            end: start + 10,
            events,
            state,
        }
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

    #[test]
    fn bar_rects_place_bars_by_time_and_height_by_count() {
        let bars = [bar(0, 50, Final), bar(50, 100, Live), bar(90, 0, Live)];
        let r = bar_rects(&bars, 0, 100, 100.0, 1000.0, 200.0);
        // Slot 0..100 units, gap 3 (15% = 15, capped at 3).
        assert!(close(r[0].x, 1.5) && close(r[0].w, 97.0), "{:?}", r[0]);
        assert!(close(r[0].y, 100.0) && close(r[0].h, 100.0));
        assert!(close(r[1].x, 501.5) && close(r[1].y, 0.0) && close(r[1].h, 200.0));
        assert!(close(r[2].h, 0.0), "an empty window has no height");
        let tiny = bar_rects(&[bar(0, 1, Final)], 0, 100, 1e6, 1000.0, 200.0);
        assert!(close(tiny[0].h, 1.0), "a non-empty bar stays visible");
        let clipped = bar_rects(&[bar(-5, 1, Final)], 0, 100, 1.0, 1000.0, 200.0);
        assert!(
            clipped[0].x >= 0.0,
            "a bar starting before the range is clipped"
        );
    }

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
    fn paths_are_compact_svg() {
        assert_eq!(line_path(&[]), "");
        assert_eq!(
            line_path(&[(0.0, 10.0), (5.5, 2.25), (10.0, -0.0)]),
            "M0 10 L5.5 2.25 L10 0"
        );
        assert_eq!(
            area_path(&[(0.0, 1.0), (2.0, 3.0)], 4.0),
            "M0 1 L2 3 L2 4 L0 4 Z"
        );
        assert_eq!(area_path(&[(0.0, 1.0)], 4.0), "");
    }

    #[test]
    fn spark_points_span_the_box() {
        let p = spark_points(&[0, 5, 10], 100.0, 20.0);
        assert_eq!(p, vec![(0.0, 20.0), (50.0, 10.0), (100.0, 0.0)]);
        assert!(spark_points(&[], 100.0, 20.0).is_empty());
        assert_eq!(
            spark_points(&[0, 0], 10.0, 20.0),
            vec![(0.0, 20.0), (10.0, 20.0)]
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
