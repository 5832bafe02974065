//! The status document of `/api/v1/status` and readiness, read from what the partitions
//! published: the totals and dead letters over every partition known, the partitions this
//! instance or (with a state topic) another one reads, the group's instances.

use std::collections::BTreeMap;

use pulseboard_model::proto::{InstanceRef, InstanceStatus, PartitionStatus, Status};

use super::watermark::{global_watermark, is_idle};
use super::{Inner, Progress};

impl Progress {
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_failed_partition_is_listed_with_why_and_makes_the_server_unready() {
        let progress = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(30));
        progress.set_assigned("t", 0, true);
        progress.set_assigned("t", 1, true);
        assert!(progress.ready());
        assert_eq!(progress.failure(), None);
        progress.mark_failed("t", 1, "boom");
        let why = progress.failure().unwrap_or_default();
        assert!(why.contains("t/1") && why.contains("boom"), "{why}");
        let status = progress.status();
        let failed: Vec<_> = status
            .partitions
            .iter()
            .map(|p| (p.partition, p.failed.clone()))
            .collect();
        assert_eq!(failed, vec![(0, None), (1, Some("boom".to_owned()))]);
    }
}
