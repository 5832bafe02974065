//! The socket on the wire: the WebSocket protocol and permessage-deflate (yawc), seen by
//! the session as a sink and a stream of axum's [`Message`]s.
//!
//! Contract:
//! - [`options`]: compression when the client offers it, without context takeover in
//!   either direction and with deflate state from one shared pool (a socket holds none
//!   between messages); frames under [`COMPRESS_FROM`] bytes uncompressed; client frames of
//!   at most [`MAX_CLIENT_FRAME`] bytes (a larger one fails that socket); small buffers.
//! - [`split`] maps frames both ways; a text frame that is not UTF-8 is an error item, as
//!   a malformed frame is for the session.

use std::sync::OnceLock;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use pulseboard_model::proto::MAX_CLIENT_FRAME;
use yawc::close::CloseCode;
use yawc::frame::{Frame, OpCode};
use yawc::{DeflatePool, HttpStream, Options, WebSocket, WebSocketError};

use super::COMPRESS_FROM;

/// Idle deflate states kept for reuse: about as many as messages compressed at once.
const POOL: usize = 16;

/// The socket options every session gets (see the module doc).
pub fn options() -> Options {
    static POOL_CELL: OnceLock<DeflatePool> = OnceLock::new();
    let pool = POOL_CELL.get_or_init(|| DeflatePool::new(POOL)).clone();
    Options::default()
        .with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_deflate_pool(pool)
        .with_compression_threshold(COMPRESS_FROM)
        .with_max_payload_read(MAX_CLIENT_FRAME)
        .with_max_read_buffer(2 * MAX_CLIENT_FRAME)
        .with_read_buffer_capacity(2 * MAX_CLIENT_FRAME)
        .with_write_buffer_capacity(8 * 1024)
        .with_utf8()
        .with_no_delay()
}

/// Whether the request asks to switch to the WebSocket protocol (`Upgrade: websocket`).
pub fn asks_for_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The socket as the session's sink and stream of [`Message`]s.
pub fn split(
    socket: WebSocket<HttpStream>,
) -> (
    impl Sink<Message, Error = WebSocketError> + Unpin + Send + 'static,
    impl Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
) {
    let (sink, stream) = socket.split();
    let sink = sink.with(|m: Message| std::future::ready(Ok::<_, WebSocketError>(to_frame(m))));
    let stream = stream.map(from_frame);
    (Box::pin(sink), stream)
}

fn to_frame(m: Message) -> Frame {
    match m {
        Message::Text(t) => Frame::text(Bytes::from(t)),
        Message::Binary(b) => Frame::binary(b),
        Message::Ping(b) => Frame::ping(b),
        Message::Pong(b) => Frame::pong(b),
        Message::Close(Some(CloseFrame { code, reason })) => {
            Frame::close(CloseCode::from(code), reason.as_str())
        }
        Message::Close(None) => Frame::close(CloseCode::Normal, ""),
    }
}

fn from_frame(f: Frame) -> Result<Message, axum::Error> {
    let (op, _, payload) = f.into_parts();
    Ok(match op {
        OpCode::Text => {
            let text = Utf8Bytes::try_from(payload).map_err(axum::Error::new)?;
            Message::Text(text)
        }
        OpCode::Binary | OpCode::Continuation => Message::Binary(payload),
        OpCode::Ping => Message::Ping(payload),
        OpCode::Pong => Message::Pong(payload),
        OpCode::Close => Message::Close(None),
    })
}
