//! A share link cannot leave its scope; a page's `?token=` leaves its URL; guesses are
//! limited; every answer has the security headers.

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::api::tests::app;

#[tokio::test]
async fn a_link_cannot_leave_its_scope_however_the_request_is_written() {
    let (app, _dir) = app();
    let link = create(
        &app,
        "links",
        json!({"name": "de", "view": "embed", "panel": "events", "filter": "country:DE", "range": "1h"}),
    )
    .await;
    let cookie = open_link(&app, link["id"].as_str().expect("id")).await;
    let cred = Cred::Cookie("link", cookie, None);
    let day_ago = crate::now_ms() - 86_400_000;
    for (uri, want) in [
        ("/api/v1/summary".to_owned(), StatusCode::OK),
        (
            "/api/v1/summary?filter=country:DE".to_owned(),
            StatusCode::OK,
        ),
        (
            "/api/v1/summary?filter=country:FR".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/summary?filter=country%3AFR".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/summary?%66ilter=country:FR".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/summary?filter=&filter=country:FR".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/summary?range=7d".to_owned(), StatusCode::FORBIDDEN),
        (
            "/api/v1/summary?compare=1d".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/api/v1/windows?from={day_ago}"),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/api/v1/annotations?from={day_ago}"),
            StatusCode::FORBIDDEN,
        ),
        ("/api/v1/dead-letters".to_owned(), StatusCode::FORBIDDEN),
        ("/api/v1//dead-letters".to_owned(), StatusCode::NOT_FOUND),
        (
            "/api/v1/status/../dead-letters".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/%64ead-letters".to_owned(), StatusCode::NOT_FOUND),
        ("/metrics".to_owned(), StatusCode::FORBIDDEN),
        ("/api/v1/links".to_owned(), StatusCode::FORBIDDEN),
        ("/ws?filter=country:FR".to_owned(), StatusCode::FORBIDDEN),
    ] {
        let (status, body, _) = call(&app, "GET", &uri, &cred, "").await;
        assert_eq!(status, want, "{uri}: {body}");
    }
    // The socket is given the link's segment: without an upgrade it answers 400, not 403.
    let (status, _, _) = call(&app, "GET", "/ws?since=3", &cred, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A bearer token cannot be a link id, nor the cookie a token.
    let (status, _, _) = call(
        &app,
        "GET",
        "/api/v1/status",
        &Cred::Bearer("x", link["id"].as_str().expect("id").into()),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_page_opened_with_a_token_keeps_no_secret_in_its_url() {
    let (app, _dir) = app();
    let (status, _, headers) = call(
        &app,
        "GET",
        "/kiosk?range=1h&token=s3cret",
        &Cred::Nothing,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/kiosk?range=1h");
    let set = headers["set-cookie"].to_str().expect("cookie");
    assert!(
        set.starts_with("pb_session=") && set.contains("HttpOnly"),
        "{set}"
    );
    // A wrong token: the same page without it, and no cookie.
    let (status, _, headers) = call(&app, "GET", "/?token=wrong", &Cred::Nothing, "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/");
    assert!(headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn guessing_is_limited_per_client() {
    let (app, _dir) = app();
    let mut last = StatusCode::OK;
    for i in 0..=crate::access::guesses::PER_MINUTE {
        let (status, _, _) = call(
            &app,
            "GET",
            &format!("/s/guess-{i:0>30}"),
            &Cred::Nothing,
            "",
        )
        .await;
        last = status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // Even the right token is refused for the rest of the minute.
    let (status, _, headers) = call(
        &app,
        "GET",
        "/api/v1/status",
        &Cred::Bearer("admin", ADMIN.into()),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn headers_are_set_on_every_answer() {
    let (app, _dir) = app();
    for uri in ["/healthz", "/kiosk", "/app.css", "/nope", "/api/v1/status"] {
        let (_, _, headers) = call(&app, "GET", uri, &Cred::Nothing, "").await;
        let csp = headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'self' https://intranet.example"),
            "{uri}: {csp}"
        );
        assert_eq!(
            headers.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{uri}"
        );
    }
}
