//! Kafka ingest: the consumer group, one task per assigned partition, dead letters, the
//! committer, and (with a state topic) the state topic's reader.
//!
//! Contract:
//! - Offsets are data. Without a state topic, every partition is positioned at the next
//!   offset stored in sled (or at the log start when the store has never seen it), inside
//!   the rebalance callback, before any fetch; the Kafka commit is advisory (for lag tools)
//!   and happens only after the sled write it reports is durable. With a state topic, a
//!   checkpoint is one Kafka transaction (state records + the group's offset commit) and
//!   the store is written after it commits; a newly assigned partition starts from the
//!   group's committed checkpoint, restored from the state topic when the store is behind
//!   (see `partition`, `commit`, `state_reader`).
//! - Each assigned partition gets its own queue (`split_partition_queue`) and its own task,
//!   which owns that partition's [`engine::PartitionEngine`].
//! - The rebalance callback is synchronous and tiny: on revoke it asks the supervisor to
//!   flush and stop the revoked partitions' tasks and waits for that before the partitions
//!   are released, so the next owner resumes from exactly where this one stopped.
//! - A dead letter is produced before the checkpoint that moves past it, and the checkpoint
//!   waits for its delivery: an advanced offset never hides an unsent dead letter.
//! - The main queue is polled by a dedicated thread, so the blocking rebalance callback never
//!   stalls the runtime that runs the partition tasks.
//!
//! # Layout
//! - this module: the supervisor ([`run`]), its errors and parameters.
//! - `client`: Kafka client configuration in one place; commit metadata.
//! - `engine`: one partition's decode, windows, counters and checkpoints (no Kafka types).
//! - `rebalance`: the client context; assignment and revocation in the rebalance callback.
//! - `start`: where a newly assigned partition starts (`StartPoint`).
//! - `tasks`: the partition tasks the supervisor keeps: started on assignment, stopped on
//!   revocation (with a last checkpoint unless lost), panics reported at once.
//! - `partition/`: one partition's task: restore, read, fold, checkpoint, offset resets;
//!   its seam to Kafka (`io`: the partition's messages and the group's consumer).
//! - `commit/`: the committer: checkpoints made durable in batches through a sink (`group`:
//!   sled, then the advisory offset commit; `txn`: a Kafka transaction to the state topic,
//!   then sled).
//! - `state_reader/`: the state topic's reader: every instance's checkpoints into this
//!   store, hub and status (the global view); `apply` holds the rules, the loop the Kafka.
//! - `dead_letter`: producing what cannot be counted to the dead-letter topic.
//! - `probe`: the cluster probe, the one source of broker reachability.
//! - `fakes` (tests only): the seams' test doubles, so these state machines run without a
//!   broker.

pub mod client;
mod commit;
mod dead_letter;
pub mod engine;
mod partition;
mod probe;
mod rebalance;
mod start;
mod tasks;

#[cfg(test)]
mod fakes;
pub mod state_reader;

pub use commit::{CommitHandle, CommitOutcome};

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pulseboard_model::decode::Decoder;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::KafkaArgs;
use crate::hub::Hub;
use crate::ingest::engine::EngineConfig;
use crate::progress::Progress;
use crate::store::{Store, StoreError};
use commit::{Committer, GroupCommit, StateTopicSink, Txn};
use partition::{RestoreFrom, TaskShared};
use pulseboard_model::proto::InstanceRef;
use rebalance::{Control, IngestContext};
use tasks::PartitionTasks;

pub(crate) type Consumer_ = StreamConsumer<IngestContext>;
pub(crate) type Queue = StreamPartitionQueue<IngestContext>;

/// Errors that stop ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot create the Kafka client: {0} (check --brokers and --kafka-option)")]
    Client(#[source] KafkaError),
    #[error("cannot subscribe to {topics}: {source}")]
    Subscribe { topics: String, source: KafkaError },
    #[error("partition {topic}/{partition}: the stored offset {stored} is outside the log (the topic was recreated, or retention deleted unread messages); restart with --offset-reset earliest or latest to continue")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        stored: i64,
    },
    #[error(
        "partition {topic}/{partition}: cannot restart fetching after an offset reset: {source}"
    )]
    Restart {
        topic: String,
        partition: i32,
        #[source]
        source: KafkaError,
    },
    #[error("partition {topic}/{partition}: its task panicked: {message}")]
    PartitionPanicked {
        topic: String,
        partition: i32,
        message: String,
    },
    #[error("partition {topic}/{partition}: {source}")]
    Store {
        topic: String,
        partition: i32,
        #[source]
        source: StoreError,
    },
    #[error(
        "partition {topic}/{partition}: not restored within --restore-timeout ({timeout:?}): {why}"
    )]
    Restore {
        topic: String,
        partition: i32,
        timeout: Duration,
        why: String,
    },
    #[error("the transactional producer {transactional_id} cannot go on: {why} (each instance needs its own --data-dir: is another one running with a copy of this one?)")]
    Transactions {
        transactional_id: String,
        why: String,
    },
    #[error("a checkpoint does not fit the state topic {topic}: {why} (raise the topic's max.message.bytes, or keep windows smaller: fewer --segment-dimensions, a lower --segment-top)")]
    CheckpointTooLarge { topic: String, why: String },
    #[error(transparent)]
    StateTopic(#[from] client::StateTopicError),
    #[error("the state topic's reader: {0}")]
    StateReader(String),
    #[error("the committer stopped without being asked to")]
    CommitterStopped,
}

/// Everything ingest needs.
pub struct IngestParams {
    /// The Kafka component's configuration, whole.
    pub kafka: KafkaArgs,
    /// The bootstrap servers to use: `--brokers`, or the embedded broker's address.
    pub brokers: String,
    /// Running on the embedded (in-process mock) broker: its topics exist already, and its
    /// fetches need a short wait (see [`client::consumer_config`]).
    pub embedded: bool,
    pub engine: EngineConfig,
    pub checkpoint_interval: Duration,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub hub: Arc<Hub>,
    /// This instance: its id (kept in the store) and its dashboard's URL.
    pub me: InstanceRef,
    /// Where the committer's handle is put for others (retention's tombstones).
    pub committer: Arc<OnceLock<CommitHandle>>,
    /// The keys of `props` kept (`--property`).
    pub properties: Vec<String>,
}

/// How long a revoke waits for the revoked partitions' last checkpoint (a sled write and
/// a commit bounded by [`COMMIT_TIMEOUT`]).
const REVOKE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a synchronous commit may take before the partition is released without it
/// (the group coordinator may be failing over; sled stays the source of truth).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a partition task may take to checkpoint and stop before it is aborted (less
/// than [`REVOKE_TIMEOUT`]).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Run ingest until `shutdown`; every partition task checkpoints before this returns.
pub async fn run(params: IngestParams, shutdown: CancellationToken) -> Result<(), IngestError> {
    let dead_letter_topics: HashMap<String, String> = params
        .kafka
        .topics
        .iter()
        .map(|t| (t.clone(), params.kafka.dead_letter_topic_for(t)))
        .collect();
    let decoder = Arc::new(
        Decoder::new(params.kafka.mapping())
            .with_properties(&params.properties)
            .counting_into(params.progress.props_rejected.clone()),
    );
    let dlq_topics: Vec<String> = {
        let mut v: Vec<String> = dead_letter_topics.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    if !params.embedded {
        let ensure = client::ensure_topics(&params.brokers, &dlq_topics);
        if tokio::time::timeout(Duration::from_secs(15), ensure)
            .await
            .is_err()
        {
            tracing::warn!(topics = ?dlq_topics, "creating dead-letter topics timed out; continuing");
        }
    }

    let producer: FutureProducer = {
        client::dead_letter_producer_config(&params.brokers)
            .create()
            .map_err(IngestError::Client)?
    };

    // The state topic: where checkpoints go, and the global view comes from.
    let state = match params.kafka.state_topic() {
        Some(topic) => {
            let want = match params.kafka.state_partitions {
                Some(n) => n,
                None => input_partitions(&params.brokers, &params.kafka.topics).await,
            };
            let partitions = client::ensure_state_topic(&params.brokers, &topic, want).await?;
            tracing::info!(topic, partitions, "state topic");
            Some((topic, partitions))
        }
        None => None,
    };

    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let context = IngestContext {
        store: params.store.clone(),
        progress: params.progress.clone(),
        control: control_tx,
        consumer: OnceLock::new(),
        transactional: state.is_some(),
    };
    let mut cfg = client::consumer_config(
        &params.brokers,
        &params.kafka.group,
        params.embedded,
        &params.kafka.kafka_options,
    );
    // The group lists its members by client id: the instances alive (see `state_reader`).
    cfg.set(
        "client.id",
        format!("{}{}", state_reader::CLIENT_ID_PREFIX, params.me.id),
    );
    let consumer: Arc<Consumer_> = Arc::new(
        cfg.create_with_context(context)
            .map_err(IngestError::Client)?,
    );
    // `set` only fails when already set, which cannot happen on a fresh context.
    let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));

    // The state topic's reader runs before the first assignment: a new partition waits
    // for it to bring the store up to the group's committed checkpoint.
    let reader_stop = CancellationToken::new();
    let reader = match &state {
        Some((topic, partitions)) => Some(state_reader::spawn(
            state_reader::ReaderParams {
                brokers: params.brokers.clone(),
                topic: topic.clone(),
                partitions: *partitions,
                group: params.kafka.group.clone(),
                instance_id: params.me.id.clone(),
                lateness_ms: params.engine.windows.lateness_ms,
                store: params.store.clone(),
                progress: params.progress.clone(),
                hub: params.hub.clone(),
            },
            reader_stop.clone(),
        )?),
        None => None,
    };
    let sink = state.as_ref().map(|(topic, partitions)| {
        let key = crate::store::record::Key::Instance {
            id: params.me.id.clone(),
        };
        let value = crate::store::record::instance_value(&crate::store::record::InstanceValue {
            url: params.me.url.clone(),
            started_ms: crate::now_ms(),
        });
        StateTopicSink {
            brokers: params.brokers.clone(),
            transactional_id: format!("pulseboard-{}-{}", params.kafka.group, params.me.id),
            txn_timeout: params.kafka.transaction_timeout,
            topic: topic.clone(),
            partitions: *partitions,
            width_ms: params.engine.windows.width_ms,
            instance: (0, key.encode(), Some(value)),
        }
    });
    let committer_stop = CancellationToken::new();
    let parts = (
        params.store.clone(),
        params.progress.clone(),
        params.hub.clone(),
    );
    let (mut committer_task, commit_handle) = match sink {
        Some(cfg) => {
            let (c, h) = Committer::new(parts, Txn::new(cfg, Arc::downgrade(&consumer)));
            (tokio::spawn(c.run(committer_stop.clone())), h)
        }
        None => {
            let sink = GroupCommit {
                consumer: Arc::downgrade(&consumer),
            };
            let (c, h) = Committer::new(parts, sink);
            (tokio::spawn(c.run(committer_stop.clone())), h)
        }
    };
    // Set once per run; a second run in the same process keeps the first handle's slot.
    let _ = params.committer.set(commit_handle.clone());

    let topic_refs: Vec<&str> = params.kafka.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|source| IngestError::Subscribe {
            topics: params.kafka.topics.join(","),
            source,
        })?;
    tracing::info!(brokers = %params.brokers, group = %params.kafka.group, topics = ?params.kafka.topics, state_topic = ?state.as_ref().map(|s| &s.0), "consuming");

    let poller = spawn_main_queue_poller(consumer.clone(), shutdown.clone());
    let probe = tokio::spawn(probe::cluster_probe(
        Arc::downgrade(&consumer),
        params.kafka.topics.clone(),
        params.progress.clone(),
        shutdown.clone(),
    ));

    let shared = Arc::new(TaskShared {
        store: params.store.clone(),
        progress: params.progress.clone(),
        hub: params.hub.clone(),
        consumer: Arc::downgrade(&consumer),
        producer,
        offset_reset: params.kafka.offset_reset,
        dead_letter_topics,
        checkpoint_interval: params.checkpoint_interval,
        committer: commit_handle,
        engine: params.engine,
        decoder,
        restore: reader.as_ref().map(|(_, applied)| RestoreFrom {
            timeout: params.kafka.restore_timeout,
            applied: applied.clone(),
        }),
        me: (params.me.id.clone(), params.me.url.clone()),
    });
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<IngestError>();
    let mut tasks = PartitionTasks::new(shared.clone(), fatal_tx);

    let mut result = loop {
        tokio::select! {
            // Shutdown first: once asked to stop we take no new assignment.
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            Some(err) = fatal_rx.recv() => break Err(err),
            ended = &mut committer_task => break match ended {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(IngestError::CommitterStopped),
                Err(e) => Err(IngestError::PartitionPanicked {
                    topic: "committer".into(),
                    partition: -1,
                    message: e.to_string(),
                }),
            },
            Some(ctl) = control_rx.recv() => match ctl {
                Control::Assigned(queues) => tasks.assigned(queues),
                Control::Revoke { partitions, lost, done } => {
                    tasks.revoke(&partitions, lost).await;
                    let _ = done.send(());
                }
            },
        }
    };
    tasks.stop_all().await;
    // Unblock a rebalance callback that may be waiting on us while the consumer closes.
    control_rx.close();
    while let Ok(ctl) = control_rx.try_recv() {
        if let Control::Revoke { done, .. } = ctl {
            let _ = done.send(());
        }
    }
    // Every partition task has handed its last checkpoint over: let the committer finish.
    committer_stop.cancel();
    if !committer_task.is_finished() || result.is_ok() {
        match tokio::time::timeout(REVOKE_TIMEOUT, &mut committer_task).await {
            Ok(Ok(Err(e))) if result.is_ok() => result = Err(e),
            Ok(_) => {}
            Err(_) => {
                tracing::error!("the committer did not finish in time");
                committer_task.abort();
            }
        }
    }
    shutdown.cancel();
    reader_stop.cancel();
    drop(shared);
    if let Err(e) = probe.await {
        tracing::error!(error = %e, "cluster probe task panicked");
    }
    let _ = tokio::task::spawn_blocking(move || {
        let _ = poller.join();
        if let Some((thread, _)) = reader {
            let _ = thread.join();
        }
        // Last reference: closing the consumer leaves the group cleanly.
        drop(consumer);
    })
    .await;
    result
}

/// The partitions of the input topics (the default size of a new state topic: 1 to 64).
async fn input_partitions(brokers: &str, topics: &[String]) -> i32 {
    let mut n = 0;
    for t in topics {
        if let Ok(p) = tokio::time::timeout(
            Duration::from_secs(10),
            client::topic_partition_count(brokers, t),
        )
        .await
        {
            n += p.unwrap_or(0);
        }
    }
    if n == 0 {
        4
    } else {
        n.clamp(1, 64)
    }
}

/// Poll the main queue (rebalances, statistics, errors) on a thread of its own.
fn spawn_main_queue_poller(
    consumer: Arc<Consumer_>,
    shutdown: CancellationToken,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("kafka-main-queue".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the Kafka poll thread");
                    return;
                }
            };
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        msg = consumer.recv() => match msg {
                            // Partition queues are split before assignment, so no message
                            // should ever arrive here.
                            Ok(m) => tracing::error!(topic = m.topic(), partition = m.partition(), offset = m.offset(), "message arrived on the main queue instead of its partition queue"),
                            Err(e) => tracing::warn!(error = %e, "kafka consumer error"),
                        }
                    }
                }
            });
        })
        .expect("spawning a thread only fails when the OS is out of resources")
}
