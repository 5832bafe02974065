//! The committer: the one task through which every checkpoint of this instance becomes
//! durable.
//!
//! Contract:
//! - Partition tasks hand it prepared checkpoints ([`PartitionWrite`]s) and go on reading;
//!   it takes whatever has arrived by the time it is free and makes it durable as one
//!   batch, then answers each request with a [`CommitOutcome`]. A partition task has at
//!   most one checkpoint in flight, so checkpoints of a partition are committed in order.
//! - Without a state topic: one sled transaction for the batch, flushed; then the offsets
//!   are committed to the group (advisory, for lag tools and the next owner; synchronous
//!   and bounded when a partition is being released, fire-and-forget otherwise).
//! - With a state topic: ONE Kafka transaction for the batch, holding each partition's
//!   window, dead-letter and progress records ([`crate::store::record::records_of`]) and the
//!   consumer offset commit of those partitions with the consumer's group metadata
//!   (`send_offsets_to_transaction`, KIP-447: a member that left the group's generation is
//!   refused by the broker); then, committed, the same writes to sled. A transaction that
//!   fails is aborted and every checkpoint in it is answered [`CommitOutcome::Aborted`]:
//!   its partition task throws away what it folded since its last durable checkpoint and
//!   restores from the store.
//! - Extra records (the instance record, retention's tombstones) ride in the next
//!   transaction; when the channel closes (ingest stopping) a last transaction tombstones
//!   the instance record.
//! - A fatal producer error makes the producer anew (its `init_transactions` fences the old
//!   one and aborts what it left open); more than [`FATAL_LIMIT`] within [`FATAL_WINDOW`]
//!   stop ingest with an error. A store write that fails stops ingest with an error.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Consumer_, IngestError, COMMIT_TIMEOUT};
use crate::hub::Hub;
use crate::ingest::client;
use crate::progress::Progress;
use crate::store::record::{self, OutRecord};
use crate::store::{PartitionWrite, Store};
use crate::telemetry;

/// Requests taken into one batch at most.
const MAX_BATCH: usize = 256;

/// Window rows after which a batch takes no further checkpoint (each checkpoint holds at
/// most [`super::partition::MAX_CHECKPOINT_WINDOWS`]): a transaction stays small enough to
/// commit within its budget however many partitions have a backlog.
const MAX_BATCH_WINDOWS: usize = 4_000;

/// Fatal producer errors tolerated within [`FATAL_WINDOW`] (each makes a new producer).
pub(super) const FATAL_LIMIT: usize = 3;
pub(super) const FATAL_WINDOW: Duration = Duration::from_secs(600);

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Durable (in the state topic and the store, or in the store alone).
    Committed,
    /// Not committed, and never will be: why.
    Aborted(String),
}

/// A message to the committer.
pub(super) enum CommitMsg {
    /// A partition's prepared checkpoint.
    Checkpoint {
        write: Box<PartitionWrite>,
        /// The partition is being released: its offset commit must reach the group before
        /// the answer (without a state topic: a synchronous, bounded commit).
        releasing: bool,
        reply: oneshot::Sender<CommitOutcome>,
    },
    /// Records to add to the state topic (ignored without one).
    Records {
        records: Vec<OutRecord>,
        reply: oneshot::Sender<CommitOutcome>,
    },
    /// Answered once everything handed over before it is settled (committed or not).
    Barrier(oneshot::Sender<()>),
}

impl CommitMsg {
    /// The window rows it adds to a transaction.
    fn windows(&self) -> usize {
        match self {
            CommitMsg::Checkpoint { write, .. } => write.rows.len(),
            CommitMsg::Records { records, .. } => records.len(),
            CommitMsg::Barrier(_) => 0,
        }
    }
}

/// The sending side, as partition tasks and retention hold it.
#[derive(Clone)]
pub struct CommitHandle {
    tx: mpsc::Sender<CommitMsg>,
    /// The state topic's partition count (`None`: no state topic).
    state_partitions: Option<i32>,
}

impl CommitHandle {
    /// Hand a prepared checkpoint over; the answer comes on the returned channel.
    pub(super) async fn submit(
        &self,
        write: PartitionWrite,
        releasing: bool,
    ) -> oneshot::Receiver<CommitOutcome> {
        let (reply, rx) = oneshot::channel();
        // A closed channel drops `reply`: the receiver then reports the committer gone.
        let _ = self
            .tx
            .send(CommitMsg::Checkpoint {
                write: Box::new(write),
                releasing,
                reply,
            })
            .await;
        rx
    }

    /// Wait until every checkpoint handed over so far is settled: a partition restored
    /// after this sees in the group's committed offset whatever a previous task of it
    /// committed (and nothing of it can be committed afterwards).
    pub async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(CommitMsg::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Tombstone windows `(topic, partition, start)` in the state topic (in the next
    /// transaction) and wait for it.
    pub async fn tombstone(&self, windows: &[(String, i32, i64)]) -> CommitOutcome {
        let Some(n) = self.state_partitions else {
            return CommitOutcome::Committed;
        };
        let records = windows
            .iter()
            .map(|(t, p, s)| record::window_tombstone(t, *p, *s, n))
            .collect();
        self.records(records).await
    }

    /// Add records to the next transaction of the state topic and wait for it.
    async fn records(&self, records: Vec<OutRecord>) -> CommitOutcome {
        if self.state_partitions.is_none() || records.is_empty() {
            return CommitOutcome::Committed;
        }
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(CommitMsg::Records { records, reply })
            .await
            .is_err()
        {
            return CommitOutcome::Aborted("the committer has stopped".into());
        }
        rx.await
            .unwrap_or(CommitOutcome::Aborted("the committer has stopped".into()))
    }

    /// Whether checkpoints go through a state topic.
    pub fn transactional(&self) -> bool {
        self.state_partitions.is_some()
    }
}

/// The state topic, as the committer writes it.
pub(super) struct StateTopicSink {
    pub(super) brokers: String,
    pub(super) transactional_id: String,
    pub(super) txn_timeout: Duration,
    pub(super) topic: String,
    pub(super) partitions: i32,
    pub(super) width_ms: i64,
    /// This instance's record (written first, tombstoned last).
    pub(super) instance: OutRecord,
}

/// The committer task's state.
pub(super) struct Committer {
    store: Store,
    /// After a checkpoint of a partition this instance no longer reads is written, the
    /// hub's copy of it is reloaded from the store (its task, gone, published nothing).
    live: Arc<Progress>,
    hub: Arc<Hub>,
    consumer: Weak<Consumer_>,
    rx: mpsc::Receiver<CommitMsg>,
    sink: Option<Txn>,
}

/// The transactional side of the committer.
struct Txn {
    cfg: StateTopicSink,
    producer: Option<Arc<FutureProducer>>,
    fatal: VecDeque<Instant>,
    /// Transactions left behind in a call that did not return.
    stuck: VecDeque<Instant>,
    /// The instance record still has to be written.
    announce: bool,
}

impl Committer {
    /// A committer writing to the state topic when `sink` is given, to sled alone otherwise.
    pub(super) fn new(
        (store, live, hub): (Store, Arc<Progress>, Arc<Hub>),
        consumer: Weak<Consumer_>,
        sink: Option<StateTopicSink>,
    ) -> (Self, CommitHandle) {
        // Bounded: a partition task has one checkpoint in flight, plus retention's records.
        let (tx, rx) = mpsc::channel(1024);
        let handle = CommitHandle {
            tx,
            state_partitions: sink.as_ref().map(|s| s.partitions),
        };
        let sink = sink.map(|cfg| Txn {
            cfg,
            producer: None,
            fatal: VecDeque::new(),
            stuck: VecDeque::new(),
            announce: true,
        });
        (
            Committer {
                store,
                live,
                hub,
                consumer,
                rx,
                sink,
            },
            handle,
        )
    }

    /// Serve requests until `done` (what is queued by then is still served) or until every
    /// handle is dropped; then tombstone the instance record.
    pub(super) async fn run(mut self, done: CancellationToken) -> Result<(), IngestError> {
        loop {
            let first = tokio::select! {
                // Requests first: everything handed over before `done` is served.
                biased;
                m = self.rx.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                _ = done.cancelled() => match self.rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            let mut windows = first.windows();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH && windows < MAX_BATCH_WINDOWS {
                match self.rx.try_recv() {
                    Ok(m) => {
                        windows += m.windows();
                        batch.push(m);
                    }
                    Err(_) => break,
                }
            }
            self.round(batch).await?;
        }
        if let Some(txn) = &mut self.sink {
            if txn.producer.is_some() {
                let (sp, key, _) = txn.cfg.instance.clone();
                let goodbye = vec![(sp, key, None)];
                if let Err(why) = txn.transact(&self.consumer, &[], goodbye).await? {
                    tracing::warn!(error = why, "could not tombstone this instance's record");
                }
            }
        }
        Ok(())
    }

    async fn round(&mut self, batch: Vec<CommitMsg>) -> Result<(), IngestError> {
        let mut writes: Vec<PartitionWrite> = Vec::new();
        let mut replies: Vec<oneshot::Sender<CommitOutcome>> = Vec::new();
        let mut records = Vec::new();
        let mut record_replies = Vec::new();
        let mut barriers = Vec::new();
        let mut releasing = false;
        for m in batch {
            match m {
                // Its task is gone (the partition was lost, or the task aborted): what it
                // prepared must not be committed; the partition's next task restores from
                // what was.
                CommitMsg::Checkpoint { reply, .. } if reply.is_closed() => {}
                CommitMsg::Checkpoint {
                    write,
                    releasing: r,
                    reply,
                } => {
                    releasing |= r;
                    let same = |w: &PartitionWrite| {
                        w.topic == write.topic && w.partition == write.partition
                    };
                    // One checkpoint per partition and transaction; a task has one in
                    // flight, so a second can only be a stale one: keep the newest.
                    if let Some(i) = writes.iter().position(same) {
                        writes.remove(i);
                        let _ = replies
                            .remove(i)
                            .send(CommitOutcome::Aborted("superseded".into()));
                    }
                    writes.push(*write);
                    replies.push(reply);
                }
                CommitMsg::Records { records: r, reply } => {
                    records.extend(r);
                    record_replies.push(reply);
                }
                CommitMsg::Barrier(reply) => barriers.push(reply),
            }
        }
        let started = Instant::now();
        let outcome = match &mut self.sink {
            _ if writes.is_empty() && records.is_empty() => CommitOutcome::Committed,
            None => {
                self.write_store(&writes).await?;
                commit_offsets(&self.consumer, &writes, releasing).await;
                CommitOutcome::Committed
            }
            Some(txn) => match txn.transact(&self.consumer, &writes, records).await? {
                Ok(()) => {
                    self.write_store(&writes).await?;
                    telemetry::transaction_committed(writes.len(), started.elapsed());
                    CommitOutcome::Committed
                }
                Err(why) => {
                    telemetry::transaction_aborted(writes.len(), &why);
                    CommitOutcome::Aborted(why)
                }
            },
        };
        for w in &writes {
            if outcome == CommitOutcome::Committed {
                telemetry::checkpoint_written(
                    &w.topic,
                    w.partition,
                    w.checkpoint.next_offset,
                    w.rows.len(),
                );
            }
        }
        for r in replies.into_iter().chain(record_replies) {
            let _ = r.send(outcome.clone());
        }
        for b in barriers {
            let _ = b.send(());
        }
        Ok(())
    }

    async fn write_store(&self, writes: &[PartitionWrite]) -> Result<(), IngestError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.store.write(writes).await.map_err(|source| {
            let w = &writes[0];
            telemetry::checkpoint_failed(&w.topic, w.partition, &source);
            IngestError::Store {
                topic: w.topic.clone(),
                partition: w.partition,
                source,
            }
        })?;
        for w in writes {
            if !self.live.is_local(&w.topic, w.partition) {
                self.hub.reload_partition(&w.topic, w.partition);
            }
        }
        Ok(())
    }
}

/// The offsets of `writes` as a commit carries them (without a state topic: the max event
/// time as metadata, for the next owner).
fn offsets_of(writes: &[PartitionWrite], with_seq: bool) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for w in writes {
        let cp = &w.checkpoint;
        if tpl
            .add_partition_offset(&w.topic, w.partition, Offset::Offset(cp.next_offset))
            .is_err()
        {
            continue;
        }
        if let Some(mut e) = tpl.find_partition(&w.topic, w.partition) {
            let meta = if with_seq {
                record::commit_metadata(cp.seq, cp.max_event_ts)
            } else {
                client::commit_metadata(cp.max_event_ts)
            };
            e.set_metadata(meta);
        }
    }
    tpl
}

/// The advisory commit after a sled checkpoint (no state topic).
async fn commit_offsets(consumer: &Weak<Consumer_>, writes: &[PartitionWrite], sync: bool) {
    let Some(consumer) = consumer.upgrade() else {
        return;
    };
    let tpl = offsets_of(writes, false);
    if tpl.count() == 0 {
        return;
    }
    let failed = |e: &dyn std::fmt::Display, mode: &'static str| {
        for w in writes {
            telemetry::commit_failed(&w.topic, w.partition, mode, e);
        }
    };
    if !sync {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            failed(&e, "async");
        }
        return;
    }
    let blocking = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
    match tokio::time::timeout(COMMIT_TIMEOUT, blocking).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => failed(&e, "sync"),
        Ok(Err(e)) => failed(&e, "sync"),
        Err(_) => failed(
            &format!(
                "not answered within {COMMIT_TIMEOUT:?} (is the group coordinator failing over?)"
            ),
            "sync",
        ),
    }
}

/// How a transaction failed.
enum TxnError {
    /// Aborted; the producer goes on.
    Abortable(String),
    /// The producer is left in a call it cannot leave (a commit or abort that did not
    /// finish in time): a new one takes over, whose `init_transactions` settles what this
    /// one left open.
    Reset(String),
    /// The producer is not usable any more.
    Fatal(String),
    /// A record is larger than the producer or the state topic takes: this checkpoint can
    /// never be committed.
    TooLarge(String),
}

fn classify(e: KafkaError) -> TxnError {
    let text = e.to_string();
    match &e {
        _ if text.contains("MSG_SIZE_TOO_LARGE") || text.contains("Message size too large") => {
            TxnError::TooLarge(text)
        }
        KafkaError::Transaction(r) if r.is_fatal() => TxnError::Fatal(text),
        _ => TxnError::Abortable(text),
    }
}

impl Txn {
    /// One transaction: `writes`' records and offsets, and `extra` records. `Ok(Err(why))`
    /// when it did not commit; `Err` when fatal errors came too often.
    async fn transact(
        &mut self,
        consumer: &Weak<Consumer_>,
        writes: &[PartitionWrite],
        extra: Vec<OutRecord>,
    ) -> Result<Result<(), String>, IngestError> {
        // One budget for the round: making a producer (if needed) and the transaction.
        let deadline = Instant::now() + self.cfg.txn_timeout.min(TXN_BUDGET);
        let producer = match &self.producer {
            Some(p) => p.clone(),
            None => match self.start_producer(deadline).await {
                Ok(p) => p,
                Err(why) => return Ok(Err(why)),
            },
        };
        let Some(consumer) = consumer.upgrade() else {
            return Ok(Err("the consumer has closed".into()));
        };
        let mut records = Vec::new();
        if self.announce {
            records.push(self.cfg.instance.clone());
        }
        for w in writes {
            records.extend(record::records_of(
                w,
                self.cfg.width_ms,
                self.cfg.partitions,
            ));
        }
        records.extend(extra);
        let offsets = offsets_of(writes, true);
        let topic = self.cfg.topic.clone();
        let budget = deadline.saturating_duration_since(Instant::now());
        let abandoned = Arc::new(AtomicBool::new(false));
        let gave_up = abandoned.clone();
        let call = tokio::task::spawn_blocking(move || {
            transact(
                &producer, &consumer, &topic, &records, &offsets, budget, &gave_up,
            )
        });
        // librdkafka may block past the timeout it was given (send_offsets_to_transaction
        // while the group coordinator moves: confluentinc/librdkafka#5456, #5511). The
        // call is left behind and its producer with it; a new one fences it.
        let result =
            match tokio::time::timeout(budget + ABORT_BUDGET + WATCHDOG_SLACK, call).await {
                Ok(joined) => joined
                    .unwrap_or_else(|e| Err(TxnError::Fatal(format!("transaction task: {e}")))),
                Err(_) => {
                    abandoned.store(true, Ordering::SeqCst);
                    self.stuck.push_back(Instant::now());
                    Err(TxnError::Reset(format!(
                        "a transaction call did not return within {:?}; a new producer takes over",
                        budget + ABORT_BUDGET
                    )))
                }
            };
        match result {
            Ok(()) => {
                self.announce = false;
                Ok(Ok(()))
            }
            Err(TxnError::Abortable(why)) => Ok(Err(why)),
            Err(TxnError::TooLarge(why)) => Err(IngestError::CheckpointTooLarge {
                topic: self.cfg.topic.clone(),
                why,
            }),
            Err(TxnError::Reset(why)) => {
                self.producer = None;
                // Each call left behind keeps a thread and a producer: a few are tolerated.
                if recent(&mut self.stuck, Instant::now()) > STUCK_LIMIT {
                    return Err(IngestError::Transactions {
                        transactional_id: self.cfg.transactional_id.clone(),
                        why: format!(
                            "{} transaction calls did not return in {FATAL_WINDOW:?}: {why}",
                            self.stuck.len()
                        ),
                    });
                }
                Ok(Err(why))
            }
            Err(TxnError::Fatal(why)) => {
                // Make a new producer next time: its init_transactions fences this one.
                self.producer = None;
                let now = Instant::now();
                self.fatal.push_back(now);
                telemetry::transactional_producer_fatal(&why);
                if recent(&mut self.fatal, now) > FATAL_LIMIT {
                    return Err(IngestError::Transactions {
                        transactional_id: self.cfg.transactional_id.clone(),
                        why: format!(
                            "{} fatal errors in {FATAL_WINDOW:?}, the last: {why}",
                            self.fatal.len()
                        ),
                    });
                }
                Ok(Err(why))
            }
        }
    }

    /// Make the transactional producer and initialise its transactions (bounded).
    async fn start_producer(&mut self, deadline: Instant) -> Result<Arc<FutureProducer>, String> {
        let cfg = client::transactional_producer_config(
            &self.cfg.brokers,
            &self.cfg.transactional_id,
            self.cfg.txn_timeout,
        );
        let producer: FutureProducer = cfg
            .create()
            .map_err(|e| format!("cannot create the transactional producer: {e}"))?;
        let producer = Arc::new(producer);
        let timeout = deadline.saturating_duration_since(Instant::now());
        let p = producer.clone();
        let init = tokio::time::timeout(
            timeout + WATCHDOG_SLACK,
            tokio::task::spawn_blocking(move || p.init_transactions(timeout)),
        )
        .await;
        match init {
            Err(_) => Err(format!(
                "initialising transactions did not return within {timeout:?}"
            )),
            Ok(Ok(Ok(()))) => {
                tracing::info!(transactional_id = %self.cfg.transactional_id, "transactions initialised");
                self.producer = Some(producer.clone());
                Ok(producer)
            }
            Ok(Ok(Err(e))) => Err(format!("cannot initialise transactions: {e}")),
            Ok(Err(e)) => Err(format!("cannot initialise transactions: {e}")),
        }
    }
}

/// Forgets the instants of `times` (oldest first) more than [`FATAL_WINDOW`] before `now`;
/// how many are left.
fn recent(times: &mut VecDeque<Instant>, now: Instant) -> usize {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) > FATAL_WINDOW)
    {
        times.pop_front();
    }
    times.len()
}

/// Transaction calls left behind (stuck in the client) tolerated within [`FATAL_WINDOW`].
const STUCK_LIMIT: usize = 5;

/// How much longer than its budget a transaction call may take before it is left behind.
const WATCHDOG_SLACK: Duration = Duration::from_secs(1);

/// How long one transaction may take in all (its calls share it), and how long an abort
/// may take after it: a round of the committer stays well within a partition's stop
/// timeout.
pub(super) const TXN_BUDGET: Duration = Duration::from_secs(8);
const ABORT_BUDGET: Duration = Duration::from_secs(4);

/// One transaction on `producer`, blocking: produce `records` to `topic`, commit `offsets`
/// with the group's metadata, commit (a commit that times out is resumed while `budget`
/// lasts); abort on failure. Every call is bounded by what is left of `budget`.
fn transact(
    producer: &FutureProducer,
    consumer: &Consumer_,
    topic: &str,
    records: &[OutRecord],
    offsets: &TopicPartitionList,
    budget: Duration,
    abandoned: &AtomicBool,
) -> Result<(), TxnError> {
    let deadline = Instant::now() + budget;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    producer
        .begin_transaction()
        .map_err(|e| match classify(e) {
            TxnError::Abortable(why) => TxnError::Reset(why),
            other => other,
        })?;
    let result = (|| {
        for (sp, key, value) in records {
            enqueue(producer, topic, *sp, key, value.as_deref(), deadline)?;
        }
        if offsets.count() > 0 {
            let gm = consumer.group_metadata().ok_or_else(|| {
                TxnError::Abortable("not a member of the consumer group (yet)".into())
            })?;
            producer
                .send_offsets_to_transaction(offsets, &gm, left())
                .map_err(classify)?;
        }
        if abandoned.load(Ordering::SeqCst) {
            // The committer gave up on this call and answered for it: never commit now.
            return Err(TxnError::Reset("left behind by the committer".into()));
        }
        loop {
            match producer.commit_transaction(left()) {
                Ok(()) => return Ok(()),
                // A commit that timed out is resumed by calling it again.
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline => {}
                Err(e) => return Err(classify(e)),
            }
        }
    })();
    match result {
        Err(TxnError::TooLarge(why)) => {
            let _ = producer.abort_transaction(ABORT_BUDGET);
            Err(TxnError::TooLarge(why))
        }
        Err(TxnError::Abortable(why)) | Err(TxnError::Reset(why)) => {
            match producer.abort_transaction(ABORT_BUDGET) {
                Ok(()) => Err(TxnError::Abortable(why)),
                Err(e) => Err(TxnError::Reset(format!(
                    "{why}; the abort failed too ({e}): a new producer takes over"
                ))),
            }
        }
        other => other,
    }
}

/// Enqueue one record, waiting (bounded by `deadline`) while the producer's queue is full.
fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    key: &[u8],
    value: Option<&[u8]>,
    deadline: Instant,
) -> Result<(), TxnError> {
    let mut record = FutureRecord::<[u8], [u8]>::to(topic)
        .partition(partition)
        .key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    loop {
        match producer.send_result(record) {
            // The delivery is confirmed by the commit, which flushes and fails if any failed.
            Ok(_delivery) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                if Instant::now() < deadline =>
            {
                record = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                return Err(TxnError::TooLarge(format!(
                    "a record of {} bytes is larger than the producer takes ({} bytes)",
                    value.map_or(0, <[u8]>::len),
                    client::STATE_RECORD_MAX_BYTES
                )))
            }
            Err((e, _)) => return Err(classify(e)),
        }
    }
}
