//! With a state topic: ONE Kafka transaction per batch, holding each partition's window,
//! dead-letter and progress records and the consumer offset commit of those partitions with
//! the consumer's group metadata (`send_offsets_to_transaction`, KIP-447); the store is
//! written after it commits (see the committer's contract in `commit`).
//!
//! Contract: a fatal producer error makes the producer anew (its `init_transactions` fences
//! the old one and aborts what it left open); more than [`FATAL_LIMIT`] within
//! [`FATAL_WINDOW`] stop ingest with an error, as do more than [`STUCK_LIMIT`] calls the
//! client never returned from. A record too large for the state topic stops ingest with a
//! clear error.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

use super::{offsets_of, Sink};
use crate::ingest::{client, Consumer_, IngestError};
use crate::store::record::{self, OutRecord};
use crate::store::PartitionWrite;
use crate::telemetry;

/// Fatal producer errors tolerated within [`FATAL_WINDOW`] (each makes a new producer).
pub(in crate::ingest) const FATAL_LIMIT: usize = 3;
pub(in crate::ingest) const FATAL_WINDOW: Duration = Duration::from_secs(600);

/// The state topic, as the committer writes it.
pub(in crate::ingest) struct StateTopicSink {
    pub(in crate::ingest) brokers: String,
    pub(in crate::ingest) transactional_id: String,
    pub(in crate::ingest) txn_timeout: Duration,
    pub(in crate::ingest) topic: String,
    pub(in crate::ingest) partitions: i32,
    pub(in crate::ingest) width_ms: i64,
    /// This instance's record (written first, tombstoned last).
    pub(in crate::ingest) instance: OutRecord,
}

/// The transactional side of the committer.
pub(in crate::ingest) struct Txn {
    cfg: StateTopicSink,
    consumer: Weak<Consumer_>,
    producer: Option<Arc<FutureProducer>>,
    fatal: VecDeque<Instant>,
    /// Transactions left behind in a call that did not return.
    stuck: VecDeque<Instant>,
    /// The instance record still has to be written.
    announce: bool,
}

impl Sink for Txn {
    fn state_partitions(&self) -> Option<i32> {
        Some(self.cfg.partitions)
    }

    async fn transact(
        &mut self,
        writes: &[PartitionWrite],
        records: Vec<OutRecord>,
    ) -> Result<Result<(), String>, IngestError> {
        self.transaction(writes, records).await
    }

    async fn stored(&mut self, _writes: &[PartitionWrite], _sync: bool) {}

    /// Tombstones this instance's record (when a producer was ever made).
    async fn close(&mut self) -> Result<(), IngestError> {
        if self.producer.is_some() {
            let (sp, key, _) = self.cfg.instance.clone();
            let goodbye = vec![(sp, key, None)];
            if let Err(why) = self.transaction(&[], goodbye).await? {
                tracing::warn!(error = why, "could not tombstone this instance's record");
            }
        }
        Ok(())
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
    /// The state topic's side of the committer, with a producer made at its first
    /// transaction.
    pub(in crate::ingest) fn new(cfg: StateTopicSink, consumer: Weak<Consumer_>) -> Self {
        Txn {
            cfg,
            consumer,
            producer: None,
            fatal: VecDeque::new(),
            stuck: VecDeque::new(),
            announce: true,
        }
    }

    /// One transaction: `writes`' records and offsets, and `extra` records. `Ok(Err(why))`
    /// when it did not commit; `Err` when fatal errors came too often.
    async fn transaction(
        &mut self,
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
        let Some(consumer) = self.consumer.upgrade() else {
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
