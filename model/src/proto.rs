//! JSON wire types shared by the server and the frontend: the body of every JSON response
//! of the HTTP API and the WebSocket messages.
//!
//! Contract:
//! - These structs are the bodies as sent; field names are the JSON names. Changing their
//!   meaning requires bumping [`PROTOCOL_VERSION`].
//! - Times are epoch milliseconds; windows are `[start, end)`.
//! - A window ([`WindowView`]) and a range ([`Summary`]) carry the same [`Figures`],
//!   flattened into their own JSON object: one definition of what a count, a unique or a
//!   top list means.
//! - Top lists are ordered by count descending, then key ascending, and `approximate` is
//!   true when any of the underlying counters left exact mode.
//! - When a window is live, final or revised is decided by [`crate::window::window_state`].
//! - Goals ([`GoalFigures`]) list the server's configured goals in their order, with zeros
//!   where a window or range has no completion; conversion rate = converting visitors ÷
//!   unique visitors, both HyperLogLog estimates of the same window or range.
//! - A view filtered by a segment (`filter=country:DE`) carries the segment's figures and a
//!   [`SegmentNote`] saying whether they hold every event of that value (`complete`) or are
//!   a lower bound because some windows kept the value in their "other" bucket.
//!
//! Protocol versions: 1, the first; 2 adds goals to the figures, the segment note and the
//! filter echoed in the snapshot of a filtered socket (`/ws?filter=`). Both additions are
//! fields a version-1 client ignores.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agg::{conversion_rate, Aggregate, Coverage, Goal, TopCounts};

/// Version of the JSON protocol described here (see the module docs for the changes).
pub const PROTOCOL_VERSION: u32 = 2;

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

/// One `(key, count)` entry of a top list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Count {
    /// The counted key (URL, referrer, country, ...).
    pub key: String,
    /// Its count (a lower bound when approximate).
    pub count: u64,
}

fn counts(t: &TopCounts, n: usize) -> Vec<Count> {
    t.top(n)
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect()
}

fn type_map(t: &TopCounts) -> BTreeMap<String, u64> {
    t.sorted_entries()
        .into_iter()
        .map(|(k, c)| (k.to_owned(), c))
        .collect()
}

/// What a window, or a range of windows, counted: events, uniques and top lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    /// Number of events.
    pub events: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// Estimated distinct visitors (over a range: from the HyperLogLog merge, never a sum).
    pub unique_visitors: u64,
    /// Estimated distinct sessions (over a range: from the HyperLogLog merge).
    pub unique_sessions: u64,
    /// Most viewed URLs (page views).
    pub top_urls: Vec<Count>,
    /// Most common referrers.
    pub top_referrers: Vec<Count>,
    /// Events by country, largest first.
    pub countries: Vec<Count>,
    /// Events by device, largest first.
    pub devices: Vec<Count>,
    /// True when any top list is approximate.
    pub approximate: bool,
    /// The goals: completions, converting visitors, conversion rate.
    #[serde(default)]
    pub goals: Vec<GoalFigures>,
}

/// One goal's figures in a window or over a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoalFigures {
    /// The goal's name.
    pub name: String,
    /// Events that completed it.
    pub completions: u64,
    /// Distinct visitors who completed it (HyperLogLog estimate; over a range a merge).
    pub converting_visitors: u64,
    /// `converting_visitors / unique_visitors` of the same window or range, from 0 to 1.
    pub conversion_rate: f64,
}

impl GoalFigures {
    /// The figures of the goal `name` in `agg` (zeros when it has no completion there).
    pub fn of(agg: &Aggregate, name: &str) -> Self {
        let (completions, converting) = agg
            .goals
            .get(name)
            .map_or((0, 0), |g| (g.completions, g.visitors.estimate()));
        GoalFigures {
            name: name.to_owned(),
            completions,
            converting_visitors: converting,
            conversion_rate: conversion_rate(converting, agg.visitors.estimate()),
        }
    }
}

impl Figures {
    /// The figures of `agg` with top lists cut to `top_n` entries, and the goals it holds
    /// completions of (by name).
    pub fn from_aggregate(agg: &Aggregate, top_n: usize) -> Self {
        let mut f = Figures::base(agg, top_n);
        f.goals = agg.goals.keys().map(|n| GoalFigures::of(agg, n)).collect();
        f
    }

    /// The figures of `agg` with top lists cut to `top_n` entries and the figures of each of
    /// `goals`, in their order.
    pub fn with_goals(agg: &Aggregate, top_n: usize, goals: &[Goal]) -> Self {
        let mut f = Figures::base(agg, top_n);
        f.goals = goals
            .iter()
            .map(|g| GoalFigures::of(agg, &g.name))
            .collect();
        f
    }

    fn base(agg: &Aggregate, top_n: usize) -> Self {
        Figures {
            events: agg.events,
            by_type: type_map(&agg.by_type),
            unique_visitors: agg.visitors.estimate(),
            unique_sessions: agg.sessions.estimate(),
            top_urls: counts(&agg.urls, top_n),
            top_referrers: counts(&agg.referrers, top_n),
            countries: counts(&agg.countries, top_n),
            devices: counts(&agg.devices, top_n),
            approximate: !agg.is_exact(),
            goals: Vec::new(),
        }
    }
}

/// What a view filtered by a segment holds of the value's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentNote {
    /// The filter, as `dimension:value`.
    pub filter: String,
    /// True when the figures hold every event of the value. False when some windows (or
    /// partitions of them) kept the value in their "other" bucket: the figures are then a
    /// lower bound.
    pub complete: bool,
    /// Events the figures hold.
    pub events: u64,
    /// The value's events in the same windows lie between these two (equal while the
    /// windows' own counts of the dimension are exact).
    pub events_at_least: u64,
    pub events_at_most: u64,
    /// Windows (partitions of windows, before the merge) whose figures lack some events of
    /// the value.
    pub incomplete_parts: u64,
}

impl SegmentNote {
    /// The note of `filter` with `coverage`.
    pub fn new(filter: &crate::agg::Filter, coverage: &Coverage) -> Self {
        SegmentNote {
            filter: filter.to_string(),
            complete: coverage.complete(),
            events: coverage.events,
            events_at_least: coverage.of_at_least,
            events_at_most: coverage.of_at_most,
            incomplete_parts: coverage.incomplete_parts,
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
    /// With `compare=1d|7d`: the same range one day or week earlier, and the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<SummaryComparison>,
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
            compare: None,
        }
    }
}

/// Body of `GET /api/v1/now`: who is on the site now (see [`crate::now`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VisitorsNow {
    /// The wall-clock time "now" is (epoch ms).
    pub at: i64,
    /// How far back "now" reaches, ms (`--now-window`).
    pub span_ms: i64,
    /// Start of the oldest window merged (the one holding `at - span_ms`), epoch ms.
    pub from: i64,
    /// End of the newest window merged, epoch ms.
    pub to: i64,
    /// Distinct visitors with an event in those windows (HyperLogLog merge).
    pub visitors: u64,
    /// Events in those windows.
    pub events: u64,
    /// Active pages: page views by URL in those windows, most first.
    pub pages: Vec<Count>,
    /// Sources: events by referrer domain in those windows, most first.
    pub sources: Vec<Count>,
    /// The definition, for people (the dashboard shows it on hover).
    pub definition: String,
    /// With a filter: how much of the value's events the figures hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentNote>,
}

/// A goal as the server counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoalInfo {
    /// Its name.
    pub name: String,
    /// Its rule in the `--goal` syntax: `type:signup`, `type:pageview,url:/pricing*`.
    pub rule: String,
}

/// Body of `GET /api/v1/segments`: what a filter may name, the goals, and visitors now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentsInfo {
    /// Dimensions with sub-aggregates: what `filter=DIMENSION:VALUE` may name
    /// (`--segment-dimensions`).
    pub dimensions: Vec<String>,
    /// Values per window and dimension with their own sub-aggregate (`--segment-top`);
    /// the others share the window's "other" bucket (`filter=DIMENSION:(other)`).
    pub top_n: u32,
    /// The goals (`--goal`).
    pub goals: Vec<GoalInfo>,
    /// How far back "visitors now" reaches, ms (`--now-window`).
    pub now_window_ms: i64,
    /// What "visitors now" means.
    pub now_definition: String,
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

/// Body of `GET /readyz`: `{"ready":true}` (200), or `{"ready":false,"reason":...}` (503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// Partitions are assigned: the server is counting.
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of a `202` answer to `POST /collect`: `{"accepted":n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// Events delivered to Kafka.
    pub accepted: u64,
}

/// Ingestion state of one Kafka partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionStatus {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Next offset to be consumed.
    pub next_offset: i64,
    /// Broker high watermark, when known.
    pub high_watermark: Option<i64>,
    /// `high_watermark - next_offset`, when known.
    pub lag: Option<i64>,
    /// Event-time watermark, epoch ms.
    pub watermark: Option<i64>,
    /// True when the partition has produced nothing recently.
    pub idle: bool,
    /// Events accepted from this partition.
    pub events: u64,
    /// Messages sent to the dead-letter store from this partition.
    pub dead_letters: u64,
    /// Messages read by this process since it started (0 after a clean restart with
    /// nothing new: nothing is read twice).
    #[serde(default)]
    pub read_since_start: u64,
    /// Wall-clock time (epoch ms) of the first and the last message this process read.
    #[serde(default)]
    pub first_read_ms: Option<i64>,
    #[serde(default)]
    pub last_read_ms: Option<i64>,
    /// Times the stored offset was outside the log and reset (`--offset-reset`).
    #[serde(default)]
    pub offset_resets: u64,
    /// Late events folded into windows this partition had closed (revisions).
    #[serde(default)]
    pub revised_events: u64,
    /// Dead letters of this partition kept in the store (their topic did not take them).
    #[serde(default)]
    pub dead_letters_recorded: u64,
    /// Why this partition stopped counting (its task panicked), when it did: the process
    /// stops with an error, and the next start resumes it from its last checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The instance that owns the partition (that wrote its last checkpoint), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<InstanceRef>,
    /// Whether this instance reads the partition (false: another instance of the group
    /// does, and this one shows what that one checkpointed to the state topic).
    #[serde(default)]
    pub local: bool,
}

/// An instance of Pulseboard: its id in the consumer group and its dashboard's URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceRef {
    /// Random id kept in the instance's store (its transactional id is derived from it).
    pub id: String,
    /// Where the instance serves its dashboard (`--advertised-url`); empty when unknown.
    pub url: String,
}

/// A member of the consumer group, as the group coordinator lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceStatus {
    pub id: String,
    /// Where it serves its dashboard; empty when it has not said yet.
    pub url: String,
    /// Input partitions it owns (those whose last checkpoint it wrote).
    pub partitions: u32,
    /// This instance (the one answering).
    #[serde(default)]
    pub this: bool,
}

/// A dead letter its topic did not take, as `GET /api/v1/dead-letters` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordedDeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Why the message could not be counted.
    pub reason: String,
    /// Why the dead-letter topic did not take it.
    pub error: String,
    /// When it was recorded (epoch ms).
    pub at: i64,
    /// Size of the message value, and its first bytes (lossy UTF-8, at most 4 KiB).
    pub value_bytes: u64,
    pub value_head: String,
}

/// Body of `GET /api/v1/dead-letters`: the most recent recorded dead letters, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLettersResponse {
    /// Recorded dead letters in the store (all partitions).
    pub recorded_total: u64,
    pub dead_letters: Vec<RecordedDeadLetter>,
}

/// A stored offset found outside the log, and what was done about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OffsetResetNote {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The stored offset that was out of range.
    pub stored: i64,
    /// The policy applied: `earliest` or `latest`.
    pub policy: String,
    /// When, epoch ms.
    pub at: i64,
}

/// Server status: the body of `GET /api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// Server version.
    pub version: String,
    /// [`PROTOCOL_VERSION`] spoken by the server.
    pub protocol: u32,
    /// Kafka bootstrap servers.
    pub broker: String,
    /// Whether the cluster answered the last metadata probe (see [`ClusterHealth`]).
    pub broker_reachable: bool,
    /// What the last metadata probe saw of the cluster.
    #[serde(default)]
    pub cluster: ClusterHealth,
    /// True when running on generated demo traffic.
    pub demo: bool,
    /// Window width, ms.
    pub window_ms: i64,
    /// Events accepted overall.
    pub events_total: u64,
    /// Dead letters overall.
    pub dead_letters_total: u64,
    /// Dead letters by [`crate::event::DeadReason::as_str`].
    pub dead_letters_by_reason: BTreeMap<String, u64>,
    /// Events that arrived after their window closed: folded into it as revisions, or
    /// dead-lettered (`too_late`) beyond the revision horizon.
    pub late_events_total: u64,
    /// Late events folded into closed windows (those windows are `revised`).
    #[serde(default)]
    pub revised_events_total: u64,
    /// Dead letters kept in the store because their topic did not take them.
    #[serde(default)]
    pub dead_letters_recorded_total: u64,
    /// Global event-time watermark (minimum over active partitions).
    pub watermark: Option<i64>,
    /// Recent ingestion rate.
    pub events_per_sec: f64,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Per-partition details.
    pub partitions: Vec<PartitionStatus>,
    /// Stored offsets found outside the log during this run.
    #[serde(default)]
    pub offset_resets: Vec<OffsetResetNote>,
    /// This instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceRef>,
    /// The state topic shared by the group's instances (absent: this instance runs alone,
    /// embedded or with `--no-state-topic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    /// Whether this instance has read the state topic up to its end once since it started
    /// (before that, other instances' partitions may lag behind).
    #[serde(default)]
    pub state_caught_up: bool,
    /// The instances alive in the consumer group (with a state topic).
    #[serde(default)]
    pub instances: Vec<InstanceStatus>,
    /// Alert rules firing now (the banner of the dashboard and the kiosk); history and
    /// every rule in `GET /api/v1/alerts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertNotice>,
    /// Changes whenever an annotation is added or deleted (and at every server start): a
    /// screen reloads `GET /api/v1/annotations` when it differs from the one it loaded.
    #[serde(default)]
    pub annotations_version: u64,
}

/// A firing alert as the status carries it (the banner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertNotice {
    /// The rule's name.
    pub rule: String,
    /// Its kind: `events_above`, `events_below`, `change`, `dead_letters` or `lag`.
    pub kind: String,
    /// What is wrong, for people.
    pub message: String,
    /// Since when it fires, epoch ms.
    pub since: i64,
    /// The value that made it fire, and the limit it crossed.
    pub value: f64,
    pub threshold: f64,
}

/// An alert rule as `GET /api/v1/alerts` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleView {
    pub name: String,
    /// `events_above`, `events_below`, `drop`, `spike`, `dead_letters` or `lag`.
    pub kind: String,
    /// The limit: events (`events_*`), percent (`drop`, `spike`), dead letters, messages
    /// of lag.
    pub threshold: f64,
    /// The span evaluated, ms (ending at the start of the current window).
    pub over_ms: i64,
    /// A firing rule resolves only once its condition has been false this long, ms.
    pub suppress_ms: i64,
    /// `drop`/`spike`: how much earlier the span compared with lies, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_ms: Option<i64>,
    /// `firing`, `ok`, `pending` (not evaluated yet: just started, or no baseline) or
    /// `error` (its figures could not be read).
    pub state: String,
    /// The last value evaluated.
    pub value: Option<f64>,
    /// Since when it fires, epoch ms.
    pub since: Option<i64>,
    /// Why it could not be evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether a webhook is notified.
    pub webhook: bool,
}

/// A rule starting or stopping to fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertHistoryEntry {
    pub rule: String,
    pub kind: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// When, epoch ms.
    pub at: i64,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// Webhook notifications of this run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookStats {
    /// Waiting to be sent.
    pub queued: u64,
    /// Delivered (a 2xx answer).
    pub sent: u64,
    /// Given up after every retry.
    pub failed: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
}

/// Body of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertsResponse {
    /// Where the rules come from: the `--alerts` file, `built-in demo rules`, or empty.
    pub source: String,
    /// When the rules in force were loaded, epoch ms.
    pub loaded_at: Option<i64>,
    /// Why the file's latest content was refused (the last good rules stay in force).
    pub error: Option<String>,
    /// When the rules were last evaluated, epoch ms.
    pub evaluated_at: Option<i64>,
    pub rules: Vec<AlertRuleView>,
    /// The rules firing now.
    pub firing: Vec<AlertNotice>,
    /// Firing and resolved transitions, newest first (the last 200).
    pub history: Vec<AlertHistoryEntry>,
    pub webhook: WebhookStats,
}

/// What the webhook of a rule receives (`POST`, `application/json`) when it starts firing
/// and when it resolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookPayload {
    /// Format version of this payload (1).
    pub version: u32,
    /// Always `pulseboard`.
    pub source: String,
    pub rule: String,
    pub kind: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub message: String,
    pub value: f64,
    pub threshold: f64,
    /// Since when it fires (epoch ms).
    pub since: i64,
    /// When this happened (epoch ms): the start of firing, or its resolution.
    pub at: i64,
}

/// A marker on the time axis (a deploy, a campaign): `POST /api/v1/annotations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Annotation {
    /// Its id (for `DELETE /api/v1/annotations/{id}`).
    pub id: u64,
    /// The time it marks, epoch ms.
    pub ts: i64,
    /// What happened (1 to 280 characters).
    pub text: String,
    /// When it was stored, epoch ms.
    pub created_at: i64,
}

/// Body of `GET /api/v1/annotations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnnotationsResponse {
    /// Range start (inclusive), epoch ms.
    pub from: i64,
    /// Range end (exclusive), epoch ms.
    pub to: i64,
    /// The status's `annotations_version` when this was read.
    pub version: u64,
    /// Annotations with `ts` in `[from, to)`, oldest first.
    pub annotations: Vec<Annotation>,
}

/// The Kafka cluster as Pulseboard's metadata probe last saw it.
///
/// Pulseboard asks the cluster for the metadata of its topics once a second, with a 2 s
/// timeout. `reachable` is whether the last answer came back: the cluster is reported
/// unreachable at most 3 s after it stops answering, and reachable again within about a
/// second of its first answer. A reachable cluster is `degraded` when a broker that holds
/// replicas of the input topics is not among the live brokers, or a partition has fewer
/// in-sync replicas than replicas, or no leader.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterHealth {
    /// The last probe was answered.
    pub reachable: bool,
    /// Wall-clock time (epoch ms) of the last probe, answered or not.
    pub checked_at: Option<i64>,
    /// Why the last probe failed.
    pub error: Option<String>,
    /// Live brokers in the last answer.
    pub brokers: Vec<BrokerInfo>,
    /// Broker ids holding replicas of the input topics that are not live.
    pub missing_brokers: Vec<i32>,
    /// Partitions of the input topics with fewer in-sync replicas than replicas.
    pub under_replicated_partitions: u32,
    /// Partitions of the input topics without a leader.
    pub offline_partitions: u32,
    /// Reachable, but with missing brokers, under-replicated or offline partitions.
    pub degraded: bool,
}

/// A live broker of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

/// Error body of every failed API request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Human-readable message.
    pub error: String,
    /// Name of the offending query parameter, if any.
    pub parameter: Option<String>,
}

impl ApiError {
    /// An error not tied to a parameter.
    pub fn new(error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            parameter: None,
        }
    }

    /// An error about query parameter `parameter`.
    pub fn param(parameter: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            parameter: Some(parameter.into()),
        }
    }
}

/// Largest frame a client may send on the socket; a larger one closes that socket.
pub const MAX_CLIENT_FRAME: usize = 4096;

/// A message the server sends on the WebSocket `/ws`: JSON, tagged by `type`.
///
/// Every message carries a sequence number, increasing by one per message the server
/// publishes. A client that reconnects with `/ws?since=SEQ` gets the messages after `SEQ`
/// when the server still holds them, otherwise a fresh [`ServerMsg::Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The full picture: recent and open windows and the status. Sent on connect, after a
    /// resume that cannot be served, and to a client that fell behind.
    Snapshot {
        /// [`PROTOCOL_VERSION`] of the server.
        protocol: u32,
        /// Sequence of the last message this snapshot includes.
        seq: u64,
        /// Window width, ms.
        window_ms: i64,
        /// Recent windows, oldest first.
        windows: Vec<WindowView>,
        /// Pipeline status.
        status: Status,
        /// On a filtered socket (`/ws?filter=`): the filter the windows show.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
    },
    /// Windows whose figures or state changed since the previous message.
    Windows {
        /// Sequence number.
        seq: u64,
        /// The changed windows, whole, oldest first.
        windows: Vec<WindowView>,
    },
    /// Pipeline status: offsets, lag, watermark, throughput, broker reachability.
    Status {
        /// Sequence number.
        seq: u64,
        /// Pipeline status.
        status: Status,
    },
}

impl ServerMsg {
    /// The message's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            ServerMsg::Snapshot { seq, .. }
            | ServerMsg::Windows { seq, .. }
            | ServerMsg::Status { seq, .. } => *seq,
        }
    }
}

/// A message a client may send on the socket (text frame, JSON). Anything else closes the
/// socket with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Application-level keepalive (browsers cannot send WebSocket pings).
    Ping,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn ev(kind: &str, url: &str, referrer: Option<&str>) -> Event {
        Event {
            ts: 1_795_515_330_123,
            kind: kind.into(),
            visitor: format!("v-{url}"),
            session: Some("s-1".into()),
            url: url.into(),
            referrer: referrer.map(Into::into),
            country: Some("DE".into()),
            device: Some("mobile".into()),
        }
    }

    #[test]
    fn window_view_reflects_the_aggregate_with_ordered_top_lists() {
        let mut agg = Aggregate::new();
        for e in [
            ev("pageview", "/b", Some("https://g/")),
            ev("pageview", "/a", None),
            ev("pageview", "/b", None),
            ev("click", "/c", Some("https://g/")),
            ev("pageview", "/a", None),
            ev("pageview", "/z", None),
        ] {
            agg.add(&e);
        }
        let v = WindowView::from_aggregate(0, 10_000, WindowState::Live, &agg, 2);
        assert_eq!(v.figures.events, 6);
        assert_eq!(v.figures.by_type.get("pageview"), Some(&5));
        assert_eq!(v.figures.by_type.get("click"), Some(&1));
        assert_eq!(
            v.figures.top_urls,
            vec![
                Count {
                    key: "/a".into(),
                    count: 2
                },
                Count {
                    key: "/b".into(),
                    count: 2
                }
            ]
        );
        assert_eq!(
            v.figures.top_referrers,
            vec![Count {
                key: "https://g/".into(),
                count: 2
            }]
        );
        assert_eq!(v.figures.unique_visitors, 4);
        assert_eq!(v.figures.unique_sessions, 1);
        assert!(!v.figures.approximate);
        let s = Summary::from_aggregate(0, 20_000, 2, &agg, 10);
        assert_eq!(s.figures.top_urls.len(), 3); // /c was a click, not a page view
        assert_eq!(
            s.figures.countries,
            vec![Count {
                key: "DE".into(),
                count: 6
            }]
        );
    }

    #[test]
    fn window_view_and_summary_json_is_pinned() {
        let mut agg = Aggregate::new();
        for e in [
            ev("pageview", "/b", Some("https://g/")),
            ev("click", "/c", None),
            ev("pageview", "/b", None),
        ] {
            agg.add(&e);
        }
        let figures = r#""events":3,"by_type":{"click":1,"pageview":2},"unique_visitors":2,"unique_sessions":1,"top_urls":[{"key":"/b","count":2}],"top_referrers":[{"key":"https://g/","count":1}],"countries":[{"key":"DE","count":3}],"devices":[{"key":"mobile","count":3}],"approximate":false,"goals":[]"#;
        let v = WindowView::from_aggregate(10_000, 20_000, WindowState::Revised, &agg, 10);
        let json = serde_json::to_string(&v).expect("window json");
        assert_eq!(
            json,
            format!(
                r#"{{"start":10000,"end":20000,"state":"revised","resolution":"window",{figures}}}"#
            )
        );
        assert_eq!(serde_json::from_str::<WindowView>(&json).ok(), Some(v));
        let s = Summary::from_aggregate(0, 30_000, 3, &agg, 10);
        let json = serde_json::to_string(&s).expect("summary json");
        assert_eq!(
            json,
            format!(r#"{{"from":0,"to":30000,"windows":3,{figures}}}"#)
        );
        assert_eq!(serde_json::from_str::<Summary>(&json).ok(), Some(s));
    }

    #[test]
    fn goals_and_the_segment_note_are_pinned() {
        use crate::agg::{AggSpec, Filter, Goal};
        let spec = AggSpec {
            goals: vec![
                Goal::parse("signup").unwrap(),
                Goal::parse("pricing=url:/pricing").unwrap(),
            ],
            ..AggSpec::default()
        };
        let mut agg = Aggregate::new();
        for e in [
            ev("signup", "/signup", None),
            ev("pageview", "/a", None),
            ev("pageview", "/b", None),
            ev("pageview", "/c", None),
        ] {
            agg.add_with(&e, &spec);
        }
        let f = Figures::with_goals(&agg, 10, &spec.goals);
        assert_eq!(
            serde_json::to_string(&f.goals).unwrap(),
            r#"[{"name":"signup","completions":1,"converting_visitors":1,"conversion_rate":0.25},{"name":"pricing","completions":0,"converting_visitors":0,"conversion_rate":0.0}]"#
        );
        // Without the configured list, the goals the aggregate holds.
        assert_eq!(
            Figures::from_aggregate(&agg, 10).goals,
            f.goals[..1].to_vec()
        );
        let cov = crate::agg::Coverage {
            events: 3,
            of_at_least: 5,
            of_at_most: 5,
            incomplete_parts: 1,
        };
        let mut s = Summary::from_aggregate(0, 10, 1, &agg, 0);
        s.segment = Some(SegmentNote::new(
            &Filter::parse("country:DE").unwrap(),
            &cov,
        ));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["segment"].to_string(),
            r#"{"complete":false,"events":3,"events_at_least":5,"events_at_most":5,"filter":"country:DE","incomplete_parts":1}"#
        );
        assert!(
            serde_json::to_value(Summary::from_aggregate(0, 10, 1, &agg, 0))
                .unwrap()
                .get("segment")
                .is_none()
        );
    }

    #[test]
    fn figures_are_the_same_in_a_window_and_a_summary() {
        let mut agg = Aggregate::new();
        agg.add(&ev("pageview", "/a", Some("https://g/")));
        let v = WindowView::from_aggregate(0, 10_000, WindowState::Final, &agg, 10);
        let s = Summary::from_aggregate(0, 10_000, 1, &agg, 10);
        assert_eq!(v.figures, s.figures);
        assert_eq!(v.figures, Figures::from_aggregate(&agg, 10));
        assert_eq!(v.figures.events, 1);
    }

    #[test]
    fn http_response_bodies_are_pinned() {
        let ready = Readiness {
            ready: true,
            reason: None,
        };
        assert_eq!(serde_json::to_string(&ready).unwrap(), r#"{"ready":true}"#);
        let waiting = Readiness {
            ready: false,
            reason: Some("waiting".into()),
        };
        let json = serde_json::to_string(&waiting).unwrap();
        assert_eq!(json, r#"{"ready":false,"reason":"waiting"}"#);
        assert_eq!(serde_json::from_str::<Readiness>(&json).ok(), Some(waiting));
        assert_eq!(
            serde_json::from_str::<Readiness>(r#"{"ready":true}"#).ok(),
            Some(ready)
        );
        let accepted = serde_json::to_string(&Accepted { accepted: 3 }).unwrap();
        assert_eq!(accepted, r#"{"accepted":3}"#);
        let page = WindowsResponse {
            from: 0,
            to: 20_000,
            window_ms: 10_000,
            windows: vec![WindowView::from_aggregate(
                0,
                10_000,
                WindowState::Live,
                &Aggregate::new(),
                10,
            )],
            next: Some(10_000),
            compare: None,
        };
        let json = serde_json::to_string(&page).unwrap();
        assert_eq!(
            json,
            r#"{"from":0,"to":20000,"window_ms":10000,"windows":[{"start":0,"end":10000,"state":"live","resolution":"window","events":0,"by_type":{},"unique_visitors":0,"unique_sessions":0,"top_urls":[],"top_referrers":[],"countries":[],"devices":[],"approximate":false,"goals":[]}],"next":10000}"#
        );
        assert_eq!(
            serde_json::from_str::<WindowsResponse>(&json).ok(),
            Some(page)
        );
        let last: WindowsResponse =
            serde_json::from_str(r#"{"from":0,"to":1,"window_ms":10000,"windows":[],"next":null}"#)
                .unwrap();
        assert_eq!(last.next, None);
    }

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

    #[test]
    fn wire_types_round_trip_through_json() {
        let agg = Aggregate::new();
        let v = WindowView::from_aggregate(0, 1, WindowState::Final, &agg, 5);
        let back: WindowView = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        let e = ApiError::param("from", "bad time");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"error":"bad time","parameter":"from"}"#);
        let st = Status {
            version: "0.1.0".into(),
            protocol: PROTOCOL_VERSION,
            broker: "localhost:9092".into(),
            broker_reachable: true,
            cluster: Default::default(),
            demo: false,
            window_ms: 10_000,
            events_total: 1,
            dead_letters_total: 0,
            dead_letters_by_reason: BTreeMap::new(),
            late_events_total: 0,
            watermark: Some(5),
            events_per_sec: 1.5,
            uptime_secs: 3,
            partitions: vec![PartitionStatus {
                topic: "clicks".into(),
                partition: 0,
                next_offset: 10,
                high_watermark: Some(12),
                lag: Some(2),
                watermark: None,
                idle: false,
                events: 9,
                dead_letters: 1,
                read_since_start: 10,
                first_read_ms: None,
                last_read_ms: None,
                offset_resets: 0,
                ..Default::default()
            }],
            offset_resets: vec![],
            ..Default::default()
        };
        let back: Status = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(back, st);
    }

    fn view(start: i64, events: u64) -> WindowView {
        let mut agg = Aggregate::new();
        for i in 0..events {
            agg.add(&ev("pageview", &format!("/{i}"), None));
        }
        WindowView::from_aggregate(start, start + 10_000, WindowState::Live, &agg, 10)
    }

    fn status() -> Status {
        Status {
            version: "0".into(),
            protocol: PROTOCOL_VERSION,
            broker: "embedded".into(),
            broker_reachable: true,
            demo: true,
            window_ms: 10_000,
            ..Status::default()
        }
    }

    #[test]
    fn server_messages_round_trip_as_tagged_json() {
        let msgs = vec![
            ServerMsg::Snapshot {
                protocol: PROTOCOL_VERSION,
                seq: 7,
                window_ms: 10_000,
                windows: vec![view(0, 2)],
                status: status(),
                filter: None,
            },
            ServerMsg::Windows {
                seq: 8,
                windows: vec![view(10_000, 1)],
            },
            ServerMsg::Status {
                seq: 9,
                status: status(),
            },
        ];
        for m in msgs {
            let json = serde_json::to_string(&m).expect("serialize");
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            assert!(v["type"].is_string(), "{json}");
            let back: ServerMsg = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, m);
        }
        let snap: serde_json::Value = serde_json::to_value(ServerMsg::Snapshot {
            protocol: PROTOCOL_VERSION,
            seq: 1,
            window_ms: 10_000,
            windows: vec![],
            status: status(),
            filter: None,
        })
        .expect("value");
        assert_eq!(snap["type"], "snapshot");
        assert_eq!(snap["protocol"], PROTOCOL_VERSION);
    }

    #[test]
    fn unknown_message_type_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ServerMsg>(r#"{"type":"bogus","seq":1}"#).is_err());
    }
}
