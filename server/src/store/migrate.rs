//! Migrations of older stores, in place, when they are opened.
//!
//! Contract: a store of format version 2 or 3 (see
//! [`FORMAT_VERSION`](super::FORMAT_VERSION)) is brought to the current version by
//! rewriting every partition checkpoint of tree `offsets` in the current format
//! ([`PartitionCheckpoint`]); the counters an older version did not have start at zero.
//! The other trees need no rewrite: the trees a version added start empty. Version 2 → 3:
//! `revised_events` and `dead_letters_recorded`; 3 → 4: `seq`; 4 → 5: nothing to rewrite
//! (rows of windows and buckets are read in every format the model reads: see `row`).

use std::collections::BTreeMap;

use serde::Deserialize;

#[cfg(test)]
use serde::Serialize;

use super::{PartitionCheckpoint, StoreError};

/// The partition checkpoint of format version 2, for the migration.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) struct PartitionCheckpointV2 {
    pub(super) next_offset: i64,
    pub(super) max_event_ts: Option<i64>,
    pub(super) events: u64,
    pub(super) late: u64,
    pub(super) dead_letters: BTreeMap<String, u64>,
    pub(super) offset_resets: u64,
}

/// The partition checkpoint of format version 3, for the migration.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) struct PartitionCheckpointV3 {
    pub(super) next_offset: i64,
    pub(super) max_event_ts: Option<i64>,
    pub(super) events: u64,
    pub(super) late: u64,
    pub(super) dead_letters: BTreeMap<String, u64>,
    pub(super) offset_resets: u64,
    pub(super) revised_events: u64,
    pub(super) dead_letters_recorded: u64,
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

/// Migrate the store `db` of format version `found` (not the current one) to the current
/// format. Returns false, changing nothing, when `found` is a version it cannot migrate.
/// The caller records the new version once this returns true.
pub(super) fn from_version(db: &sled::Db, found: u32) -> Result<bool, StoreError> {
    match found {
        2 => rewrite_checkpoints::<PartitionCheckpointV2>(db)?,
        3 => rewrite_checkpoints::<PartitionCheckpointV3>(db)?,
        // Rows of format 4 stores are the model's version-3 rows, which it still reads.
        4 => {}
        _ => return Ok(false),
    }
    Ok(true)
}

/// Rewrite every partition checkpoint of format `Old` in the current format.
fn rewrite_checkpoints<Old>(db: &sled::Db) -> Result<(), StoreError>
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
