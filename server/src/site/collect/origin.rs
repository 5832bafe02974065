//! Origins (CORS) of `POST /collect`, and its preflight `OPTIONS /collect`.
//!
//! Contract:
//! - With `--site-origin` flags, a request whose `Origin` is one of them gets
//!   `Access-Control-Allow-Origin: <that origin>` (and `Vary: Origin`), a preflight
//!   (`OPTIONS /collect`) from it `204` with the allowed method and header; a request or
//!   preflight from any other origin gets `403` with no CORS header, before the rate limit
//!   and the body (counted as refused, why `origin`). A request without `Origin` (not a
//!   browser) is not judged by origin. Without the flag every origin may post
//!   (`Access-Control-Allow-Origin: *`). The body may be sent as `text/plain` (what
//!   `navigator.sendBeacon` sends, a CORS "simple" request without preflight): the
//!   content type is not looked at.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto::ApiError;

use super::CollectProducer;

/// What the `Origin` of a request is to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header: not a browser's cross-origin request.
    Absent,
    /// No `--site-origin` given: any origin may post.
    Any,
    /// One of the `--site-origin`s (the header's value).
    Allowed(HeaderValue),
    /// Not one of them.
    Refused,
}

/// Judge `origin` against the `--site-origin`s (`None`: none given).
pub fn check_origin(allowed: Option<&[String]>, origin: Option<&HeaderValue>) -> OriginCheck {
    let Some(origin) = origin else {
        return OriginCheck::Absent;
    };
    let Some(allowed) = allowed else {
        return OriginCheck::Any;
    };
    let o = origin.to_str().unwrap_or("").to_ascii_lowercase();
    if allowed.contains(&o) {
        OriginCheck::Allowed(origin.clone())
    } else {
        OriginCheck::Refused
    }
}

impl OriginCheck {
    /// Add the CORS headers of this verdict to a response.
    pub(super) fn decorate(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        match self {
            OriginCheck::Allowed(o) => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
            OriginCheck::Any => {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            OriginCheck::Absent | OriginCheck::Refused => {}
        }
    }
}

pub(super) fn forbidden_origin(origin: Option<&HeaderValue>) -> Response {
    crate::telemetry::collect_refused("origin");
    let shown = origin.and_then(|o| o.to_str().ok()).unwrap_or("?");
    (
        StatusCode::FORBIDDEN,
        Json(ApiError::new(format!(
            "origin {shown} may not post here: start Pulseboard with --site-origin {shown} to allow it"
        ))),
    )
        .into_response()
}

/// `OPTIONS /collect`: the CORS preflight (only a `Content-Type` other than the simple
/// ones needs it; the tracking script sends `text/plain` and never does).
pub async fn preflight(State(c): State<Option<CollectProducer>>, headers: HeaderMap) -> Response {
    let origins = c.as_ref().and_then(|c| c.origins.clone());
    let origin = headers.get(header::ORIGIN);
    let check = check_origin(origins.as_deref(), origin);
    if check == OriginCheck::Refused {
        return forbidden_origin(origin);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    check.decorate(&mut resp);
    let h = resp.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    if check != OriginCheck::Absent {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::super::tests::app_with;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: &Router, req: Request) -> (StatusCode, HeaderMap) {
        let resp = app.clone().oneshot(req).await.expect("response");
        (resp.status(), resp.headers().clone())
    }

    fn with_origin(method: &str, origin: Option<&str>, body: &'static str) -> Request {
        let mut r = Request::builder()
            .method(method)
            .uri("/collect")
            .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(Body::from(body)).expect("request")
    }

    #[tokio::test]
    async fn only_the_site_origins_may_post_from_a_browser() {
        let app = app_with(&[
            "--site-origin",
            "https://Example.com/",
            "--site-origin",
            "http://localhost:3000",
        ]);
        let acao = |h: &HeaderMap| {
            h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(|v| v.to_str().unwrap_or("").to_owned())
        };
        // Preflight from a site: allowed, with the method and header.
        let (status, h) = call(
            &app,
            with_origin("OPTIONS", Some("https://example.com"), ""),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(acao(&h).as_deref(), Some("https://example.com"));
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_METHODS)
                .map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
        assert!(h.get_all(header::VARY).iter().any(|v| v == "Origin"));
        // From elsewhere: 403 without CORS headers, for the preflight and the post alike.
        for method in ["OPTIONS", "POST"] {
            let (status, h) = call(
                &app,
                with_origin(method, Some("https://evil.example"), "[1]"),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
            assert_eq!(acao(&h), None, "{method}");
        }
        // A site's post (text/plain, as sendBeacon sends it) is read; its answer is readable.
        let (status, h) = call(
            &app,
            with_origin("POST", Some("http://localhost:3000"), "[1]"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "past the origin check, the body is judged"
        );
        assert_eq!(acao(&h).as_deref(), Some("http://localhost:3000"));
        // No Origin: not a browser, not judged by origin.
        let (status, h) = call(&app, with_origin("POST", None, "[1]")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(acao(&h), None);
        // Without --site-origin, any origin may post.
        let open = app_with(&[]);
        let (status, h) = call(
            &open,
            with_origin("POST", Some("https://any.example"), "[1]"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(acao(&h).as_deref(), Some("*"));
    }

    #[test]
    fn site_origins_must_be_origins() {
        let parse = |o: &str| {
            <crate::config::Config as clap::Parser>::try_parse_from([
                "pulseboard",
                "--site-origin",
                o,
            ])
            .map(|c| c.http.site_origins)
        };
        assert_eq!(
            parse("HTTPS://Example.COM:8443/").expect("origin"),
            vec!["https://example.com:8443".to_owned()]
        );
        for bad in [
            "example.com",
            "https://example.com/path",
            "https://*.example.com",
            "ftp://x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
