//! The cluster probe: the one source of broker reachability and cluster health.

use std::sync::{Arc, Weak};
use std::time::Duration;

use pulseboard_model::proto::{BrokerInfo, ClusterHealth};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;

use super::Consumer_;
use crate::progress::Progress;

/// How often the cluster probe asks for metadata, and how long it waits for an answer.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The one source of broker reachability: every [`PROBE_INTERVAL`], a metadata request for
/// the input topics with a [`PROBE_TIMEOUT`]. Answered → reachable, with what the answer
/// says of the brokers and partitions; not answered → unreachable. So a cluster that stops
/// answering is reported within `PROBE_INTERVAL + PROBE_TIMEOUT` (3 s).
pub(super) async fn cluster_probe(
    consumer: Weak<Consumer_>,
    topics: Vec<String>,
    progress: Arc<Progress>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Some(c) = consumer.upgrade() else { break };
        let topics = topics.clone();
        // fetch_metadata blocks for at most PROBE_TIMEOUT per topic.
        let answer = tokio::task::spawn_blocking(move || probe_once(&c, &topics)).await;
        let health = match answer {
            Ok(Ok(view)) => view.health(crate::now_ms()),
            Ok(Err(e)) => ClusterHealth {
                reachable: false,
                checked_at: Some(crate::now_ms()),
                error: Some(e.to_string()),
                ..ClusterHealth::default()
            },
            Err(e) => {
                tracing::error!(error = %e, "cluster probe failed");
                continue;
            }
        };
        progress.set_cluster(health);
    }
}

/// What a metadata answer says, stripped of client types.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClusterView {
    pub brokers: Vec<BrokerInfo>,
    /// Per partition of the input topics: leader (-1: none), replicas, in-sync replicas.
    pub partitions: Vec<(i32, Vec<i32>, Vec<i32>)>,
}

impl ClusterView {
    /// The health this view shows (see [`ClusterHealth`]).
    pub fn health(&self, now_ms: i64) -> ClusterHealth {
        let live: std::collections::BTreeSet<i32> = self.brokers.iter().map(|b| b.id).collect();
        let mut missing = std::collections::BTreeSet::new();
        let (mut under, mut offline) = (0u32, 0u32);
        for (leader, replicas, isr) in &self.partitions {
            missing.extend(replicas.iter().filter(|r| !live.contains(r)));
            if isr.len() < replicas.len() {
                under += 1;
            }
            if *leader < 0 {
                offline += 1;
            }
        }
        ClusterHealth {
            reachable: true,
            checked_at: Some(now_ms),
            error: None,
            brokers: self.brokers.clone(),
            degraded: !missing.is_empty() || under > 0 || offline > 0,
            missing_brokers: missing.into_iter().collect(),
            under_replicated_partitions: under,
            offline_partitions: offline,
        }
    }
}

pub(super) fn probe_once(
    consumer: &Consumer_,
    topics: &[String],
) -> Result<ClusterView, KafkaError> {
    let mut view = ClusterView::default();
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), PROBE_TIMEOUT)?;
        view.brokers = md
            .brokers()
            .iter()
            .map(|b| BrokerInfo {
                id: b.id(),
                host: b.host().to_owned(),
                port: b.port(),
            })
            .collect();
        for t in md.topics() {
            for p in t.partitions() {
                view.partitions
                    .push((p.leader(), p.replicas().to_vec(), p.isr().to_vec()));
            }
        }
    }
    view.brokers.sort_by_key(|b| b.id);
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_is_degraded_when_a_replica_broker_is_gone_or_a_partition_lags() {
        let b = |id| BrokerInfo {
            id,
            host: "h".into(),
            port: 1,
        };
        let healthy = ClusterView {
            brokers: vec![b(1), b(2), b(3)],
            partitions: vec![(1, vec![1, 2, 3], vec![1, 2, 3]); 4],
        };
        let h = healthy.health(7);
        assert!(h.reachable && !h.degraded, "{h:?}");
        assert_eq!(h.checked_at, Some(7));
        // Broker 3 died: gone from the live list, out of the ISR; one partition it led has
        // no leader yet.
        let mut degraded = ClusterView {
            brokers: vec![b(1), b(2)],
            partitions: vec![(1, vec![1, 2, 3], vec![1, 2]); 3],
        };
        degraded.partitions.push((-1, vec![3, 1, 2], vec![3]));
        let h = degraded.health(8);
        assert!(h.reachable && h.degraded);
        assert_eq!(h.missing_brokers, vec![3]);
        assert_eq!(h.under_replicated_partitions, 4);
        assert_eq!(h.offline_partitions, 1);
    }
}
