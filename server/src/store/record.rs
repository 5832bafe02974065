//! The state topic's record format, in one place: the state every instance shares and
//! Pulseboard's output for other systems.
//!
//! Contract (format version 1; keys and values are JSON objects, UTF-8; every one carries
//! `"v":1`, and a reader refuses another version with a clear error):
//! - Window record. Key `{"v":1,"kind":"window","topic":T,"partition":P,"start":S}`; value
//!   `{"v":1,"end":E,"seq":N,"revised":bool,"events":..,"unique_visitors":..,
//!   "unique_sessions":..,"by_type":{..},"aggregate":"<base64>"}`: partition P's aggregate
//!   of the window [S, E) as it stands after the partition's checkpoint `seq`; readable
//!   figures for other systems, and `aggregate`, the mergeable state (HyperLogLogs, top
//!   lists) as base64 of Pulseboard's versioned binary encoding. A null value (tombstone)
//!   deletes the window (retention).
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

use std::collections::BTreeMap;

use base64::Engine as _;
use pulseboard_model::agg::Aggregate;
use serde::{Deserialize, Serialize};

use crate::store::{DeadLetterRecord, OwnerRecord, PartitionCheckpoint, PartitionWrite};
use utoipa::openapi::{Ref, RefOr, Schema};

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

/// A window record's value: one partition's aggregate of the window `[start, end)`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StateTopicWindowFields)]
pub struct WindowValue {
    /// End of the window (exclusive), epoch ms.
    pub end: i64,
    /// The partition's checkpoint this value belongs to.
    pub seq: u64,
    /// The window took late events (it changed after it closed).
    pub revised: bool,
    /// Events of this partition in the window.
    pub events: u64,
    /// HyperLogLog estimates of this partition alone (merge `aggregate`s across partitions;
    /// never sum these).
    pub unique_visitors: u64,
    pub unique_sessions: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// base64 of Pulseboard's versioned binary encoding of the whole aggregate (the
    /// mergeable HyperLogLogs and top lists).
    pub aggregate: String,
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

/// The value of a window record.
pub fn window_value(agg: &Aggregate, end: i64, seq: u64, revised: bool) -> Vec<u8> {
    encode(&WindowValue {
        end,
        seq,
        revised,
        events: agg.events,
        unique_visitors: agg.visitors.estimate(),
        unique_sessions: agg.sessions.estimate(),
        by_type: agg
            .by_type
            .sorted_entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        aggregate: base64::engine::general_purpose::STANDARD.encode(agg.to_bytes()),
    })
}

/// A window record's value, decoded, with its aggregate.
pub fn decode_window(b: &[u8]) -> Result<(WindowValue, Aggregate), FormatError> {
    let v: WindowValue = decode(b)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&v.aggregate)
        .map_err(|e| FormatError::Aggregate(e.to_string()))?;
    let agg = Aggregate::from_bytes(&bytes).map_err(|e| FormatError::Aggregate(e.to_string()))?;
    Ok((v, agg))
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
    for (start, agg) in &write.rows {
        let key = Key::Window {
            topic: write.topic.clone(),
            partition: write.partition,
            start: *start,
        };
        let revised = write.revised.contains(start);
        out.push((
            sp,
            key.encode(),
            Some(window_value(agg, start + width_ms, cp.seq, revised)),
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
        value: Option<Box<(WindowValue, Aggregate)>>,
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
            value: value.map(decode_window).transpose()?.map(Box::new),
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
            versioned(
                "StateTopicWindowFields",
                "Value of a `window` record; a null value (tombstone) when retention removed the window.",
            ),
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
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_other_versions_are_refused() {
        let k = Key::Window {
            topic: "clicks".into(),
            partition: 3,
            start: -10_000,
        };
        let text = String::from_utf8(k.encode()).expect("utf8");
        assert_eq!(
            text,
            r#"{"v":1,"kind":"window","topic":"clicks","partition":3,"start":-10000}"#
        );
        assert_eq!(Key::decode(text.as_bytes()).expect("decode"), k);
        let mut agg = Aggregate::new();
        agg.events = 7;
        let (v, back) = decode_window(&window_value(&agg, 0, 9, true)).expect("window");
        assert_eq!((v.seq, v.revised, v.events, back.events), (9, true, 7, 7));
        let p = ProgressValue {
            checkpoint: PartitionCheckpoint {
                seq: 4,
                next_offset: 12,
                ..Default::default()
            },
            high_watermark: Some(20),
            owner: Owner {
                id: "a".into(),
                url: "http://x".into(),
            },
            last_read_ms: Some(3),
            at_ms: 1,
        };
        assert_eq!(decode_progress(&progress_value(&p)).expect("progress"), p);
        let err = Key::decode(br#"{"v":2,"kind":"instance","id":"a"}"#).expect_err("v2");
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(Key::decode(b"not json").is_err());
    }

    #[test]
    fn a_checkpoint_is_windows_and_dead_letters_then_progress_in_one_state_partition() {
        let mut agg = Aggregate::new();
        agg.events = 2;
        let write = PartitionWrite {
            topic: "clicks".into(),
            partition: 2,
            checkpoint: PartitionCheckpoint {
                seq: 3,
                next_offset: 99,
                max_event_ts: Some(25_000),
                ..Default::default()
            },
            rows: vec![(0, agg.clone()), (10_000, agg)],
            revised: vec![0],
            undelivered: vec![DeadLetterRecord {
                topic: "clicks".into(),
                partition: 2,
                offset: 5,
                reason: "not_json".into(),
                error: "too large".into(),
                at_ms: 1,
                value_bytes: 9,
                value_head: b"x".to_vec(),
            }],
            owner: Some(OwnerRecord {
                id: "i1".into(),
                url: "http://127.0.0.1:8080".into(),
                high_watermark: Some(120),
                last_read_ms: Some(10),
                at_ms: 11,
            }),
        };
        let records = records_of(&write, 10_000, 6);
        let sp = partition_for("clicks", 2, 6);
        assert!(records.iter().all(|(p, _, _)| *p == sp));
        let decoded: Vec<StateRecord> = records
            .iter()
            .map(|(_, k, v)| decode_record(k, v.as_deref()).expect("decode"))
            .collect();
        let [StateRecord::Window {
            start: 0,
            value: Some(w0),
            ..
        }, StateRecord::Window {
            start: 10_000,
            value: Some(w1),
            ..
        }, StateRecord::DeadLetter(Some(d)), StateRecord::Progress { value: Some(p), .. }] =
            &decoded[..]
        else {
            panic!("unexpected records: {decoded:?}");
        };
        assert!(w0.0.revised && !w1.0.revised);
        assert_eq!(
            (w1.0.end, w1.0.seq, w1.0.events, w1.1.events),
            (20_000, 3, 2, 2)
        );
        assert_eq!(d.offset, 5);
        assert_eq!(p.checkpoint, write.checkpoint);
        assert_eq!(Some(p.owner_record()), write.owner);
        let (_, k, v) = window_tombstone("clicks", 2, 0, 6);
        assert!(matches!(
            decode_record(&k, v.as_deref()).expect("decode"),
            StateRecord::Window { value: None, .. }
        ));
    }

    #[test]
    fn commit_metadata_carries_the_checkpoint_sequence() {
        assert_eq!(parse_commit_seq(&commit_metadata(7, Some(-3))), Some(7));
        assert_eq!(parse_commit_seq(&commit_metadata(8, None)), Some(8));
        assert_eq!(parse_commit_seq("max_event_ts=5"), None);
        assert_eq!(
            crate::ingest::client::parse_commit_metadata(&commit_metadata(7, Some(-3))),
            Some(-3)
        );
    }

    #[test]
    fn an_input_partition_always_maps_to_the_same_state_partition() {
        let p = partition_for("clicks", 5, 4);
        assert!((0..4).contains(&p));
        assert_eq!(p, partition_for("clicks", 5, 4));
        assert_eq!(partition_for("clicks", 5, 1), 0);
        let spread: std::collections::HashSet<i32> =
            (0..8).map(|i| partition_for("clicks", i, 4)).collect();
        assert_eq!(spread.len(), 4);
    }
}
