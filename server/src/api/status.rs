//! The pipeline's status, readiness and dead letters: `GET /api/v1/status`, `GET /readyz`,
//! `GET /api/v1/dead-letters` (liveness, `GET /healthz`, is a closure in the router).
//!
//! Contract:
//! - `/readyz` is `200` once the group assigned this instance its partitions (and, with a
//!   state topic, its reader caught up), `503` with the reason before that or once a
//!   partition failed. It is open, like `/healthz`.
//! - `/api/v1/dead-letters?limit=`: the dead letters their topic did not take, kept in the
//!   store, newest first (default 100, at most 1000).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto;

use crate::api::error::ApiError;
use crate::api::params::{int_param, RangeParams};
use crate::api::AppState;

/// The pipeline's status.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "ops",
    description = "The pipeline: partitions, offsets, lag, watermarks, throughput, dead letters, \
                   the cluster as the last metadata probe saw it.",
    responses(
        (status = 200, description = "The status.", body = proto::Status),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
    )
)]
pub(crate) async fn status(State(st): State<AppState>) -> Json<proto::Status> {
    Json(st.progress.status())
}

/// Readiness.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    description = "Readiness: partitions are assigned and none failed. Open (no token).",
    responses(
        (status = 200, description = "Ready: counting.", body = proto::Readiness, example = json!({"ready": true})),
        (status = 503, description = "Not ready: waiting for a partition assignment, or a partition failed (then the process stops).", body = proto::Readiness),
    )
)]
pub(crate) async fn readyz(State(st): State<AppState>) -> Response {
    if let Some(why) = st.progress.failure() {
        let body = proto::Readiness {
            ready: false,
            reason: Some(format!("{why}; Pulseboard is stopping, restart it")),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else if st.progress.ready() {
        let body = proto::Readiness {
            ready: true,
            reason: None,
        };
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let body = proto::Readiness {
            ready: false,
            reason: Some("waiting for a partition assignment from the Kafka consumer group".into()),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `GET /api/v1/dead-letters?limit=`: dead letters their topic did not take, kept in the
/// store, newest first (default 100, at most 1000).
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "data",
    params(crate::api::openapi::DeadLettersQuery),
    responses(
        (status = 200, description = "The most recent recorded dead letters, newest first.", body = proto::DeadLettersResponse),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub(crate) async fn dead_letters(
    State(st): State<AppState>,
    p: RangeParams,
) -> Result<Json<proto::DeadLettersResponse>, ApiError> {
    let limit = int_param("limit", &p.limit, 100, 1000)?;
    let store = st.store.clone();
    let records = tokio::task::spawn_blocking(move || store.recorded_dead_letters(limit)).await??;
    let recorded_total = st.progress.status().dead_letters_recorded_total;
    Ok(Json(proto::DeadLettersResponse {
        recorded_total,
        dead_letters: records
            .into_iter()
            .map(|r| proto::RecordedDeadLetter {
                topic: r.topic,
                partition: r.partition,
                offset: r.offset,
                reason: r.reason,
                error: r.error,
                at: r.at_ms,
                value_bytes: r.value_bytes,
                value_head: String::from_utf8_lossy(&r.value_head).into_owned(),
            })
            .collect(),
    }))
}
