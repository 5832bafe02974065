//! Trees `offsets`, `owners` and the state-topic positions: where each partition is, who
//! wrote that, and how far this store has read the state topic; and the one transaction
//! that writes a partition's checkpoint across the trees.
//!
//! Contract:
//! - Tree `offsets`: key `(topic, partition)` → [`PartitionCheckpoint`] (postcard): the
//!   next offset to read, the partition's max event time (its watermark state), its
//!   counters and `seq`, the number of checkpoints written for it (by any instance).
//!   Without a state topic it is the source of truth for resume (the Kafka commit is
//!   advisory); with one, it is a local copy of what the state topic holds (see `record`).
//! - Tree `owners`: key `(topic, partition)` → [`OwnerRecord`] (JSON): the instance that
//!   wrote the partition's last checkpoint, its URL, and what it saw then.
//! - The state-topic positions, tree [`STATE_POSITIONS_TREE`] (named `changelog` on disk):
//!   key state-topic partition → the next offset of the state topic this store has applied
//!   (see `ingest::state_reader`).
//! - [`Store::write`] writes checkpoints of partitions in ONE sled transaction across the
//!   trees: per partition its window rows as they now stand (open windows as they are,
//!   closed ones already merged with their late events by [`Store::merged_rows`]), its
//!   revised marks, its undelivered dead letters, its owner and its checkpoint; then
//!   flushes to disk. A crash at any instant leaves either the old or the new state, never
//!   a mix. The state topic's reader applies other instances' checkpoints the same way
//!   ([`Store::apply_remote`]), with the position it read them at in the same transaction.
//!   Neither ever replaces a checkpoint by one with a lower `seq`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::keys::{
    dead_letter_key, dec_i32, dec_i64, decode_partition_key, enc_i32, enc_i64, partition_key,
    window_key,
};
use super::row::Row;
use super::{abort, committed, DeadLetterRecord, Store, StoreError};

/// The sled tree of the state-topic positions. Its name on disk is older than the name
/// "state topic" and stays: the store's format does not change.
pub(super) const STATE_POSITIONS_TREE: &str = "changelog";

/// What is stored per partition, written atomically with the windows it covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartitionCheckpoint {
    /// Next Kafka offset to read.
    pub next_offset: i64,
    /// Max event time folded so far (the watermark is this minus the allowed lateness).
    pub max_event_ts: Option<i64>,
    /// Events folded into windows.
    pub events: u64,
    /// Late events (also counted in `dead_letters`, under reason `late`).
    pub late: u64,
    /// Dead letters by reason name.
    pub dead_letters: BTreeMap<String, u64>,
    /// Times the stored offset was found outside the log and reset (`--offset-reset`).
    pub offset_resets: u64,
    /// Late events folded into windows already closed (revisions).
    pub revised_events: u64,
    /// Dead letters recorded in the store because their topic did not take them.
    pub dead_letters_recorded: u64,
    /// Checkpoints written so far (strictly increasing; the state topic's version of this
    /// partition's records, see `record`).
    #[serde(default)]
    pub seq: u64,
}

impl PartitionCheckpoint {
    /// All dead letters of this partition.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

/// Who checkpointed a partition last, and what it saw then (tree `owners`; JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The instance (its id in the group, see [`Store::instance_id`]).
    pub id: String,
    /// Where that instance serves its dashboard.
    pub url: String,
    /// The partition's high watermark as the owner last saw it.
    pub high_watermark: Option<i64>,
    /// Wall-clock time (epoch ms) of the last message the owner read.
    pub last_read_ms: Option<i64>,
    /// Wall-clock time (epoch ms) of the checkpoint.
    pub at_ms: i64,
}

/// What one checkpoint of a partition writes: the rows as they now stand.
#[derive(Debug, Clone, Default)]
pub struct PartitionWrite {
    pub topic: String,
    pub partition: i32,
    pub checkpoint: PartitionCheckpoint,
    /// Window rows as they now stand: open windows as they are, closed ones merged with
    /// their late events ([`Store::merged_rows`]); each encoded once.
    pub rows: Vec<Row>,
    /// Starts of the windows this checkpoint marks revised (they took late events).
    pub revised: Vec<i64>,
    /// Dead letters their topic did not take.
    pub undelivered: Vec<DeadLetterRecord>,
    /// Who wrote it (with a state topic).
    pub owner: Option<OwnerRecord>,
}

/// A [`PartitionWrite`] encoded for sled, outside the transaction (which may run twice).
struct EncodedWrite {
    key: Vec<u8>,
    seq: u64,
    checkpoint: Vec<u8>,
    rows: Vec<(Vec<u8>, Arc<[u8]>)>,
    revised: Vec<i64>,
    dead: Vec<(Vec<u8>, Vec<u8>)>,
    owner: Option<Vec<u8>>,
}

/// The window starts of the rows of the `applied` writes.
fn counted<'a>(writes: &'a [EncodedWrite], applied: &'a [bool]) -> impl Iterator<Item = i64> + 'a {
    writes
        .iter()
        .zip(applied)
        .filter(|(_, a)| **a)
        .flat_map(|(w, _)| w.rows.iter().filter_map(|(k, _)| dec_i64(k)))
}

impl EncodedWrite {
    fn new(w: &PartitionWrite) -> Result<Self, StoreError> {
        let mut dead = Vec::with_capacity(w.undelivered.len());
        for d in &w.undelivered {
            dead.push((
                dead_letter_key(&d.topic, d.partition, d.offset),
                postcard::to_allocvec(d)?,
            ));
        }
        Ok(EncodedWrite {
            key: partition_key(&w.topic, w.partition),
            seq: w.checkpoint.seq,
            checkpoint: postcard::to_allocvec(&w.checkpoint)?,
            rows: w
                .rows
                .iter()
                .map(|r| (window_key(r.start, &w.topic, w.partition), r.stored.clone()))
                .collect(),
            revised: w.revised.clone(),
            dead,
            // Plain strings and numbers: serialising cannot fail.
            owner: w
                .owner
                .as_ref()
                .map(|o| serde_json::to_vec(o).unwrap_or_default()),
        })
    }
}

impl Store {
    /// The stored checkpoint of a partition, if any.
    pub fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<PartitionCheckpoint>, StoreError> {
        match self.offsets.get(partition_key(topic, partition))? {
            Some(v) => Ok(Some(postcard::from_bytes(&v)?)),
            None => Ok(None),
        }
    }

    /// Every stored partition checkpoint.
    pub fn partitions(&self) -> Result<Vec<(String, i32, PartitionCheckpoint)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.offsets.iter() {
            let (k, v) = kv?;
            if let Some((topic, p)) = decode_partition_key(&k) {
                out.push((topic, p, postcard::from_bytes(&v)?));
            }
        }
        Ok(out)
    }

    /// Forget where a partition was (its windows stay). Used when the log it referred to is gone.
    pub fn forget_partition(&self, topic: &str, partition: i32) -> Result<(), StoreError> {
        self.offsets.remove(partition_key(topic, partition))?;
        Ok(())
    }

    /// Write checkpoints of partitions, in ONE sled transaction across the trees (see the
    /// module docs), then flush to disk: durable when this returns. A partition whose stored
    /// checkpoint has a higher `seq` is left as it is (a newer owner's state, applied from
    /// the state topic, is never overwritten by an older one). Returns, per write, whether
    /// it was applied.
    pub async fn write(&self, writes: &[PartitionWrite]) -> Result<Vec<bool>, StoreError> {
        let encoded = writes
            .iter()
            .map(EncodedWrite::new)
            .collect::<Result<Vec<_>, _>>()?;
        let applied = self.transact(&encoded, None, |stored, seq| seq >= stored)?;
        self.note_counted(counted(&encoded, &applied))?;
        self.db.flush_async().await?;
        Ok(applied)
    }

    /// Apply one partition's checkpoint read from the state topic when it is newer (by
    /// `seq`) than the stored one, and record the state-topic position `position` (state
    /// partition, next offset to read) in the same sled transaction. Not flushed: a crash
    /// loses the write and the position together, and the records are read again.
    /// Returns whether the checkpoint was newer.
    pub fn apply_remote(
        &self,
        write: &PartitionWrite,
        position: (i32, i64),
    ) -> Result<bool, StoreError> {
        let encoded = [EncodedWrite::new(write)?];
        let applied = self.transact(&encoded, Some(position), |stored, seq| seq > stored)?;
        self.note_counted(counted(&encoded, &applied))?;
        Ok(applied.first().copied().unwrap_or(false))
    }

    /// The one transaction behind [`Store::write`] and [`Store::apply_remote`]: each write
    /// whose `seq` passes `newer(stored seq, seq)` is applied whole.
    fn transact(
        &self,
        writes: &[EncodedWrite],
        position: Option<(i32, i64)>,
        newer: impl Fn(u64, u64) -> bool,
    ) -> Result<Vec<bool>, StoreError> {
        let trees = (
            &self.offsets,
            &self.windows,
            &self.dead_letters,
            &self.revised,
            &self.owners,
            &self.state_positions,
        );
        let result = trees.transaction(
            |(offsets, windows, dead_letters, marks, owners, positions)| {
                let mut applied = Vec::with_capacity(writes.len());
                for w in writes {
                    let stored_seq = match offsets.get(&w.key)? {
                        Some(v) => {
                            postcard::from_bytes::<PartitionCheckpoint>(&v)
                                .map_err(abort)?
                                .seq
                        }
                        None => 0,
                    };
                    if !newer(stored_seq, w.seq) {
                        applied.push(false);
                        continue;
                    }
                    for (k, v) in &w.rows {
                        windows.insert(k.as_slice(), &v[..])?;
                    }
                    for s in &w.revised {
                        marks.insert(&enc_i64(*s), &[])?;
                    }
                    for (k, v) in &w.dead {
                        dead_letters.insert(k.as_slice(), v.as_slice())?;
                    }
                    if let Some(o) = &w.owner {
                        owners.insert(w.key.as_slice(), o.as_slice())?;
                    }
                    offsets.insert(w.key.as_slice(), w.checkpoint.as_slice())?;
                    applied.push(true);
                }
                if let Some((p, next)) = position {
                    positions.insert(&enc_i32(p), &enc_i64(next))?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(applied)
            },
        );
        committed(result)
    }

    /// Record the state-topic position of records that needed no write.
    pub fn set_state_topic_position(
        &self,
        state_partition: i32,
        next: i64,
    ) -> Result<(), StoreError> {
        self.state_positions
            .insert(enc_i32(state_partition), &enc_i64(next))?;
        Ok(())
    }

    /// The state-topic positions this store has applied, by state partition.
    pub fn state_topic_positions(&self) -> Result<BTreeMap<i32, i64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.state_positions.iter() {
            let (k, v) = kv?;
            if let (Some(p), Some(o)) = (dec_i32(&k), dec_i64(&v)) {
                out.insert(p, o);
            }
        }
        Ok(out)
    }

    /// Who last checkpointed each partition, as the store knows it.
    pub fn owners(&self) -> Result<Vec<(String, i32, OwnerRecord)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.owners.iter() {
            let (k, v) = kv?;
            let (Some((topic, p)), Ok(o)) = (
                decode_partition_key(&k),
                serde_json::from_slice::<OwnerRecord>(&v),
            ) else {
                continue;
            };
            out.push((topic, p, o));
        }
        Ok(out)
    }
}
