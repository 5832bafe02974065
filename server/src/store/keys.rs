//! The key encodings of the store's trees, in one place.
//!
//! Contract: keys are big-endian with the sign bit flipped, so byte order equals numeric
//! order (negative window starts included). A topic is written as its length (two bytes)
//! then its UTF-8 bytes, so `(topic, partition)` keys of one topic sort by partition.
//! - `(topic, partition)` ([`partition_key`]): trees `offsets` and `owners`, and the tail
//!   of every longer key below.
//! - `(topic, partition, offset)` ([`dead_letter_key`]): tree `dead_letters`.
//! - `(window start, topic, partition)` ([`window_key`]): tree `windows`.
//! - `(level, bucket start, topic, partition)` ([`bucket_key`]), `level` one byte: tree
//!   `rollups`; [`level_bound`] is the start of a level's range.
//! - `(ts, id)` ([`annotation_key`]), `id` big-endian: tree `annotations`.
//! - A single number ([`enc_i64`], [`enc_i32`]): trees `revised` and `salts` (and the
//!   values of the state-topic positions).

use pulseboard_model::rollup::Level;

pub(super) fn enc_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn dec_i64(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

pub(super) fn dec_i32(b: &[u8]) -> Option<i32> {
    let arr: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some((u32::from_be_bytes(arr) ^ (1 << 31)) as i32)
}

pub(super) fn enc_i32(v: i32) -> [u8; 4] {
    ((v as u32) ^ (1 << 31)).to_be_bytes()
}

pub(super) fn partition_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(topic.len() + 6);
    k.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    k.extend_from_slice(topic.as_bytes());
    k.extend_from_slice(&enc_i32(partition));
    k
}

pub(super) fn decode_partition_key(b: &[u8]) -> Option<(String, i32)> {
    let len = u16::from_be_bytes(b.get(..2)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(b.get(2..2 + len)?).ok()?.to_owned();
    Some((topic, dec_i32(b.get(2 + len..6 + len)?)?))
}

pub(super) fn dead_letter_key(topic: &str, partition: i32, offset: i64) -> Vec<u8> {
    let mut k = partition_key(topic, partition);
    k.extend_from_slice(&enc_i64(offset));
    k
}

pub(super) fn window_key(start: i64, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = enc_i64(start).to_vec();
    k.extend_from_slice(&partition_key(topic, partition));
    k
}

/// What a window or bucket key says: `(start, topic, partition)`.
pub(super) type RowKey = (i64, String, i32);

/// The [`RowKey`] of a [`window_key`].
pub(super) fn decode_window_key(b: &[u8]) -> Option<RowKey> {
    let (topic, partition) = b.get(8..).and_then(decode_partition_key)?;
    Some((dec_i64(b)?, topic, partition))
}

pub(super) fn bucket_key(level: Level, start: i64, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = vec![level.code()];
    k.extend_from_slice(&window_key(start, topic, partition));
    k
}

/// The [`RowKey`] of a [`bucket_key`] (its level not checked).
pub(super) fn decode_bucket_key(b: &[u8]) -> Option<RowKey> {
    b.get(1..).and_then(decode_window_key)
}

pub(super) fn level_bound(level: Level, start: i64) -> Vec<u8> {
    let mut k = vec![level.code()];
    k.extend_from_slice(&enc_i64(start));
    k
}

pub(super) fn annotation_key(ts: i64, id: u64) -> Vec<u8> {
    let mut k = enc_i64(ts).to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}
