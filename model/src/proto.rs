//! JSON wire types shared by the server API and the frontend.
//!
//! Contract:
//! - These structs are the API's response bodies; field names are the JSON
//!   names. Changing their meaning requires bumping [`PROTOCOL_VERSION`].
//! - Times are epoch milliseconds; windows are `[start, end)`.
//! - Top lists are ordered by count descending, then key ascending, and
//!   `approximate` is true when any of the underlying counters left exact mode.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agg::{Aggregate, TopCounts};

/// Version of the JSON protocol described here.
pub const PROTOCOL_VERSION: u32 = 1;

/// Lifecycle of a window as shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowState {
    /// Still accepting events.
    Live,
    /// Closed under the watermark.
    Final,
    /// Closed, but rewritten after it was first reported final.
    Revised,
}

/// One `(key, count)` entry of a top list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count {
    /// The counted key (URL, referrer, country, ...).
    pub key: String,
    /// Its count (a lower bound when approximate).
    pub count: u64,
}

fn counts(t: &TopCounts, n: usize) -> Vec<Count> {
    t.top(n)
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect()
}

fn type_map(t: &TopCounts) -> BTreeMap<String, u64> {
    t.sorted_entries()
        .into_iter()
        .map(|(k, c)| (k.to_owned(), c))
        .collect()
}

/// One window's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowView {
    /// Window start (inclusive), epoch ms.
    pub start: i64,
    /// Window end (exclusive), epoch ms.
    pub end: i64,
    /// Lifecycle state.
    pub state: WindowState,
    /// Number of events.
    pub events: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// Estimated distinct visitors.
    pub unique_visitors: u64,
    /// Estimated distinct sessions.
    pub unique_sessions: u64,
    /// Most viewed URLs (page views).
    pub top_urls: Vec<Count>,
    /// Most common referrers.
    pub top_referrers: Vec<Count>,
    /// Events by country, largest first.
    pub countries: Vec<Count>,
    /// Events by device, largest first.
    pub devices: Vec<Count>,
    /// True when any top list is approximate.
    pub approximate: bool,
}

impl WindowView {
    /// Builds the view of `agg` with top lists cut to `top_n` entries.
    pub fn from_aggregate(
        start: i64,
        end: i64,
        state: WindowState,
        agg: &Aggregate,
        top_n: usize,
    ) -> Self {
        WindowView {
            start,
            end,
            state,
            events: agg.events,
            by_type: type_map(&agg.by_type),
            unique_visitors: agg.visitors.estimate(),
            unique_sessions: agg.sessions.estimate(),
            top_urls: counts(&agg.urls, top_n),
            top_referrers: counts(&agg.referrers, top_n),
            countries: counts(&agg.countries, top_n),
            devices: counts(&agg.devices, top_n),
            approximate: !agg.is_exact(),
        }
    }
}

/// Figures for a time range (a merge of windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Range start (inclusive), epoch ms.
    pub from: i64,
    /// Range end (exclusive), epoch ms.
    pub to: i64,
    /// Number of windows merged.
    pub windows: u64,
    /// Number of events.
    pub events: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// Estimated distinct visitors over the whole range.
    pub unique_visitors: u64,
    /// Estimated distinct sessions over the whole range.
    pub unique_sessions: u64,
    /// Most viewed URLs (page views).
    pub top_urls: Vec<Count>,
    /// Most common referrers.
    pub top_referrers: Vec<Count>,
    /// Events by country, largest first.
    pub countries: Vec<Count>,
    /// Events by device, largest first.
    pub devices: Vec<Count>,
    /// True when any top list is approximate.
    pub approximate: bool,
}

impl Summary {
    /// Builds the summary of `agg` with top lists cut to `top_n` entries.
    pub fn from_aggregate(from: i64, to: i64, windows: u64, agg: &Aggregate, top_n: usize) -> Self {
        Summary {
            from,
            to,
            windows,
            events: agg.events,
            by_type: type_map(&agg.by_type),
            unique_visitors: agg.visitors.estimate(),
            unique_sessions: agg.sessions.estimate(),
            top_urls: counts(&agg.urls, top_n),
            top_referrers: counts(&agg.referrers, top_n),
            countries: counts(&agg.countries, top_n),
            devices: counts(&agg.devices, top_n),
            approximate: !agg.is_exact(),
        }
    }
}

/// Ingestion state of one Kafka partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// A stored offset found outside the log, and what was done about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Server status (`/api/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Server version.
    pub version: String,
    /// [`PROTOCOL_VERSION`] spoken by the server.
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
    /// Events rejected as late overall.
    pub late_events_total: u64,
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
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

/// Error body of every failed API request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable message.
    pub error: String,
    /// Name of the offending query parameter, if any.
    pub parameter: Option<String>,
}

impl ApiError {
    /// An error not tied to a parameter.
    pub fn new(error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            parameter: None,
        }
    }

    /// An error about query parameter `parameter`.
    pub fn param(parameter: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            parameter: Some(parameter.into()),
        }
    }
}

/// Largest frame a client may send on the socket; a larger one closes that socket.
pub const MAX_CLIENT_FRAME: usize = 4096;

/// A message the server sends on the WebSocket `/ws`: JSON, tagged by `type`.
///
/// Every message carries a sequence number, increasing by one per message the server
/// publishes. A client that reconnects with `/ws?since=SEQ` gets the messages after `SEQ`
/// when the server still holds them, otherwise a fresh [`ServerMsg::Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The full picture: recent and open windows and the status. Sent on connect, after a
    /// resume that cannot be served, and to a client that fell behind.
    Snapshot {
        /// [`PROTOCOL_VERSION`] of the server.
        protocol: u32,
        /// Sequence of the last message this snapshot includes.
        seq: u64,
        /// Window width, ms.
        window_ms: i64,
        /// Recent windows, oldest first.
        windows: Vec<WindowView>,
        /// Pipeline status.
        status: Status,
    },
    /// Windows whose figures or state changed since the previous message.
    Windows {
        /// Sequence number.
        seq: u64,
        /// The changed windows, whole, oldest first.
        windows: Vec<WindowView>,
    },
    /// Pipeline status: offsets, lag, watermark, throughput, broker reachability.
    Status {
        /// Sequence number.
        seq: u64,
        /// Pipeline status.
        status: Status,
    },
}

impl ServerMsg {
    /// The message's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            ServerMsg::Snapshot { seq, .. }
            | ServerMsg::Windows { seq, .. }
            | ServerMsg::Status { seq, .. } => *seq,
        }
    }
}

/// A message a client may send on the socket (text frame, JSON). Anything else closes the
/// socket with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Application-level keepalive (browsers cannot send WebSocket pings).
    Ping,
}

/// What a client does when a message arrives out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Applied.
    Applied,
    /// Already seen (a replay overlapping what the client had): ignored.
    Stale,
    /// Messages are missing between the last seen and this one: reconnect with
    /// `since = last_seq` to be resumed or resynced.
    Gap {
        /// The last sequence applied.
        last_seq: u64,
    },
}

/// Client-side live state built from [`ServerMsg`]s: windows by start, the status, and the
/// last sequence applied. Pure, so the resume rules are tested on the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    /// Window width, ms (0 before the first snapshot).
    pub window_ms: i64,
    /// Windows by start.
    pub windows: BTreeMap<i64, WindowView>,
    /// Latest status.
    pub status: Option<Status>,
    /// Last sequence applied (`None` before the first snapshot).
    pub last_seq: Option<u64>,
    /// How many windows to keep (oldest dropped first); 0 = unbounded.
    pub keep: usize,
}

impl LiveState {
    /// An empty state keeping at most `keep` windows.
    pub fn new(keep: usize) -> Self {
        LiveState {
            keep,
            ..LiveState::default()
        }
    }

    /// Apply one message.
    pub fn apply(&mut self, msg: ServerMsg) -> Apply {
        let seq = msg.seq();
        if let ServerMsg::Snapshot {
            window_ms,
            windows,
            status,
            ..
        } = msg
        {
            self.window_ms = window_ms;
            // A snapshot replaces what it covers; older history (loaded from the API) stays.
            for w in windows {
                self.windows.insert(w.start, w);
            }
            self.status = Some(status);
            self.last_seq = Some(seq);
            self.trim();
            return Apply::Applied;
        }
        match self.last_seq {
            None => return Apply::Gap { last_seq: 0 },
            Some(last) if seq <= last => return Apply::Stale,
            Some(last) if seq > last + 1 => return Apply::Gap { last_seq: last },
            Some(_) => {}
        }
        match msg {
            ServerMsg::Windows { windows, .. } => {
                for w in windows {
                    self.windows.insert(w.start, w);
                }
                self.trim();
            }
            ServerMsg::Status { status, .. } => self.status = Some(status),
            ServerMsg::Snapshot { .. } => {}
        }
        self.last_seq = Some(seq);
        Apply::Applied
    }

    /// Merge windows loaded from the JSON API (history) under the live ones.
    pub fn load_history(&mut self, windows: Vec<WindowView>) {
        for w in windows {
            self.windows.entry(w.start).or_insert(w);
        }
        self.trim();
    }

    fn trim(&mut self) {
        if self.keep == 0 {
            return;
        }
        while self.windows.len() > self.keep {
            self.windows.pop_first();
        }
    }

    /// Windows whose start lies in `[from, to)`, oldest first.
    pub fn range(&self, from: i64, to: i64) -> impl Iterator<Item = &WindowView> {
        self.windows.range(from..to).map(|(_, w)| w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn ev(kind: &str, url: &str, referrer: Option<&str>) -> Event {
        Event {
            ts: 1_795_515_330_123,
            kind: kind.into(),
            visitor: format!("v-{url}"),
            session: Some("s-1".into()),
            url: url.into(),
            referrer: referrer.map(Into::into),
            country: Some("DE".into()),
            device: Some("mobile".into()),
        }
    }

    #[test]
    fn window_view_reflects_the_aggregate_with_ordered_top_lists() {
        let mut agg = Aggregate::new();
        for e in [
            ev("pageview", "/b", Some("https://g/")),
            ev("pageview", "/a", None),
            ev("pageview", "/b", None),
            ev("click", "/c", Some("https://g/")),
            ev("pageview", "/a", None),
            ev("pageview", "/z", None),
        ] {
            agg.add(&e);
        }
        let v = WindowView::from_aggregate(0, 10_000, WindowState::Live, &agg, 2);
        assert_eq!(v.events, 6);
        assert_eq!(v.by_type.get("pageview"), Some(&5));
        assert_eq!(v.by_type.get("click"), Some(&1));
        assert_eq!(
            v.top_urls,
            vec![
                Count {
                    key: "/a".into(),
                    count: 2
                },
                Count {
                    key: "/b".into(),
                    count: 2
                }
            ]
        );
        assert_eq!(
            v.top_referrers,
            vec![Count {
                key: "https://g/".into(),
                count: 2
            }]
        );
        assert_eq!(v.unique_visitors, 4);
        assert_eq!(v.unique_sessions, 1);
        assert!(!v.approximate);
        let s = Summary::from_aggregate(0, 20_000, 2, &agg, 10);
        assert_eq!(s.top_urls.len(), 3); // /c was a click, not a page view
        assert_eq!(
            s.countries,
            vec![Count {
                key: "DE".into(),
                count: 6
            }]
        );
    }

    #[test]
    fn window_state_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&WindowState::Live).unwrap(),
            "\"live\""
        );
        assert_eq!(
            serde_json::to_string(&WindowState::Final).unwrap(),
            "\"final\""
        );
        assert_eq!(
            serde_json::from_str::<WindowState>("\"revised\"").unwrap(),
            WindowState::Revised
        );
    }

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
            }],
            offset_resets: vec![],
        };
        let back: Status = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(back, st);
    }

    fn view(start: i64, events: u64) -> WindowView {
        let mut agg = Aggregate::new();
        for i in 0..events {
            agg.add(&ev("pageview", &format!("/{i}"), None));
        }
        WindowView::from_aggregate(start, start + 10_000, WindowState::Live, &agg, 10)
    }

    fn status() -> Status {
        Status {
            version: "0".into(),
            protocol: PROTOCOL_VERSION,
            broker: "embedded".into(),
            broker_reachable: true,
            cluster: Default::default(),
            demo: true,
            window_ms: 10_000,
            events_total: 0,
            dead_letters_total: 0,
            dead_letters_by_reason: BTreeMap::new(),
            late_events_total: 0,
            watermark: None,
            events_per_sec: 0.0,
            uptime_secs: 0,
            partitions: vec![],
            offset_resets: vec![],
        }
    }

    #[test]
    fn server_messages_round_trip_as_tagged_json() {
        let msgs = vec![
            ServerMsg::Snapshot {
                protocol: PROTOCOL_VERSION,
                seq: 7,
                window_ms: 10_000,
                windows: vec![view(0, 2)],
                status: status(),
            },
            ServerMsg::Windows {
                seq: 8,
                windows: vec![view(10_000, 1)],
            },
            ServerMsg::Status {
                seq: 9,
                status: status(),
            },
        ];
        for m in msgs {
            let json = serde_json::to_string(&m).expect("serialize");
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            assert!(v["type"].is_string(), "{json}");
            let back: ServerMsg = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, m);
        }
        let snap: serde_json::Value = serde_json::to_value(ServerMsg::Snapshot {
            protocol: PROTOCOL_VERSION,
            seq: 1,
            window_ms: 10_000,
            windows: vec![],
            status: status(),
        })
        .expect("value");
        assert_eq!(snap["type"], "snapshot");
        assert_eq!(snap["protocol"], PROTOCOL_VERSION);
    }

    #[test]
    fn unknown_message_type_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ServerMsg>(r#"{"type":"bogus","seq":1}"#).is_err());
    }

    #[test]
    fn live_state_applies_in_order_and_detects_gaps() {
        let mut st = LiveState::new(3);
        assert_eq!(
            st.apply(ServerMsg::Windows {
                seq: 1,
                windows: vec![]
            }),
            Apply::Gap { last_seq: 0 },
            "deltas before a snapshot are a gap"
        );
        let snap = ServerMsg::Snapshot {
            protocol: PROTOCOL_VERSION,
            seq: 10,
            window_ms: 10_000,
            windows: vec![view(0, 1), view(10_000, 1)],
            status: status(),
        };
        assert_eq!(st.apply(snap), Apply::Applied);
        assert_eq!(
            st.apply(ServerMsg::Windows {
                seq: 10,
                windows: vec![]
            }),
            Apply::Stale
        );
        assert_eq!(
            st.apply(ServerMsg::Windows {
                seq: 11,
                windows: vec![view(10_000, 5), view(20_000, 1)]
            }),
            Apply::Applied
        );
        assert_eq!(st.windows[&10_000].events, 5);
        assert_eq!(
            st.apply(ServerMsg::Windows {
                seq: 13,
                windows: vec![view(30_000, 1)]
            }),
            Apply::Gap { last_seq: 11 }
        );
        assert!(
            !st.windows.contains_key(&30_000),
            "a message after a gap is not applied"
        );
        assert_eq!(
            st.apply(ServerMsg::Status {
                seq: 12,
                status: status()
            }),
            Apply::Applied
        );
        assert_eq!(
            st.apply(ServerMsg::Windows {
                seq: 13,
                windows: vec![view(30_000, 1)]
            }),
            Apply::Applied
        );
        assert_eq!(st.windows.len(), 3, "keeps at most 3 windows");
        assert_eq!(st.windows.keys().next(), Some(&10_000));
        st.load_history(vec![view(20_000, 99)]);
        assert_eq!(
            st.windows[&20_000].events, 1,
            "history never overwrites live windows"
        );
    }
}
