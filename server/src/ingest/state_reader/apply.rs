//! Applying the state topic to this instance: records held per input partition until its
//! progress record, then its whole checkpoint written to the store in one transaction and
//! shown (hub, status). No Kafka here: the reader's loop ([`super`]) hands records over as
//! bytes, so the rules are tested without a broker (see the contract in `state_reader`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::hub::{self, Hub};
use crate::progress::{PartitionCounts, Progress};
use crate::store::record::{self, StateRecord};
use crate::store::{DeadLetterRecord, PartitionWrite, Store, StoreError};
use crate::telemetry;

/// What applying needs.
pub struct ApplyTo {
    /// The state topic's partition count (caught up once every one reported its end).
    pub partitions: i32,
    /// This instance's id (its own checkpoints are published by its partition tasks).
    pub instance_id: String,
    pub lateness_ms: i64,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub hub: Arc<Hub>,
}

/// Records of one input partition held until its progress record.
struct Held {
    /// State partition, and the offset of the first record held.
    state_partition: i32,
    first: i64,
    /// Window start → the record's value, undecoded.
    windows: BTreeMap<i64, Vec<u8>>,
    dead: Vec<DeadLetterRecord>,
}

/// The state topic applied to this instance, record by record.
pub struct Applier {
    p: ApplyTo,
    applied: watch::Sender<u64>,
    held: HashMap<(String, i32), Held>,
    at_end: HashSet<i32>,
    caught_up: bool,
    started: Instant,
    records: u64,
}

impl Applier {
    /// Bumps `applied` after every checkpoint it applies.
    pub fn new(p: ApplyTo, applied: watch::Sender<u64>) -> Self {
        Applier {
            p,
            applied,
            held: HashMap::new(),
            at_end: HashSet::new(),
            caught_up: false,
            started: Instant::now(),
            records: 0,
        }
    }

    /// State partition `p` reported its end.
    pub fn at_end(&mut self, p: i32) {
        self.at_end.insert(p);
        if !self.caught_up && self.at_end.len() as i32 >= self.p.partitions {
            self.caught_up = true;
            self.p.progress.set_state_caught_up();
            telemetry::state_topic_caught_up(self.records, self.started.elapsed());
        }
    }

    /// The state-topic position that can be recorded for `sp` after a record at `offset`:
    /// never past a record still held.
    fn safe_position(&self, sp: i32, offset: i64) -> i64 {
        self.held
            .values()
            .filter(|h| h.state_partition == sp)
            .map(|h| h.first)
            .fold(offset + 1, i64::min)
    }

    fn hold(&mut self, sp: i32, offset: i64, topic: String, partition: i32) -> &mut Held {
        self.held.entry((topic, partition)).or_insert_with(|| Held {
            state_partition: sp,
            first: offset,
            windows: BTreeMap::new(),
            dead: Vec::new(),
        })
    }

    /// One record of state partition `sp` at `offset`.
    pub fn on_record(
        &mut self,
        sp: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.records += 1;
        let Some(key) = key else {
            telemetry::state_record_unreadable("no key");
            let at = self.safe_position(sp, offset);
            return self.p.store.set_state_topic_position(sp, at);
        };
        // Window values are decoded only when their checkpoint is applied.
        let record = match record::Key::decode(key) {
            Ok(record::Key::Window {
                topic,
                partition,
                start,
            }) => match value {
                Some(v) => {
                    self.hold(sp, offset, topic, partition)
                        .windows
                        .insert(start, v.to_vec());
                    return Ok(());
                }
                None => StateRecord::Window {
                    topic,
                    partition,
                    start,
                    value: None,
                },
            },
            Ok(_) => match record::decode_record(key, value) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(partition = sp, offset, error = %e, "unreadable state record skipped");
                    telemetry::state_record_unreadable("value");
                    let at = self.safe_position(sp, offset);
                    return self.p.store.set_state_topic_position(sp, at);
                }
            },
            Err(e) => {
                tracing::warn!(partition = sp, offset, error = %e, "unreadable state record skipped");
                telemetry::state_record_unreadable("key");
                let at = self.safe_position(sp, offset);
                return self.p.store.set_state_topic_position(sp, at);
            }
        };
        match record {
            StateRecord::Window {
                topic,
                partition,
                start,
                ..
            } => {
                // A tombstone: the owner's retention rolled the window up. This store's own
                // retention pass rolls it up here (a window past retention cannot change),
                // so the row stays until then: deleting it would lose it from this
                // instance's history.
                if let Some(h) = self.held.get_mut(&(topic.clone(), partition)) {
                    h.windows.remove(&start);
                }
                let at = self.safe_position(sp, offset);
                self.p.store.set_state_topic_position(sp, at)
            }
            StateRecord::DeadLetter(Some(d)) => {
                let (topic, partition) = (d.topic.clone(), d.partition);
                self.hold(sp, offset, topic, partition).dead.push(d);
                Ok(())
            }
            StateRecord::DeadLetter(None) | StateRecord::Progress { value: None, .. } => {
                let at = self.safe_position(sp, offset);
                self.p.store.set_state_topic_position(sp, at)
            }
            StateRecord::Instance { id, value } => {
                self.p
                    .progress
                    .set_instance_url(&id, value.as_ref().map(|v| v.url.as_str()));
                let at = self.safe_position(sp, offset);
                self.p.store.set_state_topic_position(sp, at)
            }
            StateRecord::Progress {
                topic,
                partition,
                value: Some(progress),
            } => self.apply(sp, offset, topic, partition, progress),
        }
    }

    /// A partition's progress record: apply its checkpoint with the records held for it.
    fn apply(
        &mut self,
        sp: i32,
        offset: i64,
        topic: String,
        partition: i32,
        progress: record::ProgressValue,
    ) -> Result<(), StoreError> {
        let held = self.held.remove(&(topic.clone(), partition));
        let at = self.safe_position(sp, offset);
        let stored_seq = self
            .p
            .store
            .partition(&topic, partition)?
            .map_or(0, |cp| cp.seq);
        let seq = progress.checkpoint.seq;
        let mut write = PartitionWrite {
            topic: topic.clone(),
            partition,
            checkpoint: progress.checkpoint.clone(),
            owner: Some(progress.owner_record()),
            ..Default::default()
        };
        if seq > stored_seq {
            if let Some(h) = held {
                write.undelivered = h.dead;
                for (start, raw) in h.windows {
                    match record::Window::decode(&raw) {
                        Ok(w) => {
                            if w.value.revised {
                                write.revised.push(start);
                            }
                            // The value carries the stored row: written as it came.
                            write.rows.push(w.into_row(start));
                        }
                        Err(e) => {
                            tracing::warn!(topic, partition, start, error = %e, "unreadable window record skipped");
                            telemetry::state_record_unreadable("window");
                        }
                    }
                }
            }
        }
        let applied = self.p.store.apply_remote(&write, (sp, at))?;
        if applied {
            self.publish(&write);
            self.applied.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Show another instance's checkpoint: status, revised marks, hub. The hub takes its
    /// windows also when the partition was just assigned here (its task restores from
    /// this very checkpoint and publishes only what it changes afterwards); the status
    /// is left to the partition's task then.
    fn publish(&self, write: &PartitionWrite) {
        let (topic, partition) = (write.topic.as_str(), write.partition);
        let Some(owner) = write.owner.clone() else {
            return;
        };
        let local = self.p.progress.is_local(topic, partition);
        if owner.id == self.p.instance_id && local {
            // This instance's own checkpoint, read back before its committer stored it:
            // its partition task publishes it (and fresher open windows than these).
            return;
        }
        // Another instance's checkpoint, or one of an earlier run of this instance that
        // was committed but not stored before it stopped (a SIGKILL): the hub loaded the
        // store before it came.
        let rows: Vec<(i64, hub::Held)> = write
            .rows
            .iter()
            .map(|r| (r.start, hub::Held::from(r)))
            .collect();
        self.p.hub.update(topic, partition, rows);
        if local {
            return;
        }
        let cp = &write.checkpoint;
        let written: Vec<i64> = write.rows.iter().map(|r| r.start).collect();
        self.p.progress.mark_revised(write.revised.iter().copied());
        let newly = self.p.progress.publish_remote(
            topic,
            partition,
            PartitionCounts::from(cp),
            cp.max_event_ts
                .map(|m| m.saturating_sub(self.p.lateness_ms)),
            owner,
            &written,
        );
        if !newly.is_empty() {
            if let Err(e) = self.p.store.mark_revised(&newly) {
                tracing::error!(error = %e, "cannot mark windows revised");
            }
        }
    }
}

#[cfg(test)]
mod tests;
