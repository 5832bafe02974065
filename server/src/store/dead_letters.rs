//! Tree `dead_letters`: the dead letters their topic did not take.
//!
//! Contract: key `(topic, partition, offset)` → [`DeadLetterRecord`] (postcard): dead
//! letters their topic did not take (too large, topic missing, not authorized, not
//! delivered in time), kept so that no message is ever passed over unrecorded. They are
//! written by a partition's checkpoint, in its transaction (see `checkpoint`).

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// How much of a dead letter's value the store keeps.
pub const DEAD_LETTER_HEAD: usize = 4096;

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

impl Store {
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
}
