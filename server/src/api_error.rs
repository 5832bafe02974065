//! The error an API client gets: a status and a JSON body that says what to do
//! (`{"error": ..., "parameter": ...}`); the cause of a server-side failure is logged, with
//! its source chain.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A bad query parameter: `400`, naming it.
    #[error("{message}")]
    BadParam {
        parameter: &'static str,
        message: String,
    },
    /// Reading the store failed: `500`.
    #[error("reading the store failed: {0}")]
    Store(#[from] StoreError),
    /// The task serving the request failed: `500`.
    #[error("the request's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, parameter) = match &self {
            ApiError::BadParam { parameter, .. } => {
                (StatusCode::BAD_REQUEST, Some((*parameter).to_owned()))
            }
            ApiError::Store(_) | ApiError::Task(_) => {
                tracing::error!(error = error_chain(&self), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        let body = proto::ApiError {
            error: self.to_string(),
            parameter,
        };
        (status, Json(body)).into_response()
    }
}

/// The error and its sources, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
