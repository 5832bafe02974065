//! `GET /api/v1/alerts`: the alert rules in force and their state (the rules are in
//! `insight::alerts`).

use axum::extract::State;
use axum::Json;
use pulseboard_model::proto;

use crate::insight::alerts::Alerts;

/// Alert rules, what fires, and the history.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "ops",
    description = "The alert rules in force (from `--alerts`, or the built-in demo rules in \
                   embedded mode) with their state, the rules firing now, the last 200 firing \
                   and resolved transitions (newest first), the webhook's counts, and why the \
                   rules file was refused if it was (the last good rules stay in force).",
    responses(
        (status = 200, description = "The alerts.", body = proto::AlertsResponse),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
    )
)]
pub(crate) async fn alerts(State(alerts): State<Alerts>) -> Json<proto::AlertsResponse> {
    Json(alerts.view())
}
