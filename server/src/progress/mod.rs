//! What the engine publishes for readers: per-partition progress, broker reachability,
//! throughput, the global watermark and the state of each window (live, final, revised).
//!
//! Contract:
//! - Partition tasks call [`Progress::publish_partition`] after each checkpoint; the Kafka client
//!   reports high watermarks, the cluster probe the cluster's health; the HTTP layer only
//!   reads. With a state topic, its reader publishes the partitions other instances own
//!   ([`Progress::publish_remote`]): the status, the totals and the global watermark then cover
//!   every partition of the group, whichever instance reads it.
//! - Global watermark = min over the watermarks of active partitions. A partition with no
//!   message for `idle_timeout` is idle and does not hold the global watermark back; when
//!   every partition is idle the max is used. A partition of another instance is idle when
//!   its owner's last read (wall clock, from its checkpoint) is that old.
//! - A window is `final` once its end is at or below the highest global watermark seen; it
//!   never goes back to `live` (a partition waking up may pull the watermark back). A final
//!   window that a partition writes to afterwards becomes `revised`.
//! - Readers never block the pipeline: every lock here is held for a few field copies.
//! - Time is tokio's clock (`tokio::time::Instant`), so idleness is tested under
//!   `tokio::time::pause()`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock: the real one in production, a paused and advanced one in tests.
use tokio::time::Instant;

use pulseboard_model::proto::{
    ClusterHealth, InstanceRef, InstanceStatus, OffsetResetNote, PartitionStatus, Status,
    WindowState,
};
use pulseboard_model::window;

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
struct PartitionLive {
    counts: PartitionCounts,
    watermark: Option<i64>,
    high_watermark: Option<i64>,
    last_message: Option<Instant>,
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
}

#[derive(Debug)]
struct Inner {
    partitions: BTreeMap<(String, i32), PartitionLive>,
    cluster: ClusterHealth,
    ready: bool,
    /// Windows reported final (by start); bounded by retention through `forget_before`.
    finalized_up_to: Option<i64>,
    revised: BTreeSet<i64>,
    rate: RateMeter,
    offset_resets: Vec<OffsetResetNote>,
    /// The state topic's reader read up to its end once.
    state_caught_up: bool,
    /// Members of the consumer group (ids), as last listed, and the URLs instances gave.
    members: Vec<String>,
    urls: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct RateMeter {
    last: Option<(Instant, u64)>,
    per_sec: f64,
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
                rate: RateMeter::default(),
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
        let mut g = self.lock();
        if let Some(o) = &owner {
            g.urls.entry(o.id.clone()).or_insert_with(|| o.url.clone());
        }
        g.partitions.insert(
            (topic.to_owned(), partition),
            PartitionLive {
                counts,
                watermark,
                high_watermark: owner.as_ref().and_then(|o| o.high_watermark),
                owner,
                remote: true,
                ..PartitionLive::default()
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
            PartitionLive {
                counts,
                watermark,
                ..PartitionLive::default()
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
        } else if self.state_topic().is_some() {
            // Another instance reads it now; the state topic keeps it in view.
            p.remote = true;
        }
        g.ready = true;
    }

    /// Publish a partition's durable progress after a checkpoint. `written` are the window
    /// starts just written; a write to a window already final marks it revised. Returns the
    /// windows that became revised.
    pub fn publish_partition(&self, progress: PartitionReport<'_>, written: &[i64]) -> Vec<i64> {
        let PartitionReport {
            topic,
            partition,
            counts,
            watermark,
            saw_messages,
            read_since_start,
            first_read_ms,
            last_read_ms,
        } = progress;
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
            .or_insert_with(|| PartitionLive {
                assigned: true,
                ..PartitionLive::default()
            });
        p.counts = counts;
        p.watermark = watermark;
        p.read_since_start = read_since_start;
        p.first_read_ms = first_read_ms;
        p.last_read_ms = last_read_ms;
        if saw_messages {
            p.last_message = Some(Instant::now());
        }
        if owner.is_some() {
            p.owner = owner;
        }
        self.advance_finalized(&mut g);
        newly
    }

    /// Of the windows just `written`, those that were already final: they become revised.
    fn newly_revised(&self, g: &mut Inner, written: &[i64]) -> Vec<i64> {
        let Some(fin) = self.finalized(g) else {
            return Vec::new();
        };
        let width = self.window_ms;
        let newly: Vec<i64> = written
            .iter()
            .copied()
            .filter(|s| window::is_closed(*s, width, fin) && !g.revised.contains(s))
            .collect();
        g.revised.extend(newly.iter().copied());
        newly
    }

    fn advance_finalized(&self, g: &mut Inner) {
        if let Some(gw) = global_watermark(&g.partitions, self.idle_timeout) {
            g.finalized_up_to = Some(g.finalized_up_to.map_or(gw, |f| f.max(gw)));
        }
    }

    /// Mark windows revised: those the store marked before a restart, and those a
    /// checkpoint just folded late events into.
    pub fn mark_revised(&self, starts: impl IntoIterator<Item = i64>) {
        self.lock().revised.extend(starts);
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

    /// Ready once the store is loaded and the consumer has received an assignment (and,
    /// with a state topic, its reader has read up to its end once).
    pub fn ready(&self) -> bool {
        let g = self.lock();
        g.ready && (self.state_topic().is_none() || g.state_caught_up)
    }

    /// Mark a partition failed: its task panicked with `why`. Status lists it, and
    /// `/readyz` answers 503 from now on.
    pub fn mark_failed(&self, topic: &str, partition: i32, why: &str) {
        let mut g = self.lock();
        let p = g
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        p.failed = Some(why.to_owned());
    }

    /// The first failed partition and why, if any partition failed.
    pub fn failure(&self) -> Option<String> {
        let g = self.lock();
        g.partitions.iter().find_map(|((t, p), l)| {
            l.failed
                .as_ref()
                .map(|why| format!("partition {t}/{p} failed: {why}"))
        })
    }

    /// Sample the throughput once a second until `shutdown`.
    pub async fn run_rate_meter(&self, shutdown: tokio_util::sync::CancellationToken) {
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = second.tick() => self.sample_rate(),
            }
        }
    }

    /// Sample throughput; called about once a second by the rate meter.
    pub fn sample_rate(&self) {
        let mut g = self.lock();
        let total: u64 = g.partitions.values().map(|p| p.counts.events).sum();
        let now = Instant::now();
        if let Some((t, n)) = g.rate.last {
            let dt = now.duration_since(t).as_secs_f64();
            // Two samples close together (a late tick caught up) say nothing about a rate.
            if dt < 0.5 {
                return;
            }
            let inst = total.saturating_sub(n) as f64 / dt;
            // Smooth over a few seconds so a checkpoint boundary does not make it jump.
            g.rate.per_sec = if g.rate.per_sec == 0.0 {
                inst
            } else {
                0.5 * g.rate.per_sec + 0.5 * inst
            };
        }
        g.rate.last = Some((now, total));
    }

    /// The global watermark (see module docs).
    pub fn watermark(&self) -> Option<i64> {
        global_watermark(&self.lock().partitions, self.idle_timeout)
    }

    /// The state of the window starting at `start`.
    pub fn window_state(&self, start: i64) -> WindowState {
        let g = self.lock();
        let fin = self.finalized(&g);
        window::window_state(start, self.window_ms, fin, g.revised.contains(&start))
    }

    /// How far windows are final: the highest global watermark seen so far. A partition
    /// that wakes up may pull the global watermark back, but a final window never goes
    /// back to live (a later event for it revises it).
    fn finalized(&self, g: &Inner) -> Option<i64> {
        window::final_up_to(
            g.finalized_up_to,
            global_watermark(&g.partitions, self.idle_timeout),
        )
    }

    /// A function giving each window its state, computed once for a batch of windows.
    pub fn window_states(&self) -> impl Fn(i64) -> WindowState {
        let g = self.lock();
        let fin = self.finalized(&g);
        let revised = g.revised.clone();
        let width = self.window_ms;
        move |start| window::window_state(start, width, fin, revised.contains(&start))
    }

    /// Drop bookkeeping of windows that retention removed.
    pub fn forget_before(&self, start: i64) {
        let mut g = self.lock();
        g.revised = g.revised.split_off(&start);
    }

    /// The status document of `/api/v1/status`.
    pub fn status(&self) -> Status {
        let g = self.lock();
        let gw = global_watermark(&g.partitions, self.idle_timeout);
        let mut dead_by_reason: BTreeMap<String, u64> = BTreeMap::new();
        let mut partitions = Vec::new();
        let (mut events, mut late, mut revised, mut recorded) = (0u64, 0u64, 0u64, 0u64);
        for ((topic, partition), p) in &g.partitions {
            events += p.counts.events;
            late += p.counts.late;
            revised += p.counts.revised_events;
            recorded += p.counts.dead_letters_recorded;
            for (r, n) in &p.counts.dead_letters {
                *dead_by_reason.entry(r.clone()).or_default() += n;
            }
            if !p.assigned && !p.remote {
                continue;
            }
            let next = p.counts.next_offset;
            partitions.push(PartitionStatus {
                topic: topic.clone(),
                partition: *partition,
                next_offset: next,
                high_watermark: p.high_watermark,
                lag: p.high_watermark.map(|h| (h - next).max(0)),
                watermark: p.watermark,
                idle: is_idle(p, self.idle_timeout),
                events: p.counts.events,
                dead_letters: p.counts.dead_letters_total(),
                read_since_start: p.read_since_start,
                first_read_ms: p.first_read_ms,
                last_read_ms: p.last_read_ms,
                offset_resets: p.counts.offset_resets,
                revised_events: p.counts.revised_events,
                dead_letters_recorded: p.counts.dead_letters_recorded,
                failed: p.failed.clone(),
                owner: if p.assigned {
                    self.me().cloned()
                } else {
                    p.owner.as_ref().map(|o| InstanceRef {
                        id: o.id.clone(),
                        url: o.url.clone(),
                    })
                },
                local: p.assigned,
            });
        }
        let instances = self.instances(&g, &partitions);
        let (alerts, annotations_version) = {
            let n = self.notices();
            (n.alerts.clone(), n.annotations_version)
        };
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: pulseboard_model::proto::PROTOCOL_VERSION,
            broker: self.broker.clone(),
            broker_reachable: g.cluster.reachable,
            cluster: g.cluster.clone(),
            demo: self.demo,
            window_ms: self.window_ms,
            events_total: events,
            dead_letters_total: dead_by_reason.values().sum(),
            dead_letters_by_reason: dead_by_reason,
            late_events_total: late,
            revised_events_total: revised,
            dead_letters_recorded_total: recorded,
            watermark: gw,
            events_per_sec: (g.rate.per_sec * 10.0).round() / 10.0,
            uptime_secs: self.started.elapsed().as_secs(),
            partitions,
            offset_resets: g.offset_resets.clone(),
            instance: self.me().cloned(),
            state_topic: self.state_topic().map(str::to_owned),
            state_caught_up: g.state_caught_up,
            instances,
            alerts,
            annotations_version,
        }
    }

    /// The group's live members, with their URLs and how many partitions each owns.
    fn instances(&self, g: &Inner, partitions: &[PartitionStatus]) -> Vec<InstanceStatus> {
        if self.state_topic().is_none() {
            return Vec::new();
        }
        let me = self.me().map(|m| m.id.as_str());
        let mut ids: Vec<&String> = g.members.iter().collect();
        if let Some(me) = self.me() {
            if !g.members.contains(&me.id) {
                ids.push(&me.id);
            }
        }
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .map(|id| InstanceStatus {
                id: id.clone(),
                url: g.urls.get(id).cloned().unwrap_or_default(),
                partitions: partitions
                    .iter()
                    .filter(|p| p.owner.as_ref().is_some_and(|o| &o.id == id))
                    .count() as u32,
                this: Some(id.as_str()) == me,
            })
            .collect()
    }
}

fn is_idle(p: &PartitionLive, idle_timeout: Duration) -> bool {
    if !p.assigned && p.remote {
        // Another instance's partition: idle when its owner read nothing for that long.
        let idle_ms = i64::try_from(idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let last = p.owner.as_ref().and_then(|o| o.last_read_ms);
        return last.is_none_or(|t| crate::now_ms().saturating_sub(t) >= idle_ms);
    }
    p.last_message.is_none_or(|t| t.elapsed() >= idle_timeout)
}

fn global_watermark(
    partitions: &BTreeMap<(String, i32), PartitionLive>,
    idle_timeout: Duration,
) -> Option<i64> {
    window::global_watermark(partitions.values().map(|p| {
        (
            (p.assigned || p.remote) && !is_idle(p, idle_timeout),
            p.watermark,
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(
        partition: i32,
        checkpoint: &PartitionCheckpoint,
        watermark: Option<i64>,
    ) -> PartitionReport<'_> {
        PartitionReport {
            topic: "t",
            partition,
            counts: PartitionCounts::from(checkpoint),
            watermark,
            saw_messages: true,
            read_since_start: 0,
            first_read_ms: None,
            last_read_ms: None,
        }
    }

    fn cp(events: u64) -> PartitionCheckpoint {
        PartitionCheckpoint {
            events,
            ..Default::default()
        }
    }

    #[test]
    fn a_failed_partition_is_listed_with_why_and_makes_the_server_unready() {
        let live = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(30));
        live.set_assigned("t", 0, true);
        live.set_assigned("t", 1, true);
        assert!(live.ready());
        assert_eq!(live.failure(), None);
        live.mark_failed("t", 1, "boom");
        let why = live.failure().unwrap_or_default();
        assert!(why.contains("t/1") && why.contains("boom"), "{why}");
        let status = live.status();
        let failed: Vec<_> = status
            .partitions
            .iter()
            .map(|p| (p.partition, p.failed.clone()))
            .collect();
        assert_eq!(failed, vec![(0, None), (1, Some("boom".to_owned()))]);
    }

    #[test]
    fn window_is_final_only_when_every_active_partition_passed_it() {
        let live = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(30));
        live.set_assigned("t", 0, true);
        live.set_assigned("t", 1, true);
        live.publish_partition(progress(0, &cp(1), Some(25_000)), &[]);
        assert_eq!(live.watermark(), None, "partition 1 has seen nothing yet");
        live.publish_partition(progress(1, &cp(1), Some(12_000)), &[]);
        assert_eq!(live.watermark(), Some(12_000));
        assert_eq!(live.window_state(0), WindowState::Final);
        assert_eq!(live.window_state(10_000), WindowState::Live);
        // A later write into the final window 0 revises it.
        live.publish_partition(progress(1, &cp(2), Some(12_000)), &[0]);
        assert_eq!(live.window_state(0), WindowState::Revised);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_partition_stops_holding_the_watermark_back_beside_an_active_one() {
        let live = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(30));
        live.set_assigned("t", 0, true);
        live.set_assigned("t", 1, true);
        live.publish_partition(progress(0, &cp(5), Some(50_000)), &[]);
        live.publish_partition(progress(1, &cp(1), Some(10_000)), &[]);
        assert_eq!(live.watermark(), Some(10_000), "partition 1 holds it back");
        assert_eq!(live.window_state(20_000), WindowState::Live);
        // Partition 0 keeps receiving; partition 1 falls silent.
        for i in 0..29u64 {
            tokio::time::advance(Duration::from_secs(1)).await;
            live.publish_partition(progress(0, &cp(6 + i), Some(50_000)), &[]);
            assert_eq!(
                live.watermark(),
                Some(10_000),
                "still active after {} s",
                i + 1
            );
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        live.publish_partition(progress(0, &cp(40), Some(55_000)), &[]);
        assert_eq!(
            live.watermark(),
            Some(55_000),
            "after 31 s of silence partition 1 is idle"
        );
        assert_eq!(live.window_state(20_000), WindowState::Final);
        let s = live.status();
        let idle: Vec<bool> = s.partitions.iter().map(|p| p.idle).collect();
        assert_eq!(idle, vec![false, true]);
        // Partition 1 wakes up with an event for window 20 s, already final: revised.
        live.publish_partition(progress(1, &cp(2), Some(26_000)), &[20_000]);
        assert_eq!(live.window_state(20_000), WindowState::Revised);
        assert_eq!(
            live.watermark(),
            Some(26_000),
            "active again, it holds it back"
        );
    }

    #[test]
    fn idle_partition_does_not_hold_watermark_back() {
        let live = Progress::new("embedded".into(), true, 10_000, Duration::ZERO);
        live.set_assigned("t", 0, true);
        live.set_assigned("t", 1, true);
        live.publish_partition(progress(0, &cp(1), Some(50_000)), &[]);
        // With a zero idle timeout every partition is idle: the max watermark is used.
        assert_eq!(live.watermark(), Some(50_000));
        let s = live.status();
        assert_eq!(s.events_total, 1);
        assert!(s.partitions.iter().all(|p| p.idle));
    }
}
