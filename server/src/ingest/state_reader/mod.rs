//! The state topic's reader: the global view. Every instance reads the whole state topic
//! (`read_committed`, every partition assigned, outside the consumer group) and applies what
//! any instance checkpointed to its store, its hub and its status.
//!
//! Contract:
//! - A checkpoint is applied whole: the window and dead-letter records of an input
//!   partition are held until that partition's progress record arrives, then written with
//!   it in one sled transaction ([`Store::apply_remote`]), together with the state-topic
//!   position. The position recorded is never past a record still held, so a restart reads
//!   a held checkpoint again from its start. After compaction a partition's records are its
//!   latest window values followed by its latest progress record: still a whole state.
//! - A checkpoint is applied only when its `seq` is above the stored one: this instance's
//!   own checkpoints (already written by its committer) and older ones are skipped, without
//!   decoding their windows.
//! - Another instance's checkpoint goes to the hub ([`Hub::update`]) and, for partitions
//!   this instance does not read, to the status ([`Progress::publish_remote`]), so any instance
//!   shows every partition within moments of its owner's checkpoint. This instance's own
//!   checkpoints are published by its partition tasks.
//! - After every applied checkpoint the `applied` watch is bumped: a partition task waiting
//!   for its committed checkpoint ([`super::partition`]) looks again.
//! - Once every partition of the state topic reported its end, the reader has caught up
//!   ([`Progress::set_state_caught_up`]; `/readyz` waits for it).
//! - Every [`MEMBERS_INTERVAL`] it lists the consumer group's members: the instances alive.
//! - Held records are bounded by one checkpoint per input partition, and, while reading a
//!   compacted log from its start, by the windows within retention of one partition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::IngestError;
use crate::hub::Hub;
use crate::ingest::client;
use crate::progress::Progress;
use crate::store::Store;
use crate::telemetry;

mod apply;

use apply::{Applier, ApplyTo};

/// How often the consumer group's members are listed.
pub const MEMBERS_INTERVAL: Duration = Duration::from_secs(2);

/// Prefix of the `client.id` of an instance's group consumer; the rest is its id.
pub const CLIENT_ID_PREFIX: &str = "pulseboard-";

/// What the reader needs.
pub struct ReaderParams {
    pub brokers: String,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub instance_id: String,
    pub lateness_ms: i64,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub hub: Arc<Hub>,
}

/// Start the reader on a thread of its own (its sled writes and client calls block).
/// Returns the thread and the `applied` watch.
pub fn spawn(
    params: ReaderParams,
    shutdown: CancellationToken,
) -> Result<(std::thread::JoinHandle<()>, watch::Receiver<u64>), IngestError> {
    let consumer: BaseConsumer = client::state_reader_consumer_config(
        &params.brokers,
        &format!("{CLIENT_ID_PREFIX}{}-state", params.instance_id),
    )
    .create()
    .map_err(IngestError::Client)?;
    let positions = params
        .store
        .state_topic_positions()
        .map_err(|source| IngestError::StateReader(source.to_string()))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..params.partitions {
        let at = positions
            .get(&p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(&params.topic, p, at)
            .map_err(IngestError::Client)?;
    }
    consumer.assign(&tpl).map_err(IngestError::Client)?;
    let (tx, rx) = watch::channel(0u64);
    let thread = std::thread::Builder::new()
        .name("state-topic-reader".into())
        .spawn(move || {
            let reader = Reader {
                consumer,
                group: params.group.clone(),
                progress: params.progress.clone(),
                applier: Applier::new(
                    ApplyTo {
                        partitions: params.partitions,
                        instance_id: params.instance_id,
                        lateness_ms: params.lateness_ms,
                        store: params.store,
                        progress: params.progress,
                        hub: params.hub,
                    },
                    tx,
                ),
                members_at: None,
            };
            reader.run(shutdown)
        })
        .map_err(|e| IngestError::StateReader(format!("cannot start its thread: {e}")))?;
    Ok((thread, rx))
}

struct Reader {
    consumer: BaseConsumer,
    group: String,
    progress: Arc<Progress>,
    applier: Applier,
    members_at: Option<Instant>,
}

impl Reader {
    fn run(mut self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self
                .members_at
                .is_none_or(|t| t.elapsed() >= MEMBERS_INTERVAL)
            {
                self.members_at = Some(Instant::now());
                self.list_members();
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    let (sp, offset) = (m.partition(), m.offset());
                    if let Err(e) = self.applier.on_record(sp, offset, m.key(), m.payload()) {
                        // The store failing is fatal for ingest too; say it and stop reading.
                        tracing::error!(error = %e, "cannot apply the state topic to the store; the global view stops here");
                        telemetry::state_record_unreadable("store");
                        return;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.applier.at_end(p),
                Some(Err(e)) => tracing::debug!(error = %e, "state topic reader"),
            }
        }
    }

    /// The consumer group's members, by instance id.
    fn list_members(&self) {
        match self
            .consumer
            .fetch_group_list(Some(&self.group), Duration::from_secs(1))
        {
            Ok(list) => {
                let ids: Vec<String> = list
                    .groups()
                    .iter()
                    .filter(|g| g.name() == self.group)
                    .flat_map(|g| g.members())
                    .filter_map(|m| m.client_id().strip_prefix(CLIENT_ID_PREFIX))
                    .map(str::to_owned)
                    .collect();
                self.progress.set_members(ids);
            }
            Err(e) => tracing::debug!(error = %e, "cannot list the group's members"),
        }
    }
}
