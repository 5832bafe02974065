//! The per-partition engine: decode, assign to event-time windows, count, checkpoint.
//!
//! Contract:
//! - A [`PartitionEngine`] owns the window state of exactly one partition. It knows nothing
//!   of Kafka client types or sockets: it gets plain [`Record`]s and says what to do with
//!   the bad ones ([`Outcome::Dead`]); the caller publishes dead letters.
//! - Every record advances `next_offset`, good or bad, so a poison message is never retried.
//! - A record below `next_offset` (redelivered after a seek or rebalance) is ignored: it was
//!   already counted.
//! - [`PartitionEngine::checkpoint`] writes the dirty windows and the partition's checkpoint
//!   (offset, watermark state, counters) in one atomic store write. The state after a
//!   restore is exactly the state at the last checkpoint, so replaying from the stored offset
//!   produces exactly what an uninterrupted run would have.

use std::sync::Arc;

use pulseboard_model::agg::Aggregate;
use pulseboard_model::event::{DeadReason, Decoder, Event};
use pulseboard_model::window::{PartitionWindows, WindowConfig};

use crate::store::{PartitionCheckpoint, Store, StoreError};

/// A message of the partition, stripped of client types.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub offset: i64,
    /// Kafka message timestamp (ms), used when the event has none.
    pub timestamp: Option<i64>,
    pub payload: Option<&'a [u8]>,
}

/// What happened to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Folded into the window starting at this time.
    Folded(i64),
    /// Must go to the dead-letter topic with this reason.
    Dead { reason: DeadReason, detail: String },
    /// Already counted before (offset below the stored next offset).
    Duplicate,
}

/// What one checkpoint wrote.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    pub next_offset: i64,
    /// The windows written, as written.
    pub windows: Vec<(i64, Aggregate)>,
}

/// Window state and counters of one partition.
pub struct PartitionEngine {
    topic: String,
    partition: i32,
    decoder: Arc<Decoder>,
    windows: PartitionWindows,
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
        cfg: WindowConfig,
        decoder: Arc<Decoder>,
    ) -> Result<Self, StoreError> {
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
        let windows = PartitionWindows::restore(cfg, cp.max_event_ts, open);
        Ok(PartitionEngine {
            topic: topic.to_owned(),
            partition,
            decoder,
            windows,
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

    pub fn checkpoint_state(&self) -> &PartitionCheckpoint {
        &self.cp
    }

    pub fn watermark(&self) -> Option<i64> {
        self.windows.watermark()
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
        match self.windows.on_event(&self.scratch) {
            Ok(start) => {
                self.changed_live = true;
                self.cp.events += 1;
                self.cp.max_event_ts = self.windows.max_event_ts();
                Outcome::Folded(start)
            }
            Err(late) => {
                self.cp.late += 1;
                self.dead(
                    DeadReason::Late,
                    format!(
                        "window starting at {} closed: partition watermark is {}",
                        late.window_start, late.watermark
                    ),
                )
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
            self.windows = PartitionWindows::restore(cfg, max, open);
            self.cp.max_event_ts = max;
        }
        self.changed = true;
    }

    /// The stored offset was outside the log and the consumer is repositioned: accept the
    /// offsets the log now has (window state and counters stay).
    pub fn reset_offset(&mut self) {
        self.has_offset = false;
        self.cp.offset_resets += 1;
        self.changed = true;
    }

    /// Messages read by this process (not persisted).
    pub fn read_since_start(&self) -> u64 {
        self.read
    }

    /// Whether anything changed since the last checkpoint.
    pub fn needs_checkpoint(&self) -> bool {
        self.changed
    }

    /// Write the dirty windows and the checkpoint atomically; durable when this returns.
    pub async fn checkpoint(&mut self, store: &Store) -> Result<CheckpointReport, StoreError> {
        let dirty = self.windows.take_dirty();
        store
            .checkpoint(&self.topic, self.partition, &self.cp, &dirty)
            .await?;
        self.changed = false;
        Ok(CheckpointReport {
            next_offset: self.cp.next_offset,
            windows: dirty,
        })
    }

    /// Whether open windows changed since the last [`PartitionEngine::take_live_windows`].
    pub fn has_live_changes(&self) -> bool {
        self.changed_live
    }

    /// Copies of the open windows if any changed since the last call (for live display).
    pub fn take_live_windows(&mut self) -> Option<Vec<(i64, Aggregate)>> {
        if !std::mem::take(&mut self.changed_live) {
            return None;
        }
        Some(
            self.windows
                .open_windows()
                .map(|(s, a)| (s, a.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::event::FieldMapping;

    fn engine(store: &Store) -> PartitionEngine {
        let cfg = WindowConfig {
            width_ms: 10_000,
            lateness_ms: 5_000,
        };
        let decoder = Arc::new(Decoder::new(FieldMapping::new(Default::default(), &[])));
        PartitionEngine::restore(store, "clicks", 0, cfg, decoder).expect("restore")
    }

    fn ev(ts: i64, visitor: &str) -> String {
        format!(r#"{{"ts":{ts},"type":"pageview","visitor":"{visitor}","url":"/"}}"#)
    }

    #[tokio::test]
    async fn restore_continues_exactly_where_checkpoint_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let payloads = [
            ev(1_000_000_000_000, "a"),
            ev(1_000_000_001_000, "b"),
            "garbage".to_owned(),
            ev(1_000_000_030_000, "c"),
            // Late: its window ended before the watermark (30 s - 5 s).
            ev(1_000_000_002_000, "d"),
        ];
        let mut e = engine(&store);
        assert_eq!(e.stored_offset(), None);
        for (i, p) in payloads.iter().enumerate().take(2) {
            let rec = Record {
                offset: i as i64,
                timestamp: None,
                payload: Some(p.as_bytes()),
            };
            assert!(matches!(e.on_record(rec), Outcome::Folded(_)));
        }
        e.checkpoint(&store).await.expect("checkpoint");
        // Records after the checkpoint are lost in a "crash"...
        let rec = Record {
            offset: 2,
            timestamp: None,
            payload: Some(payloads[2].as_bytes()),
        };
        assert!(matches!(
            e.on_record(rec),
            Outcome::Dead {
                reason: DeadReason::NotJson,
                ..
            }
        ));
        drop(e);
        // ...and replayed after restore, from the stored offset.
        let mut e = engine(&store);
        assert_eq!(e.stored_offset(), Some(2));
        let dup = Record {
            offset: 1,
            timestamp: None,
            payload: Some(payloads[1].as_bytes()),
        };
        assert_eq!(e.on_record(dup), Outcome::Duplicate);
        let mut outcomes = Vec::new();
        for (i, p) in payloads.iter().enumerate().skip(2) {
            let rec = Record {
                offset: i as i64,
                timestamp: None,
                payload: Some(p.as_bytes()),
            };
            outcomes.push(e.on_record(rec));
        }
        assert!(matches!(
            outcomes[2],
            Outcome::Dead {
                reason: DeadReason::Late,
                ..
            }
        ));
        e.checkpoint(&store).await.expect("checkpoint");
        let cp = store.partition("clicks", 0).expect("read").expect("stored");
        assert_eq!(cp.next_offset, 5);
        assert_eq!(cp.events, 3);
        assert_eq!(cp.late, 1);
        assert_eq!(cp.dead_letters.get("not_json"), Some(&1));
        assert_eq!(cp.dead_letters.get("late"), Some(&1));
        let rows = store.windows_in(0, i64::MAX).expect("rows");
        let total: u64 = rows.iter().map(|w| w.agg.events).sum();
        assert_eq!(total, 3);
    }
}
