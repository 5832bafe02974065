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
//!   one and aborts what it left open); more than [`txn::FATAL_LIMIT`] within [`txn::FATAL_WINDOW`]
//!   stop ingest with an error. A store write that fails stops ingest with an error.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::IngestError;
use crate::hub::Hub;
use crate::ingest::client;
use crate::progress::Progress;
use crate::store::record::{self, OutRecord};
use crate::store::{PartitionWrite, Store};
use crate::telemetry;

mod group;
mod txn;

pub(super) use group::GroupCommit;
pub(super) use txn::{StateTopicSink, Txn};

/// Requests taken into one batch at most.
const MAX_BATCH: usize = 256;

/// Window rows after which a batch takes no further checkpoint (each checkpoint holds at
/// most [`super::partition::MAX_CHECKPOINT_WINDOWS`]): a transaction stays small enough to
/// commit within its budget however many partitions have a backlog.
const MAX_BATCH_WINDOWS: usize = 4_000;

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
}

/// Where a batch becomes durable besides the store: the seam between the committer's rules
/// (batches, order, answers) and Kafka. [`GroupCommit`] (no state topic: the store, then
/// the group's advisory offset commit) and [`Txn`] (the state topic's transaction, then the
/// store) are the two of a run; the unit tests bring their own.
pub(super) trait Sink: Send + 'static {
    /// The state topic's partition count (`None`: no state topic).
    fn state_partitions(&self) -> Option<i32>;

    /// Before the store write: make `writes` and `records` durable in the state topic.
    /// `Ok(Err(why))`: not committed, and never will be; `Err`: ingest must stop.
    fn transact(
        &mut self,
        writes: &[PartitionWrite],
        records: Vec<OutRecord>,
    ) -> impl Future<Output = Result<Result<(), String>, IngestError>> + Send;

    /// After the store write: tell the group (`sync`: a partition is being released, its
    /// offset must reach the group before the answer).
    fn stored(&mut self, writes: &[PartitionWrite], sync: bool) -> impl Future<Output = ()> + Send;

    /// The committer stops: the last words (the instance record's tombstone).
    fn close(&mut self) -> impl Future<Output = Result<(), IngestError>> + Send;
}

/// The committer task's state.
pub(super) struct Committer<S> {
    store: Store,
    /// After a checkpoint of a partition this instance no longer reads is written, the
    /// hub's copy of it is reloaded from the store (its task, gone, published nothing).
    progress: Arc<Progress>,
    hub: Arc<Hub>,
    rx: mpsc::Receiver<CommitMsg>,
    sink: S,
}

impl<S: Sink> Committer<S> {
    /// A committer making checkpoints durable through `sink`.
    pub(super) fn new(
        (store, progress, hub): (Store, Arc<Progress>, Arc<Hub>),
        sink: S,
    ) -> (Self, CommitHandle) {
        // Bounded: a partition task has one checkpoint in flight, plus retention's records.
        let (tx, rx) = mpsc::channel(1024);
        let handle = CommitHandle {
            tx,
            state_partitions: sink.state_partitions(),
        };
        (
            Committer {
                store,
                progress,
                hub,
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
        self.sink.close().await
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
        let transactional = self.sink.state_partitions().is_some();
        let outcome = if writes.is_empty() && records.is_empty() {
            CommitOutcome::Committed
        } else {
            match self.sink.transact(&writes, records).await? {
                Ok(()) => {
                    self.write_store(&writes).await?;
                    self.sink.stored(&writes, releasing).await;
                    if transactional {
                        telemetry::transaction_committed(writes.len(), started.elapsed());
                    }
                    CommitOutcome::Committed
                }
                Err(why) => {
                    telemetry::transaction_aborted(writes.len(), &why);
                    CommitOutcome::Aborted(why)
                }
            }
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
            if !self.progress.is_local(&w.topic, w.partition) {
                self.hub.reload_partition(&w.topic, w.partition);
            }
        }
        Ok(())
    }
}

/// The offsets of `writes` as a commit carries them (without a state topic: the max event
/// time as metadata, for the next owner).
pub(super) fn offsets_of(writes: &[PartitionWrite], with_seq: bool) -> TopicPartitionList {
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

#[cfg(test)]
mod tests;
