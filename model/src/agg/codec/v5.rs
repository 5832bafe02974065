//! What row format 5 (written by earlier releases) has of its own: its dictionary and its
//! top lists. The rest of its layout is format 6's (see the parent module).
//!
//! ```text
//! dict := n, n × (len, UTF-8 bytes)      every key of the row, once, in the order they
//!                                        are first written
//! top  := total, error, n, n × (key id, count step)
//!         entries by count descending then key; the first count whole, each other as the
//!         step down from the one before
//! ```

use super::wire::Reader;
use super::{corrupt, key};
use crate::agg::{AggError, TopCounts, TOP_CAP};

/// The keys of a version-5 dictionary.
pub(super) fn dict<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a str>, AggError> {
    let n = r.count(1)?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let b = r.bytes()?;
        keys.push(std::str::from_utf8(b).map_err(|_| corrupt("a key is not UTF-8"))?);
    }
    Ok(keys)
}

/// A version-5 top list.
pub(super) fn top(r: &mut Reader<'_>, keys: &[&str], cap: usize) -> Result<TopCounts, AggError> {
    let total = r.var()?;
    let error = r.var()?;
    let n = r.count(2)?;
    // A segment's list may hold more than today's cap when it was merged with a row of an
    // earlier release (which kept more): never more than any list may.
    if n > TOP_CAP {
        return Err(corrupt("top counts exceed capacity"));
    }
    let mut entries = Vec::with_capacity(n);
    let mut before: Option<u64> = None;
    for _ in 0..n {
        let k = key(keys, r.var()?)?;
        let step = r.var()?;
        let c = match before {
            None => step,
            Some(b) => b
                .checked_sub(step)
                .ok_or_else(|| corrupt("a count step below zero"))?,
        };
        before = Some(c);
        entries.push((k, c));
    }
    TopCounts::from_parts(cap.max(n), entries, total, error).map_err(corrupt)
}
