//! One partition's task: restore, read, fold, dead-letter, checkpoint through the
//! committer; restart after an offset reset; flush on stop.
//!
//! Contract:
//! - Before it reads, the task has the partition's state as of the group's last committed
//!   checkpoint. With a state topic: it asks the group for the committed offset (whose
//!   metadata carries the checkpoint's `seq`) and waits, bounded by `--restore-timeout`,
//!   until the state topic's reader has brought the store up to that checkpoint; then it
//!   restores the engine from the store and seeks to the stored offset. Without one, the
//!   store is the truth (or the group's offset, when another instance read further).
//! - Every checkpoint interval it prepares a checkpoint and hands it to the committer, then
//!   goes on reading; it never has two in flight. A checkpoint stays bounded: once
//!   [`MAX_CHECKPOINT_WINDOWS`] windows changed (a backlog spread over much event time), it
//!   hands one over at once, and while that one is in flight it reads no further, so one
//!   transaction never grows past what commits within its budget (a checkpoint that could
//!   never commit would be read, aborted and read again for ever). When the answer is
//!   `Committed` the checkpoint is published (status, hub); when it is `Aborted` the engine
//!   is thrown away and restored from the store, and reading restarts at the stored offset:
//!   what was folded and not committed is read again, never lost, never counted twice.
//! - On stop it waits for the checkpoint in flight and, unless the partition was lost,
//!   commits a last one (synchronously) before it returns.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::FutureExt;
use pulseboard_model::decode::Decoder;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::commit::{CommitHandle, CommitOutcome};
use super::dead_letter::{on_message, Pending};
use super::start::StartPoint;
use super::{Consumer_, IngestError, Queue};
use crate::config::OffsetReset;
use crate::hub::Hub;
use crate::ingest::client::{committed_position, Committed};
use crate::ingest::engine::{EngineConfig, PartitionEngine};
use crate::progress::{PartitionReport, Progress};
use crate::store::{OwnerRecord, PartitionCheckpoint, PartitionWrite, Store, StoreError};
use crate::telemetry;

/// What a partition task needs of the state topic.
pub(super) struct RestoreFrom {
    /// How long a new partition may wait for its committed checkpoint.
    pub(super) timeout: Duration,
    /// Bumped by the state topic's reader after every checkpoint it applied.
    pub(super) applied: watch::Receiver<u64>,
}

pub(super) struct TaskShared {
    pub(super) store: Store,
    pub(super) live: Arc<Progress>,
    pub(super) hub: Arc<Hub>,
    pub(super) consumer: Weak<Consumer_>,
    pub(super) producer: FutureProducer,
    pub(super) dead_letter_topics: HashMap<String, String>,
    pub(super) checkpoint_interval: Duration,
    pub(super) offset_reset: OffsetReset,
    pub(super) committer: CommitHandle,
    pub(super) engine: EngineConfig,
    pub(super) decoder: Arc<Decoder>,
    /// With a state topic: where restores come from.
    pub(super) restore: Option<RestoreFrom>,
    /// This instance (the owner recorded with each checkpoint).
    pub(super) me: (String, String),
}

/// How a partition task stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// With a last checkpoint, committed before the task returns (the partition is released
    /// to another owner, or the process stops).
    Sync,
    /// Without: the partition was lost (the group took it away without a revoke), a commit
    /// would be refused.
    Skip,
}

/// Messages handled in one go before the partition task looks at its timers again.
pub(super) const MAX_BATCH: usize = 1024;

/// Changed windows at which a partition checkpoints without waiting for its interval (and
/// stops reading while that checkpoint is in flight): each window is a record of the
/// checkpoint's transaction.
pub(super) const MAX_CHECKPOINT_WINDOWS: usize = 1_000;

/// How long one request for a committed offset may take.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition's task: restore, then read, fold, dead-letter and checkpoint; flush on
/// stop.
pub(super) async fn partition_task(
    (topic, partition): (String, i32),
    assigned: StartPoint,
    queue: Queue,
    (mut stop, cancel): (mpsc::Receiver<Commit>, CancellationToken),
    shared: Arc<TaskShared>,
    fatal: mpsc::UnboundedSender<IngestError>,
) {
    let opened = async {
        let Some(engine) = restore(&topic, partition, Some(assigned), &shared, &cancel).await?
        else {
            return Ok(None);
        };
        // Read from where that checkpoint stopped.
        let target = engine.stored_offset();
        if target != assigned.stored() {
            seek(&shared, &topic, partition, target).await?;
        }
        Ok::<_, IngestError>(Some(engine))
    };
    let engine = match opened.await {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            let _ = fatal.send(e);
            return;
        }
    };
    let dlq = shared
        .dead_letter_topics
        .get(&topic)
        .cloned()
        .unwrap_or_else(|| format!("{topic}-dlq"));
    let mut task = Task {
        engine,
        cancel,
        tainted: false,
        shared: shared.clone(),
        pending: Pending::default(),
        in_flight: None,
        saw_messages: false,
        reads: ReadTimes::default(),
    };
    let mut tick = tokio::time::interval(shared.checkpoint_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Changed open windows go to the hub at once when the last hand-over is older than
    // `live_interval`, else when that much time has passed (coalescing under load).
    let live_gap = shared.hub.config().live_interval;
    let mut last_live = tokio::time::Instant::now() - live_gap;
    let live_due = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(live_due);
    let mut live_pending = false;
    let result: Result<(), IngestError> = loop {
        tokio::select! {
            // Stop first so a revoke is served promptly; then the committer's answer (the
            // next checkpoint waits for it), the checkpoint and live ticks, so a busy
            // partition still checkpoints and shows progress on time; messages last.
            biased;
            commit = stop.recv() => {
                break task.finish(commit.unwrap_or(Commit::Sync)).await;
            }
            outcome = answer(&mut task.in_flight) => {
                if let Err(e) = task.settled(outcome).await {
                    break Err(e);
                }
                // Reading waited for this answer: the next checkpoint goes at once.
                if let Err(e) = task.checkpoint_if_full().await {
                    break Err(e);
                }
            }
            _ = tick.tick() => {
                if let Err(e) = task.checkpoint(false).await {
                    break Err(e);
                }
            }
            _ = &mut live_due, if live_pending => {
                live_pending = false;
                last_live = tokio::time::Instant::now();
                if let Some(windows) = task.engine.take_live_windows() {
                    shared.hub.update(&topic, partition, windows);
                }
            }
            msg = queue.recv(), if !task.full() => {
                task.saw_messages = true;
                // Drain what is already fetched before going back to the select: one round
                // of timer and channel polling per batch, not per message.
                let mut next = Some(msg);
                let mut batch = 0;
                let now_ms = crate::now_ms();
                while let Some(msg) = next.take() {
                    let handled = match msg {
                        Ok(m) => {
                            #[cfg(debug_assertions)]
                            test_hook::panic_if_asked(&topic, partition, rdkafka::Message::offset(&m));
                            on_message(&mut task.engine, &m, now_ms, &dlq, &shared.producer, &mut task.pending).await;
                            Ok(())
                        }
                        Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                            task.offset_out_of_range().await
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
                    if batch < MAX_BATCH && !task.full() {
                        next = queue.recv().now_or_never();
                    }
                }
                task.reads.batch_done();
                if let Err(e) = task.checkpoint_if_full().await {
                    break Err(e);
                }
                if task.engine.has_live_changes() && !live_pending {
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
    if let Err(e) = result {
        let _ = fatal.send(e);
    }
}

/// The answer to the checkpoint in flight (never ready without one).
async fn answer(
    in_flight: &mut Option<(PartitionWrite, oneshot::Receiver<CommitOutcome>)>,
) -> CommitOutcome {
    match in_flight {
        Some((_, rx)) => rx
            .await
            .unwrap_or_else(|_| CommitOutcome::Aborted("the committer has stopped".into())),
        None => std::future::pending().await,
    }
}

/// The partition's state as of the group's last committed checkpoint (see the module
/// docs): with a state topic, the group's committed offset is asked for (a transaction
/// still open on it is waited for) and the store brought up to that checkpoint by the
/// state topic's reader; without one, the store, or the group's offset when another
/// instance read further (`assigned`, from the rebalance callback). `None` when `cancel`
/// fired meanwhile.
async fn restore(
    topic: &str,
    partition: i32,
    assigned: Option<StartPoint>,
    shared: &TaskShared,
    cancel: &CancellationToken,
) -> Result<Option<PartitionEngine>, IngestError> {
    let store_err = |source: StoreError| IngestError::Store {
        topic: topic.to_owned(),
        partition,
        source,
    };
    let from_store = |shared: &TaskShared| {
        PartitionEngine::restore(
            &shared.store,
            topic,
            partition,
            shared.engine.clone(),
            shared.decoder.clone(),
        )
        .map_err(store_err)
    };
    let Some(from) = &shared.restore else {
        // No state topic: the store (once what an earlier task of this partition handed to
        // the committer is written), or the group's offset when another instance read
        // further.
        shared.committer.barrier().await;
        let mut engine = from_store(shared)?;
        if let Some(StartPoint::HandedOver {
            offset,
            max_event_ts,
        }) = assigned
        {
            tracing::info!(
                topic,
                partition,
                offset,
                "taking over where the group's last owner stopped"
            );
            engine.adopt_handover(offset, max_event_ts);
        }
        return Ok(Some(engine));
    };
    let started = tokio::time::Instant::now();
    // Whatever an earlier task of this partition handed to the committer is settled first:
    // committed (and then in the group's offset) or never.
    tokio::select! {
        biased;
        _ = cancel.cancelled() => return Ok(None),
        _ = shared.committer.barrier() => {}
    }
    let deadline = started + from.timeout;
    let timed_out = |why: String| IngestError::Restore {
        topic: topic.to_owned(),
        partition,
        timeout: from.timeout,
        why,
    };
    // 1. What the group committed (a transaction still open on it is waited for).
    let committed = loop {
        let asked = committed_of(&shared.consumer, topic, partition);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(None),
            r = asked => match r {
                Ok(c) => break c,
                Err(why) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(timed_out(format!("cannot read the group's committed offset: {why}")));
                    }
                    tracing::debug!(topic, partition, error = why, "committed offset not available yet; asking again");
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            },
        }
    };
    // 2. The store must hold that checkpoint: the state topic's reader brings it.
    if let Some(seq) = committed.and_then(|c| c.seq) {
        let mut applied = from.applied.clone();
        loop {
            let stored = shared
                .store
                .partition(topic, partition)
                .map_err(store_err)?
                .map_or(0, |cp| cp.seq);
            if stored >= seq {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(None),
                changed = tokio::time::timeout_at(deadline, applied.changed()) => match changed {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(timed_out("the state topic's reader has stopped".into())),
                    Err(_) => return Err(timed_out(format!(
                        "the group committed checkpoint {seq} (offset {}), but the state topic brought this store only to checkpoint {stored}; is the state topic readable, or was it deleted? (to start the group over, give a new --group)",
                        committed.map_or(0, |c| c.offset)
                    ))),
                },
            }
        }
    }
    let mut engine = from_store(shared)?;
    if committed.is_some_and(|c| c.seq.is_none()) {
        // A commit made without a state topic: as without one, the further of the two.
        let group = committed.map(|c| (c.offset, c.max_event_ts));
        if let StartPoint::HandedOver {
            offset,
            max_event_ts,
        } = StartPoint::choose(engine.stored_offset(), group)
        {
            engine.adopt_handover(offset, max_event_ts);
        }
    }
    // The hub loaded the store when this instance started; the state topic's reader may
    // have brought checkpoints since (one of them is this restore's).
    shared.hub.reload_partition(topic, partition);
    telemetry::partition_restored(topic, partition, engine.stored_offset(), started.elapsed());
    Ok(Some(engine))
}

/// The group's committed position of one partition (`Ok(None)`: none committed).
async fn committed_of(
    consumer: &Weak<Consumer_>,
    topic: &str,
    partition: i32,
) -> Result<Option<Committed>, String> {
    let Some(c) = consumer.upgrade() else {
        return Err("the consumer has closed".into());
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let (t, p) = (topic.to_owned(), partition);
    let answer = tokio::task::spawn_blocking(move || c.committed_offsets(tpl, COMMITTED_TIMEOUT))
        .await
        .map_err(|e| e.to_string())?;
    answer
        .map(|tpl| committed_position(&tpl, &t, p))
        .map_err(|e| e.to_string())
}

/// Move the partition's fetch position to `offset` (`None`: the log start). Messages
/// fetched before are dropped by the client (the seek starts a new fetch version).
async fn seek(
    shared: &TaskShared,
    topic: &str,
    partition: i32,
    offset: Option<i64>,
) -> Result<(), IngestError> {
    let Some(c) = shared.consumer.upgrade() else {
        return Ok(());
    };
    let target = offset.map_or(Offset::Beginning, Offset::Offset);
    let t = topic.to_owned();
    let done =
        tokio::task::spawn_blocking(move || c.seek(&t, partition, target, Duration::from_secs(10)))
            .await;
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(IngestError::Restart {
            topic: topic.to_owned(),
            partition,
            source,
        }),
        Err(e) => {
            tracing::error!(topic, partition, error = %e, "seeking the partition failed");
            Ok(())
        }
    }
}

/// A partition task's state between messages.
struct Task {
    engine: PartitionEngine,
    /// Fires when the partition task is asked to stop (ends a restore in progress).
    cancel: CancellationToken,
    /// A checkpoint failed and the engine could not be restored: nothing more may be
    /// committed from it.
    tainted: bool,
    shared: Arc<TaskShared>,
    pending: Pending,
    /// The checkpoint handed to the committer and not answered yet.
    in_flight: Option<(PartitionWrite, oneshot::Receiver<CommitOutcome>)>,
    /// Messages arrived since the last publish (the partition is not idle).
    saw_messages: bool,
    reads: ReadTimes,
}

impl Task {
    fn topic(&self) -> &str {
        self.engine.topic()
    }

    /// The next checkpoint has reached its size: hand it over now, read on after.
    fn full(&self) -> bool {
        self.engine.changed_windows() >= MAX_CHECKPOINT_WINDOWS
    }

    /// Hand the next checkpoint over at once if it is [`full`](Self::full) (and none is in
    /// flight).
    async fn checkpoint_if_full(&mut self) -> Result<(), IngestError> {
        if self.full() {
            self.checkpoint(false).await
        } else {
            Ok(())
        }
    }

    /// A checkpoint tick: hand a checkpoint to the committer when something changed and
    /// none is in flight; publish liveness otherwise. `releasing`: the last one before the
    /// partition goes (always written, so the group's offset is current).
    async fn checkpoint(&mut self, releasing: bool) -> Result<(), IngestError> {
        if self.in_flight.is_some() || self.tainted {
            return Ok(());
        }
        if !self.engine.needs_checkpoint() && !releasing {
            let cp = self.engine.checkpoint_state().clone();
            self.publish(&cp, &[]);
            return Ok(());
        }
        self.pending.settle(&mut self.engine).await;
        if releasing {
            self.engine.touch();
        }
        let prepared =
            self.engine
                .prepare(&self.shared.store)
                .map_err(|source| IngestError::Store {
                    topic: self.engine.topic().to_owned(),
                    partition: self.engine.partition(),
                    source,
                })?;
        let Some(mut write) = prepared else {
            return Ok(());
        };
        write.owner = Some(OwnerRecord {
            id: self.shared.me.0.clone(),
            url: self.shared.me.1.clone(),
            high_watermark: self
                .shared
                .live
                .high_watermark(&write.topic, write.partition),
            last_read_ms: self.reads.last,
            at_ms: crate::now_ms(),
        });
        let rx = self.shared.committer.submit(write.clone(), releasing).await;
        self.in_flight = Some((write, rx));
        Ok(())
    }

    /// The committer answered the checkpoint in flight.
    async fn settled(&mut self, outcome: CommitOutcome) -> Result<(), IngestError> {
        let Some((write, _)) = self.in_flight.take() else {
            return Ok(());
        };
        match outcome {
            CommitOutcome::Committed => self.committed(&write),
            CommitOutcome::Aborted(why) => {
                tracing::warn!(
                    topic = self.topic(),
                    partition = self.engine.partition(),
                    seq = write.checkpoint.seq,
                    error = why,
                    "checkpoint not committed; reading again from the last committed one"
                );
                self.rebuild(write.checkpoint.seq).await
            }
        }
    }

    /// Publish a committed checkpoint: status, revised marks, the hub.
    fn committed(&mut self, write: &PartitionWrite) -> Result<(), IngestError> {
        let (topic, partition) = (write.topic.as_str(), write.partition);
        let written: Vec<i64> = write.rows.iter().map(|(s, _)| *s).collect();
        // Windows that took late events were marked revised in the checkpoint itself.
        self.shared.live.mark_revised(write.revised.iter().copied());
        let revised = self.publish(&write.checkpoint, &written);
        if !revised.is_empty() {
            // Windows written on time for this partition after the global watermark had
            // passed them (a slow partition): shown final, now changed. The marks let a
            // restart show them revised still; a crash before this line loses only the mark.
            self.shared
                .store
                .mark_revised(&revised)
                .map_err(|source| IngestError::Store {
                    topic: topic.to_owned(),
                    partition,
                    source,
                })?;
        }
        // Open windows reach the hub through the live path, fresher than this copy.
        let closed: Vec<_> = write
            .rows
            .iter()
            .filter(|(s, _)| !self.engine.is_open(*s))
            .cloned()
            .collect();
        self.shared.hub.update(topic, partition, closed);
        Ok(())
    }

    fn publish(&mut self, cp: &PartitionCheckpoint, written: &[i64]) -> Vec<i64> {
        let lateness = self.engine_lateness();
        let progress = PartitionReport {
            topic: self.engine.topic(),
            partition: self.engine.partition(),
            counts: cp.into(),
            watermark: cp.max_event_ts.map(|m| m.saturating_sub(lateness)),
            saw_messages: std::mem::take(&mut self.saw_messages),
            read_since_start: self.engine.read_since_start(),
            first_read_ms: self.reads.first,
            last_read_ms: self.reads.last,
        };
        self.shared.live.publish_partition(progress, written)
    }

    fn engine_lateness(&self) -> i64 {
        self.shared.engine.windows.lateness_ms
    }

    /// A checkpoint was not committed: restore the engine to the group's committed
    /// checkpoint, as a newly assigned partition is (the failed transaction may have
    /// committed after all: the group's offset, read once it is settled, says), keep its
    /// `seq` above `burned`, and read again from the restored offset. Dead letters awaiting
    /// delivery are let go: they are read and sent again (dead letters are at-least-once).
    async fn rebuild(&mut self, burned: u64) -> Result<(), IngestError> {
        let (topic, partition) = (self.engine.topic().to_owned(), self.engine.partition());
        let Some(mut engine) = restore(&topic, partition, None, &self.shared, &self.cancel).await?
        else {
            // Asked to stop meanwhile: this engine holds what was not committed, and must
            // never be checkpointed.
            self.tainted = true;
            return Ok(());
        };
        engine.keep_seq_above(burned);
        engine.set_read_since_start(self.engine.read_since_start());
        self.engine = engine;
        self.pending = Pending::default();
        seek(&self.shared, &topic, partition, self.engine.stored_offset()).await
    }

    /// Stop: wait for the checkpoint in flight, then (unless the partition was lost) commit
    /// a last one.
    async fn finish(&mut self, commit: Commit) -> Result<(), IngestError> {
        if commit == Commit::Skip {
            // Lost: whatever the checkpoint in flight becomes, the next owner starts from
            // what the group committed. Nothing to wait for.
            return Ok(());
        }
        if self.in_flight.is_some() {
            let outcome = answer(&mut self.in_flight).await;
            if let Some((write, _)) = self.in_flight.take() {
                match outcome {
                    CommitOutcome::Committed => self.committed(&write)?,
                    // What was folded since the last committed checkpoint is not in the
                    // store: the next owner reads it again.
                    CommitOutcome::Aborted(_) => return Ok(()),
                }
            }
        }
        self.checkpoint(true).await?;
        if self.in_flight.is_some() {
            let outcome = answer(&mut self.in_flight).await;
            if let (Some((write, _)), CommitOutcome::Committed) = (self.in_flight.take(), &outcome)
            {
                self.committed(&write)?;
            } else if let CommitOutcome::Aborted(why) = outcome {
                tracing::warn!(
                    topic = self.topic(),
                    partition = self.engine.partition(),
                    error = why,
                    "the last checkpoint before release was not committed; the next owner reads from the previous one"
                );
            }
        }
        Ok(())
    }

    /// The stored offset is outside the log: apply `--offset-reset`. The target offset is
    /// looked up and checkpointed before reading restarts there, so a crash right after the
    /// reset restarts at the same place and skips nothing.
    async fn offset_out_of_range(&mut self) -> Result<(), IngestError> {
        let shared = self.shared.clone();
        let topic = self.engine.topic().to_owned();
        let partition = self.engine.partition();
        let stored = self.engine.stored_offset().unwrap_or(0);
        let earliest = match shared.offset_reset {
            OffsetReset::Fail => {
                return Err(IngestError::OffsetOutOfRange {
                    topic,
                    partition,
                    stored,
                });
            }
            OffsetReset::Earliest => true,
            OffsetReset::Latest => false,
        };
        let Some(consumer) = shared.consumer.upgrade() else {
            return Ok(());
        };
        telemetry::offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
        shared
            .live
            .note_offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
        let bounds = {
            let (c, t) = (consumer.clone(), topic.clone());
            tokio::task::spawn_blocking(move || {
                c.fetch_watermarks(&t, partition, Duration::from_secs(10))
            })
            .await
        };
        let target = match bounds {
            Ok(Ok((low, high))) => {
                let target = if earliest { low } else { high };
                // The checkpoint in flight first: checkpoints of a partition go in order.
                if self.in_flight.is_some() {
                    let outcome = answer(&mut self.in_flight).await;
                    self.settled(outcome).await?;
                }
                self.engine.reset_offset(Some(target));
                self.checkpoint(false).await?;
                let outcome = answer(&mut self.in_flight).await;
                let aborted = matches!(outcome, CommitOutcome::Aborted(_));
                self.settled(outcome).await?;
                if aborted {
                    // Restored and repositioned at the stored offset: the reset comes again.
                    return Ok(());
                }
                Offset::Offset(target)
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                tracing::error!(topic, partition, error = why, "cannot look up the log's bounds; restarting at the logical offset, not checkpointed");
                self.engine.reset_offset(None);
                if earliest {
                    Offset::Beginning
                } else {
                    Offset::End
                }
            }
        };
        // librdkafka has stopped fetching this partition (auto.offset.reset=error leaves it
        // in its "none" state, where a seek is refused): restart it alone, at the target.
        let t = topic.clone();
        let restart = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&t, partition);
            consumer.incremental_unassign(&tpl)?;
            tpl.set_partition_offset(&t, partition, target)?;
            consumer.incremental_assign(&tpl)
        })
        .await;
        match restart {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(IngestError::Restart {
                topic,
                partition,
                source: e,
            }),
            Err(e) => {
                tracing::error!(error = %e, "restarting the partition failed");
                Ok(())
            }
        }
    }
}

/// A deliberate panic for the tests of panic handling, in debug builds only:
/// `PULSEBOARD_TEST_PANIC_AT=topic/partition@offset` panics the partition task when it reads
/// that offset. Release builds do not contain it.
#[cfg(debug_assertions)]
mod test_hook {
    use std::sync::OnceLock;

    pub(super) const VAR: &str = "PULSEBOARD_TEST_PANIC_AT";

    fn target() -> &'static Option<(String, i32, i64)> {
        static T: OnceLock<Option<(String, i32, i64)>> = OnceLock::new();
        T.get_or_init(|| std::env::var(VAR).ok().as_deref().and_then(parse))
    }

    pub(super) fn parse(s: &str) -> Option<(String, i32, i64)> {
        let (tp, offset) = s.rsplit_once('@')?;
        let (topic, partition) = tp.rsplit_once('/')?;
        Some((
            topic.to_owned(),
            partition.parse().ok()?,
            offset.parse().ok()?,
        ))
    }

    pub(super) fn panic_if_asked(topic: &str, partition: i32, offset: i64) {
        if let Some((t, p, o)) = target() {
            if t == topic && *p == partition && *o == offset {
                panic!("{VAR}: deliberate panic at {topic}/{partition}@{offset}");
            }
        }
    }

    #[test]
    fn the_hook_names_one_offset_of_one_partition() {
        assert_eq!(parse("clicks/3@120"), Some(("clicks".into(), 3, 120)));
        assert_eq!(parse("a/b/0@7"), Some(("a/b".into(), 0, 7)));
        assert_eq!(parse("clicks@1"), None);
    }
}

/// When this process read the first and the last message of a partition (wall clock, one
/// reading per batch).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReadTimes {
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
