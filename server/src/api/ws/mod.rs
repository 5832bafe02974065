//! The WebSocket `/ws`: one client, fed from the hub.
//!
//! Contract:
//! - `GET /ws?since=SEQ`: the client first gets what it missed after `SEQ` (or a snapshot),
//!   then every message the hub publishes, in sequence order, each at most once (the
//!   session: `session.rs`).
//! - `GET /ws?filter=DIMENSION:VALUE` follows the stream as that segment sees it (see
//!   [`crate::api::feed`]); a bad filter is a `400` naming `filter`, as in the API.
//! - New sessions are paced ([`ConnectPacer`]): at most `--ws-connect-rate` a second on
//!   average and `--ws-connect-burst` at once, the rest waiting their turn in order of
//!   arrival before the handshake is answered; one whose turn is more than
//!   `--ws-connect-max-wait` away gets `503` with `Retry-After`. A reconnect storm then
//!   costs ingest a bounded share of the CPU, however many clients take part.

mod pacer;
mod session;

pub use pacer::{Admission, ConnectPacer};
pub use session::serve;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pulseboard_model::proto::MAX_CLIENT_FRAME;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::feed::Feeds;
use crate::config::HubArgs;
use crate::hub::Hub;

/// What the socket handler needs (taken from the app's state with `FromRef`).
#[derive(Clone)]
pub struct SocketState {
    pub hub: Arc<Hub>,
    /// Cancelled at shutdown; sockets close with "going away".
    pub shutdown: CancellationToken,
    pub options: SocketOptions,
    /// Paces new sessions.
    pub pacer: Arc<ConnectPacer>,
    /// The frames of filtered sockets.
    pub feeds: Arc<Feeds>,
}

/// Timing of one socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
}

impl SocketOptions {
    /// `--ws-ping-interval`, `--ws-idle-timeout`, `--ws-send-timeout`.
    pub fn from_args(args: &HubArgs) -> Self {
        SocketOptions {
            ping_interval: args.ws_ping_interval,
            idle_timeout: args.ws_idle_timeout,
            send_timeout: args.ws_send_timeout,
        }
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    since: Option<String>,
    filter: Option<String>,
}

/// `GET /ws`.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(st): State<SocketState>,
    Query(p): Query<WsParams>,
) -> Result<Response, ApiError> {
    let since = match p.since.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| ApiError::BadParam {
            parameter: "since",
            message: format!(
                "since={s:?} must be the sequence number of the last message received"
            ),
        })?),
    };
    let segment = st
        .feeds
        .segments()
        .filter(p.filter.as_deref())?
        .map(|f| st.feeds.join(f));
    match st.pacer.admit(Instant::now()) {
        Admission::Now => {}
        Admission::After(wait) => {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = st.shutdown.cancelled() => return Err(ApiError::Busy {
                    why: "the server is shutting down",
                    retry_after: Duration::from_secs(1),
                }),
            }
        }
        Admission::Refused { retry_after } => {
            return Err(ApiError::Busy {
                why: "too many dashboards are connecting at once",
                retry_after,
            })
        }
    }
    let hub = st.hub.clone();
    let shutdown = st.shutdown.clone();
    let options = st.options;
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        // Clients send tiny frames: a small read buffer keeps a socket at a few KB
        // instead of the default 128 KiB, which matters with a thousand wall displays.
        .read_buffer_size(2 * MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            serve(sink, stream, hub, segment, since, options, shutdown).await;
        })
        .into_response())
}
