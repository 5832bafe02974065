//! The WebSocket `/ws`: one client, fed from the hub.
//!
//! Contract:
//! - `GET /ws?since=SEQ`: the client first gets what it missed after `SEQ` (or a snapshot),
//!   then every message the hub publishes, in sequence order, each at most once (the
//!   session: `session.rs`).
//! - `GET /ws?filter=DIMENSION:VALUE` follows the stream as that segment sees it (see
//!   [`crate::api::feed`]); a bad filter is a `400` naming `filter`, as in the API.
//! - `GET /ws?every=MS` paces the socket to a display: at most one message per `MS`
//!   milliseconds (up to [`MAX_EVERY_MS`]), each holding everything the interval changed.
//! - Frames are compressed (permessage-deflate, RFC 7692) when the client offers it, as
//!   browsers do: without context takeover in either direction, so a socket holds no
//!   deflate state between messages (a few KB a socket, not a few hundred), with the state
//!   shared in one pool; frames under [`COMPRESS_FROM`] bytes go as they are.
//! - New sessions are paced ([`ConnectPacer`]): at most `--ws-connect-rate` a second on
//!   average and `--ws-connect-burst` at once, the rest waiting their turn in order of
//!   arrival before the handshake is answered; one whose turn is more than
//!   `--ws-connect-max-wait` away gets `503` with `Retry-After`. A reconnect storm then
//!   costs ingest a bounded share of the CPU, however many clients take part.

mod pacer;
mod session;
mod wire;

pub use pacer::{Admission, ConnectPacer};
pub use session::{serve, Ask, Stop};

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::feed::Feeds;
use crate::config::HubArgs;
use crate::hub::Hub;
use crate::query::segments::View;

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

/// The longest interval `every` may ask for, ms.
pub const MAX_EVERY_MS: u64 = 10_000;

/// Frames shorter than this go uncompressed (deflate's own framing would eat the gain).
pub const COMPRESS_FROM: usize = 128;

#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    since: Option<String>,
    filter: Option<String>,
    site: Option<String>,
    every: Option<String>,
}

/// `GET /ws`.
pub async fn handler(
    upgrade: Result<yawc::IncomingUpgrade, StatusCode>,
    headers: HeaderMap,
    State(st): State<SocketState>,
    State(sec): State<crate::api::Security>,
    authed: Option<axum::Extension<crate::api::auth::Authed>>,
    Query(p): Query<WsParams>,
) -> Result<Response, ApiError> {
    let ended = authed.map_or_else(crate::access::Ended::default, |a| {
        sec.access.ended(&a.principal)
    });
    let upgrade = match upgrade {
        Ok(u) if wire::asks_for_websocket(&headers) => u,
        _ => {
            return Ok((
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "this is a WebSocket endpoint: connect with `Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`",
            )
                .into_response())
        }
    };
    let every = match p.every.as_deref() {
        None | Some("") => Duration::ZERO,
        Some(s) => match s.parse::<u64>() {
            Ok(ms) if ms <= MAX_EVERY_MS => Duration::from_millis(ms),
            _ => {
                return Err(ApiError::BadParam {
                    parameter: "every",
                    message: format!(
                        "every={s:?} must be the milliseconds between two messages, from 0 (every message) to {MAX_EVERY_MS}"
                    ),
                })
            }
        },
    };
    let since = match p.since.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| ApiError::BadParam {
            parameter: "since",
            message: format!(
                "since={s:?} must be the sequence number of the last message received"
            ),
        })?),
    };
    let view = st
        .feeds
        .segments()
        .view(p.site.as_deref(), p.filter.as_deref())?;
    let segment = (view != View::WHOLE).then(|| st.feeds.join(view));
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
    let (response, socket) = upgrade
        .upgrade(wire::options())
        .map_err(|e| ApiError::BadParam {
            parameter: "sec-websocket-extensions",
            message: format!("cannot agree on the WebSocket extensions offered: {e}"),
        })?;
    tokio::spawn(async move {
        let socket = match socket.await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade did not complete");
                return;
            }
        };
        let (sink, stream) = wire::split(socket);
        serve(
            sink,
            stream,
            hub,
            segment,
            Ask { since, every },
            options,
            Stop { shutdown, ended },
        )
        .await;
    });
    Ok(response.map(axum::body::Body::new))
}
