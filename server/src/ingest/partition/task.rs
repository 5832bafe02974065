//! A partition task's state between messages: checkpoints handed to the committer and
//! their answers, publishing what was committed, the rebuild after an abort, the last
//! checkpoint on stop, and `--offset-reset`.

use std::collections::BTreeMap;
use std::sync::Arc;

use pulseboard_model::agg::Segments;

use rdkafka::Offset;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{answer, restore, Commit, Group, ReadTimes, TaskShared, MAX_CHECKPOINT_WINDOWS};
use crate::config::OffsetReset;
use crate::hub::Held;
use crate::ingest::commit::CommitOutcome;
use crate::ingest::dead_letter::Pending;
use crate::ingest::engine::PartitionEngine;
use crate::ingest::IngestError;
use crate::progress::PartitionReport;
use crate::store::{OwnerRecord, PartitionCheckpoint, PartitionWrite};
use crate::telemetry;

/// A partition task's state between messages.
pub(super) struct Task<G> {
    pub(super) engine: PartitionEngine,
    /// Fires when the partition task is asked to stop (ends a restore in progress).
    pub(super) cancel: CancellationToken,
    /// A checkpoint failed and the engine could not be restored: nothing more may be
    /// committed from it.
    pub(super) tainted: bool,
    pub(super) shared: Arc<TaskShared<G>>,
    pub(super) pending: Pending,
    /// The checkpoint handed to the committer and not answered yet.
    pub(super) in_flight: Option<(PartitionWrite, oneshot::Receiver<CommitOutcome>)>,
    /// Messages arrived since the last publish (the partition is not idle).
    pub(super) saw_messages: bool,
    /// The partition was read to its end, and no message came after (Kafka's partition
    /// EOF): it has nothing to read.
    pub(super) at_end: bool,
    pub(super) reads: ReadTimes,
    /// The segment tables of the open windows as the last committed checkpoint has them,
    /// and that checkpoint's row (stored bytes).
    pub(super) segments: BTreeMap<i64, (Arc<Segments>, Arc<[u8]>)>,
}

impl<G: Group> Task<G> {
    fn topic(&self) -> &str {
        self.engine.topic()
    }

    /// The next checkpoint has reached its size: hand it over now, read on after.
    pub(super) fn full(&self) -> bool {
        self.engine.changed_windows() >= MAX_CHECKPOINT_WINDOWS
    }

    /// Hand the next checkpoint over at once if it is [`full`](Self::full) (and none is in
    /// flight).
    pub(super) async fn checkpoint_if_full(&mut self) -> Result<(), IngestError> {
        if self.full() {
            self.checkpoint(false).await
        } else {
            Ok(())
        }
    }

    /// A checkpoint tick: hand a checkpoint to the committer when something changed and
    /// none is in flight; publish liveness otherwise. `releasing`: the last one before the
    /// partition goes (always written, so the group's offset is current).
    pub(super) async fn checkpoint(&mut self, releasing: bool) -> Result<(), IngestError> {
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
                .progress
                .high_watermark(&write.topic, write.partition),
            last_read_ms: self.reads.last,
            at_ms: crate::now_ms(),
        });
        let rx = self.shared.committer.submit(write.clone(), releasing).await;
        self.in_flight = Some((write, rx));
        Ok(())
    }

    /// The committer answered the checkpoint in flight.
    pub(super) async fn settled(&mut self, outcome: CommitOutcome) -> Result<(), IngestError> {
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
        let written: Vec<i64> = write.rows.iter().map(|r| r.start).collect();
        // Windows that took late events were marked revised in the checkpoint itself.
        self.shared
            .progress
            .mark_revised(write.revised.iter().copied());
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
        // The hub shares the checkpoint's rows: a closed window's whole; an open window's
        // segment tables, with its live figures (fresher than this copy's), which the live
        // path keeps handing over with these tables until the next checkpoint.
        let mut shown: Vec<(i64, Held)> = Vec::with_capacity(write.rows.len());
        for row in &write.rows {
            match self.engine.live_window(row.start) {
                Some(mut figures) => {
                    figures.segments = row.agg.segments.clone();
                    self.segments
                        .insert(row.start, (row.agg.segments.clone(), row.stored.clone()));
                    shown.push((row.start, Held::open(figures, Some(row.stored.clone()))));
                }
                None => shown.push((row.start, Held::from(row))),
            }
        }
        let engine = &self.engine;
        self.segments.retain(|s, _| engine.is_open(*s));
        self.shared.hub.update(topic, partition, shown);
        Ok(())
    }

    /// The live figures of the open windows that changed since the last call, each with
    /// the segment tables of its last checkpoint (see [`Self::committed`]).
    pub(super) fn live_windows(&mut self) -> Option<Vec<(i64, Held)>> {
        let windows = self.engine.take_live_windows()?;
        Some(
            windows
                .into_iter()
                .map(|(s, mut a)| {
                    let row = self.segments.get(&s).map(|(tables, row)| {
                        a.segments = tables.clone();
                        row.clone()
                    });
                    (s, Held::open(a, row))
                })
                .collect(),
        )
    }

    fn publish(&mut self, cp: &PartitionCheckpoint, written: &[i64]) -> Vec<i64> {
        let lateness = self.engine_lateness();
        let progress = PartitionReport {
            topic: self.engine.topic(),
            partition: self.engine.partition(),
            counts: cp.into(),
            watermark: cp.max_event_ts.map(|m| m.saturating_sub(lateness)),
            saw_messages: std::mem::take(&mut self.saw_messages),
            // At its end as far as this checkpoint goes: a checkpoint committed while the
            // task read on to the end does not hold what was read after it (its watermark
            // is behind), and an idle partition must not hold the watermark back with
            // less than it has read.
            at_end: self.at_end && cp.next_offset >= self.engine.checkpoint_state().next_offset,
            read_since_start: self.engine.read_since_start(),
            first_read_ms: self.reads.first,
            last_read_ms: self.reads.last,
        };
        self.shared.progress.publish_partition(progress, written)
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
        self.shared
            .consumer
            .seek(&topic, partition, self.engine.stored_offset())
            .await
    }

    /// Stop: wait for the checkpoint in flight, then (unless the partition was lost) commit
    /// a last one.
    pub(super) async fn finish(&mut self, commit: Commit) -> Result<(), IngestError> {
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
    pub(super) async fn offset_out_of_range(&mut self) -> Result<(), IngestError> {
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
        if !shared.consumer.is_open() {
            return Ok(());
        }
        telemetry::offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
        shared
            .progress
            .note_offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
        let bounds = shared.consumer.log_bounds(&topic, partition).await;
        let target = match bounds {
            Ok((low, high)) => {
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
            Err(why) => {
                tracing::error!(topic, partition, error = why, "cannot look up the log's bounds; restarting at the logical offset, not checkpointed");
                self.engine.reset_offset(None);
                if earliest {
                    Offset::Beginning
                } else {
                    Offset::End
                }
            }
        };
        shared.consumer.restart_at(&topic, partition, target).await
    }
}
