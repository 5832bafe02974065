//! Alerts on the wire: a firing rule as the status carries it ([`AlertNotice`]), the body
//! of `GET /api/v1/alerts` ([`AlertsResponse`]: rules, history, webhook statistics) and
//! what a rule's webhook receives ([`WebhookPayload`]).
//!
//! Contract: kinds and states are the strings the server's alert rules use (`firing`,
//! `resolved`, `ok`, `pending`, `error`); times are epoch milliseconds.

use serde::{Deserialize, Serialize};

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
