//! The sled layout, in one place.
//!
//! Contract:
//! - Tree `offsets`: key `(topic, partition)` → [`PartitionCheckpoint`]: the next offset to
//!   read, the partition's max event time (its watermark state), its counters and `seq`,
//!   the number of checkpoints written for it (by any instance). Without a state topic it
//!   is the source of truth for resume (the Kafka commit is advisory); with one, it is a
//!   local copy of what the state topic holds (see `state_topic`).
//! - Tree `windows`: key `(window start, topic, partition)` → encoded
//!   [`Aggregate`](pulseboard_model::agg::Aggregate). Keys sort by window start first, so a
//!   time range is one range scan.
//! - Tree `meta`: `format_version`, `window_ms` and `instance_id` (this store's instance
//!   in the consumer group, random, made on first use: [`Store::instance_id`]). A store
//!   written with another window size is refused with a message that says what to do.
//! - Tree `dead_letters`: key `(topic, partition, offset)` → [`DeadLetterRecord`]: dead
//!   letters their topic did not take (too large, topic missing, not authorized, not
//!   delivered in time), kept so that no message is ever passed over unrecorded.
//! - Tree `revised`: key window start → empty: windows that took late events (written in
//!   the checkpoint that folds them), or changed after they were shown final.
//! - Tree `salts`: key UTC day number (days since the epoch) → 32 random bytes, the salt of
//!   that day's cookieless visitor ids (see `enrich`). Created on first use in its day
//!   ([`Store::salt_of_day`]); the salts of earlier days are deleted as soon as a later
//!   day's exists, and by every retention pass ([`Store::discard_salts_before`]), so a
//!   visitor id can never be recomputed for a day that is over.
//! - Tree `owners`: key `(topic, partition)` → [`OwnerRecord`] (JSON): the instance that
//!   wrote the partition's last checkpoint, its URL, and what it saw then.
//! - Tree `changelog`: key state-topic partition → the next offset of the state topic
//!   this store has applied (see `ingest::changelog`).
//! - Tree `rollups` (history, see [`pulseboard_model::rollup`]): key `(level, bucket start,
//!   topic, partition)` → encoded aggregate, `level` one byte (1 = minute, 2 = hour) so a
//!   level's time range is one range scan, and the partition kept so a bucket can be
//!   replicated per partition like a window. Filled by [`Store::roll_up_windows`] (windows
//!   before a cut-off → minute buckets) and [`Store::roll_up_minutes`] (minute buckets →
//!   hour buckets); emptied by [`Store::delete_history_before`]. Each bucket is written in
//!   ONE sled transaction that reads its sources, merges them into the bucket row (a
//!   read-modify-write, so a bucket rolled up in several passes adds up) and deletes them:
//!   a crash at any instant leaves the sources or the bucket, never both or neither, so
//!   nothing is lost or counted twice. Readers of history take [`Store::history_read`]
//!   while they read windows and buckets, and a bucket's transaction commits under the
//!   matching write lock, so a reader never sees a row in both places or in neither.
//! - Tree `annotations`: key `(ts, id)` → [`AnnotationRecord`] (a marker: a deploy, a
//!   campaign), `id` from sled's monotonic id generator.
//! - [`Store::write`] writes checkpoints of partitions in ONE sled transaction across the
//!   trees: per partition its window rows as they now stand (open windows as they are,
//!   closed ones already merged with their late events by [`Store::merged_rows`]), its
//!   revised marks, its undelivered dead letters, its owner and its checkpoint; then
//!   flushes to disk. A crash at any instant leaves either the old or the new state, never
//!   a mix. The state topic's reader applies other instances' checkpoints the same way
//!   ([`Store::apply_remote`]), with the position it read them at in the same transaction.
//!   Neither ever replaces a checkpoint by one with a lower `seq`.
//!
//! Keys are big-endian with the sign bit flipped, so byte order equals numeric order
//! (negative window starts included).

pub mod record;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use pulseboard_model::agg::{AggError, Aggregate, Keep};
use pulseboard_model::rollup::{self, Level};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// Version of the on-disk layout described above (2: exact sparse HyperLogLogs; 3: revised
/// events and recorded dead letters in the partition checkpoint, trees `dead_letters` and
/// `revised`; 4: the checkpoint sequence `seq`, trees `changelog` and `owners`, the
/// `instance_id` in `meta`). Version-2 and -3 stores are migrated in place when opened.
pub const FORMAT_VERSION: u32 = 4;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store in {dir}: {source} (check that the directory is writable and not used by another pulseboard)")]
    Open { dir: String, source: sled::Error },
    #[error("the store in {dir} was written with --window {stored_ms} ms, but this run uses --window {wanted_ms} ms; run with the store's window size or point --data-dir at a new directory")]
    WindowMismatch {
        dir: String,
        stored_ms: i64,
        wanted_ms: i64,
    },
    #[error("the store in {dir} has format version {found}, this pulseboard reads version {FORMAT_VERSION}; use a matching pulseboard or a new --data-dir")]
    Format { dir: String, found: u32 },
    #[error("store I/O failed: {0} (is the disk full or the data directory unwritable?)")]
    Io(#[from] sled::Error),
    #[error("stored window is unreadable: {0}")]
    Aggregate(#[from] AggError),
    #[error("stored partition checkpoint is unreadable: {0}")]
    Checkpoint(#[from] postcard::Error),
}

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
    /// partition's records, see `state_topic`).
    #[serde(default)]
    pub seq: u64,
}

/// The partition checkpoint of format version 2, for the migration.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct PartitionCheckpointV2 {
    next_offset: i64,
    max_event_ts: Option<i64>,
    events: u64,
    late: u64,
    dead_letters: BTreeMap<String, u64>,
    offset_resets: u64,
}

/// The partition checkpoint of format version 3, for the migration.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct PartitionCheckpointV3 {
    next_offset: i64,
    max_event_ts: Option<i64>,
    events: u64,
    late: u64,
    dead_letters: BTreeMap<String, u64>,
    offset_resets: u64,
    revised_events: u64,
    dead_letters_recorded: u64,
}

/// A dead letter its topic did not take, kept in the store instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Why the message could not be counted (a dead-letter reason).
    pub reason: String,
    /// Why the dead-letter topic did not take it.
    pub error: String,
    /// Wall-clock time it was recorded (epoch ms).
    pub at_ms: i64,
    /// Size of the message value, and its first bytes (at most [`DEAD_LETTER_HEAD`]).
    pub value_bytes: u64,
    pub value_head: Vec<u8>,
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
    /// their late events ([`Store::merged_rows`]).
    pub rows: Vec<(i64, Aggregate)>,
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
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    revised: Vec<i64>,
    dead: Vec<(Vec<u8>, Vec<u8>)>,
    owner: Option<Vec<u8>>,
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
                .map(|(s, a)| (window_key(*s, &w.topic, w.partition), a.to_bytes()))
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

/// How much of a dead letter's value the store keeps.
pub const DEAD_LETTER_HEAD: usize = 4096;

impl PartitionCheckpoint {
    /// All dead letters of this partition.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

/// A window row as read back from the store.
#[derive(Debug, Clone)]
pub struct StoredWindow {
    pub start: i64,
    pub topic: String,
    pub partition: i32,
    pub agg: Aggregate,
}

/// A roll-up bucket as read back from the store.
#[derive(Debug, Clone)]
pub struct StoredBucket {
    pub level: Level,
    pub start: i64,
    pub topic: String,
    pub partition: i32,
    pub agg: Aggregate,
}

/// What a roll-up call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupStats {
    /// Buckets written (one transaction each).
    pub buckets: usize,
    /// Source rows merged into them and deleted.
    pub rows: usize,
    /// True when the call stopped at its bucket limit with more to do.
    pub more: bool,
}

/// An annotation (a marker on the time axis: a deploy, a campaign).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationRecord {
    pub id: u64,
    /// The time it marks, epoch ms.
    pub ts: i64,
    pub text: String,
    /// When it was stored, epoch ms.
    pub created_at: i64,
}

/// The sled store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    offsets: sled::Tree,
    windows: sled::Tree,
    dead_letters: sled::Tree,
    revised: sled::Tree,
    salts: sled::Tree,
    changelog: sled::Tree,
    owners: sled::Tree,
    meta: sled::Tree,
    rollups: sled::Tree,
    annotations: sled::Tree,
    /// Readers of history hold it shared; a roll-up commits a bucket holding it exclusively.
    history_gate: Arc<RwLock<()>>,
}

impl From<PartitionCheckpointV2> for PartitionCheckpointV3 {
    /// Version 2 → 3: two counters more (zero).
    fn from(old: PartitionCheckpointV2) -> Self {
        PartitionCheckpointV3 {
            next_offset: old.next_offset,
            max_event_ts: old.max_event_ts,
            events: old.events,
            late: old.late,
            dead_letters: old.dead_letters,
            offset_resets: old.offset_resets,
            revised_events: 0,
            dead_letters_recorded: 0,
        }
    }
}

impl From<PartitionCheckpointV2> for PartitionCheckpoint {
    fn from(old: PartitionCheckpointV2) -> Self {
        PartitionCheckpointV3::from(old).into()
    }
}

impl From<PartitionCheckpointV3> for PartitionCheckpoint {
    /// Version 3 → 4: the checkpoint sequence (zero: no checkpoint of the state topic yet).
    fn from(old: PartitionCheckpointV3) -> Self {
        PartitionCheckpoint {
            next_offset: old.next_offset,
            max_event_ts: old.max_event_ts,
            events: old.events,
            late: old.late,
            dead_letters: old.dead_letters,
            offset_resets: old.offset_resets,
            revised_events: old.revised_events,
            dead_letters_recorded: old.dead_letters_recorded,
            seq: 0,
        }
    }
}

/// Rewrite every partition checkpoint of format `Old` in the current format.
fn migrate<Old>(db: &sled::Db) -> Result<(), StoreError>
where
    Old: serde::de::DeserializeOwned + Into<PartitionCheckpoint>,
{
    let offsets = db.open_tree("offsets")?;
    for kv in offsets.iter() {
        let (k, v) = kv?;
        let new: PartitionCheckpoint = postcard::from_bytes::<Old>(&v)?.into();
        offsets.insert(k, postcard::to_allocvec(&new)?)?;
    }
    Ok(())
}

fn enc_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn dec_i64(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

fn dec_i32(b: &[u8]) -> Option<i32> {
    let arr: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some((u32::from_be_bytes(arr) ^ (1 << 31)) as i32)
}

fn enc_i32(v: i32) -> [u8; 4] {
    ((v as u32) ^ (1 << 31)).to_be_bytes()
}

fn partition_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(topic.len() + 6);
    k.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    k.extend_from_slice(topic.as_bytes());
    k.extend_from_slice(&enc_i32(partition));
    k
}

fn decode_partition_key(b: &[u8]) -> Option<(String, i32)> {
    let len = u16::from_be_bytes(b.get(..2)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(b.get(2..2 + len)?).ok()?.to_owned();
    let p: [u8; 4] = b.get(2 + len..6 + len)?.try_into().ok()?;
    Some((topic, (u32::from_be_bytes(p) ^ (1 << 31)) as i32))
}

fn dead_letter_key(topic: &str, partition: i32, offset: i64) -> Vec<u8> {
    let mut k = partition_key(topic, partition);
    k.extend_from_slice(&enc_i64(offset));
    k
}

fn window_key(start: i64, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = enc_i64(start).to_vec();
    k.extend_from_slice(&partition_key(topic, partition));
    k
}

fn bucket_key(level: Level, start: i64, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = vec![level.code()];
    k.extend_from_slice(&window_key(start, topic, partition));
    k
}

fn level_bound(level: Level, start: i64) -> Vec<u8> {
    let mut k = vec![level.code()];
    k.extend_from_slice(&enc_i64(start));
    k
}

/// A source row of a roll-up: its key, start and partition.
struct SourceRow {
    key: sled::IVec,
    start: i64,
    topic: String,
    partition: i32,
}

fn abort(e: impl Into<StoreError>) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e.into())
}

/// Inside a transaction: move the rows of one bucket from `src` into `dst` (merged per
/// partition into the bucket rows of `level`), and drop the revised marks of their starts
/// when `revised` is given. Reads every row inside the transaction, so a retried
/// transaction starts again from what is stored.
fn fold_bucket(
    src: &TransactionalTree,
    dst: &TransactionalTree,
    revised: Option<&TransactionalTree>,
    rows: &[SourceRow],
    level: Level,
    bucket: i64,
) -> Result<usize, ConflictableTransactionError<StoreError>> {
    let mut merged: BTreeMap<(String, i32), Aggregate> = BTreeMap::new();
    let mut n = 0;
    for row in rows {
        let Some(v) = src.remove(&row.key)? else {
            continue;
        };
        let agg = Aggregate::from_bytes(&v).map_err(abort)?;
        rollup::fold_into(
            merged
                .entry((row.topic.clone(), row.partition))
                .or_default(),
            &agg,
        );
        if let Some(r) = revised {
            r.remove(&enc_i64(row.start))?;
        }
        n += 1;
    }
    for ((topic, partition), agg) in merged {
        let k = bucket_key(level, bucket, &topic, partition);
        let mut total = match dst.get(&k)? {
            Some(v) => Aggregate::from_bytes(&v).map_err(abort)?,
            None => Aggregate::new(),
        };
        rollup::fold_into(&mut total, &agg);
        dst.insert(k, total.to_bytes())?;
    }
    Ok(n)
}

/// The UTC day (days since the epoch) of `now_ms`: the key of the `salts` tree.
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(86_400_000)
}

impl Store {
    /// Open (or create) the store in `dir` for windows of `window_ms`.
    pub fn open(dir: &Path, window_ms: i64) -> Result<Self, StoreError> {
        let shown = dir.display().to_string();
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|source| StoreError::Open {
                dir: shown.clone(),
                source,
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get("format_version")? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found == 2 || found == 3 {
                    if found == 2 {
                        migrate::<PartitionCheckpointV2>(&db)?;
                    } else {
                        migrate::<PartitionCheckpointV3>(&db)?;
                    }
                    meta.insert("format_version", &FORMAT_VERSION.to_be_bytes())?;
                } else if found != FORMAT_VERSION {
                    return Err(StoreError::Format { dir: shown, found });
                }
            }
            None => {
                meta.insert("format_version", &FORMAT_VERSION.to_be_bytes())?;
            }
        }
        match meta.get("window_ms")? {
            Some(v) => {
                let stored_ms = dec_i64(&v).unwrap_or(i64::MIN);
                if stored_ms != window_ms {
                    return Err(StoreError::WindowMismatch {
                        dir: shown,
                        stored_ms,
                        wanted_ms: window_ms,
                    });
                }
            }
            None => {
                meta.insert("window_ms", &enc_i64(window_ms))?;
            }
        }
        let offsets = db.open_tree("offsets")?;
        let windows = db.open_tree("windows")?;
        let dead_letters = db.open_tree("dead_letters")?;
        let revised = db.open_tree("revised")?;
        let salts = db.open_tree("salts")?;
        let changelog = db.open_tree("changelog")?;
        let owners = db.open_tree("owners")?;
        let rollups = db.open_tree("rollups")?;
        let annotations = db.open_tree("annotations")?;
        db.flush()?;
        Ok(Store {
            db,
            offsets,
            windows,
            dead_letters,
            revised,
            salts,
            changelog,
            owners,
            meta,
            rollups,
            annotations,
            history_gate: Arc::new(RwLock::new(())),
        })
    }

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

    /// The windows of one partition whose start is at or after `from`.
    pub fn partition_windows_from(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let suffix = partition_key(topic, partition);
        let mut out = Vec::new();
        for kv in self.windows.range(enc_i64(from).to_vec()..) {
            let (k, v) = kv?;
            if k.get(8..) == Some(&suffix[..]) {
                if let Some(start) = dec_i64(&k) {
                    out.push((start, Aggregate::from_bytes(&v)?));
                }
            }
        }
        Ok(out)
    }

    /// All window rows with start in `[from, to)`, ordered by start.
    pub fn windows_in(&self, from: i64, to: i64) -> Result<Vec<StoredWindow>, StoreError> {
        self.windows_in_with(from, to, Keep::All)
    }

    /// [`Store::windows_in`], decoding only the segment tables `keep` says (a view of the
    /// whole traffic skips them all, a filtered one all but one).
    pub fn windows_in_with(
        &self,
        from: i64,
        to: i64,
        keep: Keep,
    ) -> Result<Vec<StoredWindow>, StoreError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for kv in self
            .windows
            .range(enc_i64(from).to_vec()..enc_i64(to).to_vec())
        {
            let (k, v) = kv?;
            let (Some(start), Some((topic, partition))) =
                (dec_i64(&k), k.get(8..).and_then(decode_partition_key))
            else {
                continue;
            };
            out.push(StoredWindow {
                start,
                topic,
                partition,
                agg: Aggregate::decode(&v, keep)?,
            });
        }
        Ok(out)
    }

    /// The start of the newest stored window, if any.
    pub fn newest_window(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.windows.last()?.and_then(|(k, _)| dec_i64(&k)))
    }

    /// The stored rows of `late`'s windows for one partition, each merged with its late
    /// events (nothing written): what a checkpoint that revises them writes.
    pub fn merged_rows(
        &self,
        topic: &str,
        partition: i32,
        late: &[(i64, Aggregate)],
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let mut out = Vec::with_capacity(late.len());
        for (start, l) in late {
            let mut agg = match self.windows.get(window_key(*start, topic, partition))? {
                Some(v) => Aggregate::from_bytes(&v)?,
                None => Aggregate::new(),
            };
            agg.merge(l);
            out.push((*start, agg));
        }
        Ok(out)
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
        (
            &self.offsets,
            &self.windows,
            &self.dead_letters,
            &self.revised,
            &self.owners,
            &self.changelog,
        )
            .transaction(
                |(offsets, windows, dead_letters, marks, owners, changelog)| {
                    let mut applied = Vec::with_capacity(writes.len());
                    for w in writes {
                        let stored_seq = match offsets.get(&w.key)? {
                            Some(v) => {
                                postcard::from_bytes::<PartitionCheckpoint>(&v)
                                    .map_err(|e| {
                                        ConflictableTransactionError::Abort(StoreError::from(e))
                                    })?
                                    .seq
                            }
                            None => 0,
                        };
                        if !newer(stored_seq, w.seq) {
                            applied.push(false);
                            continue;
                        }
                        for (k, v) in &w.rows {
                            windows.insert(k.as_slice(), v.as_slice())?;
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
                        changelog.insert(&enc_i32(p), &enc_i64(next))?;
                    }
                    Ok::<_, ConflictableTransactionError<StoreError>>(applied)
                },
            )
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Io(e),
            })
    }

    /// Record the state-topic position of records that needed no write.
    pub fn set_changelog_position(
        &self,
        state_partition: i32,
        next: i64,
    ) -> Result<(), StoreError> {
        self.changelog
            .insert(enc_i32(state_partition), &enc_i64(next))?;
        Ok(())
    }

    /// The state-topic positions this store has applied, by state partition.
    pub fn changelog_positions(&self) -> Result<BTreeMap<i32, i64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.changelog.iter() {
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

    /// The salt of UTC day `day`: the stored one, or `fresh()` stored (and flushed) as the
    /// day's salt, after which the salts of earlier days are deleted.
    pub fn salt_of_day(
        &self,
        day: i64,
        fresh: impl FnOnce() -> [u8; 32],
    ) -> Result<[u8; 32], StoreError> {
        let key = enc_i64(day);
        let existing = self.salts.get(key)?;
        if let Some(salt) = existing
            .as_ref()
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok())
        {
            return Ok(salt);
        }
        let new = fresh();
        let salt = match self.salts.compare_and_swap(key, existing, Some(&new[..]))? {
            Ok(()) => new,
            // Someone stored the day's salt meanwhile: theirs it is.
            Err(e) => e
                .current
                .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok())
                .unwrap_or(new),
        };
        self.discard_salts_before(day)?;
        self.salts.flush()?;
        Ok(salt)
    }

    /// Delete the salts of the days before `day`. Returns how many went.
    pub fn discard_salts_before(&self, day: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in self.salts.range(..enc_i64(day).to_vec()) {
            let (k, _) = kv?;
            self.salts.remove(k)?;
            n += 1;
        }
        if n > 0 {
            self.salts.flush()?;
        }
        Ok(n)
    }

    /// The days whose salt is stored.
    pub fn salt_days(&self) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::new();
        for kv in self.salts.iter() {
            let (k, _) = kv?;
            out.extend(dec_i64(&k));
        }
        Ok(out)
    }

    /// Mark windows as revised (changed after they were shown final).
    pub fn mark_revised(&self, starts: &[i64]) -> Result<(), StoreError> {
        for s in starts {
            self.revised.insert(enc_i64(*s), &[])?;
        }
        Ok(())
    }

    /// The windows marked revised, from `from` on.
    pub fn revised_from(&self, from: i64) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::new();
        for kv in self.revised.range(enc_i64(from).to_vec()..) {
            let (k, _) = kv?;
            if let Some(s) = dec_i64(&k) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The most recent recorded dead letters, newest first (at most `limit`).
    pub fn recorded_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterRecord>, StoreError> {
        let mut out: Vec<DeadLetterRecord> = Vec::new();
        for kv in self.dead_letters.iter() {
            let (_, v) = kv?;
            out.push(postcard::from_bytes(&v)?);
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.at_ms));
        out.truncate(limit);
        Ok(out)
    }

    /// Delete every window that starts before `before`. Returns how many rows went.
    pub fn delete_windows_before(&self, before: i64) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for kv in self.windows.range(..enc_i64(before).to_vec()) {
            let (k, _) = kv?;
            batch.remove(k);
            n += 1;
        }
        let mut marks = sled::Batch::default();
        for kv in self.revised.range(..enc_i64(before).to_vec()) {
            let (k, _) = kv?;
            marks.remove(k);
        }
        self.revised.apply_batch(marks)?;
        if n > 0 {
            self.windows.apply_batch(batch)?;
            self.db.flush()?;
        }
        Ok(n)
    }

    /// This store's instance id: created (random) on first use and kept.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        if let Some(v) = self.meta.get("instance_id")? {
            return Ok(String::from_utf8_lossy(&v).into_owned());
        }
        let mut b = [0u8; 6];
        getrandom::fill(&mut b)
            .map_err(|e| StoreError::Io(sled::Error::Io(std::io::Error::other(e.to_string()))))?;
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        self.meta.insert("instance_id", id.as_bytes())?;
        self.meta.flush()?;
        Ok(id)
    }

    /// The (start, topic, partition) of every window that starts before `before`.
    pub fn window_keys_before(&self, before: i64) -> Result<Vec<(i64, String, i32)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.windows.range(..enc_i64(before).to_vec()) {
            let (k, _) = kv?;
            if let (Some(start), Some((topic, partition))) =
                (dec_i64(&k), k.get(8..).and_then(decode_partition_key))
            {
                out.push((start, topic, partition));
            }
        }
        Ok(out)
    }

    /// Hold this while reading windows and roll-up buckets of one range, so that no bucket
    /// moves between them meanwhile (see the module docs).
    pub fn history_read(&self) -> RwLockReadGuard<'_, ()> {
        // The gate guards no data: a panic while it was held leaves nothing to repair.
        self.history_gate.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Buckets of `level` whose start is in `[from, to)`, ordered by start.
    pub fn buckets_in(
        &self,
        level: Level,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredBucket>, StoreError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for kv in self
            .rollups
            .range(level_bound(level, from)..level_bound(level, to))
        {
            let (k, v) = kv?;
            let (Some(start), Some((topic, partition))) = (
                k.get(1..).and_then(dec_i64),
                k.get(9..).and_then(decode_partition_key),
            ) else {
                continue;
            };
            out.push(StoredBucket {
                level,
                start,
                topic,
                partition,
                agg: Aggregate::from_bytes(&v)?,
            });
        }
        Ok(out)
    }

    /// The start of the oldest bucket of `level`, if any.
    pub fn oldest_bucket(&self, level: Level) -> Result<Option<i64>, StoreError> {
        let first = self
            .rollups
            .range(level_bound(level, i64::MIN)..=level_bound(level, i64::MAX))
            .next()
            .transpose()?;
        Ok(first.and_then(|(k, _)| k.get(1..).and_then(dec_i64)))
    }

    /// Roll the windows of each partition that start before its cut-off (`before_of`,
    /// never above `upper`, aligned down to a minute) up into minute buckets, one
    /// transaction per bucket, at most `max_buckets` buckets. A partition has its own
    /// cut-off because only the windows it has closed may move: an idle partition's open
    /// window is rewritten whole by its next checkpoint.
    pub fn roll_up_windows(
        &self,
        upper: i64,
        before_of: impl Fn(&str, i32) -> i64,
        max_buckets: usize,
    ) -> Result<RollupStats, StoreError> {
        let minute = Level::Minute.width_ms();
        let upper = rollup::bucket_start(upper, minute);
        let scan = self.windows.range(..enc_i64(upper).to_vec()).keys();
        let rows = scan.map(|k| {
            let k = k?;
            let parsed = dec_i64(&k).zip(k.get(8..).and_then(decode_partition_key));
            Ok(parsed
                .filter(|(start, (topic, partition))| {
                    *start < rollup::bucket_start(before_of(topic, *partition).min(upper), minute)
                })
                .map(|(start, (topic, partition))| SourceRow {
                    key: k.clone(),
                    start,
                    topic,
                    partition,
                }))
        });
        self.roll_up_rows(rows, Level::Minute, max_buckets, |rows, bucket| {
            (&self.windows, &self.rollups, &self.revised).transaction(
                |(windows, rollups, revised)| {
                    fold_bucket(windows, rollups, Some(revised), rows, Level::Minute, bucket)
                },
            )
        })
    }

    /// Roll the minute buckets that start before `before` (aligned down to an hour) up
    /// into hour buckets, one transaction per hour, at most `max_buckets` hours.
    pub fn roll_up_minutes(
        &self,
        before: i64,
        max_buckets: usize,
    ) -> Result<RollupStats, StoreError> {
        let before = rollup::bucket_start(before, Level::Hour.width_ms());
        let scan = self
            .rollups
            .range(level_bound(Level::Minute, i64::MIN)..level_bound(Level::Minute, before))
            .keys();
        let rows = scan.map(|k| {
            let k = k?;
            let parsed = k
                .get(1..)
                .and_then(dec_i64)
                .zip(k.get(9..).and_then(decode_partition_key));
            Ok(parsed.map(|(start, (topic, partition))| SourceRow {
                key: k.clone(),
                start,
                topic,
                partition,
            }))
        });
        self.roll_up_rows(rows, Level::Hour, max_buckets, |rows, bucket| {
            self.rollups.transaction(|rollups| {
                fold_bucket(rollups, rollups, None, rows, Level::Hour, bucket)
            })
        })
    }

    /// Group source rows (sorted by start) into buckets of `level` and commit each with
    /// `commit`, under the history gate.
    fn roll_up_rows(
        &self,
        rows: impl Iterator<Item = Result<Option<SourceRow>, StoreError>>,
        level: Level,
        max_buckets: usize,
        commit: impl Fn(&[SourceRow], i64) -> Result<usize, TransactionError<StoreError>>,
    ) -> Result<RollupStats, StoreError> {
        let mut stats = RollupStats::default();
        let mut group: Vec<SourceRow> = Vec::new();
        let mut bucket = None;
        let flush = |group: &mut Vec<SourceRow>, b: i64, stats: &mut RollupStats| {
            let _gate = self.history_gate.write().unwrap_or_else(|e| e.into_inner());
            let n = commit(group, b).map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Io(e),
            })?;
            stats.buckets += 1;
            stats.rows += n;
            group.clear();
            Ok::<_, StoreError>(())
        };
        for row in rows {
            let Some(row) = row? else { continue };
            let b = rollup::bucket_start(row.start, level.width_ms());
            if let Some(cur) = bucket.filter(|cur| *cur != b) {
                flush(&mut group, cur, &mut stats)?;
                if stats.buckets >= max_buckets.max(1) {
                    stats.more = true;
                    bucket = None;
                    break;
                }
            }
            bucket = Some(b);
            group.push(row);
        }
        if let Some(cur) = bucket {
            flush(&mut group, cur, &mut stats)?;
        }
        if stats.buckets > 0 {
            self.db.flush()?;
        }
        Ok(stats)
    }

    /// Delete every bucket (of both levels) and every window that starts before `before`.
    /// Returns how many rows went.
    pub fn delete_history_before(&self, before: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        {
            let _gate = self.history_gate.write().unwrap_or_else(|e| e.into_inner());
            for level in Level::ALL {
                let mut batch = sled::Batch::default();
                for k in self
                    .rollups
                    .range(level_bound(level, i64::MIN)..level_bound(level, before))
                    .keys()
                {
                    batch.remove(k?);
                    n += 1;
                }
                self.rollups.apply_batch(batch)?;
            }
        }
        n += self.delete_windows_before(before)?;
        let mut notes = sled::Batch::default();
        for k in self.annotations.range(..enc_i64(before).to_vec()).keys() {
            notes.remove(k?);
        }
        self.annotations.apply_batch(notes)?;
        self.db.flush()?;
        Ok(n)
    }

    /// Merge aggregates into the stored window rows of one partition (a row that does not
    /// exist is created), in one transaction, then flush. For windows no partition task
    /// owns: generated demo history, benchmarks.
    pub fn merge_windows(
        &self,
        topic: &str,
        partition: i32,
        windows: &[(i64, Aggregate)],
    ) -> Result<(), StoreError> {
        self.windows
            .transaction(|tree| {
                for (start, agg) in windows {
                    let k = window_key(*start, topic, partition);
                    let mut total = match tree.get(&k)? {
                        Some(v) => Aggregate::from_bytes(&v).map_err(abort)?,
                        None => Aggregate::new(),
                    };
                    total.merge(agg);
                    tree.insert(k, total.to_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Io(e),
            })?;
        self.db.flush()?;
        Ok(())
    }

    /// Write buckets as they are given (history copied from another store, or replicated),
    /// replacing rows with the same key, in one transaction; then flush.
    pub fn put_buckets(&self, buckets: &[StoredBucket]) -> Result<(), StoreError> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = buckets
            .iter()
            .map(|b| {
                (
                    bucket_key(b.level, b.start, &b.topic, b.partition),
                    b.agg.to_bytes(),
                )
            })
            .collect();
        {
            let _gate = self.history_gate.write().unwrap_or_else(|e| e.into_inner());
            let mut batch = sled::Batch::default();
            for (k, v) in rows {
                batch.insert(k, v);
            }
            self.rollups.apply_batch(batch)?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store takes on disk (sled's own count).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Store an annotation at `ts`; returns it with its id.
    pub fn add_annotation(
        &self,
        ts: i64,
        text: &str,
        now_ms: i64,
    ) -> Result<AnnotationRecord, StoreError> {
        let id = self.db.generate_id()?;
        let rec = AnnotationRecord {
            id,
            ts,
            text: text.to_owned(),
            created_at: now_ms,
        };
        let mut k = enc_i64(ts).to_vec();
        k.extend_from_slice(&id.to_be_bytes());
        self.annotations.insert(k, postcard::to_allocvec(&rec)?)?;
        self.annotations.flush()?;
        Ok(rec)
    }

    /// Annotations with `ts` in `[from, to)`, oldest first, at most `limit` (the newest).
    pub fn annotations_in(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<AnnotationRecord>, StoreError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for kv in self
            .annotations
            .range(enc_i64(from).to_vec()..enc_i64(to).to_vec())
            .rev()
            .take(limit)
        {
            let (_, v) = kv?;
            out.push(postcard::from_bytes(&v)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Number of stored annotations.
    pub fn annotation_count(&self) -> usize {
        self.annotations.len()
    }

    /// Delete the annotation `id`; false when there is none.
    pub fn delete_annotation(&self, id: u64) -> Result<bool, StoreError> {
        for kv in self.annotations.iter() {
            let (k, v) = kv?;
            let rec: AnnotationRecord = postcard::from_bytes(&v)?;
            if rec.id == id {
                self.annotations.remove(k)?;
                self.annotations.flush()?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Flush everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// [`Store::open`] of a directory this process used a moment ago: sled's I/O threads may
/// hold the directory's lock for a while after the last handle went, so a lock refused is
/// asked again (bounded, 10 s); any other outcome is returned as it is. For tests that
/// reopen a store in-process (a real restart is a new process, whose lock is free).
#[cfg(test)]
pub(crate) fn open_when_released(dir: &Path, window_ms: i64) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir, window_ms) {
            Err(StoreError::Open {
                source: sled::Error::Io(ref e),
                ..
            }) if e.to_string().contains("could not acquire lock")
                && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(dir: &Path) -> Store {
        open_when_released(dir, 10_000).expect("reopen")
    }

    #[test]
    fn keys_sort_like_numbers() {
        let mut ks: Vec<Vec<u8>> = [-20_000i64, -10_000, 0, 10_000, i64::MAX / 2]
            .iter()
            .map(|s| window_key(*s, "clicks", 3))
            .collect();
        let sorted = ks.clone();
        ks.sort();
        assert_eq!(ks, sorted);
        assert_eq!(
            decode_partition_key(&partition_key("clicks", -1)),
            Some(("clicks".into(), -1))
        );
    }

    #[test]
    fn store_with_other_window_size_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Store::open(dir.path(), 10_000).expect("open"));
        let err = open_when_released(dir.path(), 60_000)
            .err()
            .expect("must refuse");
        let msg = err.to_string();
        assert!(
            msg.contains("10000 ms") && msg.contains("60000 ms"),
            "{msg}"
        );
    }

    fn write_of(topic: &str, partition: i32, cp: PartitionCheckpoint) -> PartitionWrite {
        PartitionWrite {
            topic: topic.into(),
            partition,
            checkpoint: cp,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn checkpoint_round_trips_windows_and_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let mut agg = Aggregate::new();
        agg.events = 3;
        let cp = PartitionCheckpoint {
            next_offset: 42,
            max_event_ts: Some(25_000),
            events: 3,
            seq: 1,
            ..Default::default()
        };
        let owner = OwnerRecord {
            id: "a1".into(),
            url: "http://127.0.0.1:1".into(),
            high_watermark: Some(50),
            last_read_ms: Some(7),
            at_ms: 8,
        };
        let w = PartitionWrite {
            rows: vec![(-10_000, agg.clone()), (20_000, agg.clone())],
            owner: Some(owner.clone()),
            ..write_of("clicks", 1, cp.clone())
        };
        assert_eq!(store.write(&[w]).await.expect("write"), vec![true]);
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.partition("clicks", 1).expect("read"), Some(cp));
        assert_eq!(store.partition("clicks", 2).expect("read"), None);
        assert_eq!(
            store.owners().expect("owners"),
            vec![("clicks".to_owned(), 1, owner)]
        );
        let rows = store.windows_in(-10_000, 20_001).expect("range");
        assert_eq!(
            rows.iter().map(|w| w.start).collect::<Vec<_>>(),
            vec![-10_000, 20_000]
        );
        assert_eq!(
            store
                .partition_windows_from("clicks", 1, 0)
                .expect("scan")
                .len(),
            1
        );
        assert_eq!(store.delete_windows_before(0).expect("delete"), 1);
    }

    #[tokio::test]
    async fn late_events_merge_into_the_stored_row_and_the_mark_comes_in_the_same_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let mut on_time = Aggregate::new();
        on_time.events = 3;
        let first = PartitionWrite {
            rows: vec![(0, on_time)],
            ..write_of("t", 0, PartitionCheckpoint::default())
        };
        store.write(&[first]).await.expect("write");
        assert!(store.revised_from(i64::MIN).expect("marks").is_empty());
        let mut late = Aggregate::new();
        late.events = 2;
        let merged = store.merged_rows("t", 0, &[(0, late)]).expect("merge");
        assert_eq!(merged[0].1.events, 5, "merged with the stored row");
        let dead = DeadLetterRecord {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            reason: "not_json".into(),
            error: "Message size too large".into(),
            at_ms: 1,
            value_bytes: 2_000_000,
            value_head: b"{".to_vec(),
        };
        let second = PartitionWrite {
            rows: merged,
            revised: vec![0],
            undelivered: vec![dead.clone()],
            ..write_of("t", 0, PartitionCheckpoint::default())
        };
        store.write(&[second]).await.expect("write");
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.windows_in(0, 1).expect("rows")[0].agg.events, 5);
        assert_eq!(store.revised_from(i64::MIN).expect("marks"), vec![0]);
        assert_eq!(store.recorded_dead_letters(10).expect("dead"), vec![dead]);
    }

    /// Windows of `parts` partitions, `per` events each, every 10 s over `[from, to)`;
    /// returns the truth per (hour, partition): events and visitors.
    async fn fill(
        store: &Store,
        parts: i32,
        from: i64,
        to: i64,
    ) -> BTreeMap<(i64, i32), Aggregate> {
        let mut truth: BTreeMap<(i64, i32), Aggregate> = BTreeMap::new();
        for p in 0..parts {
            let mut windows = Vec::new();
            let mut start = from;
            while start < to {
                let mut a = Aggregate::new();
                for i in 0..((start / 10_000) % 7 + 1) {
                    let e = pulseboard_model::event::Event {
                        ts: start,
                        kind: "pageview".into(),
                        visitor: format!("v{}", (start / 10_000 + i) % 900),
                        session: None,
                        url: format!("/{}", i % 3),
                        referrer: None,
                        country: None,
                        device: None,
                    };
                    a.add(&e);
                    truth
                        .entry((rollup::bucket_start(start, 3_600_000), p))
                        .or_default()
                        .add(&e);
                }
                windows.push((start, a));
                start += 10_000;
            }
            let write = PartitionWrite {
                topic: "t".into(),
                partition: p,
                rows: windows,
                ..Default::default()
            };
            store.write(&[write]).await.expect("checkpoint");
        }
        truth
    }

    /// Everything stored in `[from, to)`, merged per (hour, partition).
    fn by_hour(store: &Store, from: i64, to: i64) -> BTreeMap<(i64, i32), Aggregate> {
        let _gate = store.history_read();
        let mut out: BTreeMap<(i64, i32), Aggregate> = BTreeMap::new();
        let mut add = |start: i64, p: i32, a: &Aggregate| {
            out.entry((rollup::bucket_start(start, 3_600_000), p))
                .or_default()
                .merge(a)
        };
        for w in store.windows_in(from, to).expect("windows") {
            add(w.start, w.partition, &w.agg);
        }
        for level in Level::ALL {
            for b in store.buckets_in(level, from, to).expect("buckets") {
                add(b.start, b.partition, &b.agg);
            }
        }
        out
    }

    fn assert_same_counts(
        got: &BTreeMap<(i64, i32), Aggregate>,
        want: &BTreeMap<(i64, i32), Aggregate>,
    ) {
        assert_eq!(got.len(), want.len());
        for (k, w) in want {
            let g = &got[k];
            assert_eq!((g.events, &g.visitors), (w.events, &w.visitors), "{k:?}");
        }
    }

    #[tokio::test]
    async fn rolling_up_in_interrupted_passes_loses_and_doubles_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let h = 3_600_000;
        let truth = fill(&store, 3, 0, 3 * h).await;
        store.mark_revised(&[20_000, 2 * h]).expect("marks");
        // Windows before 2 h go to minutes, three buckets per call (a pass cut short, as a
        // crash between two bucket transactions leaves it), then again until done.
        let mut calls = 0;
        loop {
            let st = store
                .roll_up_windows(2 * h, |_, _| 2 * h, 3)
                .expect("roll up");
            assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
            calls += 1;
            if !st.more {
                break;
            }
        }
        assert!(calls > 10, "{calls}");
        assert!(store.windows_in(0, 2 * h).expect("w").is_empty());
        assert_eq!(
            store.buckets_in(Level::Minute, 0, 3 * h).expect("m").len(),
            120 * 3
        );
        assert_eq!(store.revised_from(0).expect("marks"), vec![2 * h]);
        // Nothing left to do: a second pass changes nothing.
        let again = store
            .roll_up_windows(2 * h, |_, _| 2 * h, 1000)
            .expect("again");
        assert_eq!((again.buckets, again.rows), (0, 0));
        // Minutes before 1 h go to hours, one bucket per call.
        while store.roll_up_minutes(h, 1).expect("hours").more {
            assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
        }
        assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
        assert_eq!(store.buckets_in(Level::Hour, 0, 3 * h).expect("h").len(), 3);
        assert_eq!(store.oldest_bucket(Level::Minute).expect("m"), Some(h));
        // Reopened, the same.
        drop(store);
        let store = reopen(dir.path());
        assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
        // History before 1 h goes: the three hour buckets of [0, 1 h).
        let gone = store.delete_history_before(h).expect("delete");
        assert_eq!(gone, 3);
        assert!(store
            .buckets_in(Level::Hour, 0, 3 * h)
            .expect("h")
            .is_empty());
    }

    /// Ten minutes of windows of partitions 0 and 1, rolled up before 10 min with partition
    /// 0's cut-off at 10 min and partition 1's at `cutoff_1`: the windows left, (start,
    /// partition).
    async fn left_after_roll_up(cutoff_1: i64) -> Vec<(i64, i32)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        fill(&store, 2, 0, 600_000).await;
        store
            .roll_up_windows(600_000, |_, p| if p == 0 { 600_000 } else { cutoff_1 }, 100)
            .expect("roll up");
        store
            .windows_in(0, 600_000)
            .expect("w")
            .iter()
            .map(|w| (w.start, w.partition))
            .collect()
    }

    #[tokio::test]
    async fn a_partition_rolls_up_only_before_its_own_cutoff() {
        let left = left_after_roll_up(120_000).await;
        assert!(
            left.iter().all(|(s, p)| *p == 1 && *s >= 120_000),
            "{left:?}"
        );
        assert_eq!(left.len(), 48);
    }

    #[tokio::test]
    async fn a_partition_without_a_cutoff_keeps_every_window() {
        // Retention's cut-off for a partition it knew nothing of when its pass began.
        let left = left_after_roll_up(i64::MIN).await;
        assert!(left.iter().all(|(_, p)| *p == 1), "{left:?}");
        assert_eq!(left.len(), 60);
    }

    #[test]
    fn annotations_are_listed_by_time_and_deleted_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let a = store.add_annotation(5_000, "deploy v2", 1).expect("add");
        let b = store.add_annotation(1_000, "campaign", 2).expect("add");
        assert_ne!(a.id, b.id);
        let all = store.annotations_in(0, 10_000, 10).expect("list");
        assert_eq!(all, vec![b.clone(), a.clone()]);
        assert_eq!(
            store.annotations_in(0, 10_000, 1).expect("list"),
            vec![a.clone()]
        );
        assert!(store.delete_annotation(b.id).expect("delete"));
        assert!(!store.delete_annotation(b.id).expect("delete"));
        assert_eq!(store.annotation_count(), 1);
    }

    #[tokio::test]
    async fn a_checkpoint_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let row = |events| {
            let mut a = Aggregate::new();
            a.events = events;
            vec![(0, a)]
        };
        let cp = |seq, next_offset| PartitionCheckpoint {
            seq,
            next_offset,
            ..Default::default()
        };
        // Another instance's checkpoint 5, read from the state topic.
        let remote = PartitionWrite {
            rows: row(50),
            ..write_of("t", 0, cp(5, 500))
        };
        assert!(store.apply_remote(&remote, (2, 11)).expect("apply"));
        // The same record read again, and an older one: nothing changes but the position.
        assert!(!store.apply_remote(&remote, (2, 12)).expect("again"));
        let older = PartitionWrite {
            rows: row(40),
            ..write_of("t", 0, cp(4, 400))
        };
        assert!(!store.apply_remote(&older, (2, 13)).expect("older"));
        // A zombie's own write of checkpoint 4 does not overwrite it either.
        assert_eq!(store.write(&[older]).await.expect("write"), vec![false]);
        assert_eq!(
            store.partition("t", 0).expect("read").map(|c| c.seq),
            Some(5)
        );
        assert_eq!(store.windows_in(0, 1).expect("rows")[0].agg.events, 50);
        assert_eq!(
            store.changelog_positions().expect("positions"),
            BTreeMap::from([(2, 13)])
        );
    }

    /// A store of format `version` holding one partition checkpoint `old`.
    fn old_store(dir: &Path, version: u32, old: &impl Serialize) {
        let db = sled::open(dir).expect("sled");
        let meta = db.open_tree("meta").expect("meta");
        meta.insert("format_version", &version.to_be_bytes())
            .expect("v");
        meta.insert("window_ms", &enc_i64(10_000)).expect("w");
        db.open_tree("offsets")
            .expect("offsets")
            .insert(
                partition_key("t", 0),
                postcard::to_allocvec(old).expect("encode"),
            )
            .expect("insert");
        db.flush().expect("flush");
    }

    #[test]
    fn version_2_and_3_stores_are_migrated_in_place() {
        let v2 = PartitionCheckpointV2 {
            next_offset: 9,
            max_event_ts: Some(5),
            events: 8,
            late: 1,
            dead_letters: BTreeMap::from([("not_json".to_owned(), 1)]),
            offset_resets: 0,
        };
        let v3 = PartitionCheckpointV3 {
            next_offset: 9,
            max_event_ts: Some(5),
            events: 8,
            late: 1,
            dead_letters: BTreeMap::new(),
            offset_resets: 0,
            revised_events: 2,
            dead_letters_recorded: 3,
        };
        for (version, dir) in [(2, tempfile::tempdir()), (3, tempfile::tempdir())] {
            let dir = dir.expect("tempdir");
            if version == 2 {
                old_store(dir.path(), 2, &v2);
            } else {
                old_store(dir.path(), 3, &v3);
            }
            let store = open_when_released(dir.path(), 10_000).expect("migrates");
            let cp = store.partition("t", 0).expect("read").expect("kept");
            assert_eq!((cp.next_offset, cp.events, cp.late, cp.seq), (9, 8, 1, 0));
            let counters = (cp.revised_events, cp.dead_letters_recorded);
            assert_eq!(counters, if version == 2 { (0, 0) } else { (2, 3) });
            drop(store);
            drop(reopen(dir.path()));
        }
    }
}
