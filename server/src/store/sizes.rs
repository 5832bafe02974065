//! What the store's rows weigh, by kind: the encoded key and value of every window, minute
//! bucket and hour bucket, and of all the other rows together. Read by the benchmark
//! (`bench/`) from a stopped server's data dir; sled's own overhead on disk is not in
//! these numbers.

use pulseboard_model::rollup::Level;

use super::keys::{decode_bucket_key, decode_window_key};
use super::{Store, StoreError};

/// One row: its start (window or bucket start) and its encoded bytes (key + value).
pub type RowSize = (i64, u64);

/// The encoded bytes of the store's rows, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowSizes {
    pub windows: Vec<RowSize>,
    pub minutes: Vec<RowSize>,
    pub hours: Vec<RowSize>,
    /// Every other row (checkpoints, owners, positions, salts, meta, ...), summed.
    pub other_bytes: u64,
}

impl RowSizes {
    /// All the rows' bytes.
    pub fn total(&self) -> u64 {
        let sum = |rows: &[RowSize]| rows.iter().map(|r| r.1).sum::<u64>();
        sum(&self.windows) + sum(&self.minutes) + sum(&self.hours) + self.other_bytes
    }
}

impl Store {
    /// Every row's encoded size (see [`RowSizes`]).
    pub fn row_sizes(&self) -> Result<RowSizes, StoreError> {
        let mut out = RowSizes::default();
        let size = |k: &[u8], v: &[u8]| (k.len() + v.len()) as u64;
        for kv in self.windows.iter() {
            let (k, v) = kv?;
            match decode_window_key(&k) {
                Some((start, _, _)) => out.windows.push((start, size(&k, &v))),
                None => out.other_bytes += size(&k, &v),
            }
        }
        for kv in self.rollups.iter() {
            let (k, v) = kv?;
            let row = decode_bucket_key(&k).map(|(start, _, _)| (start, size(&k, &v)));
            match (k.first(), row) {
                (Some(c), Some(row)) if *c == Level::Minute.code() => out.minutes.push(row),
                (Some(c), Some(row)) if *c == Level::Hour.code() => out.hours.push(row),
                _ => out.other_bytes += size(&k, &v),
            }
        }
        for tree in [
            &self.offsets,
            &self.dead_letters,
            &self.revised,
            &self.salts,
            &self.state_positions,
            &self.owners,
            &self.meta,
            &self.annotations,
        ] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                out.other_bytes += size(&k, &v);
            }
        }
        Ok(out)
    }
}
