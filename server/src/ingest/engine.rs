//! The per-partition engine: decode, assign to event-time windows, count, checkpoint.
//!
//! Contract:
//! - A [`PartitionEngine`] owns the window state of exactly one partition. It knows nothing
//!   of Kafka client types or sockets: it gets plain [`Record`]s and says what to do with
//!   the bad ones ([`Outcome::Dead`]); the caller publishes dead letters.
//! - Every record advances `next_offset`, good or bad, so a poison message is never retried.
//! - A record below `next_offset` (redelivered after a seek or rebalance) is ignored: it was
//!   already counted.
//! - An event stamped more than `max_clock_skew` ahead of both the wall clock (given with
//!   each record) and its message timestamp is dead-lettered (`future`) and never moves the
//!   watermark.
//! - An event for a window its partition already closed (late) is still counted when the
//!   window ended within `revision_horizon` of the partition's watermark: it is kept as a
//!   revision of that window and merged into the stored row at the next checkpoint (the
//!   window becomes `revised`). Older ones are dead-lettered (`too_late`).
//! - A window the watermark closes leaves memory as it closes: encoded into its row at
//!   once, holding on to its figures only (the row's bytes have the rest), so a backlog
//!   read far faster than checkpoints come holds its open windows and small rows, not
//!   whole aggregates.
//! - [`PartitionEngine::prepare`] takes what the next checkpoint writes: the rows of the
//!   windows closed since the last one, the dirty open windows as they are, the closed
//!   windows that took late events merged with their stored rows (or with their row or
//!   dirty copy here), the dead letters their topic did not take and the
//!   partition's checkpoint (offset, watermark state, counters, `seq` + 1), as one
//!   [`PartitionWrite`]. The caller makes it durable (sled, and with a state topic first a
//!   Kafka transaction) before it prepares the next one. When a prepared checkpoint cannot
//!   be committed the engine is thrown away and restored from the store: the state after a
//!   restore is exactly the state at the last durable checkpoint, so replaying from the
//!   stored offset produces exactly what an uninterrupted run would have.

use std::sync::Arc;

use pulseboard_model::agg::{AggSpec, Aggregate};
use pulseboard_model::decode::Decoder;
use pulseboard_model::event::{DeadReason, Event};
use std::collections::BTreeMap;

use pulseboard_model::window::{PartitionWindows, WindowConfig};

use crate::store::row::Row;
use crate::store::{DeadLetterRecord, PartitionCheckpoint, PartitionWrite, Store, StoreError};

/// A message of the partition, stripped of client types.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub offset: i64,
    /// Kafka message timestamp (ms), used when the event has none.
    pub timestamp: Option<i64>,
    pub payload: Option<&'a [u8]>,
    /// Wall-clock time (epoch ms) when it was read: the clock events are judged by.
    pub now_ms: i64,
}

/// How a partition judges time, and what its windows count.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub windows: WindowConfig,
    /// How far ahead of the wall clock and its message timestamp an event may be.
    pub max_clock_skew_ms: i64,
    /// How long after its window closed a late event is still counted (a revision).
    pub revision_horizon_ms: i64,
    /// The goals and segments every window counts.
    pub spec: Arc<AggSpec>,
}

impl EngineConfig {
    /// How a partition judges time and what its windows count, from the command line.
    pub fn of(config: &crate::config::Config) -> Self {
        let w = &config.windows;
        EngineConfig {
            windows: w.config(),
            max_clock_skew_ms: w.max_clock_skew_ms(),
            revision_horizon_ms: w.revision_horizon_ms(),
            spec: Arc::new(config.aggregate.spec()),
        }
    }
}

/// What happened to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Folded into the window starting at this time.
    Folded(i64),
    /// Folded into the window starting at this time, which its partition had closed: a
    /// revision.
    Revised(i64),
    /// Must go to the dead-letter topic with this reason.
    Dead { reason: DeadReason, detail: String },
    /// Already counted before (offset below the stored next offset).
    Duplicate,
}

/// Window state and counters of one partition.
pub struct PartitionEngine {
    topic: String,
    partition: i32,
    decoder: Arc<Decoder>,
    cfg: EngineConfig,
    windows: PartitionWindows,
    /// Late events of closed windows since the last checkpoint, by window start.
    revisions: BTreeMap<i64, Aggregate>,
    /// Rows of the windows closed since the last checkpoint, encoded as they closed.
    closed: Vec<Row>,
    /// How many of `closed` the live path has handed over.
    closed_shown: usize,
    /// Dead letters their topic did not take, to record at the next checkpoint.
    undelivered: Vec<DeadLetterRecord>,
    cp: PartitionCheckpoint,
    /// Whether any offset exists (stored or read); without one the consumer starts at the log start.
    has_offset: bool,
    changed: bool,
    /// Whether windows changed since [`PartitionEngine::take_live_windows`].
    changed_live: bool,
    /// Messages read by this process.
    read: u64,
    /// Every message is decoded into this one event, reusing its allocations.
    scratch: Event,
}

impl PartitionEngine {
    /// Restore the partition's state from the store (empty if never seen).
    pub fn restore(
        store: &Store,
        topic: &str,
        partition: i32,
        engine_cfg: EngineConfig,
        decoder: Arc<Decoder>,
    ) -> Result<Self, StoreError> {
        let cfg = engine_cfg.windows;
        let (cp, has_offset) = match store.partition(topic, partition)? {
            Some(cp) => (cp, true),
            None => (PartitionCheckpoint::default(), false),
        };
        let open = match cp.max_event_ts {
            // Windows that may still be open: those ending after the watermark.
            Some(max) => store.partition_windows_from(
                topic,
                partition,
                max.saturating_sub(cfg.lateness_ms)
                    .saturating_sub(cfg.width_ms),
            )?,
            None => Vec::new(),
        };
        let windows = PartitionWindows::restore(cfg, cp.max_event_ts, open)
            .with_spec(engine_cfg.spec.clone());
        Ok(PartitionEngine {
            topic: topic.to_owned(),
            partition,
            decoder,
            cfg: engine_cfg,
            windows,
            revisions: BTreeMap::new(),
            closed: Vec::new(),
            closed_shown: 0,
            undelivered: Vec::new(),
            cp,
            has_offset,
            changed: false,
            changed_live: false,
            read: 0,
            scratch: Event::default(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The next offset to read, if this partition was ever checkpointed.
    pub fn stored_offset(&self) -> Option<i64> {
        self.has_offset.then_some(self.cp.next_offset)
    }

    /// The partition's watermark (its max event time less the allowed lateness).
    #[cfg(test)]
    pub fn watermark(&self) -> Option<i64> {
        self.windows.watermark()
    }

    pub fn checkpoint_state(&self) -> &PartitionCheckpoint {
        &self.cp
    }

    /// Fold one record.
    pub fn on_record(&mut self, rec: Record<'_>) -> Outcome {
        if self.has_offset && rec.offset < self.cp.next_offset {
            return Outcome::Duplicate;
        }
        self.has_offset = true;
        self.cp.next_offset = rec.offset + 1;
        self.changed = true;
        self.read += 1;
        let Some(payload) = rec.payload else {
            return self.dead(DeadReason::NotJson, "message has no value".to_owned());
        };
        if let Err(e) = self
            .decoder
            .decode_into(payload, rec.timestamp, &mut self.scratch)
        {
            return self.dead(e.reason, e.detail);
        }
        let ts = self.scratch.ts;
        let reference = rec.timestamp.map_or(rec.now_ms, |t| t.max(rec.now_ms));
        if ts > reference.saturating_add(self.cfg.max_clock_skew_ms) {
            return self.dead(
                DeadReason::Future,
                format!(
                    "event time {ts} is {} ms ahead of the clock and of its message timestamp (--max-clock-skew is {} ms)",
                    ts - reference,
                    self.cfg.max_clock_skew_ms
                ),
            );
        }
        match self.windows.on_event(&self.scratch) {
            Ok(start) => {
                self.changed_live = true;
                self.cp.events += 1;
                self.cp.max_event_ts = self.windows.max_event_ts();
                while let Some((s, agg, changed)) = self.windows.pop_closed() {
                    if changed {
                        self.closed.push(Row::closed(s, agg));
                    }
                }
                Outcome::Folded(start)
            }
            Err(late) => {
                self.cp.late += 1;
                let end = late.window_start + self.cfg.windows.width_ms;
                if end.saturating_add(self.cfg.revision_horizon_ms) < late.watermark {
                    return self.dead(
                        DeadReason::TooLate,
                        format!(
                            "window starting at {} closed more than the revision horizon ({} ms) before the partition's watermark {}",
                            late.window_start, self.cfg.revision_horizon_ms, late.watermark
                        ),
                    );
                }
                self.revisions
                    .entry(late.window_start)
                    .or_default()
                    .add_with(&self.scratch, &self.cfg.spec);
                self.cp.events += 1;
                self.cp.revised_events += 1;
                Outcome::Revised(late.window_start)
            }
        }
    }

    fn dead(&mut self, reason: DeadReason, detail: String) -> Outcome {
        *self
            .cp
            .dead_letters
            .entry(reason.as_str().to_owned())
            .or_default() += 1;
        Outcome::Dead { reason, detail }
    }

    /// Continue where another owner of the partition stopped: its committed offset, and the
    /// max event time it had folded, so lateness is judged as it would have been.
    pub fn adopt_handover(&mut self, next_offset: i64, max_event_ts: Option<i64>) {
        self.has_offset = true;
        self.cp.next_offset = next_offset;
        let max = self.cp.max_event_ts.max(max_event_ts);
        if max != self.cp.max_event_ts {
            let cfg = self.windows.config();
            let open: Vec<(i64, Aggregate)> = self
                .windows
                .open_windows()
                .map(|(s, a)| (s, a.clone()))
                .collect();
            self.windows =
                PartitionWindows::restore(cfg, max, open).with_spec(self.cfg.spec.clone());
            self.cp.max_event_ts = max;
        }
        self.changed = true;
    }

    /// The stored offset was outside the log and the consumer is repositioned: accept the
    /// offsets the log now has (window state and counters stay).
    ///
    /// `target` is the offset reading restarts at: it is what the next checkpoint stores, so
    /// a crash right after the reset restarts there again and skips nothing. Without one
    /// (the log's bounds could not be looked up) the next record's offset is taken as it is.
    pub fn reset_offset(&mut self, target: Option<i64>) {
        match target {
            Some(t) => {
                self.has_offset = true;
                self.cp.next_offset = t;
            }
            None => self.has_offset = false,
        }
        self.cp.offset_resets += 1;
        self.changed = true;
    }

    /// Messages read by this process (not persisted).
    pub fn read_since_start(&self) -> u64 {
        self.read
    }

    /// Carry the count of messages read over to an engine restored in this process.
    pub fn set_read_since_start(&mut self, read: u64) {
        self.read = read;
    }

    /// Make the next [`PartitionEngine::prepare`] write a checkpoint even if nothing
    /// changed (the last one before a partition is released keeps the group's offset
    /// current).
    pub fn touch(&mut self) {
        self.changed = true;
    }

    /// A checkpoint with sequence `burned` may have been committed although its
    /// transaction reported failure: the next one gets a higher sequence, so no two
    /// different checkpoints of the partition ever share one.
    pub fn keep_seq_above(&mut self, burned: u64) {
        self.cp.seq = self.cp.seq.max(burned);
    }

    /// Whether anything changed since the last checkpoint.
    pub fn needs_checkpoint(&self) -> bool {
        self.changed
    }

    /// How many window rows the next checkpoint writes at most: the windows changed since
    /// the last one and the closed ones that took late events.
    pub fn changed_windows(&self) -> usize {
        self.closed.len() + self.windows.dirty_len() + self.revisions.len()
    }

    /// Record a dead letter its topic did not take: it is written to the store with the next
    /// checkpoint, so the offset never passes it unrecorded.
    pub fn record_undelivered(&mut self, record: DeadLetterRecord) {
        self.cp.dead_letters_recorded += 1;
        self.undelivered.push(record);
        self.changed = true;
    }

    /// What the next checkpoint writes (see the module docs), or `None` when nothing
    /// changed since the last one. The engine counts it as written: the caller makes it
    /// durable before it prepares another, or restores the engine from the store.
    pub fn prepare(&mut self, store: &Store) -> Result<Option<PartitionWrite>, StoreError> {
        if !self.changed {
            return Ok(None);
        }
        let mut closed = std::mem::take(&mut self.closed);
        self.closed_shown = 0;
        let mut rows = self.windows.take_dirty();
        let revisions = std::mem::take(&mut self.revisions);
        let mut from_store = Vec::new();
        for (start, late) in &revisions {
            // A window can take on-time events and then, once closed, late ones between two
            // checkpoints: its late events go into its row or dirty copy, which the store
            // lacks.
            if let Some((_, row)) = rows.iter_mut().find(|(s, _)| s == start) {
                row.merge(late);
            } else if let Some(row) = closed.iter_mut().find(|r| r.start == *start) {
                let mut whole = crate::store::row::decode_all(&row.stored)?;
                whole.merge(late);
                *row = Row::closed(*start, whole);
            } else {
                from_store.push((*start, late.clone()));
            }
        }
        rows.extend(store.merged_rows(&self.topic, self.partition, &from_store)?);
        // Encoded once, here or as they closed: the store and the state topic write these.
        closed.extend(rows.into_iter().map(|(s, a)| Row::new(s, a)));
        closed.sort_by_key(|r| r.start);
        self.cp.seq += 1;
        self.changed = false;
        Ok(Some(PartitionWrite {
            topic: self.topic.clone(),
            partition: self.partition,
            checkpoint: self.cp.clone(),
            rows: closed,
            revised: revisions.keys().copied().collect(),
            undelivered: std::mem::take(&mut self.undelivered),
            owner: None,
        }))
    }

    /// Whether this engine holds windows that are open (for live display).
    pub fn is_open(&self, start: i64) -> bool {
        self.windows.open_windows().any(|(s, _)| s == start)
    }

    /// Whether open windows changed since the last [`PartitionEngine::take_live_windows`].
    pub fn has_live_changes(&self) -> bool {
        self.changed_live
    }

    /// The figures of the open windows (without their segment tables: a fraction of the
    /// whole to copy) if any changed since the last call, for live display, after those of
    /// the windows that closed since the last call (their final figures, before their
    /// checkpoint brings their rows).
    pub fn take_live_windows(&mut self) -> Option<Vec<(i64, Aggregate)>> {
        if !std::mem::take(&mut self.changed_live) {
            return None;
        }
        let closed = self.closed[self.closed_shown..]
            .iter()
            .map(|r| (r.start, r.agg.figures_only()));
        let open = self
            .windows
            .open_windows()
            .map(|(s, a)| (s, a.figures_only()));
        let windows = closed.chain(open).collect();
        self.closed_shown = self.closed.len();
        Some(windows)
    }

    /// The figures of an open window (see [`Self::take_live_windows`]).
    pub fn live_window(&self, start: i64) -> Option<Aggregate> {
        self.windows
            .open_windows()
            .find(|(s, _)| *s == start)
            .map(|(_, a)| a.figures_only())
    }
}

#[cfg(test)]
mod tests;
