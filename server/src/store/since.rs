//! Since when the store counts: the earliest window the pipeline wrote, so that a
//! comparison with an earlier period compares like with like (a store that began counting
//! a minute ago is not compared over 15 minutes with a period it saw whole).
//!
//! Contract:
//! - `meta` key `counting_since`: the earliest window start of any row written by a
//!   checkpoint, the pipeline's own or one applied from the state topic (a restored
//!   history counts). The embedded demo's generated history is written otherwise and does
//!   not move it.
//! - A store of an earlier release, which has rows but no key, counts since its earliest
//!   window or roll-up bucket (set when opened). A new store has none until its first
//!   checkpoint writes a row.
//! - Kept in memory too ([`Store::counting_since`] reads no tree); written to `meta`
//!   beside the checkpoint, flushed with it (a crash before the flush loses the value and
//!   the rows together).

use std::sync::atomic::Ordering;

use pulseboard_model::rollup::Level;

use super::keys::{dec_i64, decode_bucket_key, enc_i64};
use super::{Store, StoreError};

const KEY: &str = "counting_since";
/// "Not counting yet" in the atomic.
pub(super) const NONE: i64 = i64::MAX;

impl Store {
    /// The earliest window start the store counted (see the module docs), if any.
    pub fn counting_since(&self) -> Option<i64> {
        let v = self.counting_since.load(Ordering::Relaxed);
        (v != NONE).then_some(v)
    }

    /// Load the value at open (see the module docs).
    pub(super) fn load_counting_since(&self) -> Result<(), StoreError> {
        let since = match self.meta.get(KEY)? {
            Some(v) => dec_i64(&v),
            None => {
                let mut first = self
                    .windows
                    .iter()
                    .next()
                    .transpose()?
                    .and_then(|(k, _)| dec_i64(&k));
                for level in Level::ALL {
                    let bucket = self
                        .rollups
                        .scan_prefix([level.code()])
                        .next()
                        .transpose()?;
                    let start = bucket.and_then(|(k, _)| decode_bucket_key(&k)).map(|r| r.0);
                    first = first.into_iter().chain(start).min();
                }
                if let Some(s) = first {
                    self.meta.insert(KEY, &enc_i64(s)[..])?;
                }
                first
            }
        };
        self.counting_since
            .store(since.unwrap_or(NONE), Ordering::Relaxed);
        Ok(())
    }

    /// A checkpoint wrote windows starting at `starts`: the earliest moves back if earlier.
    pub(super) fn note_counted(&self, starts: impl Iterator<Item = i64>) -> Result<(), StoreError> {
        let Some(first) = starts.min() else {
            return Ok(());
        };
        let before = self.counting_since.fetch_min(first, Ordering::Relaxed);
        if first < before {
            self.meta.insert(KEY, &enc_i64(first)[..])?;
        }
        Ok(())
    }
}
