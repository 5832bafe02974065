//! Throughput: events a second over the partitions' event counts, sampled about once a
//! second and smoothed over a few, for the status's `events_per_sec`.

use std::time::Duration;

// tokio's clock: the real one in production, a paused and advanced one in tests.
use tokio::time::Instant;

use super::Progress;

/// The last sample (when, events then) and the smoothed rate.
#[derive(Debug, Default)]
pub(super) struct RateMeter {
    last: Option<(Instant, u64)>,
    pub(super) per_sec: f64,
}

impl Progress {
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
}
