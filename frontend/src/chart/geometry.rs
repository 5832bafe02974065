//! SVG geometry: bar rectangles in a box ([`bar_rects`]), compact paths ([`line_path`],
//! [`area_path`]) and sparkline points ([`spark_points`]).
//!
//! Contract: pure, tested on the host. Coordinates are SVG user units with the origin at
//! the top left; `y` grows downwards. Numbers in paths have at most two decimals.

use super::{bars::Bar, scale::Linear};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::{bar, close};
    use pulseboard_model::proto::WindowState::*;

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
}
