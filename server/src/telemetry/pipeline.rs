//! The pipeline's events: dead letters, checkpoints, commits, offsets, partitions,
//! transactions and restores, `/collect`, retention passes, sockets. Each function logs the
//! event with its fields and counts it.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Labels;

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
    collect_sessions_evicted: Counter,
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
    collect_sessions_evicted: Counter::default(),
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

/// `visitors` open sessions of browser visitors were forgotten to keep `/collect`'s sessions
/// within `--session-cap`: their next events start new sessions.
pub fn collect_sessions_evicted(visitors: u64) {
    if visitors > 0 {
        tracing::warn!(
            visitors,
            "open sessions forgotten to stay within --session-cap; raise it if this repeats"
        );
        c().collect_sessions_evicted.inc_by(visitors);
    }
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

/// Registers the pipeline's counters.
pub(super) fn register(r: &mut Registry) {
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
        "collect_sessions_evicted",
        "Open sessions of POST /collect's browser visitors forgotten to stay within --session-cap",
        k.collect_sessions_evicted.clone(),
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
}
