//! Tree `annotations`: markers on the time axis (a deploy, a campaign).
//!
//! Contract: key `(ts, id)` → [`AnnotationRecord`] (postcard), `id` from sled's monotonic
//! id generator. An annotation goes with the history of its time: retention deletes those
//! before its cut-off ([`Store::delete_history_before`]).

use serde::{Deserialize, Serialize};

use super::keys::{annotation_key, enc_i64};
use super::{Store, StoreError};

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

impl Store {
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
        self.annotations
            .insert(annotation_key(ts, id), postcard::to_allocvec(&rec)?)?;
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

    /// Delete the annotations with `ts` before `before` (not flushed: the caller flushes).
    pub(super) fn delete_annotations_before(&self, before: i64) -> Result<(), StoreError> {
        let mut notes = sled::Batch::default();
        for k in self.annotations.range(..enc_i64(before).to_vec()).keys() {
            notes.remove(k?);
        }
        self.annotations.apply_batch(notes)?;
        Ok(())
    }
}
