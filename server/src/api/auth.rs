//! The token guard and the security headers.
//!
//! Contract:
//! - With `--token`, the paths it guards ([`is_protected`]: the API and its description, the
//!   socket, the metrics) answer `401` with `WWW-Authenticate: Bearer` and a JSON
//!   [`proto::ApiError`] naming `token` unless the request presents it, as
//!   `Authorization: Bearer <token>` or `?token=<token>` (percent-encoded). The comparison
//!   takes the same time however much of the token is right. Health and the pages stay open.
//! - Every response carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
//!   and a `Content-Security-Policy` with `frame-ancestors` from `--frame-ancestors`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto;

use crate::api::params::percent_decode;

/// Optional bearer token for the API, the socket and the metrics, and the CSP
/// `frame-ancestors` sent with every response.
#[derive(Clone)]
pub struct Security {
    pub token: Option<Arc<str>>,
    pub frame_ancestors: Arc<str>,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            token: None,
            frame_ancestors: Arc::from("'self'"),
        }
    }
}

/// Constant-time comparison, so a wrong token's timing says nothing about the right one.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_token(req: &Request) -> Option<Vec<u8>> {
    if let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().as_bytes().to_vec());
        }
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(percent_decode)
}

/// Whether `--token` guards `path`: the API (and its description), the socket, the metrics.
pub fn is_protected(path: &str) -> bool {
    path.starts_with("/api/") || path == "/ws" || path == "/metrics"
}

/// Token check for data paths, and security headers on every response.
pub(super) async fn guard(State(sec): State<Security>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if let (true, Some(token)) = (is_protected(path), &sec.token) {
        if !presented_token(&req).is_some_and(|t| same(&t, token.as_bytes())) {
            let body = proto::ApiError {
                error: "missing or wrong token: send `Authorization: Bearer <token>` or add `?token=<token>` to the URL".into(),
                parameter: Some("token".into()),
            };
            let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let csp = format!(
        "frame-ancestors {}; base-uri 'self'; object-src 'none'",
        sec.frame_ancestors
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::api::tests::app;

    #[tokio::test]
    async fn token_guards_data_paths_and_headers_are_set() {
        let (app, _dir) = app();
        let call = |uri: &str, auth: Option<&str>| {
            let mut req = Request::get(uri);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            app.clone()
                .oneshot(req.body(Body::empty()).expect("request"))
        };
        for uri in ["/api/v1/status", "/metrics", "/api/v1/windows?token=wrong"] {
            let resp = call(uri, None).await.expect("response");
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        }
        assert_eq!(
            call("/api/v1/status", Some("Bearer nope"))
                .await
                .expect("r")
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call("/api/v1/status?token=s3cret", None)
                .await
                .expect("r")
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            call("/api/v1/status?token=s3%63ret", None)
                .await
                .expect("r")
                .status(),
            StatusCode::OK
        );
        // Health and the pages stay open; the pages carry the token to the API themselves.
        for uri in ["/healthz", "/kiosk"] {
            let resp = call(uri, None).await.expect("response");
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            let csp = resp
                .headers()
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                csp.contains("frame-ancestors 'self' https://intranet.example"),
                "{csp}"
            );
            assert_eq!(
                resp.headers()
                    .get("x-content-type-options")
                    .map(|v| v.as_bytes()),
                Some(&b"nosniff"[..])
            );
        }
    }
}
