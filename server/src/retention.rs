//! Retention: windows older than `--retention` leave the store.
//!
//! Contract: the cut-off is `min(global watermark, wall-clock now) − retention`. It never
//! passes wall-clock now − retention, whatever a watermark says: one event stamped far in
//! the future must not make history disappear. A pass runs every `--retention-interval` (a
//! minute by default), off the runtime's worker threads. A pass also deletes the visitor-id
//! salts of the UTC days before today (a day's salt must not outlive its day). With a state
//! topic, the expired windows of the partitions this instance reads are tombstoned there
//! first (in a transaction of the committer); if that fails, the pass deletes nothing.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ingest::{CommitHandle, CommitOutcome};
use crate::live::Live;
use crate::store::Store;
use crate::telemetry;

/// Windows starting before this are deleted.
pub fn cutoff(now_ms: i64, watermark: Option<i64>, retention_ms: i64) -> i64 {
    watermark
        .map_or(now_ms, |w| w.min(now_ms))
        .saturating_sub(retention_ms)
}

/// With a state topic: the windows of the partitions this instance reads are tombstoned
/// there before they leave the store, so the topic stays bounded too.
pub struct StateTopicRetention {
    /// Set by ingest once its committer runs.
    pub committer: Arc<OnceLock<CommitHandle>>,
}

/// The retention passes.
pub struct Retention {
    pub store: Store,
    pub live: Arc<Live>,
    pub retention_ms: i64,
    pub state: Option<StateTopicRetention>,
}

impl Retention {
    /// Run a pass every `every` (the first at once) until `shutdown`.
    pub async fn run(&self, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.pass(crate::now_ms()).await,
            }
        }
    }

    /// One pass at wall-clock time `now_ms`.
    pub async fn pass(&self, now_ms: i64) {
        let before = cutoff(now_ms, self.live.watermark(), self.retention_ms);
        if !self.tombstone(before).await {
            return;
        }
        let s = self.store.clone();
        let today = crate::enrich::day_of(now_ms);
        let deleted = tokio::task::spawn_blocking(move || {
            s.discard_salts_before(today)?;
            s.delete_windows_before(before)
        });
        match deleted.await {
            Ok(Ok(n)) => telemetry::retention_pass(before, n),
            Ok(Err(e)) => telemetry::retention_failed(&e),
            Err(e) => telemetry::retention_failed(&e),
        }
        self.live.forget_before(before);
    }

    /// Tombstone the expired windows of this instance's partitions in the state topic.
    /// False when that failed: nothing is deleted this pass (the next one tries again, so
    /// no window is ever left in the topic after it left the store).
    async fn tombstone(&self, before: i64) -> bool {
        let Some(state) = &self.state else {
            return true;
        };
        let Some(committer) = state.committer.get() else {
            return true;
        };
        let local: std::collections::HashSet<(String, i32)> =
            self.live.local_partitions().into_iter().collect();
        if local.is_empty() {
            return true;
        }
        let s = self.store.clone();
        let keys = match tokio::task::spawn_blocking(move || s.window_keys_before(before)).await {
            Ok(Ok(keys)) => keys,
            Ok(Err(e)) => {
                telemetry::retention_failed(&e);
                return false;
            }
            Err(e) => {
                telemetry::retention_failed(&e);
                return false;
            }
        };
        let mine: Vec<(String, i32, i64)> = keys
            .into_iter()
            .filter(|(_, t, p)| local.contains(&(t.clone(), *p)))
            .map(|(s, t, p)| (t, p, s))
            .collect();
        if mine.is_empty() {
            return true;
        }
        match committer.tombstone(&mine).await {
            CommitOutcome::Committed => true,
            CommitOutcome::Aborted(why) => {
                telemetry::retention_failed(&format!(
                    "tombstoning {} windows in the state topic failed: {why}",
                    mine.len()
                ));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_ahead_of_the_clock_never_moves_the_cutoff_past_now() {
        let day = 86_400_000;
        let now = 1_800_000_000_000;
        assert_eq!(cutoff(now, Some(now - 60_000), day), now - 60_000 - day);
        assert_eq!(cutoff(now, Some(now + 30 * day), day), now - day);
        assert_eq!(cutoff(now, None, day), now - day);
    }
}
