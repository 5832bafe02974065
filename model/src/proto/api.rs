//! The other bodies of the HTTP API: readiness (`GET /readyz`), `202` of `POST /collect`,
//! visitors now (`GET /api/v1/now`), what a filter may name (`GET /api/v1/segments`),
//! recorded dead letters, annotations, and [`ApiError`], the body of every failed request.
//!
//! Contract: these structs are the bodies as sent; field names are the JSON names; times
//! are epoch milliseconds.

use serde::{Deserialize, Serialize};

use super::{Count, SegmentNote};

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
    /// With `site`: the site shown, and whether the figures hold all of its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<super::SiteNote>,
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
    /// The custom properties kept (`--property`), in their order: `filter=prop.KEY:VALUE`.
    #[serde(default)]
    pub properties: Vec<String>,
    /// How far back "visitors now" reaches, ms (`--now-window`).
    pub now_window_ms: i64,
    /// What "visitors now" means.
    pub now_definition: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::Aggregate;
    use crate::proto::{WindowState, WindowView, WindowsResponse};

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
}
