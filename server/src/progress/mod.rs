//! What the engine publishes for readers: per-partition progress, broker reachability,
//! throughput, the global watermark and the state of each window (live, final, revised).
//!
//! Contract:
//! - Partition tasks call [`Progress::publish_partition`] after each checkpoint; the Kafka client
//!   reports high watermarks, the cluster probe the cluster's health; the HTTP layer only
//!   reads. With a state topic, its reader publishes the partitions other instances own
//!   ([`Progress::publish_remote`]): the status, the totals and the global watermark then cover
//!   every partition of the group, whichever instance reads it.
//! - The global watermark and the state of each window follow the rules in `watermark.rs`;
//!   the status and readiness are built in `status.rs`, the throughput in `rate.rs`.
//! - Readers never block the pipeline: every lock here is held for a few field copies.
//! - Time is tokio's clock (`tokio::time::Instant`), so idleness is tested under
//!   `tokio::time::pause()`.

mod rate;
mod status;
mod watermark;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock: the real one in production, a paused and advanced one in tests.
use tokio::time::Instant;

use pulseboard_model::proto::{ClusterHealth, InstanceRef, OffsetResetNote};

use crate::store::{OwnerRecord, PartitionCheckpoint};

/// A partition's counters as the status shows them: a copy of what its last checkpoint
/// stored, in this module's own type (a field for the status never changes the store's
/// format).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionCounts {
    /// Next offset to read.
    pub next_offset: i64,
    /// Events folded into windows.
    pub events: u64,
    /// Late events (also among the dead letters).
    pub late: u64,
    /// Dead letters by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Offset resets (`--offset-reset`).
    pub offset_resets: u64,
    /// Late events folded into closed windows.
    pub revised_events: u64,
    /// Dead letters kept in the store.
    pub dead_letters_recorded: u64,
}

impl PartitionCounts {
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

impl From<&PartitionCheckpoint> for PartitionCounts {
    fn from(cp: &PartitionCheckpoint) -> Self {
        PartitionCounts {
            next_offset: cp.next_offset,
            events: cp.events,
            late: cp.late,
            dead_letters: cp.dead_letters.clone(),
            offset_resets: cp.offset_resets,
            revised_events: cp.revised_events,
            dead_letters_recorded: cp.dead_letters_recorded,
        }
    }
}

/// Published state of one partition.
#[derive(Debug, Clone, Default)]
struct PartitionProgress {
    counts: PartitionCounts,
    watermark: Option<i64>,
    high_watermark: Option<i64>,
    last_message: Option<Instant>,
    /// This instance read it to its end and nothing came since (see `watermark::is_idle`).
    at_end: bool,
    assigned: bool,
    /// Why the partition's task failed, once it has.
    failed: Option<String>,
    read_since_start: u64,
    first_read_ms: Option<i64>,
    last_read_ms: Option<i64>,
    /// Who checkpointed it last (with a state topic).
    owner: Option<OwnerRecord>,
    /// Known through the state topic: another instance's partition, shown here too.
    remote: bool,
    /// Last checkpointed by this instance before a restart (restored at start, or read back
    /// from the state topic): whoever reads it next has its backlog to read, so it is not
    /// idle until read to its end or checkpointed by another instance (see
    /// `watermark::is_idle`).
    held_back: bool,
}

#[derive(Debug)]
struct Inner {
    partitions: BTreeMap<(String, i32), PartitionProgress>,
    cluster: ClusterHealth,
    ready: bool,
    /// Windows reported final (by start); bounded by retention through `forget_before`.
    finalized_up_to: Option<i64>,
    revised: BTreeSet<i64>,
    rate: rate::RateMeter,
    offset_resets: Vec<OffsetResetNote>,
    /// The state topic's reader read up to its end once.
    state_caught_up: bool,
    /// Members of the consumer group (ids), as last listed, and the URLs instances gave.
    members: Vec<String>,
    urls: BTreeMap<String, String>,
}

/// A partition's progress, as published after a checkpoint.
#[derive(Debug, Clone)]
pub struct PartitionReport<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// What the last checkpoint stored.
    pub counts: PartitionCounts,
    pub watermark: Option<i64>,
    /// Whether messages arrived since the last publish (the partition is not idle).
    pub saw_messages: bool,
    /// Whether the partition was read to its end with no message since: only such a
    /// partition may be idle.
    pub at_end: bool,
    /// Messages read by this process.
    pub read_since_start: u64,
    /// Wall-clock times (epoch ms) of the first and the last message this process read.
    pub first_read_ms: Option<i64>,
    pub last_read_ms: Option<i64>,
}

/// What the status carries for alerts and annotations (set by `alerts`, `annotations`).
#[derive(Debug, Default)]
struct Notices {
    alerts: Vec<pulseboard_model::proto::AlertNotice>,
    annotations_version: u64,
}

/// Shared published state. One per process.
#[derive(Debug)]
pub struct Progress {
    inner: Mutex<Inner>,
    notices: Mutex<Notices>,
    broker: String,
    demo: bool,
    window_ms: i64,
    idle_timeout: Duration,
    started: Instant,
    /// This instance and the state topic it shares (set once at start).
    identity: std::sync::OnceLock<(InstanceRef, Option<String>)>,
    /// Custom properties the decoder did not keep as sent, by reason (`/metrics`).
    pub props_rejected: std::sync::Arc<pulseboard_model::agg::prop::PropRejections>,
}

impl Progress {
    pub fn new(broker: String, demo: bool, window_ms: i64, idle_timeout: Duration) -> Self {
        Progress {
            inner: Mutex::new(Inner {
                partitions: BTreeMap::new(),
                cluster: ClusterHealth::default(),
                ready: false,
                finalized_up_to: None,
                revised: BTreeSet::new(),
                rate: rate::RateMeter::default(),
                offset_resets: Vec::new(),
                state_caught_up: false,
                members: Vec::new(),
                urls: BTreeMap::new(),
            }),
            notices: Mutex::new(Notices {
                alerts: Vec::new(),
                // A new run gets a new version: screens from before reload their markers.
                annotations_version: crate::now_ms().max(1) as u64,
            }),
            broker,
            demo,
            window_ms,
            idle_timeout,
            started: Instant::now(),
            props_rejected: Default::default(),
            identity: std::sync::OnceLock::new(),
        }
    }

    /// Who this instance is, and the state topic it shares with the group (if any).
    pub fn set_identity(&self, me: InstanceRef, state_topic: Option<String>) {
        self.lock().urls.insert(me.id.clone(), me.url.clone());
        // Set once at start; a second call changes nothing.
        let _ = self.identity.set((me, state_topic));
    }

    fn me(&self) -> Option<&InstanceRef> {
        self.identity.get().map(|(me, _)| me)
    }

    fn state_topic(&self) -> Option<&str> {
        self.identity.get().and_then(|(_, t)| t.as_deref())
    }

    /// Seed a partition known through the state topic (from the store, at start).
    pub fn restore_remote(
        &self,
        topic: &str,
        partition: i32,
        counts: PartitionCounts,
        watermark: Option<i64>,
        owner: Option<OwnerRecord>,
    ) {
        let held_back = match (&owner, self.me()) {
            (Some(o), Some(me)) => o.id == me.id,
            _ => false,
        };
        let mut g = self.lock();
        if let Some(o) = &owner {
            g.urls.entry(o.id.clone()).or_insert_with(|| o.url.clone());
        }
        g.partitions.insert(
            (topic.to_owned(), partition),
            PartitionProgress {
                counts,
                watermark,
                high_watermark: owner.as_ref().and_then(|o| o.high_watermark),
                owner,
                remote: true,
                held_back,
                ..PartitionProgress::default()
            },
        );
    }

    /// Publish a checkpoint another instance wrote to the state topic (the reader calls
    /// this only for partitions this instance does not read). `written` are the window
    /// starts it wrote; returns those that became revised (as [`Progress::publish_partition`]).
    pub fn publish_remote(
        &self,
        topic: &str,
        partition: i32,
        counts: PartitionCounts,
        watermark: Option<i64>,
        owner: OwnerRecord,
        written: &[i64],
    ) -> Vec<i64> {
        // A checkpoint of this instance's own (written before a restart, read back from
        // the state topic) does not say the partition was read since.
        let ours = self.me().is_some_and(|me| me.id == owner.id);
        let mut g = self.lock();
        let newly = self.newly_revised(&mut g, written);
        g.urls.insert(owner.id.clone(), owner.url.clone());
        let p = g
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        p.counts = counts;
        p.watermark = watermark;
        p.high_watermark = owner.high_watermark.or(p.high_watermark);
        p.owner = Some(owner);
        p.remote = true;
        p.held_back = ours;
        self.advance_finalized(&mut g);
        newly
    }

    /// Whether this instance reads the partition now.
    pub fn is_local(&self, topic: &str, partition: i32) -> bool {
        self.lock()
            .partitions
            .get(&(topic.to_owned(), partition))
            .is_some_and(|p| p.assigned)
    }

    /// The partitions this instance reads now.
    pub fn local_partitions(&self) -> Vec<(String, i32)> {
        self.lock()
            .partitions
            .iter()
            .filter(|(_, p)| p.assigned)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The state topic's reader read up to its end (once is enough for readiness).
    pub fn set_state_caught_up(&self) {
        self.lock().state_caught_up = true;
    }

    /// Whether the state topic's reader has read up to its end once.
    pub fn state_caught_up(&self) -> bool {
        self.lock().state_caught_up
    }

    /// The consumer group's members (instance ids), as the coordinator last listed them.
    pub fn set_members(&self, ids: Vec<String>) {
        self.lock().members = ids;
    }

    /// The URL an instance gave (its instance record).
    pub fn set_instance_url(&self, id: &str, url: Option<&str>) {
        let mut g = self.lock();
        match url {
            Some(u) => {
                g.urls.insert(id.to_owned(), u.to_owned());
            }
            None => {
                g.urls.remove(id);
            }
        }
    }

    /// The group has assigned this instance its partitions (possibly none).
    pub fn mark_joined(&self) {
        self.lock().ready = true;
    }

    fn notices(&self) -> std::sync::MutexGuard<'_, Notices> {
        // Plain values only: a panic while holding it leaves nothing half-done that matters.
        self.notices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The alerts firing now, as the status shows them.
    pub fn set_alerts(&self, alerts: Vec<pulseboard_model::proto::AlertNotice>) {
        self.notices().alerts = alerts;
    }

    /// An annotation was added or deleted: the status's `annotations_version` moves on.
    pub fn annotations_changed(&self) -> u64 {
        let mut n = self.notices();
        n.annotations_version = (n.annotations_version + 1).max(crate::now_ms().max(0) as u64);
        n.annotations_version
    }

    /// The current `annotations_version`.
    pub fn annotations_version(&self) -> u64 {
        self.notices().annotations_version
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock only ever leaves plain counters behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seed a partition from the store (before or without assignment).
    pub fn restore_partition(
        &self,
        topic: &str,
        partition: i32,
        counts: PartitionCounts,
        watermark: Option<i64>,
    ) {
        let mut g = self.lock();
        g.partitions.insert(
            (topic.to_owned(), partition),
            PartitionProgress {
                counts,
                watermark,
                ..PartitionProgress::default()
            },
        );
    }

    /// Mark partitions (un)assigned to this instance.
    pub fn set_assigned(&self, topic: &str, partition: i32, assigned: bool) {
        let mut g = self.lock();
        let p = g
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        p.assigned = assigned;
        if assigned {
            p.last_message = Some(Instant::now());
            p.at_end = false;
        } else if self.state_topic().is_some() {
            // Another instance reads it now; the state topic keeps it in view.
            p.remote = true;
        }
        g.ready = true;
    }

    /// Publish a partition's durable progress after a checkpoint. `written` are the window
    /// starts just written; a write to a window already final marks it revised. Returns the
    /// windows that became revised.
    pub fn publish_partition(&self, report: PartitionReport<'_>, written: &[i64]) -> Vec<i64> {
        let PartitionReport {
            topic,
            partition,
            counts,
            watermark,
            saw_messages,
            at_end,
            read_since_start,
            first_read_ms,
            last_read_ms,
        } = report;
        let mut g = self.lock();
        let newly = self.newly_revised(&mut g, written);
        let owner = self.me().map(|me| OwnerRecord {
            id: me.id.clone(),
            url: me.url.clone(),
            high_watermark: None,
            last_read_ms,
            at_ms: crate::now_ms(),
        });
        let p = g
            .partitions
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| PartitionProgress {
                assigned: true,
                ..PartitionProgress::default()
            });
        p.counts = counts;
        p.watermark = watermark;
        p.read_since_start = read_since_start;
        p.first_read_ms = first_read_ms;
        p.last_read_ms = last_read_ms;
        if saw_messages {
            p.last_message = Some(Instant::now());
        }
        p.at_end = at_end;
        if owner.is_some() {
            p.owner = owner;
        }
        self.advance_finalized(&mut g);
        newly
    }

    /// Record a stored offset found outside the log (kept for the status; the last 100).
    pub fn note_offset_reset(&self, topic: &str, partition: i32, stored: i64, policy: &str) {
        let at = crate::now_ms();
        let mut g = self.lock();
        g.offset_resets.push(OffsetResetNote {
            topic: topic.to_owned(),
            partition,
            stored,
            policy: policy.to_owned(),
            at,
        });
        if g.offset_resets.len() > 100 {
            g.offset_resets.remove(0);
        }
    }

    /// Record a partition's high watermark as last seen by the Kafka client.
    pub fn set_high_watermark(&self, topic: &str, partition: i32, high: i64) {
        let mut g = self.lock();
        if let Some(p) = g.partitions.get_mut(&(topic.to_owned(), partition)) {
            if high >= 0 {
                p.high_watermark = Some(high);
            }
        }
    }

    /// A partition's high watermark as last reported by the Kafka client.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .partitions
            .get(&(topic.to_owned(), partition))
            .and_then(|p| p.high_watermark)
    }

    /// Record what the cluster probe saw (the one source of broker reachability).
    pub fn set_cluster(&self, health: ClusterHealth) {
        self.lock().cluster = health;
    }
}
