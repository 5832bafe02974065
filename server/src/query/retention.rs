//! Retention and history: windows older than `--retention` are rolled up into minute
//! buckets, minute buckets older than `--minute-history` into hour buckets, and hour
//! buckets older than `--history` leave the store.
//!
//! Contract: every age is counted back from `min(watermark, wall-clock now)`; no cut-off
//! ever passes wall-clock now − age, whatever a watermark says: one event stamped far in
//! the future must not make history disappear ([`cutoff`], [`rollup::plan`]). Windows are
//! rolled up per partition, before that partition's own cut-off (its watermark), so only
//! windows the partition has closed move: an idle partition's open window stays a window
//! until its partition moves on. Each bucket is one sled transaction (see `store`), so a
//! crash in a pass loses and doubles nothing, and the next pass continues. A pass runs
//! every `--retention-interval` (a minute by default), off the runtime's worker threads,
//! and rolls at most [`MAX_BUCKETS_PER_PASS`] buckets per level (the next pass goes on).
//! A pass also deletes the visitor-id salts of the UTC days before today (a day's salt
//! must not outlive its day) and annotations older than `--history`.
//!
//! With a state topic, every instance rolls up every partition in its own store (each has
//! every partition's windows; a window past retention cannot change any more, so they all
//! roll up the same rows), and the windows of the partitions an instance reads are
//! tombstoned in the state topic before they leave its store (in a transaction of the
//! committer), so the topic stays bounded; if that fails, the pass rolls nothing up and the
//! next one tries again. The buckets themselves stay in each instance's store: an instance
//! that starts with an empty data dir has the windows of the last `--retention` from the
//! state topic, and builds its older history from then on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pulseboard_model::rollup::{self, Ages};
use tokio_util::sync::CancellationToken;

use crate::ingest::{CommitHandle, CommitOutcome};
use crate::progress::Progress;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// Buckets of each level one pass writes at most (a day of minutes is 1,440).
pub const MAX_BUCKETS_PER_PASS: usize = 2_000;

/// Windows starting before this are out of `retention_ms`.
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
    pub progress: Arc<Progress>,
    pub ages: Ages,
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
        let (ages, progress) = (self.ages, &self.progress);
        let before = cutoff(now_ms, progress.watermark(), ages.retention_ms);
        let plan = rollup::plan(now_ms, progress.watermark(), ages);
        // Each partition's own cut-off, from its own watermark (bounded by the clock), at
        // the start of its minute: the windows before it are rolled up. A partition whose
        // watermark is not known yet (this instance just started, or it is restoring) is
        // counted from its stored checkpoint's newest event; one with neither, or one the
        // pass did not know when it began (its first checkpoint landed meanwhile), has no
        // windows rolled up in this pass: they may still be open.
        let minute = rollup::Level::Minute.width_ms();
        let s = self.store.clone();
        let stored = match tokio::task::spawn_blocking(move || s.partitions()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return telemetry::retention_failed(&e),
            Err(e) => return telemetry::retention_failed(&e),
        };
        let mut marks: HashMap<(String, i32), Option<i64>> = stored
            .into_iter()
            .map(|(t, p, cp)| ((t, p), cp.max_event_ts))
            .collect();
        for p in progress.status().partitions {
            let mark = marks.entry((p.topic, p.partition)).or_default();
            *mark = p.watermark.or(*mark);
        }
        let own: HashMap<(String, i32), i64> = marks
            .into_iter()
            .map(|(key, mark)| {
                let cut = mark.map_or(i64::MIN, |w| {
                    rollup::plan(now_ms, Some(w), ages).windows_before
                });
                (key, cut)
            })
            .collect();
        let upper = own
            .values()
            .copied()
            .chain([plan.windows_before])
            .max()
            .unwrap_or(plan.windows_before);
        let own = Arc::new(own);
        let before_of = {
            let own = own.clone();
            move |topic: &str, partition: i32| -> i64 {
                own.get(&(topic.to_owned(), partition))
                    .copied()
                    .unwrap_or(i64::MIN)
                    .min(upper)
            }
        };
        let rolled_before =
            |topic: &str, partition: i32| rollup::bucket_start(before_of(topic, partition), minute);
        if !self
            .tombstone(rollup::bucket_start(upper, minute), &rolled_before)
            .await
        {
            return;
        }
        let s = self.store.clone();
        let today = crate::store::day_of(now_ms);
        let done = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            s.discard_salts_before(today)?;
            let windows = s.roll_up_windows(upper, before_of, MAX_BUCKETS_PER_PASS)?;
            telemetry::history_rolled_up(
                "minute",
                windows.buckets,
                windows.rows,
                plan.windows_before,
            );
            let minutes = s.roll_up_minutes(plan.minutes_before, MAX_BUCKETS_PER_PASS)?;
            telemetry::history_rolled_up(
                "hour",
                minutes.buckets,
                minutes.rows,
                plan.minutes_before,
            );
            let deleted = s.delete_history_before(plan.delete_before)?;
            telemetry::history_deleted(plan.delete_before, deleted);
            Ok(windows.rows)
        });
        match done.await {
            Ok(Ok(n)) => telemetry::retention_pass(before, n),
            Ok(Err(e)) => telemetry::retention_failed(&e),
            Err(e) => telemetry::retention_failed(&e),
        }
        progress.forget_before(before);
    }

    /// Tombstone, in the state topic, the windows of this instance's partitions that the
    /// pass rolls up (those before `rolled_before` of their partition; all are before
    /// `upper`). False when that failed: nothing is rolled up this pass (the next one tries
    /// again, so no window is ever left in the topic after it left the store).
    async fn tombstone(
        &self,
        upper: i64,
        rolled_before: &(dyn Fn(&str, i32) -> i64 + Sync),
    ) -> bool {
        let Some(state) = &self.state else {
            return true;
        };
        let Some(committer) = state.committer.get() else {
            return true;
        };
        let local: HashSet<(String, i32)> = self.progress.local_partitions().into_iter().collect();
        if local.is_empty() {
            return true;
        }
        let s = self.store.clone();
        let keys = match tokio::task::spawn_blocking(move || s.window_keys_before(upper)).await {
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
            .filter(|(start, t, p)| {
                local.contains(&(t.clone(), *p)) && *start < rolled_before(t, *p)
            })
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
