//! Annotations: markers on the time axis (a deploy, a campaign), drawn on the events chart
//! of every screen. Their HTTP routes are `api::annotations`.
//!
//! Contract:
//! - `POST /api/v1/annotations` with `{"ts": <epoch ms or RFC 3339>, "text": "..."}` stores
//!   one in the store's `annotations` tree and answers `201` with it (its `id`). `ts` may be
//!   left out (now). Behind `--token` like all of `/api/*`.
//! - Bad input gets `400` naming the field (`body`, `ts`, `text`): not a JSON object, `ts`
//!   not a time or outside 2000–2100, `text` empty or over [`MAX_TEXT_CHARS`] characters;
//!   a body over [`MAX_BODY`] bytes gets `413`; more than [`MAX_ANNOTATIONS`] stored gets
//!   `409`. Nothing is stored then.
//! - `GET /api/v1/annotations?from=&to=&range=&limit=` lists those with `ts` in the range
//!   (default: the last 7 days), oldest first, the newest `limit` (default 100, at most
//!   1000). `DELETE /api/v1/annotations/{id}` removes one (`204`, or `404`).
//! - Every change moves the status's `annotations_version` and pushes the status to the
//!   sockets at once, so every screen reloads its markers within a second.
//! - Annotations older than `--history` are deleted by the retention pass.

use std::sync::Arc;

use pulseboard_model::proto::Annotation;
use pulseboard_model::time::parse_time_param;

use crate::hub::Hub;
use crate::input::{bad, BadInput};
use crate::progress::Progress;
use crate::store::{AnnotationRecord, Store};
use crate::telemetry;

/// Longest text, in characters.
pub const MAX_TEXT_CHARS: usize = 280;
/// Largest request body, bytes.
pub const MAX_BODY: usize = 4096;
/// Most annotations stored at once.
pub const MAX_ANNOTATIONS: usize = 10_000;

/// Earliest and latest time an annotation may mark (2000-01-01 and 2100-01-01).
const TS_BOUNDS: (i64, i64) = (946_684_800_000, 4_102_444_800_000);

/// The annotations of a run: where they are stored, and whom a change is told.
#[derive(Clone)]
pub struct Annotations {
    pub store: Store,
    pub progress: Arc<Progress>,
    pub hub: Arc<Hub>,
}

impl Annotations {
    /// Tells every screen that the annotations changed (`action`: `added`, `deleted`).
    pub fn changed(&self, action: &'static str, id: u64) {
        self.progress.annotations_changed();
        self.hub.publish_status();
        telemetry::annotation_changed(action, id);
    }

    /// The version of the annotations the status carries.
    pub fn version(&self) -> u64 {
        self.progress.annotations_version()
    }
}

/// The `(ts, text)` of a request body, validated (`now_ms` when `ts` is absent).
pub fn parse_new(body: &[u8], now_ms: i64) -> Result<(i64, String), BadInput> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            "body",
            format!("the body is not JSON ({e}): send {{\"ts\": 1795515330123, \"text\": \"deploy v2\"}}"),
        )
    })?;
    let obj = v.as_object().ok_or_else(|| {
        bad(
            "body",
            "the body must be a JSON object: {\"ts\": ..., \"text\": ...}",
        )
    })?;
    let ts = match obj.get("ts") {
        None | Some(serde_json::Value::Null) => now_ms,
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad("ts", format!("ts={n} is not whole epoch milliseconds")))?,
        Some(serde_json::Value::String(s)) => parse_time_param(s).ok_or_else(|| {
            bad(
                "ts",
                format!("ts={s:?} is not a time: use epoch milliseconds or RFC 3339 (2026-11-24T10:15:30Z)"),
            )
        })?,
        Some(other) => {
            return Err(bad(
                "ts",
                format!("ts must be epoch milliseconds or an RFC 3339 string, not {other}"),
            ))
        }
    };
    if !(TS_BOUNDS.0..TS_BOUNDS.1).contains(&ts) {
        return Err(bad(
            "ts",
            format!("ts={ts} is outside the years 2000 to 2100"),
        ));
    }
    let text = match obj.get("text") {
        Some(serde_json::Value::String(t)) => t.trim().to_owned(),
        Some(_) => return Err(bad("text", "text must be a string")),
        None => {
            return Err(bad(
                "text",
                "text is missing: say what happened (a deploy, a campaign)",
            ))
        }
    };
    let chars = text.chars().count();
    if chars == 0 {
        return Err(bad(
            "text",
            "text is empty: say what happened (a deploy, a campaign)",
        ));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(bad(
            "text",
            format!("text has {chars} characters, at most {MAX_TEXT_CHARS} are kept: shorten it"),
        ));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(bad(
            "text",
            "text must be one line without control characters",
        ));
    }
    Ok((ts, text))
}

/// An annotation as the API and the sockets show it.
pub fn wire(r: AnnotationRecord) -> Annotation {
    Annotation {
        id: r.id,
        ts: r.ts,
        text: r.text,
        created_at: r.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<(i64, String), BadInput>) -> &'static str {
        match r {
            Err(BadInput { parameter, .. }) => parameter,
            other => panic!("expected a bad field, got {other:?}"),
        }
    }

    #[test]
    fn bodies_are_validated_field_by_field() {
        let now = 1_800_000_000_000;
        assert_eq!(
            parse_new(br#"{"ts": 1795515330123, "text": " deploy v2 "}"#, now).ok(),
            Some((1_795_515_330_123, "deploy v2".to_owned()))
        );
        assert_eq!(
            parse_new(br#"{"ts": "2026-11-24T10:15:30Z", "text": "x"}"#, now).ok(),
            Some((1_795_515_330_000, "x".to_owned()))
        );
        assert_eq!(
            parse_new(br#"{"text": "now"}"#, now).ok(),
            Some((now, "now".into()))
        );
        assert_eq!(field(parse_new(b"nope", now)), "body");
        assert_eq!(field(parse_new(b"[1]", now)), "body");
        assert_eq!(
            field(parse_new(br#"{"ts": "yesterday", "text": "x"}"#, now)),
            "ts"
        );
        assert_eq!(field(parse_new(br#"{"ts": 1.5, "text": "x"}"#, now)), "ts");
        assert_eq!(field(parse_new(br#"{"ts": 5, "text": "x"}"#, now)), "ts");
        assert_eq!(field(parse_new(br#"{"ts": true, "text": "x"}"#, now)), "ts");
        assert_eq!(field(parse_new(br#"{"ts": 1795515330123}"#, now)), "text");
        assert_eq!(field(parse_new(br#"{"text": "   "}"#, now)), "text");
        assert_eq!(field(parse_new(br#"{"text": 3}"#, now)), "text");
        assert_eq!(field(parse_new(br#"{"text": "a\nb"}"#, now)), "text");
        let long = format!(r#"{{"text": "{}"}}"#, "é".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(field(parse_new(long.as_bytes(), now)), "text");
        let max = format!(r#"{{"text": "{}"}}"#, "é".repeat(MAX_TEXT_CHARS));
        assert!(
            parse_new(max.as_bytes(), now).is_ok(),
            "280 characters, not bytes"
        );
    }
}
