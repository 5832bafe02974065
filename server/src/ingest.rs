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

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::FutureExt;
use pulseboard_model::event::Decoder;
use pulseboard_model::proto::{BrokerInfo, ClusterHealth};
use pulseboard_model::window::WindowConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::{Outcome, PartitionEngine, Record};
use crate::hub::Hub;
use crate::live::{Live, Progress};
use crate::store::{Store, StoreError};

type Consumer_ = StreamConsumer<IngestContext>;
type Queue = StreamPartitionQueue<IngestContext>;

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
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// Dead-letter topic per input topic.
    pub dead_letter_topics: HashMap<String, String>,
    pub windows: WindowConfig,
    pub checkpoint_interval: Duration,
    pub kafka_options: Vec<(String, String)>,
    pub store: Store,
    pub live: Arc<Live>,
    pub hub: Arc<Hub>,
    pub decoder: Arc<Decoder>,
    pub offset_reset: OffsetReset,
    /// Running on the embedded (in-process mock) broker: its topics exist already, and its
    /// fetches need a short wait (see `run`).
    pub embedded: bool,
}

/// Messages from the Kafka client threads to the supervisor.
enum Control {
    Assigned(Vec<(String, i32, Queue, StartPoint)>),
    Revoke {
        partitions: Vec<(String, i32)>,
        /// The group took them away without a revoke (this member was expelled): a
        /// commit would be refused.
        lost: bool,
        done: std::sync::mpsc::Sender<()>,
    },
}

/// Client context: rebalance handling and client-level telemetry.
pub struct IngestContext {
    store: Store,
    live: Arc<Live>,
    control: mpsc::UnboundedSender<Control>,
    consumer: OnceLock<Weak<Consumer_>>,
}

impl ClientContext for IngestContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = false;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            _ => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn stats(&self, stats: Statistics) {
        // The high watermarks of the partitions we fetch, as the fetch responses carried
        // them: lag costs no extra request. (Broker reachability comes from the cluster
        // probe alone, not from connection states here.)
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 {
                    self.live.set_high_watermark(topic, *p, part.hi_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(base, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(base, tpl),
            other => {
                tracing::error!(error = ?other, "rebalance failed; releasing these partitions");
                if let Err(e) = base.incremental_unassign(tpl) {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "advisory offset commit failed (sled stays the source of truth)");
        }
    }
}

impl IngestContext {
    fn on_assign(&self, base: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        // What the group committed: where another instance stopped, if one owned these.
        let committed = match base.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read committed offsets; using the store's alone");
                None
            }
        };
        let mut starts = HashMap::new();
        for (topic, partition) in &parts {
            let stored = match self.store.partition(topic, *partition) {
                Ok(cp) => cp.map(|cp| cp.next_offset),
                Err(e) => {
                    // The partition task will hit the same error on restore and stop ingest.
                    tracing::error!(topic, partition, error = %e, "cannot read stored offset");
                    None
                }
            };
            let group = committed
                .as_ref()
                .and_then(|c| committed_position(c, topic, *partition));
            let start = StartPoint::choose(stored, group);
            if let Err(e) = tpl.set_partition_offset(topic, *partition, start.offset()) {
                tracing::error!(topic, partition, error = %e, "cannot set start offset");
            }
            tracing::info!(topic, partition, ?start, "partition assigned");
            starts.insert((topic.clone(), *partition), start);
        }
        // Split the partition queues BEFORE assigning: librdkafka then never forwards a
        // fetched message of these partitions to the main queue (the split marks the queue
        // as application-forwarded, which the fetch start respects).
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut queues = Vec::new();
        for (topic, partition) in parts {
            let start = starts
                .remove(&(topic.clone(), partition))
                .unwrap_or(StartPoint::Beginning);
            match consumer.split_partition_queue(&topic, partition) {
                Some(q) => queues.push((topic, partition, q, start)),
                None => tracing::error!(topic, partition, "cannot split partition queue"),
            }
        }
        if let Err(e) = base.incremental_assign(tpl) {
            tracing::error!(error = %e, "assign failed");
            return;
        }
        // The supervisor only stops listening at shutdown, when nothing is consumed any more.
        let _ = self.control.send(Control::Assigned(queues));
    }

    fn on_revoke(&self, base: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let lost = base.assignment_lost();
        tracing::info!(
            count = partitions.len(),
            lost,
            "partitions revoked; flushing their state"
        );
        let (done, wait) = std::sync::mpsc::channel();
        if self
            .control
            .send(Control::Revoke {
                partitions,
                lost,
                done,
            })
            .is_ok()
            && wait.recv_timeout(REVOKE_TIMEOUT).is_err()
        {
            tracing::warn!(
                timeout = ?REVOKE_TIMEOUT,
                "revoked partitions did not flush in time; releasing them anyway"
            );
        }
        if let Err(e) = base.incremental_unassign(tpl) {
            tracing::error!(error = %e, "unassign failed");
        }
    }
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

/// How long a checkpoint waits for the delivery of the dead letters it moves past.
const DEAD_LETTER_WAIT: Duration = Duration::from_secs(5);

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    /// Never seen by this store or the group: the log start.
    Beginning,
    /// The next offset stored in sled (the source of truth for partitions we owned last).
    Stored(i64),
    /// Another instance of the group owned the partition after us (or we never did): its
    /// committed offset, and the max event time it had folded (from the commit metadata).
    HandedOver {
        offset: i64,
        max_event_ts: Option<i64>,
    },
}

impl StartPoint {
    /// Our store's offset unless the group committed further: then another instance read
    /// (and stored, in its own store) the messages in between, and reading them again here
    /// would count them twice across the two stores.
    pub fn choose(stored: Option<i64>, committed: Option<(i64, Option<i64>)>) -> Self {
        match committed.filter(|(c, _)| stored.is_none_or(|s| *c > s)) {
            Some((offset, max_event_ts)) => StartPoint::HandedOver {
                offset,
                max_event_ts,
            },
            None => stored.map_or(StartPoint::Beginning, StartPoint::Stored),
        }
    }

    fn offset(self) -> Offset {
        match self {
            StartPoint::Beginning => Offset::Beginning,
            StartPoint::Stored(o) | StartPoint::HandedOver { offset: o, .. } => Offset::Offset(o),
        }
    }
}

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
fn commit_metadata(max_event_ts: Option<i64>) -> String {
    max_event_ts
        .map(|m| format!("max_event_ts={m}"))
        .unwrap_or_default()
}

fn parse_commit_metadata(s: &str) -> Option<i64> {
    s.strip_prefix("max_event_ts=")?.parse().ok()
}

/// The committed offset (and metadata) of a partition, if the group has one.
fn committed_position(
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
pub fn base_client_config(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("client.id", "pulseboard")
        .set("log_level", "4");
    cfg
}

/// Create the dead-letter topics if the cluster does not have them, with the cluster's
/// default replication factor (best effort: a cluster that auto-creates topics or forbids
/// creating them is fine).
async fn ensure_topics(brokers: &str, topics: &[String]) {
    let admin: AdminClient<DefaultClientContext> = match base_client_config(brokers).create() {
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

/// Run ingest until `shutdown`; every partition task checkpoints before this returns.
pub async fn run(params: IngestParams, shutdown: CancellationToken) -> Result<(), IngestError> {
    let dlq_topics: Vec<String> = {
        let mut v: Vec<String> = params.dead_letter_topics.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    if !params.embedded {
        let ensure = ensure_topics(&params.brokers, &dlq_topics);
        if tokio::time::timeout(Duration::from_secs(15), ensure)
            .await
            .is_err()
        {
            tracing::warn!(topics = ?dlq_topics, "creating dead-letter topics timed out; continuing");
        }
    }

    let producer: FutureProducer = {
        let mut cfg = base_client_config(&params.brokers);
        cfg.set("linger.ms", "5")
            .set("message.timeout.ms", "300000");
        cfg.create().map_err(IngestError::Client)?
    };

    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let context = IngestContext {
        store: params.store.clone(),
        live: params.live.clone(),
        control: control_tx,
        consumer: OnceLock::new(),
    };
    let mut cfg = base_client_config(&params.brokers);
    cfg.set("group.id", &params.group)
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
        // `offset_out_of_range`). The configuration refuses another strategy.
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
    if params.embedded {
        // The in-process mock broker holds a fetch that found no data for the whole
        // fetch.wait.max.ms, even when data arrives meanwhile (Apache Kafka answers as soon
        // as data is there): 10 ms keeps live latency low there. Real brokers keep
        // librdkafka's default (500 ms), which costs nothing in latency on them.
        cfg.set("fetch.wait.max.ms", "10");
    }
    for (k, v) in &params.kafka_options {
        cfg.set(k, v);
    }
    let consumer: Arc<Consumer_> = Arc::new(
        cfg.create_with_context(context)
            .map_err(IngestError::Client)?,
    );
    // `set` only fails when already set, which cannot happen on a fresh context.
    let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
    let topic_refs: Vec<&str> = params.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_refs)
        .map_err(|source| IngestError::Subscribe {
            topics: params.topics.join(","),
            source,
        })?;
    tracing::info!(brokers = %params.brokers, group = %params.group, topics = ?params.topics, "consuming");

    let poller = spawn_main_queue_poller(consumer.clone(), shutdown.clone());
    let probe = tokio::spawn(cluster_probe(
        Arc::downgrade(&consumer),
        params.topics.clone(),
        params.live.clone(),
        shutdown.clone(),
    ));

    let shared = Arc::new(TaskShared {
        store: params.store.clone(),
        live: params.live.clone(),
        hub: params.hub.clone(),
        consumer: Arc::downgrade(&consumer),
        producer,
        offset_reset: params.offset_reset,
        dead_letter_topics: params.dead_letter_topics.clone(),
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
                            &params.store, &topic, partition, params.windows, params.decoder.clone(),
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
                        let task = tokio::spawn(partition_task(
                            engine, queue, stop_rx, shared.clone(), fatal_tx.clone(),
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
                tracing::error!(timeout = ?STOP_TIMEOUT, "partition task did not stop in time; aborting it (its last checkpoint is lost, the store keeps the one before)");
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

/// How often the cluster probe asks for metadata, and how long it waits for an answer.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The one source of broker reachability: every [`PROBE_INTERVAL`], a metadata request for
/// the input topics with a [`PROBE_TIMEOUT`]. Answered → reachable, with what the answer
/// says of the brokers and partitions; not answered → unreachable. So a cluster that stops
/// answering is reported within `PROBE_INTERVAL + PROBE_TIMEOUT` (3 s).
async fn cluster_probe(
    consumer: Weak<Consumer_>,
    topics: Vec<String>,
    live: Arc<Live>,
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
        live.set_cluster(health);
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

fn probe_once(consumer: &Consumer_, topics: &[String]) -> Result<ClusterView, KafkaError> {
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

struct TaskShared {
    store: Store,
    live: Arc<Live>,
    hub: Arc<Hub>,
    consumer: Weak<Consumer_>,
    producer: FutureProducer,
    dead_letter_topics: HashMap<String, String>,
    checkpoint_interval: Duration,
    offset_reset: OffsetReset,
}

/// One partition: read, fold, dead-letter, checkpoint; flush on stop.
async fn partition_task(
    mut engine: PartitionEngine,
    queue: Queue,
    mut stop: mpsc::Receiver<Commit>,
    shared: Arc<TaskShared>,
    fatal: mpsc::UnboundedSender<IngestError>,
) {
    let topic = engine.topic().to_owned();
    let partition = engine.partition();
    let dlq = shared
        .dead_letter_topics
        .get(&topic)
        .cloned()
        .unwrap_or_else(|| format!("{topic}-dlq"));
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    let mut tick = tokio::time::interval(shared.checkpoint_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Changed open windows go to the hub at once when the last hand-over is older than
    // `live_interval`, else when that much time has passed (coalescing under load).
    let live_gap = shared.hub.config().live_interval;
    let mut last_live = tokio::time::Instant::now() - live_gap;
    let live_due = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(live_due);
    let mut live_pending = false;
    let mut saw_messages = false;
    let mut reads = ReadTimes::default();
    let result: Result<(), StoreError> = loop {
        tokio::select! {
            // Stop first so a revoke is served promptly; then the checkpoint and live ticks,
            // so a busy partition still checkpoints and shows progress on time; messages last.
            biased;
            commit = stop.recv() => {
                let commit = commit.unwrap_or(Commit::Sync);
                break checkpoint(&mut engine, &shared, &mut pending, saw_messages, reads, commit).await
            }
            _ = tick.tick() => {
                if let Err(e) = checkpoint(&mut engine, &shared, &mut pending, saw_messages, reads, Commit::Async).await {
                    break Err(e);
                }
                saw_messages = false;
            }
            _ = &mut live_due, if live_pending => {
                live_pending = false;
                last_live = tokio::time::Instant::now();
                if let Some(windows) = engine.take_live_windows() {
                    shared.hub.update(&topic, partition, windows);
                }
            }
            msg = queue.recv() => {
                saw_messages = true;
                // Drain what is already fetched before going back to the select: one round
                // of timer and channel polling per batch, not per message.
                let mut next = Some(msg);
                let mut batch = 0;
                while let Some(msg) = next.take() {
                    let handled = match msg {
                        Ok(m) => {
                            on_message(&mut engine, &m, &dlq, &shared, &mut pending).await;
                            Ok(())
                        }
                        Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                            offset_out_of_range(&mut engine, &shared).await
                        }
                        Err(e) => {
                            tracing::warn!(topic, partition, error = %e, "consume error");
                            Ok(())
                        }
                    };
                    if let Err(e) = handled {
                        let _ = fatal.send(e);
                        return;
                    }
                    batch += 1;
                    if batch < MAX_BATCH {
                        next = queue.recv().now_or_never();
                    }
                }
                reads.batch_done();
                if engine.has_live_changes() && !live_pending {
                    live_pending = true;
                    live_due.as_mut().reset(last_live + live_gap);
                }
                // The partition queue is not a tokio resource and is always ready while a
                // backlog lasts: without this the loop would never yield, and the worker
                // would never run its timers (checkpoints) or serve HTTP.
                tokio::task::consume_budget().await;
            }
        }
    };
    if let Err(source) = result {
        tracing::error!(topic, partition, error = %source, "checkpoint failed; stopping ingest");
        let _ = fatal.send(IngestError::Store {
            topic,
            partition,
            source,
        });
    }
}

/// Messages handled in one go before the partition task looks at its timers again.
const MAX_BATCH: usize = 1024;

/// Fold one message; publish it as a dead letter when it cannot be counted.
async fn on_message(
    engine: &mut PartitionEngine,
    m: &BorrowedMessage<'_>,
    dlq: &str,
    shared: &TaskShared,
    pending: &mut Vec<DeliveryFuture>,
) {
    let rec = Record {
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        payload: m.payload(),
    };
    let Outcome::Dead { reason, detail } = engine.on_record(rec) else {
        return;
    };
    let (topic, partition) = (engine.topic(), engine.partition());
    tracing::debug!(
        topic,
        partition,
        offset = m.offset(),
        reason = reason.as_str(),
        detail,
        "dead letter"
    );
    let offset = m.offset().to_string();
    let part = partition.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "reason",
            value: Some(reason.as_str()),
        })
        .insert(Header {
            key: "error",
            value: Some(detail.as_str()),
        })
        .insert(Header {
            key: "source-topic",
            value: Some(topic),
        })
        .insert(Header {
            key: "source-partition",
            value: Some(part.as_str()),
        })
        .insert(Header {
            key: "source-offset",
            value: Some(offset.as_str()),
        });
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq).headers(headers);
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    if let Some(p) = m.payload() {
        record = record.payload(p);
    }
    pending.push(send_dead_letter(&shared.producer, record).await);
}

/// The stored offset is outside the log: apply `--offset-reset`.
async fn offset_out_of_range(
    engine: &mut PartitionEngine,
    shared: &TaskShared,
) -> Result<(), IngestError> {
    let topic = engine.topic().to_owned();
    let partition = engine.partition();
    let stored = engine.stored_offset().unwrap_or(0);
    let target = match shared.offset_reset {
        OffsetReset::Fail => {
            return Err(IngestError::OffsetOutOfRange {
                topic,
                partition,
                stored,
            });
        }
        OffsetReset::Earliest => Offset::Beginning,
        OffsetReset::Latest => Offset::End,
    };
    tracing::error!(
        topic, partition, stored, policy = ?shared.offset_reset,
        "stored offset is outside the log (topic recreated, or retention deleted unread data); resetting as --offset-reset says"
    );
    shared
        .live
        .note_offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
    engine.reset_offset();
    let Some(consumer) = shared.consumer.upgrade() else {
        return Ok(());
    };
    // librdkafka has stopped fetching this partition (auto.offset.reset=error leaves it
    // in its "none" state, where a seek is refused): restart it alone, at the target.
    let restart = tokio::task::spawn_blocking(move || {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, partition);
        consumer.incremental_unassign(&tpl)?;
        tpl.set_partition_offset(&topic, partition, target)?;
        consumer.incremental_assign(&tpl)
    })
    .await;
    match restart {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(IngestError::Restart {
            topic: engine.topic().to_owned(),
            partition,
            source: e,
        }),
        Err(e) => {
            tracing::error!(error = %e, "restarting the partition failed");
            Ok(())
        }
    }
}

fn progress(engine: &PartitionEngine, saw_messages: bool, reads: ReadTimes) -> Progress<'_> {
    Progress {
        topic: engine.topic(),
        partition: engine.partition(),
        checkpoint: engine.checkpoint_state(),
        watermark: engine.watermark(),
        saw_messages,
        read_since_start: engine.read_since_start(),
        first_read_ms: reads.first,
        last_read_ms: reads.last,
    }
}

/// When this process read the first and the last message of a partition (wall clock, one
/// reading per batch).
#[derive(Debug, Clone, Copy, Default)]
struct ReadTimes {
    first: Option<i64>,
    last: Option<i64>,
}

impl ReadTimes {
    fn batch_done(&mut self) {
        let now = crate::now_ms();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }
}

/// How the advisory commit after a checkpoint is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Fire and forget (regular checkpoints).
    Async,
    /// Wait for the broker, at most [`COMMIT_TIMEOUT`] (before releasing a partition, so the
    /// next owner sees it).
    Sync,
    /// None: the partition was lost, the group would refuse it.
    Skip,
}

/// Enqueue a dead letter, waiting while the producer queue is full.
async fn send_dead_letter(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> DeliveryFuture {
    loop {
        match producer.send_result(record) {
            Ok(f) => return f,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((e, r)) => {
                tracing::warn!(error = %e, "dead letter enqueue failed; retrying");
                record = r;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn checkpoint(
    engine: &mut PartitionEngine,
    shared: &TaskShared,
    pending: &mut Vec<DeliveryFuture>,
    saw_messages: bool,
    reads: ReadTimes,
    commit: Commit,
) -> Result<(), StoreError> {
    if engine.needs_checkpoint() {
        for f in pending.drain(..) {
            match tokio::time::timeout(DEAD_LETTER_WAIT, f).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err((e, _)))) => tracing::error!(error = %e, "dead letter not delivered"),
                Ok(Err(_)) => tracing::error!("dead letter delivery cancelled"),
                Err(_) => {
                    tracing::error!(timeout = ?DEAD_LETTER_WAIT, "dead letter not delivered in time")
                }
            }
        }
        let report = engine.checkpoint(&shared.store).await?;
        let written: Vec<i64> = report.windows.iter().map(|(s, _)| *s).collect();
        shared
            .live
            .publish_partition(progress(engine, saw_messages, reads), &written);
        shared
            .hub
            .update(engine.topic(), engine.partition(), report.windows);
    } else {
        shared
            .live
            .publish_partition(progress(engine, saw_messages, reads), &[]);
        // Nothing new to store; an async commit would repeat the last one. A partition
        // being released still commits: the last async commit may have been refused by
        // the rebalance now under way, and the next owner starts from what is committed.
        if commit == Commit::Async {
            return Ok(());
        }
    }
    if commit == Commit::Skip {
        return Ok(());
    }
    if let Some(next_offset) = engine.stored_offset() {
        commit_offset(engine, shared, next_offset, commit).await;
    }
    Ok(())
}

/// Commit `next_offset` (with the max event time as metadata) to the group.
async fn commit_offset(
    engine: &PartitionEngine,
    shared: &TaskShared,
    next_offset: i64,
    commit: Commit,
) {
    let Some(consumer) = shared.consumer.upgrade() else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition_offset(
            engine.topic(),
            engine.partition(),
            Offset::Offset(next_offset),
        )
        .is_err()
    {
        return;
    }
    if let Some(mut elem) = tpl.find_partition(engine.topic(), engine.partition()) {
        elem.set_metadata(commit_metadata(engine.checkpoint_state().max_event_ts));
    }
    let sent = match commit {
        Commit::Async => consumer.commit(&tpl, CommitMode::Async),
        Commit::Sync => {
            let blocking =
                tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
            match tokio::time::timeout(COMMIT_TIMEOUT, blocking).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "commit task failed");
                    Ok(())
                }
                Err(_) => {
                    tracing::warn!(
                        topic = engine.topic(),
                        partition = engine.partition(),
                        timeout = ?COMMIT_TIMEOUT,
                        "offset commit not answered in time (is the group coordinator failing over?); the store keeps the offset"
                    );
                    Ok(())
                }
            }
        }
        Commit::Skip => Ok(()),
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, ?commit, topic = engine.topic(), partition = engine.partition(), "offset commit failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_point_is_the_store_unless_the_group_committed_further() {
        assert_eq!(StartPoint::choose(None, None), StartPoint::Beginning);
        assert_eq!(StartPoint::choose(Some(7), None), StartPoint::Stored(7));
        assert_eq!(
            StartPoint::choose(Some(7), Some((7, Some(1)))),
            StartPoint::Stored(7)
        );
        assert_eq!(
            StartPoint::choose(Some(7), Some((3, None))),
            StartPoint::Stored(7)
        );
        assert_eq!(
            StartPoint::choose(Some(7), Some((9, Some(5)))),
            StartPoint::HandedOver {
                offset: 9,
                max_event_ts: Some(5)
            }
        );
        assert_eq!(
            StartPoint::choose(None, Some((4, None))),
            StartPoint::HandedOver {
                offset: 4,
                max_event_ts: None
            }
        );
    }

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
