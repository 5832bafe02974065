//! Chart maths: scales, "nice" ticks, time ticks, bucketing, SVG geometry, and the whole
//! layout of the events chart ([`events_layout`]).
//!
//! Contract: pure functions of plain numbers (no DOM, no clock, no time zone lookup — the
//! caller passes the zone offset), so every rule here is tested on the host. Components in
//! `panels` only lay out what these functions return. Coordinates are SVG user units with
//! the origin at the top left; `y` grows downwards.
//!
//! - [`scale`] — the linear map and "nice" count ticks.
//! - [`time_axis`] — time axis steps and ticks on the viewer's clock.
//! - [`bars`] — a bar of the events chart, and windows merged into wider bars.
//! - [`geometry`] — bar rectangles, SVG paths and sparklines.
//! - [`events`] — the whole layout of the events chart.

pub mod bars;
pub mod events;
pub mod geometry;
pub mod scale;
pub mod time_axis;

pub use bars::{bucket, bucket_factor, per_bucket, Bar};
pub use events::{events_layout, events_layout_with, EventsLayout, EVENTS_H, EVENTS_W};
pub use geometry::{area_path, bar_rects, line_path, spark_points, Rect};
pub use scale::{nice_step, nice_ticks, Linear};
pub use time_axis::{time_step, time_ticks, DAY_MS};

/// Helpers the chart's tests share.
#[cfg(test)]
pub(crate) mod test_util {
    use pulseboard_model::proto::WindowState;

    use super::Bar;

    /// Equal but for rounding.
    pub fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// A bar 10 ms wide.
    pub fn bar(start: i64, events: u64, state: WindowState) -> Bar {
        Bar {
            start,
            end: start + 10,
            events,
            state,
        }
    }
}
