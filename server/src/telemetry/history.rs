//! The events of history, alerts and annotations: roll-ups, deletions past `--history`,
//! alerts firing and resolving, rule reloads, webhooks, annotation changes.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Labels;

/// Counters of history roll-ups, alerts, their webhooks and annotations.
struct HistoryAlertCounters {
    rollup_buckets: Family<Labels, Counter>,
    rollup_rows: Counter,
    history_rows_deleted: Counter,
    alerts_fired: Family<Labels, Counter>,
    alerts_resolved: Family<Labels, Counter>,
    alert_rules_reloads: Family<Labels, Counter>,
    webhook_deliveries: Family<Labels, Counter>,
    webhook_attempts_failed: Counter,
    annotations_changed: Family<Labels, Counter>,
}

static HISTORY_ALERTS: LazyLock<HistoryAlertCounters> = LazyLock::new(|| HistoryAlertCounters {
    rollup_buckets: Family::default(),
    rollup_rows: Counter::default(),
    history_rows_deleted: Counter::default(),
    alerts_fired: Family::default(),
    alerts_resolved: Family::default(),
    alert_rules_reloads: Family::default(),
    webhook_deliveries: Family::default(),
    webhook_attempts_failed: Counter::default(),
    annotations_changed: Family::default(),
});

/// Registers the counters of history, alerts and annotations.
pub(super) fn register(r: &mut Registry) {
    let k = &*HISTORY_ALERTS;
    r.register(
        "history_rollup_buckets",
        "Roll-up buckets written (one sled transaction each), by level",
        k.rollup_buckets.clone(),
    );
    r.register(
        "history_rollup_rows",
        "Windows and minute buckets merged into roll-up buckets",
        k.rollup_rows.clone(),
    );
    r.register(
        "history_rows_deleted",
        "Roll-up buckets and windows deleted past --history",
        k.history_rows_deleted.clone(),
    );
    r.register(
        "alerts_fired",
        "Alert rules that started firing, by rule",
        k.alerts_fired.clone(),
    );
    r.register(
        "alerts_resolved",
        "Alert rules that stopped firing, by rule",
        k.alerts_resolved.clone(),
    );
    r.register(
        "alert_rules_reloads",
        "Reloads of the --alerts file, by outcome (ok, error)",
        k.alert_rules_reloads.clone(),
    );
    r.register(
        "webhook_deliveries",
        "Alert webhook notifications, by outcome (sent, failed after retries, dropped: queue full)",
        k.webhook_deliveries.clone(),
    );
    r.register(
        "webhook_attempts_failed",
        "Alert webhook attempts that failed (each is retried with backoff, within a bound)",
        k.webhook_attempts_failed.clone(),
    );
    r.register(
        "annotations_changed",
        "Annotations added or deleted, by action",
        k.annotations_changed.clone(),
    );
}

/// A history pass rolled `buckets` buckets of `level` up from `rows` rows.
pub fn history_rolled_up(level: &'static str, buckets: usize, rows: usize, before: i64) {
    if buckets > 0 {
        tracing::info!(level, buckets, rows, before, "history rolled up");
    }
    let k = &*HISTORY_ALERTS;
    k.rollup_buckets
        .get_or_create(&vec![("level", level.to_owned())])
        .inc_by(buckets as u64);
    k.rollup_rows.inc_by(rows as u64);
}

/// History older than `--history` was deleted.
pub fn history_deleted(before: i64, rows: usize) {
    if rows > 0 {
        tracing::info!(rows, before, "history past --history deleted");
    }
    HISTORY_ALERTS.history_rows_deleted.inc_by(rows as u64);
}

/// An alert rule started firing.
pub fn alert_fired(rule: &str, message: &str) {
    tracing::warn!(rule, message, "alert firing");
    HISTORY_ALERTS
        .alerts_fired
        .get_or_create(&vec![("rule", rule.to_owned())])
        .inc();
}

/// An alert rule stopped firing.
pub fn alert_resolved(rule: &str) {
    tracing::info!(rule, "alert resolved");
    HISTORY_ALERTS
        .alerts_resolved
        .get_or_create(&vec![("rule", rule.to_owned())])
        .inc();
}

/// The alert rules file was (re)loaded.
pub fn alert_rules_loaded(path: &str, rules: usize) {
    tracing::info!(path, rules, "alert rules loaded");
    HISTORY_ALERTS
        .alert_rules_reloads
        .get_or_create(&vec![("outcome", "ok".to_owned())])
        .inc();
}

/// The alert rules file could not be read or parsed: the last good rules stay.
pub fn alert_rules_failed(path: &str, error: &dyn std::fmt::Display) {
    tracing::error!(path, error = %error, "alert rules file refused; keeping the last good rules");
    HISTORY_ALERTS
        .alert_rules_reloads
        .get_or_create(&vec![("outcome", "error".to_owned())])
        .inc();
}

/// A webhook notification ended: `outcome` is `sent`, `failed` (retries used up) or
/// `dropped` (the queue was full).
pub fn webhook_delivery(rule: &str, outcome: &'static str, attempts: u32) {
    match outcome {
        "sent" => tracing::info!(rule, attempts, "alert webhook delivered"),
        _ => tracing::warn!(rule, outcome, attempts, "alert webhook not delivered"),
    }
    HISTORY_ALERTS
        .webhook_deliveries
        .get_or_create(&vec![("outcome", outcome.to_owned())])
        .inc();
}

/// One webhook attempt failed; it is retried after `retry_in` unless it was the last.
pub fn webhook_attempt_failed(rule: &str, attempt: u32, error: &dyn std::fmt::Display) {
    tracing::warn!(rule, attempt, error = %error, "alert webhook attempt failed");
    HISTORY_ALERTS.webhook_attempts_failed.inc();
}

/// An annotation was added or deleted.
pub fn annotation_changed(action: &'static str, id: u64) {
    tracing::info!(action, id, "annotation");
    HISTORY_ALERTS
        .annotations_changed
        .get_or_create(&vec![("action", action.to_owned())])
        .inc();
}
