//! `/api/v1/annotations`: list, create and delete annotations (the rules are in
//! `insight::annotations`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pulseboard_model::proto::{self, Annotation, AnnotationsResponse};

use crate::api::error::ApiError;
use crate::api::params::{int_param, resolve_range, RangeParams};
use crate::input::bad;
use crate::insight::annotations::{parse_new, wire, Annotations, MAX_ANNOTATIONS, MAX_BODY};

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
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub async fn list(
    State(st): State<Annotations>,
    p: RangeParams,
) -> Result<Json<AnnotationsResponse>, ApiError> {
    let (from, to) = resolve_range(&p, 7 * 86_400_000)?;
    let limit = int_param("limit", &p.limit, 100, 1000)?;
    let version = st.version();
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
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 409, description = "10,000 annotations are stored: delete some first.", body = proto::ApiError),
        (status = 413, description = "The body is over 4 KiB.", body = proto::ApiError),
        (status = 500, description = "Writing the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub async fn create(
    State(st): State<Annotations>,
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
    st.changed("added", rec.id);
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
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No annotation has that id.", body = proto::ApiError),
        (status = 500, description = "Writing the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub async fn delete(
    State(st): State<Annotations>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id.parse().map_err(|_| -> ApiError {
        bad(
            "id",
            format!("id={id:?} is not an annotation id (a whole number)"),
        )
        .into()
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
    st.changed("deleted", id);
    Ok(StatusCode::NO_CONTENT)
}
