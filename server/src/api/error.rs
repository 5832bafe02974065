//! The error an API client gets: a status and a JSON body that says what to do
//! (`{"error": ..., "parameter": ...}`); the cause of a server-side failure is logged, with
//! its source chain.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto;

use crate::input::BadInput;
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
    /// The server is busy (or stopping): `503` with `Retry-After` (whole seconds).
    #[error("{why}: retry after {} s", retry_secs(*retry_after))]
    Busy {
        why: &'static str,
        retry_after: Duration,
    },
    /// A request refused with another client-error status (`404`, `409`, `413`), optionally
    /// naming the parameter or body field at fault.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        parameter: Option<&'static str>,
        message: String,
    },
    /// The task serving the request failed: `500`.
    #[error("the request's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<BadInput> for ApiError {
    fn from(e: BadInput) -> Self {
        ApiError::BadParam {
            parameter: e.parameter,
            message: e.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, parameter) = match &self {
            ApiError::BadParam { parameter, .. } => {
                (StatusCode::BAD_REQUEST, Some((*parameter).to_owned()))
            }
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
            ApiError::Refused {
                status, parameter, ..
            } => (*status, parameter.map(str::to_owned)),
            ApiError::Store(_) | ApiError::Task(_) => {
                tracing::error!(error = error_chain(&self), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        let body = proto::ApiError {
            error: self.to_string(),
            parameter,
        };
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::Busy { retry_after, .. } = &self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_secs(*retry_after)),
            );
        }
        resp
    }
}

/// A wait in whole seconds for `Retry-After`: rounded up, at least 1.
fn retry_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
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
