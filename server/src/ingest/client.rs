//! Kafka client configuration in one place: the settings every client shares, the group
//! consumer's, the dead-letter producer's, the state topic's transactional producer and
//! reader; creating the dead-letter topics and the state topic; and the metadata Pulseboard
//! writes with its offset commits (read back by [`committed_position`]).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// Commit metadata carrying the max event time, so the next owner keeps the watermark.
pub fn commit_metadata(max_event_ts: Option<i64>) -> String {
    max_event_ts
        .map(|m| format!("max_event_ts={m}"))
        .unwrap_or_default()
}

/// The max event time in commit metadata (`max_event_ts=M`, alone or among `;`-separated
/// fields, as the state topic's checkpoints write it).
pub fn parse_commit_metadata(s: &str) -> Option<i64> {
    s.split(';')
        .find_map(|kv| kv.strip_prefix("max_event_ts="))?
        .parse()
        .ok()
}

/// A partition's committed position in the group, with what its metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    /// The max event time folded up to `offset`.
    pub max_event_ts: Option<i64>,
    /// The state topic's checkpoint committed with it (`None`: a commit without one, by a
    /// Pulseboard without a state topic or by another tool).
    pub seq: Option<u64>,
}

/// The committed offset (and metadata) of a partition, if the group has one.
pub fn committed_position(
    tpl: &TopicPartitionList,
    topic: &str,
    partition: i32,
) -> Option<Committed> {
    let elem = tpl.find_partition(topic, partition)?;
    let Offset::Offset(o) = elem.offset() else {
        return None;
    };
    // rdkafka panics on metadata that is not UTF-8; metadata comes from the network.
    let meta =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| elem.metadata().to_owned()))
            .unwrap_or_default();
    Some(Committed {
        offset: o,
        max_event_ts: parse_commit_metadata(&meta),
        seq: crate::store::record::parse_commit_seq(&meta),
    })
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
        // A partition read to its end says so: only then may it be idle (progress::watermark).
        .set("enable.partition.eof", "true")
        .set("statistics.interval.ms", "1000")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Cooperative rebalancing: a rebalance moves only the partitions that change owner,
        // the others keep flowing; and one partition can be restarted on its own
        // (incremental unassign + assign), which an offset reset needs (see
        // `ingest::partition`). The configuration refuses another strategy.
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("topic.metadata.refresh.interval.ms", "10000")
        // Read ahead in larger fetches (up to 2 MB per partition; Kafka's default is 1 MB)
        // while at most 8 MB of messages wait per partition, and fetch again 10 ms after
        // that queue drained below its bound (librdkafka's default waits a full second,
        // which made a bounded queue stall). Memory stays bounded while catching up on a
        // backlog at full speed: librdkafka keeps a few hundred bytes per queued message
        // beside its payload, and a fetch's buffer until its last message is gone, about
        // 25 MB per partition at that bound (4 MB fetches kept 15 MB more in all for no
        // gain in rate; 4 MB queues cost a tenth of it; see docs/performance.md).
        .set("max.partition.fetch.bytes", "2097152")
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

/// The largest record of the state topic (a window's stored row, with its segment tables and
/// goals, behind its header): the producer's `message.max.bytes` and the topic's
/// `max.message.bytes` when Pulseboard creates it, as large as the largest row the store
/// reads (`store::row::MAX_ROW_BYTES`).
pub const STATE_RECORD_MAX_BYTES: usize = 32 * 1024 * 1024;

/// The transactional producer of the state topic: one per instance, fenced by its
/// `transactional.id` (a restart of the same instance aborts what its previous run left
/// open) and by the group generation its offset commits carry (KIP-447). A transaction
/// left open by a process that died is aborted by the broker after `txn_timeout`; until
/// then readers of the state topic (read_committed) wait behind it, so it is short.
pub fn transactional_producer_config(
    brokers: &str,
    transactional_id: &str,
    txn_timeout: Duration,
) -> ClientConfig {
    let ms = txn_timeout.as_millis().to_string();
    let mut cfg = client_config(brokers);
    cfg.set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", &ms)
        // A message must be delivered (or fail) within its transaction.
        .set("message.timeout.ms", &ms)
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set(
            "message.max.bytes",
            (STATE_RECORD_MAX_BYTES + 1024).to_string(),
        );
    cfg
}

/// The reader of the state topic: no group (it assigns every partition itself), only
/// committed transactions, an end-of-partition event when it has caught up.
pub fn state_reader_consumer_config(brokers: &str, client_id: &str) -> ClientConfig {
    let mut cfg = client_config(brokers);
    cfg.set("client.id", client_id)
        // librdkafka wants a group for `assign`; this one never joins nor commits.
        .set("group.id", client_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // A position this store recorded is always inside the log (compaction keeps
        // offsets); a store that never read starts at the beginning.
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set(
            "receive.message.max.bytes",
            (2 * STATE_RECORD_MAX_BYTES).to_string(),
        )
        // Bounded read-ahead: what the client fetches ahead of the reader (one queue for
        // every partition) is at most this (librdkafka's default is 64 MiB, soon filled
        // when a new instance reads the topic from its start), and one record more.
        .set(
            "queued.max.messages.kbytes",
            STATE_READER_QUEUE_KBYTES.to_string(),
        )
        .set("fetch.max.bytes", (4 * 1024 * 1024).to_string())
        .set("max.partition.fetch.bytes", (1024 * 1024).to_string())
        .set("topic.metadata.refresh.interval.ms", "10000");
    cfg
}

/// What the state topic's reader's client may hold fetched and not yet read, KiB.
pub const STATE_READER_QUEUE_KBYTES: u32 = 4 * 1024;

/// Errors setting up the state topic.
#[derive(Debug, thiserror::Error)]
pub enum StateTopicError {
    #[error("cannot create the state topic {topic}: {reason} (create it with cleanup.policy=compact, or give --state-topic a topic Pulseboard may create)")]
    Create { topic: String, reason: String },
    #[error("the state topic {topic} has cleanup.policy={policy}; it must be compact, or retention would delete the state it holds (change it with kafka-configs --alter --add-config cleanup.policy=compact, or pick another --state-topic)")]
    Policy { topic: String, policy: String },
    #[error("the state topic {topic} has no partitions in the cluster's metadata: {reason}")]
    Metadata { topic: String, reason: String },
}

/// Create the state topic if the cluster lacks it (compacted, `partitions` partitions,
/// the cluster's default replication, 1-hour segments so compaction can run), check that
/// an existing one is compacted, and return its partition count.
pub async fn ensure_state_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> Result<i32, StateTopicError> {
    let create_err = |reason: String| StateTopicError::Create {
        topic: topic.to_owned(),
        reason,
    };
    let admin: AdminClient<DefaultClientContext> = client_config(brokers)
        .create()
        .map_err(|e| create_err(e.to_string()))?;
    let max_bytes = (STATE_RECORD_MAX_BYTES + 1024).to_string();
    let new = NewTopic::new(topic, partitions.max(1), TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", &max_bytes)
        .set("segment.ms", "3600000")
        .set("min.compaction.lag.ms", "60000");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    match admin.create_topics([&new], &opts).await {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(_)) => tracing::info!(topic, partitions, "created the state topic"),
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => {}
            Some(Err((_, code))) => return Err(create_err(code.to_string())),
        },
        Err(e) => return Err(create_err(e.to_string())),
    }
    let resource = rdkafka::admin::ResourceSpecifier::Topic(topic);
    if let Ok(described) = admin.describe_configs([&resource], &opts).await {
        for r in described.into_iter().flatten() {
            let max = r
                .get("max.message.bytes")
                .and_then(|e| e.value.as_deref()?.parse::<usize>().ok());
            if let Some(max) = max.filter(|m| *m < STATE_RECORD_MAX_BYTES) {
                tracing::warn!(
                    topic,
                    max_message_bytes = max,
                    wanted = STATE_RECORD_MAX_BYTES,
                    "the state topic takes smaller records than a window's aggregate may need; raise its max.message.bytes"
                );
            }
            if let Some(entry) = r.get("cleanup.policy") {
                let policy = entry.value.clone().unwrap_or_default();
                if !policy.split(',').any(|p| p.trim() == "compact") {
                    return Err(StateTopicError::Policy {
                        topic: topic.to_owned(),
                        policy,
                    });
                }
            }
        }
    }
    topic_partition_count(brokers, topic).await
}

/// How many partitions `topic` has, as the cluster's metadata says (asked until it
/// answers with some, for at most 30 s: a topic just created may have none yet).
pub async fn topic_partition_count(brokers: &str, topic: &str) -> Result<i32, StateTopicError> {
    let name = topic.to_owned();
    let err = move |reason: String| StateTopicError::Metadata {
        topic: name.clone(),
        reason,
    };
    let client: rdkafka::consumer::BaseConsumer = client_config(brokers)
        .create()
        .map_err(|e| err(e.to_string()))?;
    let (topic_owned, deadline) = (
        topic.to_owned(),
        std::time::Instant::now() + Duration::from_secs(30),
    );
    tokio::task::spawn_blocking(move || loop {
        let answer = client.fetch_metadata(Some(&topic_owned), Duration::from_secs(5));
        let last = match answer {
            Ok(md) => {
                let n = md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic_owned)
                    .map(|t| t.partitions().len())
                    .unwrap_or(0);
                if n > 0 {
                    return Ok(n as i32);
                }
                "no partitions yet".to_owned()
            }
            Err(e) => e.to_string(),
        };
        if std::time::Instant::now() > deadline {
            return Err(err(last));
        }
        std::thread::sleep(Duration::from_millis(200));
    })
    .await
    .map_err(|e| StateTopicError::Metadata {
        topic: topic.to_owned(),
        reason: e.to_string(),
    })?
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
