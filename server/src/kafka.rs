//! Kafka client configuration in one place: the settings every client shares, the
//! consumer's, the dead-letter topics' creation, `--offset-reset`, and the metadata
//! Pulseboard writes with its offset commits.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// What to do when a stored offset is outside the log (the topic was recreated, or
/// retention deleted what was not read yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OffsetReset {
    /// Read from the log start (logged, and listed in the status).
    Earliest,
    /// Skip to the log end (logged, and listed in the status).
    Latest,
    /// Stop with an error.
    Fail,
}

impl OffsetReset {
    /// The flag value, as shown in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::Fail => "fail",
        }
    }
}

/// Commit metadata carrying the max event time, so the next owner keeps the watermark.
pub fn commit_metadata(max_event_ts: Option<i64>) -> String {
    max_event_ts
        .map(|m| format!("max_event_ts={m}"))
        .unwrap_or_default()
}

pub fn parse_commit_metadata(s: &str) -> Option<i64> {
    s.strip_prefix("max_event_ts=")?.parse().ok()
}

/// The committed offset (and metadata) of a partition, if the group has one.
pub fn committed_position(
    tpl: &TopicPartitionList,
    topic: &str,
    partition: i32,
) -> Option<(i64, Option<i64>)> {
    let elem = tpl.find_partition(topic, partition)?;
    let Offset::Offset(o) = elem.offset() else {
        return None;
    };
    // rdkafka panics on metadata that is not UTF-8; metadata comes from the network.
    let meta =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| elem.metadata().to_owned()))
            .unwrap_or_default();
    Some((o, parse_commit_metadata(&meta)))
}

/// Librdkafka settings shared by every client we create.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("client.id", "pulseboard")
        .set("log_level", "4");
    cfg
}

/// The consumer of the input topics: manual offsets (sled is the source of truth), errors
/// instead of silent resets, cooperative rebalancing, bounded read-ahead; `options`
/// (`--kafka-option`) last, so they override.
pub fn consumer_config(
    brokers: &str,
    group: &str,
    embedded: bool,
    options: &[(String, String)],
) -> ClientConfig {
    let mut cfg = client_config(brokers);
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Out-of-range offsets surface as errors so --offset-reset decides, never silently.
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "1000")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Cooperative rebalancing: a rebalance moves only the partitions that change owner,
        // the others keep flowing; and one partition can be restarted on its own
        // (incremental unassign + assign), which an offset reset needs (see
        // `ingest::partition`). The configuration refuses another strategy.
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("topic.metadata.refresh.interval.ms", "10000")
        // Read ahead in larger fetches (up to 4 MB per partition; Kafka's default is 1 MB)
        // while at most 8 MB of messages wait per partition, and fetch again 10 ms after
        // that queue drained below its bound (librdkafka's default waits a full second,
        // which made a bounded queue stall). Memory stays bounded while catching up on a
        // backlog at full speed (see README, Performance).
        .set("max.partition.fetch.bytes", "4194304")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.queue.backoff.ms", "10");
    if embedded {
        // The in-process mock broker holds a fetch that found no data for the whole
        // fetch.wait.max.ms, even when data arrives meanwhile (Apache Kafka answers as soon
        // as data is there): 10 ms keeps live latency low there. Real brokers keep
        // librdkafka's default (500 ms), which costs nothing in latency on them.
        cfg.set("fetch.wait.max.ms", "10");
    }
    for (k, v) in options {
        cfg.set(k, v);
    }
    cfg
}

/// The producer of dead letters: small batches, and a delivery bounded in time.
pub fn dead_letter_producer_config(brokers: &str) -> ClientConfig {
    let mut cfg = client_config(brokers);
    cfg.set("linger.ms", "5")
        .set("message.timeout.ms", "300000");
    cfg
}

/// Create the dead-letter topics if the cluster does not have them, with the cluster's
/// default replication factor (best effort: a cluster that auto-creates topics or forbids
/// creating them is fine).
pub async fn ensure_topics(brokers: &str, topics: &[String]) {
    let admin: AdminClient<DefaultClientContext> = match client_config(brokers).create() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create admin client");
            return;
        }
    };
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(-1)).set("retention.ms", "604800000"))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    match admin.create_topics(new.iter(), &opts).await {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(t) => tracing::info!(topic = %t, "created dead-letter topic"),
                    Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        tracing::debug!(topic = %t, "dead-letter topic exists")
                    }
                    Err((t, code)) => {
                        tracing::warn!(topic = %t, error = %code, "cannot create dead-letter topic")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot create dead-letter topics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_metadata_round_trips_and_tolerates_foreign_text() {
        assert_eq!(
            parse_commit_metadata(&commit_metadata(Some(-12))),
            Some(-12)
        );
        assert_eq!(parse_commit_metadata(&commit_metadata(None)), None);
        assert_eq!(parse_commit_metadata("written by another tool"), None);
    }
}
