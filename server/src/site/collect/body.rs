//! The body of `POST /collect`: read within its limit, split into JSON objects, and each
//! object stamped with the server's receive time.
//!
//! Contract:
//! - Body: one JSON object, a JSON array of objects, or newline-delimited objects; at most
//!   [`MAX_BODY`] bytes and [`MAX_EVENTS`] events. A body that is not JSON objects gets
//!   `400` naming the problem.
//! - Body limit: a `Content-Length` over [`MAX_BODY`] is refused before the body is read; a
//!   body without one is read at most [`MAX_BODY`] bytes. Both get `413` with a JSON
//!   [`ApiError`].
//! - Server receive time: the event time is the server's clock, never the client's. Each
//!   object's `ts` (more exactly: the first JSON pointer the field mapping reads `ts` from,
//!   `/ts` for the canonical schema) is set to the time the request was received, in epoch
//!   milliseconds, one value for all events of a request ([`stamp`]). What the client sent
//!   there, whatever its type, is kept as the top-level field `client_ts` (the decoder
//!   ignores unknown fields); `client_ts` is reserved: a client's own `client_ts` is
//!   dropped when it sent no `ts`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto::ApiError;
use serde_json::{Map, Value};

/// Largest accepted body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most events in one request.
pub const MAX_EVENTS: usize = 10_000;
/// The field that keeps what a client sent as the event time.
pub const CLIENT_TS: &str = "client_ts";

/// Read the body of `req`, at most [`MAX_BODY`] bytes; a larger declared `Content-Length`
/// is refused before a byte is read.
pub(super) async fn read(req: Request) -> Result<Bytes, Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    // `DefaultBodyLimit` on the route bounds what this reads to `MAX_BODY`.
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
        Err(e) => return Err(bad(format!("body could not be read: {e}"))),
    };
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(body)
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(ApiError::param(
            "body",
            format!("body over {MAX_BODY} bytes: split the events over several requests"),
        )),
    )
        .into_response()
}

pub(super) fn bad(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(ApiError::param("body", message)),
    )
        .into_response()
}

/// Split a body into JSON objects.
pub fn parse_body(body: &[u8]) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let trimmed = text.trim_start();
    let values: Vec<serde_json::Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed)
            .map_err(|e| format!("body is not a JSON array of events: {e}"))?
    } else {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(trimmed).into_iter::<serde_json::Value>() {
            out.push(v.map_err(|e| format!("body is not JSON events: {e}"))?);
        }
        out
    };
    if values.is_empty() {
        return Err("body holds no event".into());
    }
    if values.len() > MAX_EVENTS {
        return Err(format!("at most {MAX_EVENTS} events per request"));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::Object(m) => Ok(m),
            _ => Err(format!("event {i} is not a JSON object")),
        })
        .collect()
}

/// Stamp each event with the receive time `now` at `pointer`, keeping the client's value
/// as [`CLIENT_TS`].
pub fn stamp(events: &mut [Map<String, Value>], pointer: &str, now: i64) {
    for ev in events {
        let client = put_at(ev, pointer, now);
        match client {
            Some(v) => ev.insert(CLIENT_TS.to_owned(), v),
            None => ev.remove(CLIENT_TS),
        };
    }
}

// JSON pointers (RFC 6901) into an event.

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Set the value at `pointer` (RFC 6901; `""` or a bad pointer means `/ts`) to `now`,
/// creating objects on the way, and return what was there.
pub(super) fn put_at(
    obj: &mut Map<String, Value>,
    pointer: &str,
    now: impl Into<Value>,
) -> Option<Value> {
    let tokens: Vec<String> = match pointer.strip_prefix('/') {
        Some(rest) => rest.split('/').map(unescape).collect(),
        None => vec!["ts".to_owned()],
    };
    let (last, path) = tokens.split_last()?;
    let mut here = obj;
    for t in path {
        let slot = here
            .entry(t.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        here = slot.as_object_mut()?;
    }
    here.insert(last.clone(), now.into())
}

/// The value at `pointer` (RFC 6901), if any.
fn get_at<'a>(obj: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    let mut tokens = rest.split('/').map(unescape);
    let mut here = obj.get(&tokens.next()?)?;
    for t in tokens {
        here = match here {
            Value::Object(m) => m.get(&t)?,
            Value::Array(a) => a.get(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(here)
}

/// Whether any of `pointers` holds a value, as the decoder takes one (not null, not "").
/// The first non-empty string at one of `pointers`.
pub(super) fn str_at<'a>(obj: &'a Map<String, Value>, pointers: &[String]) -> Option<&'a str> {
    pointers
        .iter()
        .filter_map(|p| get_at(obj, p).and_then(Value::as_str))
        .find(|v| !v.is_empty())
}

pub(super) fn has_any(obj: &Map<String, Value>, pointers: &[String]) -> bool {
    pointers
        .iter()
        .filter_map(|p| get_at(obj, p))
        .any(|v| !v.is_null() && v.as_str() != Some(""))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{collect_app, post_body};
    use super::*;
    use axum::body::Body;
    use pulseboard_model::mapping::FieldMapping;
    use serde_json::json;

    #[test]
    fn events_carry_the_receive_time_and_keep_the_clients_as_client_ts() {
        let mut events = parse_body(
            br#"[{"ts":"2001-01-01T00:00:00Z","url":"/a"},{"ts":{"weird":1},"url":"/b"},
                {"url":"/c","client_ts":"forged"},{"ts":null,"url":"/d"},{"ts":99}]"#,
        )
        .expect("body");
        stamp(&mut events, "/ts", 1_700_000_000_000);
        for ev in &events {
            assert_eq!(ev["ts"], json!(1_700_000_000_000i64));
        }
        assert_eq!(events[0][CLIENT_TS], json!("2001-01-01T00:00:00Z"));
        assert_eq!(events[0]["url"], json!("/a"));
        assert_eq!(events[1][CLIENT_TS], json!({"weird": 1}));
        assert_eq!(events[2].get(CLIENT_TS), None, "client_ts is reserved");
        assert_eq!(events[3][CLIENT_TS], Value::Null);
        assert_eq!(events[4][CLIENT_TS], json!(99));
        // Where the mapping reads `ts` from elsewhere, that is where the stamp goes.
        let mut seg =
            parse_body(br#"{"timestamp":"2001-01-01T00:00:00Z","x":{"t":1}}"#).expect("body");
        stamp(&mut seg, "/timestamp", 5);
        assert_eq!(seg[0]["timestamp"], json!(5));
        assert_eq!(seg[0][CLIENT_TS], json!("2001-01-01T00:00:00Z"));
        stamp(&mut seg, "/x/t", 6);
        assert_eq!(seg[0]["x"]["t"], json!(6));
        stamp(&mut seg, "/p/a~1b", 7);
        assert_eq!(seg[0]["p"]["a/b"], json!(7));
    }

    #[test]
    fn the_receive_time_decodes_as_the_event_time() {
        let decoder = pulseboard_model::decode::Decoder::new(FieldMapping::default());
        let mut events =
            parse_body(br#"{"ts":"2099-01-01T00:00:00Z","visitor":"v","url":"/"}"#).expect("b");
        stamp(&mut events, "/ts", 1_700_000_000_000);
        let payload = serde_json::to_vec(&events[0]).expect("json");
        let ev = decoder
            .decode(&payload, Some(1_700_000_000_000))
            .expect("decodes with client_ts in it");
        assert_eq!(ev.ts, 1_700_000_000_000);
    }

    #[test]
    fn body_forms_parse_and_bad_bodies_say_why() {
        assert_eq!(parse_body(br#"{"url":"/"}"#).map(|v| v.len()), Ok(1));
        assert_eq!(
            parse_body(br#"[{"url":"/"},{"url":"/a"}]"#).map(|v| v.len()),
            Ok(2)
        );
        assert_eq!(
            parse_body(b"{\"a\":1}\n{\"b\":2}\n").map(|v| v.len()),
            Ok(2)
        );
        for (body, says) in [
            (&b"[1]"[..], "not a JSON object"),
            (b"nope", "not JSON"),
            (b"", "no event"),
            (b"\xff", "UTF-8"),
        ] {
            let err = parse_body(body).expect_err("must fail");
            assert!(err.contains(says), "{err}");
        }
    }

    #[tokio::test]
    async fn an_oversized_body_gets_413_with_a_json_reason() {
        let app = collect_app("0", "0");
        // Declared too large: refused before a byte of it is read.
        let (status, _, body) = post_body(&app, Body::empty(), Some(MAX_BODY + 1)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["parameter"], "body");
        // Streamed without a length: cut at the limit.
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..20)
            .map(|_| Ok(Bytes::from(vec![b' '; 128 * 1024])))
            .collect();
        let streamed = Body::from_stream(futures::stream::iter(chunks));
        let (status, _, body) = post_body(&app, streamed, None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("split")),
            "{body}"
        );
    }
}
