//! The server's state as `GET /api/v1/status` (and every socket `status` message) shows
//! it: the [`Status`], each Kafka partition's [`PartitionStatus`], the instances of the
//! consumer group ([`InstanceRef`], [`InstanceStatus`]), stored offsets that were reset
//! ([`OffsetResetNote`]) and the cluster as the metadata probe saw it ([`ClusterHealth`]).
//!
//! Contract: field names are the JSON names; fields marked `#[serde(default)]` may be absent
//! (a status from an older server still reads).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AlertNotice;

/// Server status: the body of `GET /api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// Server version.
    pub version: String,
    /// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION) spoken by the server.
    pub protocol: u32,
    /// Kafka bootstrap servers.
    pub broker: String,
    /// Whether the cluster answered the last metadata probe (see [`ClusterHealth`]).
    pub broker_reachable: bool,
    /// What the last metadata probe saw of the cluster.
    #[serde(default)]
    pub cluster: ClusterHealth,
    /// True when running on generated demo traffic.
    pub demo: bool,
    /// Window width, ms.
    pub window_ms: i64,
    /// Events accepted overall.
    pub events_total: u64,
    /// Dead letters overall.
    pub dead_letters_total: u64,
    /// Dead letters by [`crate::event::DeadReason::as_str`].
    pub dead_letters_by_reason: BTreeMap<String, u64>,
    /// Events that arrived after their window closed: folded into it as revisions, or
    /// dead-lettered (`too_late`) beyond the revision horizon.
    pub late_events_total: u64,
    /// Late events folded into closed windows (those windows are `revised`).
    #[serde(default)]
    pub revised_events_total: u64,
    /// Dead letters kept in the store because their topic did not take them.
    #[serde(default)]
    pub dead_letters_recorded_total: u64,
    /// Global event-time watermark (minimum over active partitions).
    pub watermark: Option<i64>,
    /// Recent ingestion rate.
    pub events_per_sec: f64,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Per-partition details.
    pub partitions: Vec<PartitionStatus>,
    /// Stored offsets found outside the log during this run.
    #[serde(default)]
    pub offset_resets: Vec<OffsetResetNote>,
    /// This instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceRef>,
    /// The state topic shared by the group's instances (absent: this instance runs alone,
    /// embedded or with `--no-state-topic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    /// Whether this instance has read the state topic up to its end once since it started
    /// (before that, other instances' partitions may lag behind).
    #[serde(default)]
    pub state_caught_up: bool,
    /// The instances alive in the consumer group (with a state topic).
    #[serde(default)]
    pub instances: Vec<InstanceStatus>,
    /// Alert rules firing now (the banner of the dashboard and the kiosk); history and
    /// every rule in `GET /api/v1/alerts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertNotice>,
    /// Changes whenever an annotation is added or deleted (and at every server start): a
    /// screen reloads `GET /api/v1/annotations` when it differs from the one it loaded.
    #[serde(default)]
    pub annotations_version: u64,
}

/// Ingestion state of one Kafka partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionStatus {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Next offset to be consumed.
    pub next_offset: i64,
    /// Broker high watermark, when known.
    pub high_watermark: Option<i64>,
    /// `high_watermark - next_offset`, when known.
    pub lag: Option<i64>,
    /// Event-time watermark, epoch ms.
    pub watermark: Option<i64>,
    /// True when the partition has produced nothing recently.
    pub idle: bool,
    /// Events accepted from this partition.
    pub events: u64,
    /// Messages sent to the dead-letter store from this partition.
    pub dead_letters: u64,
    /// Messages read by this process since it started (0 after a clean restart with
    /// nothing new: nothing is read twice).
    #[serde(default)]
    pub read_since_start: u64,
    /// Wall-clock time (epoch ms) of the first and the last message this process read.
    #[serde(default)]
    pub first_read_ms: Option<i64>,
    #[serde(default)]
    pub last_read_ms: Option<i64>,
    /// Times the stored offset was outside the log and reset (`--offset-reset`).
    #[serde(default)]
    pub offset_resets: u64,
    /// Late events folded into windows this partition had closed (revisions).
    #[serde(default)]
    pub revised_events: u64,
    /// Dead letters of this partition kept in the store (their topic did not take them).
    #[serde(default)]
    pub dead_letters_recorded: u64,
    /// Why this partition stopped counting (its task panicked), when it did: the process
    /// stops with an error, and the next start resumes it from its last checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The instance that owns the partition (that wrote its last checkpoint), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<InstanceRef>,
    /// Whether this instance reads the partition (false: another instance of the group
    /// does, and this one shows what that one checkpointed to the state topic).
    #[serde(default)]
    pub local: bool,
}

/// An instance of Pulseboard: its id in the consumer group and its dashboard's URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceRef {
    /// Random id kept in the instance's store (its transactional id is derived from it).
    pub id: String,
    /// Where the instance serves its dashboard (`--advertised-url`); empty when unknown.
    pub url: String,
}

/// A member of the consumer group, as the group coordinator lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceStatus {
    pub id: String,
    /// Where it serves its dashboard; empty when it has not said yet.
    pub url: String,
    /// Input partitions it owns (those whose last checkpoint it wrote).
    pub partitions: u32,
    /// This instance (the one answering).
    #[serde(default)]
    pub this: bool,
}

/// A stored offset found outside the log, and what was done about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OffsetResetNote {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The stored offset that was out of range.
    pub stored: i64,
    /// The policy applied: `earliest` or `latest`.
    pub policy: String,
    /// When, epoch ms.
    pub at: i64,
}

/// The Kafka cluster as Pulseboard's metadata probe last saw it.
///
/// Pulseboard asks the cluster for the metadata of its topics once a second, with a 2 s
/// timeout. `reachable` is whether the last answer came back: the cluster is reported
/// unreachable at most 3 s after it stops answering, and reachable again within about a
/// second of its first answer. A reachable cluster is `degraded` when a broker that holds
/// replicas of the input topics is not among the live brokers, or a partition has fewer
/// in-sync replicas than replicas, or no leader.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterHealth {
    /// The last probe was answered.
    pub reachable: bool,
    /// Wall-clock time (epoch ms) of the last probe, answered or not.
    pub checked_at: Option<i64>,
    /// Why the last probe failed.
    pub error: Option<String>,
    /// Live brokers in the last answer.
    pub brokers: Vec<BrokerInfo>,
    /// Broker ids holding replicas of the input topics that are not live.
    pub missing_brokers: Vec<i32>,
    /// Partitions of the input topics with fewer in-sync replicas than replicas.
    pub under_replicated_partitions: u32,
    /// Partitions of the input topics without a leader.
    pub offline_partitions: u32,
    /// Reachable, but with missing brokers, under-replicated or offline partitions.
    pub degraded: bool,
}

/// A live broker of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::Aggregate;
    use crate::proto::{ApiError, WindowState, WindowView, PROTOCOL_VERSION};

    #[test]
    fn wire_types_round_trip_through_json() {
        let agg = Aggregate::new();
        let v = WindowView::from_aggregate(0, 1, WindowState::Final, &agg, 5);
        let back: WindowView = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        let e = ApiError::param("from", "bad time");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"error":"bad time","parameter":"from"}"#);
        let st = Status {
            version: "0.1.0".into(),
            protocol: PROTOCOL_VERSION,
            broker: "localhost:9092".into(),
            broker_reachable: true,
            cluster: Default::default(),
            demo: false,
            window_ms: 10_000,
            events_total: 1,
            dead_letters_total: 0,
            dead_letters_by_reason: BTreeMap::new(),
            late_events_total: 0,
            watermark: Some(5),
            events_per_sec: 1.5,
            uptime_secs: 3,
            partitions: vec![PartitionStatus {
                topic: "clicks".into(),
                partition: 0,
                next_offset: 10,
                high_watermark: Some(12),
                lag: Some(2),
                watermark: None,
                idle: false,
                events: 9,
                dead_letters: 1,
                read_since_start: 10,
                first_read_ms: None,
                last_read_ms: None,
                offset_resets: 0,
                ..Default::default()
            }],
            offset_resets: vec![],
            ..Default::default()
        };
        let back: Status = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(back, st);
    }
}
