//! Windows as clients see them: a window's lifecycle ([`WindowState`]), what an item is
//! made of ([`Resolution`]), one window's figures ([`WindowView`]) and the body of
//! `GET /api/v1/windows` ([`WindowsResponse`]).
//!
//! Contract:
//! - Times are epoch milliseconds; a window is `[start, end)`.
//! - When a window is live, final or revised is decided by [`crate::window::window_state`];
//!   the JSON names are `live`, `final`, `revised`.
//! - A view carries its [`Figures`] flattened into its own JSON object.

use serde::{Deserialize, Serialize};

use super::{Figures, SegmentNote, SiteNote, WindowsComparison};
use crate::agg::Aggregate;

/// Lifecycle of a window as shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WindowState {
    /// Still accepting events.
    Live,
    /// Closed under the watermark.
    Final,
    /// Closed, but rewritten after it was first reported final.
    Revised,
}

impl WindowState {
    /// The state of a merge of windows in these states: live if either is, else revised if
    /// either is, else final.
    pub fn most_live(self, other: WindowState) -> WindowState {
        use WindowState::*;
        match (self, other) {
            (Live, _) | (_, Live) => Live,
            (Revised, _) | (_, Revised) => Revised,
            _ => Final,
        }
    }

    /// The JSON name: `live`, `final` or `revised`.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowState::Live => "live",
            WindowState::Final => "final",
            WindowState::Revised => "revised",
        }
    }
}

/// What an item of `GET /api/v1/windows` is made of: a window at full resolution, or a
/// roll-up bucket of history (past `--retention`: minute buckets, then hour buckets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// A window of `--window`.
    #[default]
    Window,
    /// Minute buckets.
    Minute,
    /// Hour buckets.
    Hour,
}

/// One window's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowView {
    /// Window start (inclusive), epoch ms.
    pub start: i64,
    /// Window end (exclusive), epoch ms.
    pub end: i64,
    /// Lifecycle state.
    pub state: WindowState,
    /// What the item is made of (its width is `end - start`): `window`, or the coarsest
    /// roll-up bucket in it (`minute`, `hour`). Absent in messages of older servers.
    #[serde(default)]
    pub resolution: Resolution,
    /// What the window counted (flattened into this object).
    #[serde(flatten)]
    pub figures: Figures,
    /// With a filter: how much of the value's events the figures hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentNote>,
    /// With `site`: the site shown, and whether the figures hold all of its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteNote>,
}

impl WindowView {
    /// Builds the view of `agg` with top lists cut to `top_n` entries.
    pub fn from_aggregate(
        start: i64,
        end: i64,
        state: WindowState,
        agg: &Aggregate,
        top_n: usize,
    ) -> Self {
        WindowView {
            site: None,
            start,
            end,
            state,
            resolution: Resolution::Window,
            figures: Figures::from_aggregate(agg, top_n),
            segment: None,
        }
    }

    /// The same view, made of `resolution`.
    pub fn with_resolution(mut self, resolution: Resolution) -> Self {
        self.resolution = resolution;
        self
    }
}

/// Body of `GET /api/v1/windows`: windows whose start lies in `[from, to)`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowsResponse {
    /// Range start (inclusive), epoch ms.
    pub from: i64,
    /// Range end (exclusive), epoch ms.
    pub to: i64,
    /// Window width, ms.
    pub window_ms: i64,
    /// The windows, merged across partitions, oldest first.
    pub windows: Vec<WindowView>,
    /// `from` of the next page when `limit` cut the answer.
    pub next: Option<i64>,
    /// With `compare=1d|7d`: the same range one day or week earlier, aligned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<WindowsComparison>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_state_names_are_its_json_names() {
        for s in [WindowState::Live, WindowState::Final, WindowState::Revised] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn window_state_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&WindowState::Live).unwrap(),
            "\"live\""
        );
        assert_eq!(
            serde_json::to_string(&WindowState::Final).unwrap(),
            "\"final\""
        );
        assert_eq!(
            serde_json::from_str::<WindowState>("\"revised\"").unwrap(),
            WindowState::Revised
        );
    }
}
