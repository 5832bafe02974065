//! The WebSocket `/ws`: what the server sends ([`ServerMsg`]) and what a client may send
//! ([`ClientMsg`]).
//!
//! Contract:
//! - Messages are JSON text frames tagged by `type` (`snapshot`, `changes`; `ping` from the
//!   client).
//! - Every server message carries a sequence number, increasing by one per message the
//!   server publishes; a resume (`/ws?since=SEQ`) that cannot be served gets a fresh
//!   snapshot.
//! - After the snapshot, a client gets only what changed ([`ServerMsg::Changes`], see
//!   [`super::patch`]): the windows whose figures or state changed, as the fields that
//!   changed, and the status fields that changed. A `changes` message names the message it
//!   follows (`after`): one per published message, or, on a socket paced to a display
//!   (`/ws?every=MS`), one for all the messages of the interval.
//! - A client frame larger than [`MAX_CLIENT_FRAME`], or anything but a [`ClientMsg`],
//!   closes the socket.

use serde::{Deserialize, Serialize};

use super::patch::Fields;
use super::{Status, WindowView};

/// Largest frame a client may send on the socket; a larger one closes that socket.
pub const MAX_CLIENT_FRAME: usize = 4096;

/// A message the server sends on the WebSocket `/ws`: JSON, tagged by `type`.
///
/// Every message carries a sequence number, increasing by one per message the server
/// publishes. A client that reconnects with `/ws?since=SEQ` gets the messages after `SEQ`
/// when the server still holds them, otherwise a fresh [`ServerMsg::Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
// A snapshot (with its status) is far larger than a change; messages are built once per
// sequence number and serialised, never kept in bulk, so the size of the enum is moot.
#[allow(clippy::large_enum_variant)]
pub enum ServerMsg {
    /// The full picture: recent and open windows and the status. Sent on connect, after a
    /// resume that cannot be served, and to a client that fell behind.
    Snapshot {
        /// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION) of the server.
        protocol: u32,
        /// Sequence of the last message this snapshot includes.
        seq: u64,
        /// Window width, ms.
        window_ms: i64,
        /// Recent windows, oldest first.
        windows: Vec<WindowView>,
        /// Pipeline status.
        status: Status,
        /// On a filtered socket (`/ws?filter=`): the filter the windows show.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        /// On a socket of one site (`/ws?site=`): the site the windows show.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site: Option<String>,
    },
    /// What changed since message `after`: the client applies it when it holds `after`
    /// or a later message (not `seq` yet); when it holds an earlier one, messages are
    /// missing and it resumes with `since`.
    Changes {
        /// Sequence number of the last message this one includes.
        seq: u64,
        /// The message this one follows (`seq - 1`, or earlier on a paced socket).
        after: u64,
        /// The windows that changed, oldest first: each the fields that changed with its
        /// `start` (a shallow JSON merge patch of the [`WindowView`]); a window the client
        /// may not hold is sent whole.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
        windows: Vec<Fields>,
        /// The status fields that changed (a shallow JSON merge patch of the
        /// [`Status`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        status: Option<Fields>,
    },
}

impl ServerMsg {
    /// The message's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            ServerMsg::Snapshot { seq, .. } | ServerMsg::Changes { seq, .. } => *seq,
        }
    }
}

/// A message a client may send on the socket (text frame, JSON). Anything else closes the
/// socket with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Application-level keepalive (browsers cannot send WebSocket pings).
    Ping,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::Aggregate;
    use crate::proto::tests::ev;
    use crate::proto::{WindowState, PROTOCOL_VERSION};

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
            demo: true,
            window_ms: 10_000,
            ..Status::default()
        }
    }

    #[test]
    fn server_messages_round_trip_as_tagged_json() {
        let msgs = vec![
            ServerMsg::Snapshot {
                site: None,
                protocol: PROTOCOL_VERSION,
                seq: 7,
                window_ms: 10_000,
                windows: vec![view(0, 2)],
                status: status(),
                filter: None,
            },
            ServerMsg::Changes {
                seq: 8,
                after: 7,
                windows: vec![crate::proto::patch::fields(&view(10_000, 1))],
                status: None,
            },
            ServerMsg::Changes {
                seq: 9,
                after: 8,
                windows: Vec::new(),
                status: Some(crate::proto::patch::fields(&status())),
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
            site: None,
            protocol: PROTOCOL_VERSION,
            seq: 1,
            window_ms: 10_000,
            windows: vec![],
            status: status(),
            filter: None,
        })
        .expect("value");
        assert_eq!(snap["type"], "snapshot");
        assert_eq!(snap["protocol"], PROTOCOL_VERSION);
    }

    #[test]
    fn unknown_message_type_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ServerMsg>(r#"{"type":"bogus","seq":1}"#).is_err());
    }
}
