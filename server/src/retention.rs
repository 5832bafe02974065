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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pulseboard_model::rollup::{self, Ages};
use tokio_util::sync::CancellationToken;

use crate::live::Live;
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

/// Run a pass every `every` (the first at once) until `shutdown`.
pub async fn run(
    store: Store,
    live: Arc<Live>,
    ages: Ages,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => pass(&store, &live, crate::now_ms(), ages).await,
        }
    }
}

/// One pass at wall-clock time `now_ms`.
pub async fn pass(store: &Store, live: &Live, now_ms: i64, ages: Ages) {
    let before = cutoff(now_ms, live.watermark(), ages.retention_ms);
    let plan = rollup::plan(now_ms, live.watermark(), ages);
    // Each partition's own cut-off, from its own watermark (bounded by the clock).
    let own: HashMap<(String, i32), i64> = live
        .status()
        .partitions
        .into_iter()
        .map(|p| {
            let cut = rollup::plan(now_ms, p.watermark, ages).windows_before;
            ((p.topic, p.partition), cut)
        })
        .collect();
    let s = store.clone();
    let today = crate::enrich::day_of(now_ms);
    let done = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        s.discard_salts_before(today)?;
        let upper = own.values().copied().chain([plan.windows_before]).max();
        let windows = s.roll_up_windows(
            upper.unwrap_or(plan.windows_before),
            |topic, partition| {
                own.get(&(topic.to_owned(), partition))
                    .copied()
                    .unwrap_or(plan.windows_before)
            },
            MAX_BUCKETS_PER_PASS,
        )?;
        telemetry::history_rolled_up("minute", windows.buckets, windows.rows, plan.windows_before);
        let minutes = s.roll_up_minutes(plan.minutes_before, MAX_BUCKETS_PER_PASS)?;
        telemetry::history_rolled_up("hour", minutes.buckets, minutes.rows, plan.minutes_before);
        let deleted = s.delete_history_before(plan.delete_before)?;
        telemetry::history_deleted(plan.delete_before, deleted);
        Ok(windows.rows)
    });
    match done.await {
        Ok(Ok(n)) => telemetry::retention_pass(before, n),
        Ok(Err(e)) => telemetry::retention_failed(&e),
        Err(e) => telemetry::retention_failed(&e),
    }
    live.forget_before(before);
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
