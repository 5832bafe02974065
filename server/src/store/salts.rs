//! Tree `salts`: the daily salts of cookieless visitor ids.
//!
//! Contract: key UTC day number (days since the epoch, [`day_of`]) → 32 random bytes, the
//! salt of that day's cookieless visitor ids (see `site::enrich`). Created on first use in
//! its day ([`Store::salt_of_day`]); the salts of earlier days are deleted as soon as a
//! later day's exists, and by every retention pass ([`Store::discard_salts_before`]), so a
//! visitor id can never be recomputed for a day that is over.

use super::keys::{dec_i64, enc_i64};
use super::{Store, StoreError};

/// The UTC day (days since the epoch) of `now_ms`: the key of the `salts` tree.
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(86_400_000)
}

impl Store {
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
}
