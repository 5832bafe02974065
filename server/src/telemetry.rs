//! One place per recurring event: each function here logs the event with its fields and
//! counts it, so a log line and its metric never drift apart. `/metrics` renders these
//! counters with the figures of the status ([`metrics_registry`]).
//!
//! The counters are process-wide (like the log): they count what this process saw since it
//! started. Totals that survive restarts (events, dead letters by reason) come from the
//! store, through the status.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::api::ws::ConnectPacer;
use crate::hub::Hub;
use crate::progress::Progress;

type Labels = Vec<(&'static str, String)>;

/// The process's event counters.
struct Counters {
    dead_letters_sent: Family<Labels, Counter>,
    dead_letters_undelivered: Family<Labels, Counter>,
    checkpoints: Counter,
    checkpoint_failures: Counter,
    commit_failures: Family<Labels, Counter>,
    offset_resets: Family<Labels, Counter>,
    partitions_assigned: Counter,
    partitions_revoked: Family<Labels, Counter>,
    partition_tasks_aborted: Counter,
    partition_tasks_panicked: Counter,
    retention_passes: Counter,
    collect_refused: Family<Labels, Counter>,
    collect_dropped: Family<Labels, Counter>,
    retention_windows_deleted: Counter,
    retention_failures: Counter,
    socket_clients_dropped: Family<Labels, Counter>,
    socket_clients_resynced: Counter,
    transactions_committed: Counter,
    transactions_aborted: Counter,
    transactional_producer_restarts: Counter,
    partitions_restored: Counter,
    state_records_unreadable: Family<Labels, Counter>,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| Counters {
    dead_letters_sent: Family::default(),
    dead_letters_undelivered: Family::default(),
    checkpoints: Counter::default(),
    checkpoint_failures: Counter::default(),
    commit_failures: Family::default(),
    offset_resets: Family::default(),
    partitions_assigned: Counter::default(),
    partitions_revoked: Family::default(),
    partition_tasks_aborted: Counter::default(),
    partition_tasks_panicked: Counter::default(),
    retention_passes: Counter::default(),
    collect_refused: Family::default(),
    collect_dropped: Family::default(),
    retention_windows_deleted: Counter::default(),
    retention_failures: Counter::default(),
    socket_clients_dropped: Family::default(),
    socket_clients_resynced: Counter::default(),
    transactions_committed: Counter::default(),
    transactions_aborted: Counter::default(),
    transactional_producer_restarts: Counter::default(),
    partitions_restored: Counter::default(),
    state_records_unreadable: Family::default(),
});

fn c() -> &'static Counters {
    &COUNTERS
}

/// A message that cannot be counted went to the dead-letter topic.
pub fn dead_letter(topic: &str, partition: i32, offset: i64, reason: &str, detail: &str) {
    tracing::debug!(topic, partition, offset, reason, detail, "dead letter");
    c().dead_letters_sent
        .get_or_create(&vec![("reason", reason.to_owned())])
        .inc();
}

/// A dead letter could not be delivered to its topic.
pub fn dead_letter_undelivered(topic: &str, partition: i32, error: &dyn std::fmt::Display) {
    tracing::error!(topic, partition, error = %error, "dead letter not delivered");
    c().dead_letters_undelivered
        .get_or_create(&vec![("topic", topic.to_owned())])
        .inc();
}

/// A partition's checkpoint was written (sled, flushed).
pub fn checkpoint_written(topic: &str, partition: i32, next_offset: i64, windows: usize) {
    tracing::trace!(topic, partition, next_offset, windows, "checkpoint written");
    c().checkpoints.inc();
}

/// A partition's checkpoint could not be written: ingest stops.
pub fn checkpoint_failed(topic: &str, partition: i32, error: &dyn std::fmt::Display) {
    tracing::error!(topic, partition, error = %error, "checkpoint failed; stopping ingest");
    c().checkpoint_failures.inc();
}

/// An advisory offset commit failed or was not answered in time.
pub fn commit_failed(
    topic: &str,
    partition: i32,
    mode: &'static str,
    error: &dyn std::fmt::Display,
) {
    tracing::warn!(topic, partition, mode, error = %error, "offset commit failed (the store keeps the offset)");
    c().commit_failures
        .get_or_create(&vec![("mode", mode.to_owned())])
        .inc();
}

/// A stored offset was outside the log and `--offset-reset` applied.
pub fn offset_reset(topic: &str, partition: i32, stored: i64, policy: &'static str) {
    tracing::error!(
        topic,
        partition,
        stored,
        policy,
        "stored offset is outside the log (topic recreated, or retention deleted unread data); resetting as --offset-reset says"
    );
    c().offset_resets
        .get_or_create(&vec![("policy", policy.to_owned())])
        .inc();
}

/// A partition was assigned to this instance, starting as `start` says.
pub fn partition_assigned(topic: &str, partition: i32, start: &dyn std::fmt::Debug) {
    tracing::info!(topic, partition, start = ?start, "partition assigned");
    c().partitions_assigned.inc();
}

/// Partitions were taken from this instance (`lost`: without a revoke, after expulsion).
pub fn partitions_revoked(count: usize, lost: bool) {
    tracing::info!(count, lost, "partitions revoked; flushing their state");
    c().partitions_revoked
        .get_or_create(&vec![("lost", lost.to_string())])
        .inc_by(count as u64);
}

/// A partition task did not stop in time and was aborted.
pub fn partition_task_aborted(timeout: Duration) {
    tracing::error!(
        timeout = ?timeout,
        "partition task did not stop in time; aborting it (its last checkpoint is lost, the store keeps the one before)"
    );
    c().partition_tasks_aborted.inc();
}

/// A partition task panicked: its partition stops counting and the process stops with an
/// error (its state since the last checkpoint is read again on the next start).
pub fn partition_task_panicked(topic: &str, partition: i32, message: &str) {
    tracing::error!(
        topic,
        partition,
        panic = message,
        "partition task panicked; the partition is marked failed and Pulseboard stops"
    );
    c().partition_tasks_panicked.inc();
}

/// A `POST /collect` request was refused (`why`: `rate`, logged by the caller, rate-limited;
/// `origin`, not a `--site-origin`).
pub fn collect_refused(why: &'static str) {
    c().collect_refused
        .get_or_create(&vec![("why", why.to_owned())])
        .inc();
}

/// `events` browser events of a `POST /collect` request were dropped (`why`: `bot`, the
/// user agent is a robot's; `no_user_agent`, there is none). Not logged: robots are many,
/// and the counter says how many.
pub fn collect_dropped(why: &'static str, events: usize) {
    tracing::trace!(why, events, "collected events from a robot dropped");
    c().collect_dropped
        .get_or_create(&vec![("why", why.to_owned())])
        .inc_by(events as u64);
}

/// A retention pass moved `deleted` stored windows starting before `before` out of the
/// windows (rolled up into history).
pub fn retention_pass(before: i64, deleted: usize) {
    if deleted > 0 {
        tracing::info!(
            deleted,
            before,
            "retention rolled old windows up into history"
        );
    }
    c().retention_passes.inc();
    c().retention_windows_deleted.inc_by(deleted as u64);
}

/// A retention pass failed; the next one tries again.
pub fn retention_failed(error: &dyn std::fmt::Display) {
    tracing::warn!(error = %error, "retention pass failed; the next pass tries again");
    c().retention_failures.inc();
}

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A socket client was dropped (`why`: too slow, send failed).
pub fn socket_client_dropped(why: &'static str) {
    tracing::info!(why, "socket client dropped");
    c().socket_clients_dropped
        .get_or_create(&vec![("why", why.to_owned())])
        .inc();
}

/// A socket client fell behind by `missed` messages and gets a fresh snapshot.
pub fn socket_client_resynced(missed: u64) {
    tracing::debug!(
        missed,
        "socket client fell behind; resyncing with a snapshot"
    );
    c().socket_clients_resynced.inc();
}

/// The registry `/metrics` renders: the figures of the status and of the hub, read at each
/// scrape, and the process's event counters.
/// A checkpoint transaction committed (`partitions` checkpoints in it).
pub fn transaction_committed(partitions: usize, took: Duration) {
    c().transactions_committed.inc();
    tracing::debug!(
        partitions,
        took_ms = took.as_millis() as u64,
        "checkpoint transaction committed"
    );
}

/// A checkpoint transaction aborted: its partitions read again from their last checkpoint.
pub fn transaction_aborted(partitions: usize, why: &str) {
    c().transactions_aborted.inc();
    tracing::warn!(
        partitions,
        error = why,
        "checkpoint transaction aborted; its partitions read again from their last committed checkpoint"
    );
}

/// The transactional producer failed fatally and is made anew.
pub fn transactional_producer_fatal(why: &str) {
    c().transactional_producer_restarts.inc();
    tracing::error!(
        error = why,
        "transactional producer failed fatally; making a new one"
    );
}

/// A newly assigned partition has its committed state and starts reading.
pub fn partition_restored(topic: &str, partition: i32, offset: Option<i64>, took: Duration) {
    c().partitions_restored.inc();
    tracing::info!(
        topic,
        partition,
        offset,
        took_ms = took.as_millis() as u64,
        "partition restored"
    );
}

/// A record of the state topic that cannot be read (skipped).
pub fn state_record_unreadable(what: &'static str) {
    c().state_records_unreadable
        .get_or_create(&vec![("what", what.to_owned())])
        .inc();
}

/// The state topic's reader reached the end of every partition for the first time.
pub fn state_topic_caught_up(records: u64, took: Duration) {
    tracing::info!(
        records,
        took_ms = took.as_millis() as u64,
        "state topic read up to its end"
    );
}

pub fn metrics_registry(live: Arc<Progress>, hub: Arc<Hub>, pacer: Arc<ConnectPacer>) -> Registry {
    let mut r = Registry::with_prefix("pulseboard");
    let k = c();
    r.register(
        "dead_letters_sent",
        "Dead letters produced to their topic by this process, by reason",
        k.dead_letters_sent.clone(),
    );
    r.register(
        "dead_letters_undelivered",
        "Dead letters their topic did not take, by topic",
        k.dead_letters_undelivered.clone(),
    );
    r.register(
        "checkpoints",
        "Partition checkpoints written",
        k.checkpoints.clone(),
    );
    r.register(
        "checkpoint_failures",
        "Partition checkpoints that could not be written",
        k.checkpoint_failures.clone(),
    );
    r.register(
        "commit_failures",
        "Advisory offset commits that failed or timed out, by mode",
        k.commit_failures.clone(),
    );
    r.register(
        "offset_resets",
        "Stored offsets found outside the log, by policy",
        k.offset_resets.clone(),
    );
    r.register(
        "partitions_assigned",
        "Partitions assigned to this instance",
        k.partitions_assigned.clone(),
    );
    r.register(
        "partitions_revoked",
        "Partitions taken from this instance (lost: without a revoke)",
        k.partitions_revoked.clone(),
    );
    r.register(
        "partition_tasks_aborted",
        "Partition tasks aborted because they did not stop in time",
        k.partition_tasks_aborted.clone(),
    );
    r.register(
        "collect_refused",
        "POST /collect requests refused, by why",
        k.collect_refused.clone(),
    );
    r.register(
        "collect_dropped",
        "Browser events of POST /collect dropped because the user agent is a robot's, by why",
        k.collect_dropped.clone(),
    );
    r.register(
        "retention_passes",
        "Retention passes run",
        k.retention_passes.clone(),
    );
    r.register(
        "retention_windows_deleted",
        "Stored windows deleted by retention",
        k.retention_windows_deleted.clone(),
    );
    r.register(
        "retention_failures",
        "Retention passes that failed",
        k.retention_failures.clone(),
    );
    r.register(
        "partition_tasks_panicked",
        "Partition tasks that panicked (each stops the process with an error)",
        k.partition_tasks_panicked.clone(),
    );
    r.register(
        "ws_clients_dropped",
        "Socket clients dropped, by why",
        k.socket_clients_dropped.clone(),
    );
    r.register(
        "ws_clients_resynced",
        "Socket clients resynced with a snapshot after falling behind",
        k.socket_clients_resynced.clone(),
    );
    r.register(
        "transactions_committed",
        "Checkpoint transactions committed to the state topic",
        k.transactions_committed.clone(),
    );
    r.register(
        "transactions_aborted",
        "Checkpoint transactions aborted (their partitions read again from the last committed checkpoint)",
        k.transactions_aborted.clone(),
    );
    r.register(
        "transactional_producer_restarts",
        "Transactional producers made anew after a fatal error",
        k.transactional_producer_restarts.clone(),
    );
    r.register(
        "partitions_restored",
        "Partitions restored to their committed checkpoint before reading",
        k.partitions_restored.clone(),
    );
    r.register(
        "state_records_unreadable",
        "Records of the state topic that could not be read, by what",
        k.state_records_unreadable.clone(),
    );
    register_history_alerts(&mut r);
    r.register_collector(Box::new(StatusCollector { live, hub, pacer }));
    r
}

/// The figures of the status and the hub, read at each scrape.
struct StatusCollector {
    live: Arc<Progress>,
    hub: Arc<Hub>,
    pacer: Arc<ConnectPacer>,
}

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusCollector")
    }
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let m = ConstCounter::new(value);
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let m = ConstGauge::new(value);
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for StatusCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.live.status();
        counter(
            &mut e,
            "events",
            "Events folded into windows",
            s.events_total,
        )?;
        {
            let help = "Messages sent to the dead-letter topic, by reason (stored totals).";
            let mut m = e.encode_descriptor(
                "dead_letters",
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (reason, n) in &s.dead_letters_by_reason {
                let labels = vec![("reason", reason.clone())];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "late_events",
            "Events for windows already closed",
            s.late_events_total,
        )?;
        gauge(
            &mut e,
            "events_per_second",
            "Recent ingest rate.",
            s.events_per_sec,
        )?;
        gauge(
            &mut e,
            "broker_reachable",
            "1 when the cluster answered the last metadata probe",
            i64::from(s.broker_reachable),
        )?;
        gauge(
            &mut e,
            "cluster_degraded",
            "1 when brokers holding input replicas are down, or partitions are under-replicated or offline",
            i64::from(s.cluster.degraded),
        )?;
        if let Some(w) = s.watermark {
            gauge(&mut e, "watermark_ms", "Global event-time watermark.", w)?;
        }
        {
            let mut m = e.encode_descriptor(
                "partition_next_offset",
                "Next offset to read, per partition",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for p in &s.partitions {
                let labels = vec![
                    ("topic", p.topic.clone()),
                    ("partition", p.partition.to_string()),
                ];
                ConstGauge::new(p.next_offset).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "partition_lag",
                "Messages behind the high watermark, per partition",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for p in &s.partitions {
                if let Some(lag) = p.lag {
                    let labels = vec![
                        ("topic", p.topic.clone()),
                        ("partition", p.partition.to_string()),
                    ];
                    ConstGauge::new(lag).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let hs = &self.hub.stats;
        gauge(
            &mut e,
            "ws_clients",
            "Connected WebSocket clients",
            hs.clients.load(Ordering::Relaxed) as i64,
        )?;
        counter(
            &mut e,
            "ws_connects",
            "WebSocket connections accepted",
            hs.connects_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "ws_resyncs",
            "Slow clients resynced with a snapshot",
            hs.resyncs_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "ws_messages",
            "Messages published to WebSocket clients",
            hs.messages_total.load(Ordering::Relaxed),
        )?;
        let pc = &self.pacer;
        counter(
            &mut e,
            "ws_connects_waited",
            "WebSocket sessions that waited for their turn under --ws-connect-rate",
            pc.waited_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "ws_connects_refused",
            "WebSocket sessions refused with 503 because their turn was beyond --ws-connect-max-wait",
            pc.refused_total.load(Ordering::Relaxed),
        )?;
        {
            let secs = pc.wait_ms_total.load(Ordering::Relaxed) as f64 / 1000.0;
            let m = ConstCounter::new(secs);
            m.encode(e.encode_descriptor(
                "ws_connect_wait_seconds",
                "Seconds WebSocket sessions waited for their turn, summed",
                None,
                m.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// History, alerts and annotations (issue 13)
// ---------------------------------------------------------------------------------------

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
pub fn register_history_alerts(r: &mut Registry) {
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
