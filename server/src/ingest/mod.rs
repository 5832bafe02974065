//! Kafka ingest: the consumer group, one task per assigned partition, dead letters, commits.
//!
//! Contract:
//! - Offsets are data. On assignment every partition is positioned at the next offset stored
//!   in sled (or at the log start when the store has never seen it), inside the rebalance
//!   callback, before any fetch. The Kafka commit is advisory (for lag tools) and happens
//!   only after the sled write it reports is durable.
//! - Each assigned partition gets its own queue (`split_partition_queue`) and its own task,
//!   which owns that partition's [`PartitionEngine`].
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
//! - `rebalance`: the client context; assignment and revocation in the rebalance callback.
//! - `start`: where a newly assigned partition starts ([`StartPoint`]).
//! - `partition`: one partition's task: read, fold, checkpoint, commit, offset resets.
//! - `dead_letter`: producing what cannot be counted to the dead-letter topic.
//! - `probe`: the cluster probe, the one source of broker reachability.

mod dead_letter;
mod partition;
mod probe;
mod rebalance;
mod start;

pub use probe::{ClusterView, PROBE_INTERVAL, PROBE_TIMEOUT};
pub use start::StartPoint;

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
use crate::engine::{EngineConfig, PartitionEngine};
use crate::hub::Hub;
use crate::kafka;
use crate::live::Live;
use crate::store::{Store, StoreError};
use partition::{partition_task, Commit, TaskShared};
use rebalance::{Control, IngestContext};

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
}

/// Everything ingest needs.
pub struct IngestParams {
    /// The Kafka component's configuration, whole.
    pub kafka: KafkaArgs,
    /// The bootstrap servers to use: `--brokers`, or the embedded broker's address.
    pub brokers: String,
    /// Running on the embedded (in-process mock) broker: its topics exist already, and its
    /// fetches need a short wait (see [`kafka::consumer_config`]).
    pub embedded: bool,
    pub engine: EngineConfig,
    pub checkpoint_interval: Duration,
    pub store: Store,
    pub live: Arc<Live>,
    pub hub: Arc<Hub>,
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
    let decoder = Arc::new(Decoder::new(params.kafka.mapping()));
    let dlq_topics: Vec<String> = {
        let mut v: Vec<String> = dead_letter_topics.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    if !params.embedded {
        let ensure = kafka::ensure_topics(&params.brokers, &dlq_topics);
        if tokio::time::timeout(Duration::from_secs(15), ensure)
            .await
            .is_err()
        {
            tracing::warn!(topics = ?dlq_topics, "creating dead-letter topics timed out; continuing");
        }
    }

    let producer: FutureProducer = {
        kafka::dead_letter_producer_config(&params.brokers)
            .create()
            .map_err(IngestError::Client)?
    };

    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let context = IngestContext {
        store: params.store.clone(),
        live: params.live.clone(),
        control: control_tx,
        consumer: OnceLock::new(),
    };
    let cfg = kafka::consumer_config(
        &params.brokers,
        &params.kafka.group,
        params.embedded,
        &params.kafka.kafka_options,
    );
    let consumer: Arc<Consumer_> = Arc::new(
        cfg.create_with_context(context)
            .map_err(IngestError::Client)?,
    );
    // `set` only fails when already set, which cannot happen on a fresh context.
    let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
    let topic_refs: Vec<&str> = params.kafka.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|source| IngestError::Subscribe {
            topics: params.kafka.topics.join(","),
            source,
        })?;
    tracing::info!(brokers = %params.brokers, group = %params.kafka.group, topics = ?params.kafka.topics, "consuming");

    let poller = spawn_main_queue_poller(consumer.clone(), shutdown.clone());
    let probe = tokio::spawn(probe::cluster_probe(
        Arc::downgrade(&consumer),
        params.kafka.topics.clone(),
        params.live.clone(),
        shutdown.clone(),
    ));

    let shared = Arc::new(TaskShared {
        store: params.store.clone(),
        live: params.live.clone(),
        hub: params.hub.clone(),
        consumer: Arc::downgrade(&consumer),
        producer,
        offset_reset: params.kafka.offset_reset,
        dead_letter_topics,
        checkpoint_interval: params.checkpoint_interval,
    });
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<IngestError>();
    let mut tasks: HashMap<(String, i32), PartitionHandle> = HashMap::new();

    let result = loop {
        tokio::select! {
            // Shutdown first: once asked to stop we take no new assignment.
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            Some(err) = fatal_rx.recv() => break Err(err),
            Some(ctl) = control_rx.recv() => match ctl {
                Control::Assigned(queues) => {
                    for (topic, partition, queue, start) in queues {
                        let engine = match PartitionEngine::restore(
                            &params.store, &topic, partition, params.engine.clone(), decoder.clone(),
                        ) {
                            Ok(e) => e,
                            Err(source) => {
                                let _ = fatal_tx.send(IngestError::Store { topic, partition, source });
                                continue;
                            }
                        };
                        let mut engine = engine;
                        if let StartPoint::HandedOver { offset, max_event_ts } = start {
                            tracing::info!(topic, partition, offset, "taking over where the group's last owner stopped");
                            engine.adopt_handover(offset, max_event_ts);
                        }
                        params.live.set_assigned(&topic, partition, true);
                        let (stop_tx, stop_rx) = mpsc::channel(1);
                        let task = tokio::spawn(supervised(
                            (topic.clone(), partition),
                            partition_task(engine, queue, stop_rx, shared.clone(), fatal_tx.clone()),
                            params.live.clone(),
                            fatal_tx.clone(),
                        ));
                        tasks.insert((topic, partition), PartitionHandle { stop: stop_tx, task });
                    }
                }
                Control::Revoke { partitions, lost, done } => {
                    let commit = if lost { Commit::Skip } else { Commit::Sync };
                    for key in partitions {
                        if let Some(h) = tasks.remove(&key) {
                            h.stop_and_wait(commit).await;
                        }
                        params.live.set_assigned(&key.0, key.1, false);
                    }
                    let _ = done.send(());
                }
            },
        }
    };
    for (_, h) in tasks.drain() {
        h.stop_and_wait(Commit::Sync).await;
    }
    // Unblock a rebalance callback that may be waiting on us while the consumer closes.
    control_rx.close();
    while let Ok(ctl) = control_rx.try_recv() {
        if let Control::Revoke { done, .. } = ctl {
            let _ = done.send(());
        }
    }
    shutdown.cancel();
    drop(shared);
    if let Err(e) = probe.await {
        tracing::error!(error = %e, "cluster probe task panicked");
    }
    let _ = tokio::task::spawn_blocking(move || {
        let _ = poller.join();
        // Last reference: closing the consumer leaves the group cleanly.
        drop(consumer);
    })
    .await;
    result
}

/// Run a partition task; a panic in it is caught here, at once: the partition is marked
/// failed in status and `/readyz`, counted, and reported to the supervisor, which stops
/// ingest with an error (the process exits non-zero). The partition's state since its last
/// checkpoint is dropped and read again from Kafka on the next start, so nothing is lost or
/// counted twice.
async fn supervised(
    (topic, partition): (String, i32),
    task: impl std::future::Future<Output = ()> + Send,
    live: Arc<Live>,
    fatal: mpsc::UnboundedSender<IngestError>,
) {
    use futures::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
        let message = crate::telemetry::panic_message(panic.as_ref());
        crate::telemetry::partition_task_panicked(&topic, partition, &message);
        live.mark_failed(&topic, partition, &message);
        let _ = fatal.send(IngestError::PartitionPanicked {
            topic,
            partition,
            message,
        });
    }
}

struct PartitionHandle {
    stop: mpsc::Sender<Commit>,
    task: tokio::task::JoinHandle<()>,
}

impl PartitionHandle {
    /// Ask the task to checkpoint (and commit as `commit` says) and wait for it.
    /// A task that does not stop within [`STOP_TIMEOUT`] is aborted, and reaped before
    /// this returns: its partition queue is gone before the partition can be assigned
    /// again (a late drop of an old queue would silence the new one).
    async fn stop_and_wait(mut self, commit: Commit) {
        let _ = self.stop.send(commit).await;
        let joined = match tokio::time::timeout(STOP_TIMEOUT, &mut self.task).await {
            Ok(r) => r,
            Err(_) => {
                crate::telemetry::partition_task_aborted(STOP_TIMEOUT);
                self.task.abort();
                (&mut self.task).await
            }
        };
        match joined {
            Err(e) if e.is_panic() => tracing::error!(error = %e, "partition task panicked"),
            _ => {}
        }
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
