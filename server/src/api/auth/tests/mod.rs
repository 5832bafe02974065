//! Every route × every credential, from a table written out here (not from `rights`); the
//! ways around a share link's scope (`escapes.rs`); what ends access and what the log
//! keeps (`ends.rs`).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::api::tests::app_with;
use crate::api::ROUTES;
use crate::store::{AccessKind, AccessRecord};

/// Who may call a route, as this test reads the issue: written out, route by route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anyone,
    /// Any credential (the session itself).
    Signed,
    /// A reader, a share link included.
    LinkReader,
    /// A reader, not a share link.
    Reader,
    Admin,
}

const TABLE: &[(&str, &str, &str, Who)] = &[
    ("GET", "/", "/", Who::Anyone),
    ("GET", "/kiosk", "/kiosk", Who::Anyone),
    ("GET", "/embed/{panel}", "/embed/events", Who::Anyone),
    ("GET", "/ws", "/ws", Who::LinkReader),
    ("POST", "/collect", "/collect", Who::Anyone),
    ("OPTIONS", "/collect", "/collect", Who::Anyone),
    ("GET", "/pb.js", "/pb.js", Who::Anyone),
    ("GET", "/api/v1/windows", "/api/v1/windows", Who::LinkReader),
    ("GET", "/api/v1/summary", "/api/v1/summary", Who::LinkReader),
    ("GET", "/api/v1/export", "/api/v1/export", Who::LinkReader),
    ("GET", "/api/v1/now", "/api/v1/now", Who::LinkReader),
    (
        "GET",
        "/api/v1/segments",
        "/api/v1/segments",
        Who::LinkReader,
    ),
    ("GET", "/api/v1/status", "/api/v1/status", Who::LinkReader),
    ("GET", "/healthz", "/healthz", Who::Anyone),
    (
        "GET",
        "/api/v1/dead-letters",
        "/api/v1/dead-letters",
        Who::Reader,
    ),
    ("GET", "/readyz", "/readyz", Who::Anyone),
    ("GET", "/metrics", "/metrics", Who::Reader),
    (
        "GET",
        "/api/v1/openapi.json",
        "/api/v1/openapi.json",
        Who::LinkReader,
    ),
    (
        "GET",
        "/api/v1/annotations",
        "/api/v1/annotations",
        Who::LinkReader,
    ),
    (
        "POST",
        "/api/v1/annotations",
        "/api/v1/annotations",
        Who::Admin,
    ),
    (
        "DELETE",
        "/api/v1/annotations/{id}",
        "/api/v1/annotations/1",
        Who::Admin,
    ),
    ("GET", "/api/v1/alerts", "/api/v1/alerts", Who::Reader),
    (
        "GET",
        "/s/{id}",
        "/s/not-a-link-id-at-all-0000",
        Who::Anyone,
    ),
    ("GET", "/api/v1/session", "/api/v1/session", Who::Signed),
    ("POST", "/api/v1/session", "/api/v1/session", Who::Anyone),
    ("DELETE", "/api/v1/session", "/api/v1/session", Who::Signed),
    ("GET", "/api/v1/links", "/api/v1/links", Who::Admin),
    ("POST", "/api/v1/links", "/api/v1/links", Who::Admin),
    (
        "DELETE",
        "/api/v1/links/{key}",
        "/api/v1/links/0000000000000000",
        Who::Admin,
    ),
    ("GET", "/api/v1/tokens", "/api/v1/tokens", Who::Admin),
    ("POST", "/api/v1/tokens", "/api/v1/tokens", Who::Admin),
    (
        "DELETE",
        "/api/v1/tokens/{key}",
        "/api/v1/tokens/0000000000000000",
        Who::Admin,
    ),
];

/// A credential a request is made with.
#[derive(Debug, Clone)]
enum Cred {
    Nothing,
    Bearer(&'static str, String),
    /// A session cookie, with the CSRF value to send on writes (or not).
    Cookie(&'static str, String, Option<String>),
}

impl Cred {
    fn name(&self) -> &'static str {
        match self {
            Cred::Nothing => "no credential",
            Cred::Bearer(n, _) | Cred::Cookie(n, _, _) => n,
        }
    }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    cred: &Cred,
    body: &str,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::builder().method(method).uri(uri);
    match cred {
        Cred::Nothing => {}
        Cred::Bearer(_, t) => req = req.header("authorization", format!("Bearer {t}")),
        Cred::Cookie(_, c, csrf) => {
            req = req.header("cookie", format!("theme=dark; pb_session={c}"));
            if let Some(x) = csrf {
                req = req.header("x-csrf-token", x);
            }
        }
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

const ADMIN: &str = "s3cret";

async fn create(app: &Router, what: &str, body: Value) -> Value {
    let (status, v, _) = call(
        app,
        "POST",
        &format!("/api/v1/{what}"),
        &Cred::Bearer("admin", ADMIN.into()),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{what}: {v}");
    v
}

/// Revoke, as the admin, the link or the token (`what`: `links`, `tokens`) of `key`.
async fn revoke(app: &Router, what: &str, key: &Value) {
    let uri = format!("/api/v1/{what}/{}", key.as_str().expect("key"));
    let (status, v, _) = call(
        app,
        "DELETE",
        &uri,
        &Cred::Bearer("admin", ADMIN.into()),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
}

/// The session cookie an answer sets (the value of `pb_session` in its `Set-Cookie`).
fn cookie_of(headers: &axum::http::HeaderMap) -> String {
    let set = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie");
    set["pb_session=".len()..set.find(';').expect("attributes")].to_owned()
}

/// Open a share link: its session cookie.
async fn open_link(app: &Router, id: &str) -> String {
    let (status, _, headers) = call(app, "GET", &format!("/s/{id}"), &Cred::Nothing, "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location");
    assert!(!location.contains(id), "the page's URL holds no secret");
    cookie_of(&headers)
}

async fn csrf_of(app: &Router, cookie: &str) -> String {
    let (status, v, _) = call(
        app,
        "GET",
        "/api/v1/session",
        &Cred::Cookie("", cookie.into(), None),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["csrf"].as_str().expect("csrf").to_owned()
}

/// What a credential gets on a route of `who`: `Ok` (passes), or the refusal.
fn expected(cred: &str, who: Who, write: bool) -> Result<(), StatusCode> {
    use StatusCode as S;
    let signed_in = !matches!(
        cred,
        "no credential" | "revoked link" | "expired link" | "revoked viewer"
    );
    match (who, cred) {
        (Who::Anyone, _) => Ok(()),
        (_, _) if !signed_in => Err(S::UNAUTHORIZED),
        (Who::Admin, "admin" | "admin cookie + csrf") => Ok(()),
        (_, "admin cookie") if write => Err(S::FORBIDDEN),
        (Who::Admin, "admin cookie") => Ok(()),
        (Who::Admin, _) => Err(S::FORBIDDEN),
        (Who::Reader, "link" | "link + csrf") => Err(S::FORBIDDEN),
        (_, "link") if write => Err(S::FORBIDDEN),
        _ => Ok(()),
    }
}

#[tokio::test]
async fn every_route_answers_every_credential_as_the_table_says() {
    let listed: BTreeSet<(&str, &str)> = ROUTES.iter().copied().collect();
    let tabled: BTreeSet<(&str, &str)> = TABLE.iter().map(|(m, r, _, _)| (*m, *r)).collect();
    assert_eq!(listed, tabled, "every route of the router has a row here");

    let (app, store, _dir) = app_with(&[]);
    let viewer = create(&app, "tokens", json!({"name": "tv", "role": "viewer"})).await;
    let viewer = viewer["id"].as_str().expect("token").to_owned();
    let gone = create(&app, "tokens", json!({"name": "old", "role": "viewer"})).await;
    let link = create(
        &app,
        "links",
        json!({"name": "lobby", "view": "kiosk", "range": "1h"}),
    )
    .await;
    let link_cookie = open_link(&app, link["id"].as_str().expect("id")).await;
    let link_csrf = csrf_of(&app, &link_cookie).await;
    let revoked = create(
        &app,
        "links",
        json!({"name": "x", "view": "kiosk", "range": "1h"}),
    )
    .await;
    let revoked_cookie = open_link(&app, revoked["id"].as_str().expect("id")).await;
    let (admin_cookie, admin_csrf) = {
        let (status, _, headers) = call(
            &app,
            "POST",
            "/api/v1/session",
            &Cred::Nothing,
            &json!({ "token": ADMIN }).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let c = cookie_of(&headers);
        let csrf = csrf_of(&app, &c).await;
        (c, csrf)
    };
    for (what, key) in [("links", &revoked["key"]), ("tokens", &gone["key"])] {
        revoke(&app, what, key).await;
    }
    // A link that expired after its session was opened (written as the store keeps it).
    let expired_cookie = "e".repeat(43);
    let hash = crate::access::secret::hash(b"an-expired-link-id-0000000000000");
    store
        .access_put(
            AccessKind::Link,
            &hash,
            &AccessRecord::Link {
                name: "old".into(),
                scope: json!({"view": "kiosk", "range": "1h"}),
                created_ms: 1,
                expires_ms: Some(2),
                revoked_ms: None,
            },
        )
        .expect("put");
    store
        .access_put(
            AccessKind::Session,
            &crate::access::secret::hash(expired_cookie.as_bytes()),
            &AccessRecord::Session {
                of: crate::access::secret::hex(&hash),
                of_kind: "link".into(),
                csrf: "c".into(),
                created_ms: 1,
                expires_ms: i64::MAX,
            },
        )
        .expect("put");

    let creds = [
        Cred::Nothing,
        Cred::Bearer("viewer", viewer),
        Cred::Bearer("revoked viewer", gone["id"].as_str().expect("id").into()),
        Cred::Bearer("admin", ADMIN.into()),
        Cred::Cookie("admin cookie", admin_cookie.clone(), None),
        Cred::Cookie("admin cookie + csrf", admin_cookie, Some(admin_csrf)),
        Cred::Cookie("link", link_cookie.clone(), None),
        Cred::Cookie("link + csrf", link_cookie, Some(link_csrf)),
        Cred::Cookie("revoked link", revoked_cookie, None),
        Cred::Cookie("expired link", expired_cookie, None),
    ];
    let mut failures = Vec::new();
    for (method, _, path, who) in TABLE {
        // Sign-out last: it ends the session it is called with.
        if (*method, *path) == ("DELETE", "/api/v1/session") {
            continue;
        }
        for cred in &creds {
            let write = !matches!(*method, "GET" | "OPTIONS");
            let (status, body, _) = call(&app, method, path, cred, "{}").await;
            let got = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(status),
                _ => Ok(()),
            };
            let want = expected(cred.name(), *who, write);
            if got != want {
                failures.push(format!(
                    "{method} {path} as {}: {status} {body}, want {want:?}",
                    cred.name()
                ));
            }
            if status == StatusCode::UNAUTHORIZED {
                let p = body["parameter"].as_str().unwrap_or_default();
                let want_p = if cred.name().ends_with("link") {
                    "link"
                } else {
                    "token"
                };
                if p != want_p {
                    failures.push(format!(
                        "{method} {path} as {}: 401 names {p:?}",
                        cred.name()
                    ));
                }
            }
        }
        // Methods the route does not have are refused, whoever asks.
        for other in ["PUT", "PATCH"] {
            let (status, _, _) =
                call(&app, other, path, &Cred::Bearer("admin", ADMIN.into()), "").await;
            if status.is_success() {
                failures.push(format!("{other} {path}: {status}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The refusals are counted by reason.
    let (_, text) = crate::api::tests::get_raw(&app, "/metrics").await;
    for reason in [
        "no_credential",
        "forbidden",
        "link_revoked",
        "link_expired",
        "csrf",
    ] {
        assert!(
            text.contains(&format!(
                "pulseboard_access_refused_total{{reason=\"{reason}\"}}"
            )),
            "{reason} in\n{text}"
        );
    }
}

#[tokio::test]
async fn a_public_dashboard_reads_without_a_credential_and_writes_with_none() {
    let (app, _store, _dir) = app_with(&["--public-dashboard"]);
    for (method, _, path, who) in TABLE {
        let (status, body, _) = call(&app, method, path, &Cred::Nothing, "{}").await;
        let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        assert_eq!(
            refused,
            *who == Who::Admin,
            "{method} {path}: {status} {body}"
        );
    }
}

mod ends;
mod escapes;
