//! Trees `windows` and `revised`: the window rows of every partition, and the marks of
//! windows revised.
//!
//! Contract:
//! - Tree `windows`: key `(window start, topic, partition)` → encoded
//!   [`Aggregate`]. Keys sort by window start first, so a
//!   time range is one range scan. A partition's rows are written by its checkpoint, in its
//!   transaction (see `checkpoint`): open windows as they are, closed ones merged with
//!   their late events ([`Store::merged_rows`]). Windows no partition task owns (demo
//!   history, benchmarks) are merged in by [`Store::merge_windows`]. Roll-ups move old
//!   rows into history (see `history`).
//! - Tree `revised`: key window start → empty: windows that took late events (written in
//!   the checkpoint that folds them), or changed after they were shown final. A mark goes
//!   with its window (deleted, or rolled up).

use std::sync::Arc;

use pulseboard_model::agg::{Aggregate, Keep};
use sled::transaction::ConflictableTransactionError;

use super::keys::{dec_i64, decode_window_key, enc_i64, partition_key, window_key};
use super::row;
use super::{abort, committed, Store, StoreError};

/// A row's stored bytes, shared.
pub type RowBytes = Arc<[u8]>;

/// A window row as stored: `(start, topic, partition, bytes)`.
pub type RawWindow = (i64, String, i32, RowBytes);

/// A window row as read back from the store.
#[derive(Debug, Clone)]
pub struct StoredWindow {
    pub start: i64,
    pub topic: String,
    pub partition: i32,
    pub agg: Aggregate,
}

impl Store {
    /// The windows of one partition whose start is at or after `from`.
    pub fn partition_windows_from(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        self.partition_window_rows_from(topic, partition, from)?
            .into_iter()
            .map(|(start, v)| Ok((start, row::decode_all(&v)?)))
            .collect()
    }

    /// [`Store::partition_windows_from`], the rows as stored (undecoded).
    pub fn partition_window_rows_from(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Result<Vec<(i64, RowBytes)>, StoreError> {
        let suffix = partition_key(topic, partition);
        let mut out = Vec::new();
        for kv in self.windows.range(enc_i64(from).to_vec()..) {
            let (k, v) = kv?;
            if k.get(8..) == Some(&suffix[..]) {
                if let Some(start) = dec_i64(&k) {
                    out.push((start, Arc::from(&v[..])));
                }
            }
        }
        Ok(out)
    }

    /// The window rows with start in `[from, to)` as stored (undecoded), ordered by start:
    /// `(start, topic, partition, bytes)`.
    pub fn window_rows_in(&self, from: i64, to: i64) -> Result<Vec<RawWindow>, StoreError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for kv in self
            .windows
            .range(enc_i64(from).to_vec()..enc_i64(to).to_vec())
        {
            let (k, v) = kv?;
            if let Some((start, topic, partition)) = decode_window_key(&k) {
                out.push((start, topic, partition, Arc::from(&v[..])));
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
        self.windows_in_where(from, to, keep, |_, _, _| true)
    }

    /// [`Store::windows_in_with`], only the rows `wanted(start, topic, partition)` says:
    /// the others are not decoded.
    pub fn windows_in_where(
        &self,
        from: i64,
        to: i64,
        keep: Keep,
        wanted: impl Fn(i64, &str, i32) -> bool,
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
            let Some((start, topic, partition)) = decode_window_key(&k) else {
                continue;
            };
            if !wanted(start, &topic, partition) {
                continue;
            }
            out.push(StoredWindow {
                start,
                topic,
                partition,
                agg: row::decode(&v, keep)?,
            });
        }
        Ok(out)
    }

    /// The start of the newest stored window, if any.
    pub fn newest_window(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.windows.last()?.and_then(|(k, _)| dec_i64(&k)))
    }

    /// The start of the oldest stored window, if any.
    pub fn oldest_window(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.windows.first()?.and_then(|(k, _)| dec_i64(&k)))
    }

    /// The (start, topic, partition) of every window that starts before `before`.
    pub fn window_keys_before(&self, before: i64) -> Result<Vec<(i64, String, i32)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.windows.range(..enc_i64(before).to_vec()) {
            let (k, _) = kv?;
            if let Some((start, topic, partition)) = decode_window_key(&k) {
                out.push((start, topic, partition));
            }
        }
        Ok(out)
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
                Some(v) => row::decode_all(&v)?,
                None => Aggregate::new(),
            };
            agg.merge(l);
            out.push((*start, agg));
        }
        Ok(out)
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
        committed(self.windows.transaction(|tree| {
            for (start, agg) in windows {
                let k = window_key(*start, topic, partition);
                let mut total = match tree.get(&k)? {
                    Some(v) => row::decode_all(&v).map_err(abort)?,
                    None => Aggregate::new(),
                };
                total.merge(agg);
                tree.insert(k, row::encode(&total))?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        }))?;
        self.db.flush()?;
        Ok(())
    }

    /// Delete every window that starts before `before`, and the revised marks before it.
    /// Returns how many rows went.
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
}
