//! End-to-end latency by paced probes, shared by the WebSocket step and the peers.
//!
//! Contract: one probe event every 20 ms to partition 0 of a topic, its event time the send
//! time, a unique URL each. Probes are numbered per 10 s window (1, 2, ...), so a consumer of
//! window counts can tell when the k-th probe of a window became visible: the first time it
//! saw that window's count at k or more ([`WindowSteps`]). The latency of a probe is that time
//! minus the moment it was handed to the producer. Nothing else may write to the window of a
//! probe: the warm-up event is a minute old.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use pulseboard_model::event::Event;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::now_ms;

/// How often a probe is sent.
pub const PROBE_EVERY: Duration = Duration::from_millis(20);
/// The window of Pulseboard and of the peers in the latency runs.
pub const WINDOW_MS: i64 = 10_000;

/// A producer that sends each probe at once.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the probe producer")
}

fn payload(k: u64, ts: i64) -> (String, String) {
    let ev = Event {
        props: Vec::new(),
        site: None,
        ts,
        kind: "pageview".into(),
        visitor: format!("v-probe-{}", k % 50),
        session: None,
        url: format!("/probe/{k}"),
        referrer: None,
        country: None,
        device: None,
    };
    (ev.visitor.clone(), ev.to_json())
}

/// One event a minute old (so in another window than the probes) to partition 0 of `topic`:
/// once a consumer shows it, that consumer has joined and reads the partition.
pub async fn send_warm_up(producer: &FutureProducer, topic: &str) -> Result<()> {
    let (key, payload) = payload(u64::MAX, now_ms() - 60_000);
    let rec = FutureRecord::to(topic)
        .partition(0)
        .key(&key)
        .payload(&payload);
    producer
        .send(rec, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| anyhow!("producing the warm-up event: {e}"))?;
    Ok(())
}

/// One probe: the k-th event of its window (1-based), and when it was handed to Kafka.
pub struct Probe {
    pub window: i64,
    pub index: u64,
    pub sent: Instant,
}

/// One probe every 20 ms to partition 0 of `topic` for `probe_for`; waits for every delivery.
pub async fn send_probes(
    producer: &FutureProducer,
    topic: &str,
    probe_for: Duration,
) -> Result<Vec<Probe>> {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let count = (probe_for.as_millis() / PROBE_EVERY.as_millis()) as u64;
    let mut probes = Vec::with_capacity(count as usize);
    let mut deliveries = Vec::with_capacity(count as usize);
    let mut per_window: HashMap<i64, u64> = HashMap::new();
    for k in 0..count {
        tick.tick().await;
        let ts = now_ms();
        let (key, payload) = payload(k, ts);
        let rec = FutureRecord::to(topic)
            .partition(0)
            .key(&key)
            .payload(&payload);
        let sent = Instant::now();
        let delivery = producer
            .send_result(rec)
            .map_err(|(e, _)| anyhow!("producing probe {k}: {e}"))?;
        deliveries.push(delivery);
        let window = ts - ts.rem_euclid(WINDOW_MS);
        let index = per_window.entry(window).or_default();
        *index += 1;
        probes.push(Probe {
            window,
            index: *index,
            sent,
        });
    }
    for (k, d) in deliveries.into_iter().enumerate() {
        d.await
            .map_err(|_| anyhow!("probe {k}: delivery cancelled"))?
            .map_err(|(e, _)| anyhow!("probe {k} not delivered: {e}"))?;
    }
    Ok(probes)
}

/// When one observer first saw each window's count grow: start → [(events, when)].
#[derive(Default)]
pub struct WindowSteps {
    seen: HashMap<i64, Vec<(u64, Instant)>>,
}

impl WindowSteps {
    /// Window `start` was seen with `events` at `at` (kept only if the count grew).
    pub fn observe(&mut self, start: i64, events: u64, at: Instant) {
        let steps = self.seen.entry(start).or_default();
        if steps.last().is_none_or(|(e, _)| events > *e) {
            steps.push((events, at));
        }
    }

    /// When window `start` was first seen at `events` or more.
    pub fn first_at_least(&self, start: i64, events: u64) -> Option<Instant> {
        let steps = self.seen.get(&start)?;
        let i = steps.partition_point(|(e, _)| *e < events);
        steps.get(i).map(|(_, at)| *at)
    }
}

/// Latencies in ms of every (observer, probe) pair that was seen, sorted, and the number of
/// pairs never seen.
pub fn latencies<'a>(
    observers: impl IntoIterator<Item = &'a WindowSteps>,
    probes: &[Probe],
) -> (Vec<f64>, usize) {
    let mut out = Vec::new();
    let mut missed = 0;
    for steps in observers {
        for p in probes {
            match steps.first_at_least(p.window, p.index) {
                Some(at) => out.push(at.saturating_duration_since(p.sent).as_secs_f64() * 1e3),
                None => missed += 1,
            }
        }
    }
    out.sort_by(f64::total_cmp);
    (out, missed)
}

/// Nearest-rank percentile of sorted values; NaN when empty.
pub fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_visible_when_its_window_reaches_its_index() {
        let t0 = Instant::now();
        let mut steps = WindowSteps::default();
        steps.observe(0, 1, t0);
        steps.observe(0, 1, t0 + Duration::from_millis(5));
        steps.observe(0, 3, t0 + Duration::from_millis(10));
        assert_eq!(steps.first_at_least(0, 1), Some(t0));
        assert_eq!(
            steps.first_at_least(0, 2),
            Some(t0 + Duration::from_millis(10))
        );
        assert_eq!(steps.first_at_least(0, 4), None);
        assert_eq!(steps.first_at_least(10_000, 1), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
