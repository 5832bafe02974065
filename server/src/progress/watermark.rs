//! The global watermark and the state of each window.
//!
//! Contract:
//! - Global watermark = min over the watermarks of active partitions. A partition is idle,
//!   and does not hold the global watermark back, when it has nothing to read (this
//!   instance read it to its end: Kafka's partition EOF, with no message since) and no
//!   message came for `idle_timeout`; never while it has a backlog, however slow its
//!   reading (start-up, restore, a slow fetch), and not while its leader cannot be reached
//!   (it holds the watermark until it is read again). So an idle partition stops holding
//!   the watermark `idle_timeout` after its last message, or after its assignment when it
//!   is empty, and at most a checkpoint interval later (its state is published at
//!   checkpoints). When every partition is idle the max is used. A partition of another
//!   instance is idle when its owner's last read (wall clock, from its checkpoint) is that
//!   old; one this instance read before a restart is not idle until it is read to its end
//!   again, or another instance checkpoints it (after downtime its backlog is still there,
//!   however old its last read).
//! - A window is `final` once its end is at or below the highest global watermark seen; it
//!   never goes back to `live` (a partition waking up may pull the watermark back). A final
//!   window that a partition writes to afterwards becomes `revised`. (A partition killed
//!   before its first checkpoint is known to no store until it is assigned again: the
//!   windows it fills may be final by then, and become `revised`.)

use std::collections::BTreeMap;
use std::time::Duration;

use pulseboard_model::proto::WindowState;
use pulseboard_model::window;

use super::{Inner, PartitionProgress, Progress};

impl Progress {
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

    /// Of the windows just `written`, those that were already final: they become revised.
    pub(super) fn newly_revised(&self, g: &mut Inner, written: &[i64]) -> Vec<i64> {
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

    pub(super) fn advance_finalized(&self, g: &mut Inner) {
        if let Some(gw) = global_watermark(&g.partitions, self.idle_timeout) {
            g.finalized_up_to = Some(g.finalized_up_to.map_or(gw, |f| f.max(gw)));
        }
    }

    /// Mark windows revised: those the store marked before a restart, and those a
    /// checkpoint just folded late events into.
    pub fn mark_revised(&self, starts: impl IntoIterator<Item = i64>) {
        self.lock().revised.extend(starts);
    }
}

pub(super) fn is_idle(p: &PartitionProgress, idle_timeout: Duration) -> bool {
    if !p.assigned && p.remote {
        if p.held_back {
            // Ours before a restart, not read since: its backlog is still to read.
            return false;
        }
        // Another instance's partition: idle when its owner read nothing for that long.
        let idle_ms = i64::try_from(idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let last = p.owner.as_ref().and_then(|o| o.last_read_ms);
        return last.is_none_or(|t| crate::now_ms().saturating_sub(t) >= idle_ms);
    }
    p.at_end && p.last_message.is_none_or(|t| t.elapsed() >= idle_timeout)
}

pub(super) fn global_watermark(
    partitions: &BTreeMap<(String, i32), PartitionProgress>,
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
    use crate::progress::{PartitionCounts, PartitionReport};
    use crate::store::PartitionCheckpoint;

    fn report(
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
            at_end: true,
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
    fn window_is_final_only_when_every_active_partition_passed_it() {
        let progress = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(30));
        progress.set_assigned("t", 0, true);
        progress.set_assigned("t", 1, true);
        progress.publish_partition(report(0, &cp(1), Some(25_000)), &[]);
        assert_eq!(
            progress.watermark(),
            None,
            "partition 1 has seen nothing yet"
        );
        progress.publish_partition(report(1, &cp(1), Some(12_000)), &[]);
        assert_eq!(progress.watermark(), Some(12_000));
        assert_eq!(progress.window_state(0), WindowState::Final);
        assert_eq!(progress.window_state(10_000), WindowState::Live);
        // A later write into the final window 0 revises it.
        progress.publish_partition(report(1, &cp(2), Some(12_000)), &[0]);
        assert_eq!(progress.window_state(0), WindowState::Revised);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_partition_stops_holding_the_watermark_back_beside_an_active_one() {
        let progress = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(30));
        progress.set_assigned("t", 0, true);
        progress.set_assigned("t", 1, true);
        progress.publish_partition(report(0, &cp(5), Some(50_000)), &[]);
        progress.publish_partition(report(1, &cp(1), Some(10_000)), &[]);
        assert_eq!(
            progress.watermark(),
            Some(10_000),
            "partition 1 holds it back"
        );
        assert_eq!(progress.window_state(20_000), WindowState::Live);
        // Partition 0 keeps receiving; partition 1 falls silent.
        for i in 0..29u64 {
            tokio::time::advance(Duration::from_secs(1)).await;
            progress.publish_partition(report(0, &cp(6 + i), Some(50_000)), &[]);
            assert_eq!(
                progress.watermark(),
                Some(10_000),
                "still active after {} s",
                i + 1
            );
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        progress.publish_partition(report(0, &cp(40), Some(55_000)), &[]);
        assert_eq!(
            progress.watermark(),
            Some(55_000),
            "after 31 s of silence partition 1 is idle"
        );
        assert_eq!(progress.window_state(20_000), WindowState::Final);
        let s = progress.status();
        let idle: Vec<bool> = s.partitions.iter().map(|p| p.idle).collect();
        assert_eq!(idle, vec![false, true]);
        // Partition 1 wakes up with an event for window 20 s, already final: revised.
        progress.publish_partition(report(1, &cp(2), Some(26_000)), &[20_000]);
        assert_eq!(progress.window_state(20_000), WindowState::Revised);
        assert_eq!(
            progress.watermark(),
            Some(26_000),
            "active again, it holds it back"
        );
    }

    #[test]
    fn idle_partition_does_not_hold_watermark_back() {
        let progress = Progress::new("embedded".into(), true, 10_000, Duration::ZERO);
        progress.set_assigned("t", 0, true);
        progress.set_assigned("t", 1, true);
        progress.publish_partition(report(0, &cp(1), Some(50_000)), &[]);
        // Partition 1 has not said it was read to its end: it may have a backlog, and has
        // no watermark yet.
        assert_eq!(progress.watermark(), None);
        assert!(!progress.status().partitions[1].idle);
        // Read to its end, empty: with a zero idle timeout every partition is idle, and
        // the max watermark is used.
        progress.publish_partition(report(1, &cp(0), None), &[]);
        assert_eq!(progress.watermark(), Some(50_000));
        let s = progress.status();
        assert_eq!(s.events_total, 1);
        assert!(s.partitions.iter().all(|p| p.idle));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partition_with_a_backlog_is_never_idle_however_long_it_is_silent() {
        let progress = Progress::new("embedded".into(), true, 10_000, Duration::from_secs(5));
        progress.set_assigned("t", 0, true);
        progress.set_assigned("t", 1, true);
        progress.publish_partition(report(0, &cp(5), Some(50_000)), &[]);
        // Partition 1 is being caught up (restore, a slow fetch): read, not at its end.
        let one = cp(1);
        let behind = PartitionReport {
            at_end: false,
            ..report(1, &one, Some(10_000))
        };
        progress.publish_partition(behind.clone(), &[]);
        for _ in 0..60 {
            tokio::time::advance(Duration::from_secs(1)).await;
            progress.publish_partition(
                PartitionReport {
                    saw_messages: false,
                    ..behind.clone()
                },
                &[],
            );
            progress.publish_partition(report(0, &cp(6), Some(55_000)), &[]);
            assert_eq!(progress.watermark(), Some(10_000), "it holds the watermark");
        }
        assert_eq!(progress.window_state(20_000), WindowState::Live);
        // Read to its end: idle once silent for the timeout.
        progress.publish_partition(
            PartitionReport {
                saw_messages: false,
                at_end: true,
                ..behind.clone()
            },
            &[],
        );
        assert_eq!(
            progress.watermark(),
            Some(55_000),
            "at its end and silent for 60 s: idle"
        );
        // Reassigned (a rebalance): not idle until read to its end again.
        progress.set_assigned("t", 1, true);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(progress.watermark(), Some(10_000));
    }
    #[tokio::test(start_paused = true)]
    async fn a_partition_this_instance_read_before_a_restart_holds_the_watermark_until_read() {
        use crate::store::OwnerRecord;
        use pulseboard_model::proto::InstanceRef;
        let progress = Progress::new("k".into(), false, 10_000, Duration::from_secs(5));
        let me = InstanceRef {
            id: "me".into(),
            url: "http://me".into(),
        };
        progress.set_identity(me, Some("state".into()));
        // Both last read hours ago (a restart after downtime): p0 by this instance.
        let owner = |id: &str| OwnerRecord {
            id: id.into(),
            url: String::new(),
            high_watermark: None,
            last_read_ms: Some(crate::now_ms() - 3_600_000),
            at_ms: 0,
        };
        let (c0, c1) = (cp(1), cp(1));
        progress.restore_remote("t", 0, (&c0).into(), Some(10_000), Some(owner("me")));
        progress.restore_remote("t", 1, (&c1).into(), Some(90_000), Some(owner("other")));
        assert_eq!(
            progress.watermark(),
            Some(10_000),
            "p0's backlog holds it; p1's owner is idle"
        );
        // Its own checkpoint read back from the state topic changes nothing.
        progress.publish_remote("t", 0, (&c0).into(), Some(10_000), owner("me"), &[]);
        assert_eq!(progress.watermark(), Some(10_000));
        // Another instance checkpoints p0: its owner's reads decide again.
        progress.publish_remote("t", 0, (&c0).into(), Some(10_000), owner("other"), &[]);
        assert_eq!(
            progress.watermark(),
            Some(90_000),
            "every partition idle: the max"
        );
    }
}
