//! Tree `rollups`: history, the minute and hour buckets that old windows are rolled up into
//! (see [`pulseboard_model::rollup`]).
//!
//! Contract: key `(level, bucket start, topic, partition)` → encoded aggregate, `level` one
//! byte (1 = minute, 2 = hour) so a level's time range is one range scan. A bucket holds
//! every partition of its topic: its partition is [`ALL_PARTITIONS`] (buckets of earlier
//! releases were one per partition; they are read, and rolled up, alike: readers merge the
//! buckets of a start whatever their partition). One row per topic instead of one per
//! partition is most of what history saves over windows: a partition's minute holds a
//! quarter of the events of a 4-partition topic but nearly the bytes of the whole (its
//! sketches and top lists do not shrink with the traffic). Filled by
//! [`Store::roll_up_windows`] (windows before a cut-off → minute buckets) and
//! [`Store::roll_up_minutes`] (minute buckets → hour buckets); emptied by
//! [`Store::delete_history_before`]. Each bucket is written in ONE sled transaction that
//! reads its sources, merges them into the bucket row (a read-modify-write, so a bucket
//! rolled up in several passes adds up) and deletes them: a crash at any instant leaves
//! the sources or the bucket, never both or neither, so nothing is lost or counted twice.
//! Readers of history take [`Store::history_read`] while they read windows and buckets,
//! and a bucket's transaction commits under the matching write lock, so a reader never
//! sees a row in both places or in neither.

use std::collections::BTreeMap;

use pulseboard_model::agg::{Aggregate, Keep};
use pulseboard_model::rollup::{self, Level};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::keys::{
    bucket_key, dec_i64, decode_bucket_key, decode_window_key, enc_i64, level_bound, RowKey,
};
use super::row;
use super::{abort, committed, Store, StoreError};

/// The partition of a bucket that holds every partition of its topic.
pub const ALL_PARTITIONS: i32 = -1;

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

/// A source row of a roll-up: its key, start and partition.
struct SourceRow {
    key: sled::IVec,
    start: i64,
    topic: String,
    partition: i32,
}

impl SourceRow {
    /// The row of key `key`, decoded by `decode` (`None` when it does not parse).
    fn of(key: sled::IVec, decode: fn(&[u8]) -> Option<RowKey>) -> Option<SourceRow> {
        let (start, topic, partition) = decode(&key)?;
        Some(SourceRow {
            key,
            start,
            topic,
            partition,
        })
    }
}

/// Inside a transaction: move the rows of one bucket from `src` into `dst` (merged per
/// topic into the bucket rows of `level`, partition [`ALL_PARTITIONS`]), and drop the
/// revised marks of their starts when `revised` is given. Reads every row inside the
/// transaction, so a retried transaction starts again from what is stored.
fn fold_bucket(
    src: &TransactionalTree,
    dst: &TransactionalTree,
    revised: Option<&TransactionalTree>,
    rows: &[SourceRow],
    level: Level,
    bucket: i64,
) -> Result<usize, ConflictableTransactionError<StoreError>> {
    let mut merged: BTreeMap<String, Aggregate> = BTreeMap::new();
    let mut n = 0;
    for row in rows {
        let Some(v) = src.remove(&row.key)? else {
            continue;
        };
        let agg = row::decode_all(&v).map_err(abort)?;
        rollup::fold_into(merged.entry(row.topic.clone()).or_default(), &agg);
        if let Some(r) = revised {
            r.remove(&enc_i64(row.start))?;
        }
        n += 1;
    }
    for (topic, agg) in merged {
        let k = bucket_key(level, bucket, &topic, ALL_PARTITIONS);
        let mut total = match dst.get(&k)? {
            Some(v) => row::decode_all(&v).map_err(abort)?,
            None => Aggregate::new(),
        };
        rollup::fold_into(&mut total, &agg);
        dst.insert(k, row::encode(&total))?;
    }
    Ok(n)
}

impl Store {
    /// Buckets of `level` whose start is in `[from, to)`, ordered by start.
    pub fn buckets_in(
        &self,
        level: Level,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredBucket>, StoreError> {
        self.buckets_in_with(level, from, to, Keep::All)
    }

    /// [`Store::buckets_in`], decoding of each bucket what `keep` says (a view of the whole
    /// traffic skips the segment tables and the sites).
    pub fn buckets_in_with(
        &self,
        level: Level,
        from: i64,
        to: i64,
        keep: Keep,
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
            let Some((start, topic, partition)) = decode_bucket_key(&k) else {
                continue;
            };
            out.push(StoredBucket {
                level,
                start,
                topic,
                partition,
                agg: row::decode(&v, keep)?,
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
            Ok(SourceRow::of(k?, decode_window_key).filter(|row| {
                row.start
                    < rollup::bucket_start(before_of(&row.topic, row.partition).min(upper), minute)
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
        let rows = scan.map(|k| Ok(SourceRow::of(k?, decode_bucket_key)));
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
            let _gate = self.history_write();
            let n = committed(commit(group, b))?;
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

    /// Delete every bucket (of both levels) and every window that starts before `before`,
    /// and the annotations before it. Returns how many rows (buckets and windows) went.
    pub fn delete_history_before(&self, before: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        {
            let _gate = self.history_write();
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
        self.delete_annotations_before(before)?;
        self.db.flush()?;
        Ok(n)
    }

    /// Write buckets as they are given (history copied from another store, or replicated),
    /// replacing rows with the same key, in one transaction; then flush.
    pub fn put_buckets(&self, buckets: &[StoredBucket]) -> Result<(), StoreError> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = buckets
            .iter()
            .map(|b| {
                (
                    bucket_key(b.level, b.start, &b.topic, b.partition),
                    row::encode(&b.agg),
                )
            })
            .collect();
        {
            let _gate = self.history_write();
            let mut batch = sled::Batch::default();
            for (k, v) in rows {
                batch.insert(k, v);
            }
            self.rollups.apply_batch(batch)?;
        }
        self.db.flush()?;
        Ok(())
    }
}
