//! The state topic's record format, in one place: the state every instance shares and
//! Pulseboard's output for other systems.
//!
//! Contract (format version 1; keys are JSON objects, UTF-8, every one carrying `"v":1`;
//! values are JSON objects with `"v":1` too, but for windows; a reader refuses another
//! version with a clear error):
//! - Window record. Key `{"v":1,"kind":"window","topic":T,"partition":P,"start":S}`; value
//!   binary, window format 2 (`window.rs` has the layout): partition P's figures of the
//!   window [S, E) as they stand after the partition's checkpoint `seq` (end, seq, revised,
//!   events, unique visitors and sessions, events by type), then its stored row, the
//!   mergeable state (HyperLogLogs, top lists, segment tables) in Pulseboard's versioned
//!   row format, zstd-compressed: the bytes the store keeps. Values of window format 1
//!   (JSON, the row as base64) are still read. A null value (tombstone) deletes the window
//!   (retention).
//! - Progress record. Key `{"v":1,"kind":"progress","topic":T,"partition":P}`; value
//!   `{"v":1,"seq":N,"next_offset":O,"max_event_ts":M,"events":..,"late":..,
//!   "dead_letters":{reason:n},"offset_resets":..,"revised_events":..,
//!   "dead_letters_recorded":..,"owner":{"id":..,"url":..},"high_watermark":H,
//!   "last_read_ms":..,"at_ms":..}`: the partition's checkpoint `seq` (strictly increasing
//!   per partition, whoever owns it): the next offset to read, the max event time folded
//!   (its watermark state), its counters, and who wrote it.
//! - Dead-letter record. Key `{"v":1,"kind":"dead_letter","topic":T,"partition":P,
//!   "offset":O}`; value: a dead letter its topic did not take (see `store`).
//! - Instance record. Key `{"v":1,"kind":"instance","id":I}`; value `{"v":1,"url":..,
//!   "started_ms":..}`; a tombstone when the instance stops gracefully.
//! - One checkpoint of partition P is one Kafka transaction: its window and dead-letter
//!   records, then its progress record, together with the consumer offset commit of P at
//!   `next_offset` (metadata `seq=N;max_event_ts=M`). All records of input partition P go
//!   to state partition `(fnv1a(T) + P) mod N` (N: the state topic's partition count, which
//!   must not change), so they stay in order: a reader that applies the window records of
//!   P when it meets P's next progress record always applies a whole checkpoint, also after
//!   compaction (which keeps the last record of each key, in order). Instance records go to
//!   partition 0.

use serde::{Deserialize, Serialize};

use crate::store::{DeadLetterRecord, OwnerRecord, PartitionCheckpoint, PartitionWrite};
use utoipa::openapi::{Ref, RefOr, Schema};

mod window;

pub use window::{window_value, Window, WindowValue, WINDOW_FORMAT};

/// Version of the record format above.
pub const VERSION: u32 = 1;

/// A record key (with `"v":1`): which window, progress, dead letter or instance the
/// value is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schema(as = StateTopicKeyFields)]
pub enum Key {
    Window {
        topic: String,
        partition: i32,
        start: i64,
    },
    Progress {
        topic: String,
        partition: i32,
    },
    DeadLetter {
        topic: String,
        partition: i32,
        offset: i64,
    },
    Instance {
        id: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    v: u32,
    #[serde(flatten)]
    inner: T,
}

/// Who owns a partition: an instance id and the URL its dashboard is served at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StateTopicOwner)]
pub struct Owner {
    pub id: String,
    pub url: String,
}

/// A progress record's value: a partition's checkpoint and who wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StateTopicProgressFields)]
pub struct ProgressValue {
    #[serde(flatten)]
    pub checkpoint: PartitionCheckpoint,
    pub owner: Owner,
    pub high_watermark: Option<i64>,
    pub last_read_ms: Option<i64>,
    pub at_ms: i64,
}

impl ProgressValue {
    /// What the store keeps of the writer.
    pub fn owner_record(&self) -> OwnerRecord {
        OwnerRecord {
            id: self.owner.id.clone(),
            url: self.owner.url.clone(),
            high_watermark: self.high_watermark,
            last_read_ms: self.last_read_ms,
            at_ms: self.at_ms,
        }
    }
}

/// An instance record's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StateTopicInstanceFields)]
pub struct InstanceValue {
    pub url: String,
    pub started_ms: i64,
}

/// A record that cannot be read (another format version, or not Pulseboard's).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a Pulseboard state record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("state record of format version {0}; this Pulseboard reads version {VERSION}")]
    Version(u32),
    #[error("window aggregate is unreadable: {0}")]
    Aggregate(String),
    #[error("window value is truncated or malformed: {0}")]
    Window(&'static str),
}

fn encode<T: Serialize>(inner: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail.
    serde_json::to_vec(&Versioned { v: VERSION, inner }).unwrap_or_default()
}

fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, FormatError> {
    let v: Versioned<T> = serde_json::from_slice(b)?;
    if v.v != VERSION {
        return Err(FormatError::Version(v.v));
    }
    Ok(v.inner)
}

impl Key {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        decode(b)
    }
}

pub fn progress_value(p: &ProgressValue) -> Vec<u8> {
    encode(p)
}

pub fn decode_progress(b: &[u8]) -> Result<ProgressValue, FormatError> {
    decode(b)
}

pub fn instance_value(v: &InstanceValue) -> Vec<u8> {
    encode(v)
}

pub fn decode_instance(b: &[u8]) -> Result<InstanceValue, FormatError> {
    decode(b)
}

/// One record to produce: state partition, key, value (`None`: a tombstone).
pub type OutRecord = (i32, Vec<u8>, Option<Vec<u8>>);

/// The records of one checkpoint of a partition, in the order they must be produced: its
/// windows and dead letters, then its progress record. `write.owner` must be set.
pub fn records_of(write: &PartitionWrite, width_ms: i64, partitions: i32) -> Vec<OutRecord> {
    let sp = partition_for(&write.topic, write.partition, partitions);
    let cp = &write.checkpoint;
    let mut out = Vec::with_capacity(write.rows.len() + write.undelivered.len() + 1);
    for row in &write.rows {
        let key = Key::Window {
            topic: write.topic.clone(),
            partition: write.partition,
            start: row.start,
        };
        let revised = write.revised.contains(&row.start);
        out.push((
            sp,
            key.encode(),
            Some(window_value(row, row.start + width_ms, cp.seq, revised)),
        ));
    }
    for d in &write.undelivered {
        let key = Key::DeadLetter {
            topic: d.topic.clone(),
            partition: d.partition,
            offset: d.offset,
        };
        out.push((sp, key.encode(), Some(encode(d))));
    }
    let owner = write.owner.clone().unwrap_or(OwnerRecord {
        id: String::new(),
        url: String::new(),
        high_watermark: None,
        last_read_ms: None,
        at_ms: 0,
    });
    let progress = ProgressValue {
        checkpoint: cp.clone(),
        owner: Owner {
            id: owner.id,
            url: owner.url,
        },
        high_watermark: owner.high_watermark,
        last_read_ms: owner.last_read_ms,
        at_ms: owner.at_ms,
    };
    let key = Key::Progress {
        topic: write.topic.clone(),
        partition: write.partition,
    };
    out.push((sp, key.encode(), Some(progress_value(&progress))));
    out
}

/// The tombstone of one window.
pub fn window_tombstone(topic: &str, partition: i32, start: i64, partitions: i32) -> OutRecord {
    let key = Key::Window {
        topic: topic.to_owned(),
        partition,
        start,
    };
    (
        partition_for(topic, partition, partitions),
        key.encode(),
        None,
    )
}

/// A record of the state topic, decoded.
#[derive(Debug, Clone)]
pub enum StateRecord {
    Window {
        topic: String,
        partition: i32,
        start: i64,
        /// `None`: a tombstone.
        value: Option<Box<Window>>,
    },
    Progress {
        topic: String,
        partition: i32,
        /// `None`: a tombstone (not written by Pulseboard; ignored).
        value: Option<ProgressValue>,
    },
    DeadLetter(Option<DeadLetterRecord>),
    Instance {
        id: String,
        value: Option<InstanceValue>,
    },
}

/// Decode one record of the state topic.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<StateRecord, FormatError> {
    Ok(match Key::decode(key)? {
        Key::Window {
            topic,
            partition,
            start,
        } => StateRecord::Window {
            topic,
            partition,
            start,
            value: value.map(Window::decode).transpose()?.map(Box::new),
        },
        Key::Progress { topic, partition } => StateRecord::Progress {
            topic,
            partition,
            value: value.map(decode_progress).transpose()?,
        },
        Key::DeadLetter { .. } => StateRecord::DeadLetter(value.map(decode).transpose()?),
        Key::Instance { id } => StateRecord::Instance {
            id,
            value: value.map(decode_instance).transpose()?,
        },
    })
}

/// The commit metadata of a checkpoint: its `seq` and the max event time it folded.
pub fn commit_metadata(seq: u64, max_event_ts: Option<i64>) -> String {
    match max_event_ts {
        Some(m) => format!("seq={seq};max_event_ts={m}"),
        None => format!("seq={seq}"),
    }
}

/// The `seq` in commit metadata, when a checkpoint of the state topic wrote it.
pub fn parse_commit_seq(meta: &str) -> Option<u64> {
    meta.split(';')
        .find_map(|kv| kv.strip_prefix("seq="))
        .and_then(|v| v.parse().ok())
}

/// The record format as OpenAPI schemas (components of `/api/v1/openapi.json`): for each
/// kind of key and value, its fields together with the format version `v`.
pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
    use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
    use utoipa::PartialSchema;
    let versioned = |fields: &str, what: &str| -> RefOr<Schema> {
        AllOfBuilder::new()
            .description(Some(what))
            .item(
                ObjectBuilder::new()
                    .property(
                        "v",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(VERSION))
                            .maximum(Some(VERSION))
                            .description(Some("Format version of the record (1).")),
                    )
                    .required("v"),
            )
            .item(Ref::from_schema_name(fields))
            .into()
    };
    let mut out = vec![
        (
            "StateTopicKey".to_owned(),
            versioned(
                "StateTopicKeyFields",
                "Key of a record of the state topic (`--state-topic`, compacted): JSON, UTF-8.",
            ),
        ),
        (
            "StateTopicWindow".to_owned(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/octet-stream")
                .description(Some(WINDOW_VALUE_LAYOUT))
                .into(),
        ),
        (
            "StateTopicProgress".to_owned(),
            versioned(
                "StateTopicProgressFields",
                "Value of a `progress` record: written last in the transaction of the partition's checkpoint, with the consumer offset commit.",
            ),
        ),
        (
            "StateTopicDeadLetter".to_owned(),
            versioned(
                "DeadLetterRecord",
                "Value of a `dead_letter` record: a message whose dead-letter topic did not take it.",
            ),
        ),
        (
            "StateTopicInstance".to_owned(),
            versioned(
                "StateTopicInstanceFields",
                "Value of an `instance` record; a null value when the instance stopped.",
            ),
        ),
    ];
    let mut fields: Vec<(String, RefOr<Schema>)> = Vec::new();
    for (name, schema) in [
        ("StateTopicKeyFields", Key::schema()),
        ("StateTopicWindowFields", WindowValue::schema()),
        ("StateTopicProgressFields", ProgressValue::schema()),
        ("StateTopicInstanceFields", InstanceValue::schema()),
        ("StateTopicOwner", Owner::schema()),
        ("PartitionCheckpoint", PartitionCheckpoint::schema()),
        ("DeadLetterRecord", DeadLetterRecord::schema()),
    ] {
        fields.push((name.to_owned(), schema));
    }
    out.extend(fields);
    out
}

/// What the OpenAPI description says of a window record's value (see `window`).
const WINDOW_VALUE_LAYOUT: &str =
    "Value of a `window` record (a null value, a tombstone, when retention \
removed the window): binary, window format 2. Byte 0x02; then, as LEB128 varints, `end` \
(epoch ms, zigzag), `seq`, a flags byte (bit 0: revised), `events`, `unique_visitors`, \
`unique_sessions` (this partition's estimates: never sum them across partitions), the number \
of event types and for each its name (varint length, UTF-8) and count (the fields of \
`StateTopicWindowFields`); then the rest of the value is the window's stored row, the \
mergeable state (HyperLogLogs, top lists, segment tables): 0x81 and a zstd frame of the row, \
or the row itself (row format 6, led by its version byte; rows of format 5, written by \
earlier releases, are still read). docs/state_topic_window.py in \
the repository decodes it. Values of window format 1 (a JSON object carrying the row as base64) \
are still read.";

/// The state partition that holds an input partition's records.
pub fn partition_for(topic: &str, partition: i32, partitions: i32) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in topic.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let n = partitions.max(1) as i64;
    ((i64::from(h) + i64::from(partition)).rem_euclid(n)) as i32
}

#[cfg(test)]
mod tests;
