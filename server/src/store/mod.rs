//! The sled layout, in one place: one file per tree or family of trees, each stating the
//! contract of its trees in full; this file opens the store and holds what they share.
//!
//! Contract, per tree (key → value; keys are built in `keys.rs`: big-endian with the sign
//! bit flipped, so byte order equals numeric order, negative window starts included):
//! - `offsets` (`checkpoint.rs`): `(topic, partition)` → [`PartitionCheckpoint`]: the next
//!   offset to read, the watermark state, the counters and the checkpoint sequence `seq`.
//! - `owners` (`checkpoint.rs`): `(topic, partition)` → [`OwnerRecord`] (JSON): the
//!   instance that wrote the partition's last checkpoint.
//! - The state-topic positions, named `changelog` on disk (`checkpoint.rs`): state-topic
//!   partition → the next offset of the state topic this store has applied.
//! - `windows` (`windows.rs`): `(window start, topic, partition)` → encoded
//!   [`Aggregate`](pulseboard_model::agg::Aggregate); a time range is one range scan.
//! - `revised` (`windows.rs`): window start → empty: the windows that took late events or
//!   changed after they were shown final.
//! - `dead_letters` (`dead_letters.rs`): `(topic, partition, offset)` →
//!   [`DeadLetterRecord`]: the dead letters their topic did not take.
//! - `rollups` (`history.rs`): `(level, bucket start, topic, partition)` → encoded
//!   aggregate: the minute and hour buckets old windows are rolled up into, one sled
//!   transaction a bucket, so nothing is lost or counted twice.
//! - `annotations` (`annotations.rs`): `(ts, id)` → [`AnnotationRecord`].
//! - `access` (`access.rs`): kind ‖ SHA-256 of a secret → the token, share link or session
//!   it names (JSON); secrets themselves are never stored.
//! - `salts` (`salts.rs`): UTC day → that day's 32-byte salt of cookieless visitor ids;
//!   the salts of days that are over are deleted.
//! - `meta` (this file): `format_version` ([`FORMAT_VERSION`]; version-2, -3 and -4 stores
//!   are migrated in place when opened, `migrate.rs`), `window_ms` and `instance_id` (this
//!   store's instance in the consumer group, random, made on first use:
//!   [`Store::instance_id`]), `counting_since` (the earliest window a checkpoint wrote:
//!   `since.rs`), `source` (what the store was filled from: the embedded demo,
//!   or a cluster id and topics; `source.rs`). A store written with another window size,
//!   or filled from another source, is refused with a message that says what to do.
//!
//! A partition's checkpoint is written in ONE sled transaction across `offsets`,
//! `windows`, `revised`, `dead_letters`, `owners` and the state-topic positions
//! ([`Store::write`], [`Store::apply_remote`]; `checkpoint.rs`), and never replaces one
//! with a higher `seq`. The history gate ([`Store::history_read`], this file) keeps a
//! reader of windows and buckets from seeing a row in both places or in neither while a
//! roll-up moves it (`history.rs`).
//!
//! The state topic's record format is [`record`] (`record.rs`); what the rows weigh by
//! kind, for the benchmark, is `sizes.rs` ([`Store::row_sizes`]); the unit tests are in
//! `tests/`, one file per file.

mod access;
mod annotations;
mod checkpoint;
mod dead_letters;
mod history;
mod keys;
mod migrate;
pub mod record;
pub mod row;
mod salts;
mod since;
mod sizes;
mod source;
mod windows;

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pulseboard_model::agg::AggError;
use sled::transaction::{ConflictableTransactionError, TransactionError};

pub use access::{AccessKind, AccessRecord};
pub use annotations::AnnotationRecord;
pub use checkpoint::{OwnerRecord, PartitionCheckpoint, PartitionWrite};
pub use dead_letters::{DeadLetterRecord, DEAD_LETTER_HEAD};
pub use history::{RollupStats, StoredBucket};
pub use salts::day_of;
pub use sizes::{RowSize, RowSizes};
pub use source::Source;
pub use windows::StoredWindow;

use checkpoint::STATE_POSITIONS_TREE;
use keys::{dec_i64, enc_i64};

/// Version of the on-disk layout described above (2: exact sparse HyperLogLogs; 3: revised
/// events and recorded dead letters in the partition checkpoint, trees `dead_letters` and
/// `revised`; 4: the checkpoint sequence `seq`, the trees of the state-topic positions
/// (`changelog` on disk) and `owners`, the `instance_id` in `meta`; 5: rows of windows
/// and buckets in the model's row format, compressed (`row`): row format 5, or 6 since,
/// with no migration, as a row carries its version). Version-2, -3 and -4
/// stores are migrated in place when opened (see `migrate`); their rows are read as they
/// are and rewritten as they change or roll up.
pub const FORMAT_VERSION: u32 = 5;

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
    #[error("the store in {dir} holds the data of {stored}, but this run reads {wanted}; give this source its own --data-dir (a new directory), or run against {stored} again")]
    SourceMismatch {
        dir: String,
        stored: String,
        wanted: String,
    },
    #[error("store I/O failed: {0} (is the disk full or the data directory unwritable?)")]
    Io(#[from] sled::Error),
    #[error("stored window is unreadable: {0}")]
    Aggregate(#[from] AggError),
    #[error("stored partition checkpoint is unreadable: {0}")]
    Checkpoint(#[from] postcard::Error),
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
    /// The state-topic positions (see `checkpoint`).
    state_positions: sled::Tree,
    owners: sled::Tree,
    meta: sled::Tree,
    rollups: sled::Tree,
    annotations: sled::Tree,
    access: sled::Tree,
    /// Readers of history hold it shared; a roll-up commits a bucket holding it exclusively.
    history_gate: Arc<RwLock<()>>,
    /// The earliest window start counted (`since`; `i64::MAX`: none yet).
    counting_since: Arc<std::sync::atomic::AtomicI64>,
}

/// A transaction's error as the store's: its own abort, or sled's I/O error.
fn committed<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Io(e),
    })
}

/// Abort a transaction with a store error.
fn abort(e: impl Into<StoreError>) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e.into())
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
                if found != FORMAT_VERSION {
                    if !migrate::from_version(&db, found)? {
                        return Err(StoreError::Format { dir: shown, found });
                    }
                    meta.insert("format_version", &FORMAT_VERSION.to_be_bytes())?;
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
        let state_positions = db.open_tree(STATE_POSITIONS_TREE)?;
        let owners = db.open_tree("owners")?;
        let rollups = db.open_tree("rollups")?;
        let annotations = db.open_tree("annotations")?;
        let access = db.open_tree("access")?;
        db.flush()?;
        let store = Store {
            db,
            offsets,
            windows,
            dead_letters,
            revised,
            salts,
            state_positions,
            owners,
            meta,
            rollups,
            annotations,
            access,
            history_gate: Arc::new(RwLock::new(())),
            counting_since: Arc::new(std::sync::atomic::AtomicI64::new(since::NONE)),
        };
        store.load_counting_since()?;
        Ok(store)
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

    /// Hold this while reading windows and roll-up buckets of one range, so that no bucket
    /// moves between them meanwhile (see the module docs).
    pub fn history_read(&self) -> RwLockReadGuard<'_, ()> {
        // The gate guards no data: a panic while it was held leaves nothing to repair.
        self.history_gate.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held by a roll-up while it commits a bucket, and by whatever else moves or deletes
    /// history rows (see `history`).
    fn history_write(&self) -> RwLockWriteGuard<'_, ()> {
        // As in `history_read`: the gate guards no data.
        self.history_gate.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes the store takes on disk (sled's own count).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
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
mod tests;
