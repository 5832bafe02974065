//! Figures over a range and comparisons: the [`Summary`] of a merge of windows
//! (`GET /api/v1/summary`), and the earlier period of `compare=1d|7d` ([`Compare`]) with
//! the percent [`Change`] of the totals, for a summary ([`SummaryComparison`]) and for the
//! windows of `GET /api/v1/windows` ([`WindowsComparison`]).
//!
//! Contract:
//! - Uniques over a range come from the HyperLogLog merge, never a sum.
//! - Percent change is rounded to 0.1 and `null` when the earlier period counted 0
//!   ([`crate::rollup::percent_change`]).
//! - The compare labels are `1d` and `7d`, as in the API and the page URL.

use serde::{Deserialize, Serialize};

use super::{Figures, SegmentNote, SiteFigures, SiteNote, WindowView};
use crate::agg::Aggregate;

/// Percent change of the totals from an earlier period to the current one (`+25.0` for
/// 80 → 100, rounded to 0.1); `null` when the earlier period counted 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub events_pct: Option<f64>,
    pub unique_visitors_pct: Option<f64>,
    pub unique_sessions_pct: Option<f64>,
}

impl Change {
    /// The change from `before` to `now`.
    pub fn between(now: &Figures, before: &Figures) -> Change {
        use crate::rollup::percent_change as pct;
        Change {
            events_pct: pct(now.events, before.events),
            unique_visitors_pct: pct(now.unique_visitors, before.unique_visitors),
            unique_sessions_pct: pct(now.unique_sessions, before.unique_sessions),
        }
    }
}

/// A comparison period: the range `offset_ms` earlier (`compare=1d|7d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Compare {
    /// The same range one day earlier.
    #[serde(rename = "1d")]
    Day,
    /// The same range one week earlier.
    #[serde(rename = "7d")]
    Week,
}

impl Compare {
    /// How much earlier, ms.
    pub fn offset_ms(self) -> i64 {
        match self {
            Compare::Day => 86_400_000,
            Compare::Week => 7 * 86_400_000,
        }
    }

    /// `1d` or `7d`, as in the API and the page URL.
    pub fn label(self) -> &'static str {
        match self {
            Compare::Day => "1d",
            Compare::Week => "7d",
        }
    }

    /// The comparison called `label`.
    pub fn from_label(label: &str) -> Option<Compare> {
        [Compare::Day, Compare::Week]
            .into_iter()
            .find(|c| c.label() == label)
    }
}

/// The earlier period of a summary (`compare=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummaryComparison {
    /// How much earlier the period lies, ms (`from`/`to` below = the summary's minus this).
    pub offset_ms: i64,
    /// Earlier range start (inclusive), epoch ms.
    pub from: i64,
    /// Earlier range end (exclusive), epoch ms.
    pub to: i64,
    /// Items (windows or roll-up buckets) merged.
    pub windows: u64,
    /// What the earlier period counted.
    pub figures: Figures,
    /// Percent change from the earlier period to the summary's.
    pub change: Change,
}

/// The earlier period of `GET /api/v1/windows` (`compare=`), aligned to the current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowsComparison {
    /// How much earlier the period lies, ms.
    pub offset_ms: i64,
    /// Earlier range start (inclusive), epoch ms (the response's `from` minus `offset_ms`).
    pub from: i64,
    /// Earlier range end (exclusive), epoch ms.
    pub to: i64,
    /// The earlier items, oldest first, with `start` and `end` moved forward by
    /// `offset_ms` onto the current range (so they line up with `windows`); their own
    /// times are `start - offset_ms`.
    pub windows: Vec<WindowView>,
    /// Events of the whole current range and of the whole earlier one.
    pub events: u64,
    pub events_before: u64,
    /// Percent change of the range's totals (uniques from HyperLogLog merges).
    pub change: Change,
}

/// Transitional: reads of `view.events` and the like keep compiling until they say
/// `view.figures.events`.
/// Figures for a time range (a merge of windows): the body of `GET /api/v1/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// Range start (inclusive), epoch ms.
    pub from: i64,
    /// Range end (exclusive), epoch ms.
    pub to: i64,
    /// Number of windows merged.
    pub windows: u64,
    /// What the range counted (flattened into this object).
    #[serde(flatten)]
    pub figures: Figures,
    /// With a filter: how much of the value's events the figures hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentNote>,
    /// With `site`: the site shown, and whether the figures hold all of its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteNote>,
    /// Each site of the range with its figures, most events first, then `(other sites)`
    /// when more sites came than `--max-sites` (absent when the events carry no site).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteFigures>,
    /// Each custom property of `--property` (or the one `property=` names) with its top
    /// values (absent with a filter: a segment's figures have no property tables).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<PropertyFigures>,
    /// With `compare=1d|7d`: the same range one day or week earlier, and the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<SummaryComparison>,
}

/// One custom property over a range: its top values with their events and visitors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PropertyFigures {
    /// The key (`plan`); `filter=prop.plan:VALUE` shows one value's figures.
    pub key: String,
    /// Events that carried the property.
    pub events: u64,
    /// The values with most events (at most `top`), most events first. A value's events
    /// are exact while a window saw at most 1,000 values of the key.
    pub values: Vec<PropertyValue>,
    /// Events of the values not listed.
    pub other_events: u64,
    /// Visitors of the events that windows kept in their "(other)" bucket (values beyond
    /// `--segment-top` in a window).
    pub other_visitors: u64,
    /// False when some window kept a listed value's events in "(other)": that value's
    /// visitors are then a lower bound (the UI says so).
    pub complete: bool,
}

/// One value of a custom property over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PropertyValue {
    pub value: String,
    /// Events with this value.
    pub events: u64,
    /// Distinct visitors of the events the value's own figures hold (HyperLogLog).
    pub unique_visitors: u64,
    /// True when its own figures hold all its events (no window kept it in "(other)").
    pub complete: bool,
}

impl Summary {
    /// Builds the summary of `agg` with top lists cut to `top_n` entries.
    pub fn from_aggregate(from: i64, to: i64, windows: u64, agg: &Aggregate, top_n: usize) -> Self {
        Summary {
            from,
            to,
            windows,
            figures: Figures::from_aggregate(agg, top_n),
            segment: None,
            site: None,
            sites: Vec::new(),
            properties: Vec::new(),
            compare: None,
        }
    }
}
