//! Retention: windows older than `--retention` leave the store.
//!
//! Contract: the cut-off is `min(global watermark, wall-clock now) − retention`. It never
//! passes wall-clock now − retention, whatever a watermark says: one event stamped far in
//! the future must not make history disappear. A pass runs every `--retention-interval` (a
//! minute by default), off the runtime's worker threads. A pass also deletes the visitor-id
//! salts of the UTC days before today (a day's salt must not outlive its day).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::live::Live;
use crate::store::Store;
use crate::telemetry;

/// Windows starting before this are deleted.
pub fn cutoff(now_ms: i64, watermark: Option<i64>, retention_ms: i64) -> i64 {
    watermark
        .map_or(now_ms, |w| w.min(now_ms))
        .saturating_sub(retention_ms)
}

/// Run a pass every `every` (the first at once) until `shutdown`.
pub async fn run(
    store: Store,
    live: Arc<Live>,
    retention_ms: i64,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => pass(&store, &live, crate::now_ms(), retention_ms).await,
        }
    }
}

/// One pass at wall-clock time `now_ms`.
pub async fn pass(store: &Store, live: &Live, now_ms: i64, retention_ms: i64) {
    let before = cutoff(now_ms, live.watermark(), retention_ms);
    let s = store.clone();
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
