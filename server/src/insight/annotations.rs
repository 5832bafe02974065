//! Annotations: markers on the time axis (a deploy, a campaign), drawn on the events chart
//! of every screen.
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

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pulseboard_model::proto::{self, Annotation, AnnotationsResponse};
use pulseboard_model::time::parse_time_param;

use crate::api::error::ApiError;
use crate::api::{int_param, resolve_range, RangeParams};
use crate::hub::Hub;
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

/// What the annotation handlers need.
#[derive(Clone)]
pub struct AnnotationsState {
    pub store: Store,
    pub live: Arc<Progress>,
    pub hub: Arc<Hub>,
}

fn bad(parameter: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadParam {
        parameter,
        message: message.into(),
    }
}

/// The `(ts, text)` of a request body, validated (`now_ms` when `ts` is absent).
pub fn parse_new(body: &[u8], now_ms: i64) -> Result<(i64, String), ApiError> {
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

fn wire(r: AnnotationRecord) -> Annotation {
    Annotation {
        id: r.id,
        ts: r.ts,
        text: r.text,
        created_at: r.created_at,
    }
}

fn changed(st: &AnnotationsState, action: &'static str, id: u64) {
    st.live.annotations_changed();
    st.hub.publish_status();
    telemetry::annotation_changed(action, id);
}

/// `GET /api/v1/annotations`.
#[utoipa::path(
    get,
    path = "/api/v1/annotations",
    tag = "data",
    description = "Annotations (markers: a deploy, a campaign) whose `ts` lies in `[from, to)` \
                   (default: the last 7 days), oldest first; the newest `limit` of them.",
    params(crate::api::openapi::AnnotationsQuery),
    responses(
        (status = 200, description = "The annotations of the range.", body = AnnotationsResponse),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub async fn list(
    State(st): State<AnnotationsState>,
    p: RangeParams,
) -> Result<Json<AnnotationsResponse>, ApiError> {
    let (from, to) = resolve_range(&p, 7 * 86_400_000)?;
    let limit = int_param("limit", &p.limit, 100, 1000)?;
    let version = st.live.annotations_version();
    let store = st.store.clone();
    let records =
        tokio::task::spawn_blocking(move || store.annotations_in(from, to, limit)).await??;
    Ok(Json(AnnotationsResponse {
        from,
        to,
        version,
        annotations: records.into_iter().map(wire).collect(),
    }))
}

/// `POST /api/v1/annotations`.
#[utoipa::path(
    post,
    path = "/api/v1/annotations",
    tag = "data",
    description = "Store an annotation: `{\"ts\": <epoch ms or RFC 3339; default now>, \"text\": \
                   \"deploy v2\"}` (text 1–280 characters, one line). Pushed to every screen at \
                   once (the status's `annotations_version` moves on).",
    request_body(content = crate::api::openapi::NewAnnotation, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored.", body = Annotation),
        (status = 400, description = "A bad field, named in `parameter` (`body`, `ts`, `text`).", body = proto::ApiError),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 409, description = "10,000 annotations are stored: delete some first.", body = proto::ApiError),
        (status = 413, description = "The body is over 4 KiB.", body = proto::ApiError),
        (status = 500, description = "Writing the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub async fn create(
    State(st): State<AnnotationsState>,
    body: Body,
) -> Result<(StatusCode, Json<Annotation>), ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            parameter: Some("body"),
            message: format!("the body is over {MAX_BODY} bytes"),
        })?;
    let (ts, text) = parse_new(&bytes, crate::now_ms())?;
    if st.store.annotation_count() >= MAX_ANNOTATIONS {
        return Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            parameter: None,
            message: format!(
                "{MAX_ANNOTATIONS} annotations are stored: delete some (DELETE /api/v1/annotations/{{id}}) first"
            ),
        });
    }
    let store = st.store.clone();
    let rec = tokio::task::spawn_blocking(move || store.add_annotation(ts, &text, crate::now_ms()))
        .await??;
    changed(&st, "added", rec.id);
    Ok((StatusCode::CREATED, Json(wire(rec))))
}

/// `DELETE /api/v1/annotations/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/annotations/{id}",
    tag = "data",
    params(("id" = u64, Path, description = "The annotation's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "The id is not a number.", body = proto::ApiError),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No annotation has that id.", body = proto::ApiError),
        (status = 500, description = "Writing the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub async fn delete(
    State(st): State<AnnotationsState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        bad(
            "id",
            format!("id={id:?} is not an annotation id (a whole number)"),
        )
    })?;
    let store = st.store.clone();
    let found = tokio::task::spawn_blocking(move || store.delete_annotation(id)).await??;
    if !found {
        return Err(ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            parameter: Some("id"),
            message: format!("no annotation has id {id}"),
        });
    }
    changed(&st, "deleted", id);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<(i64, String), ApiError>) -> &'static str {
        match r {
            Err(ApiError::BadParam { parameter, .. }) => parameter,
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
