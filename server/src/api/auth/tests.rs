//! Every route × every credential, from a table written out here (not from `rights`), and
//! the ways around a share link's scope.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::api::tests::{app, app_with};
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
    set["pb_session=".len()..set.find(';').expect("attributes")].to_owned()
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
        let set = headers["set-cookie"].to_str().expect("cookie");
        let c = set["pb_session=".len()..set.find(';').expect(";")].to_owned();
        let csrf = csrf_of(&app, &c).await;
        (c, csrf)
    };
    for (what, key) in [("links", &revoked["key"]), ("tokens", &gone["key"])] {
        let (status, _, _) = call(
            &app,
            "DELETE",
            &format!("/api/v1/{what}/{}", key.as_str().expect("key")),
            &Cred::Bearer("admin", ADMIN.into()),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
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

/// A socket open on a link is closed with 1008 "link revoked" when the link is revoked,
/// and one of a viewer token with "access revoked" when the token is.
#[tokio::test]
async fn revoking_ends_the_sockets_open_on_it() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

    let (app, _store, _dir) = app_with(&[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = app
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, served).await });
    let link = create(
        &app,
        "links",
        json!({"name": "tv", "view": "kiosk", "range": "1h"}),
    )
    .await;
    let cookie = open_link(&app, link["id"].as_str().expect("id")).await;
    let viewer = create(&app, "tokens", json!({"name": "tv", "role": "viewer"})).await;
    for (what, key, header, reason) in [
        (
            "links",
            &link["key"],
            format!("pb_session={cookie}"),
            "link revoked",
        ),
        (
            "tokens",
            &viewer["key"],
            format!("Bearer {}", viewer["id"].as_str().expect("id")),
            "access revoked",
        ),
    ] {
        let mut req = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        let name = if what == "links" {
            "cookie"
        } else {
            "authorization"
        };
        req.headers_mut()
            .insert(name, header.parse().expect("header"));
        let (mut socket, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        let first = socket.next().await.expect("a message").expect("ok");
        assert!(matches!(first, Message::Text(_)), "{first:?}");
        let (status, _, _) = call(
            &app,
            "DELETE",
            &format!("/api/v1/{what}/{}", key.as_str().expect("key")),
            &Cred::Bearer("admin", ADMIN.into()),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(m) = socket.next().await {
                if let Ok(Message::Close(frame)) = m {
                    return frame;
                }
            }
            None
        })
        .await
        .expect("closed within 10 s")
        .expect("a close frame");
        assert_eq!(u16::from(closed.code), 1008);
        assert_eq!(closed.reason.as_str(), reason);
        // And it cannot come back.
        let mut again = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        again
            .headers_mut()
            .insert(name, header.parse().expect("header"));
        let refused = tokio_tungstenite::connect_async(again).await;
        assert!(refused.is_err(), "a revoked credential opens no socket");
    }
    server.abort();
}

/// The log, as the server writes it, never holds a token, a link id or a session cookie.
#[tokio::test]
async fn no_secret_reaches_the_log() {
    #[derive(Clone, Default)]
    struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, _store, _dir) = app_with(&[]);
    let viewer = create(&app, "tokens", json!({"name": "tv", "role": "viewer"})).await;
    let link = create(
        &app,
        "links",
        json!({"name": "tv", "view": "kiosk", "range": "1h"}),
    )
    .await;
    let token = viewer["id"].as_str().expect("id").to_owned();
    let id = link["id"].as_str().expect("id").to_owned();
    let cookie = open_link(&app, &id).await;
    let mut secrets = vec![ADMIN.to_owned(), token.clone(), id.clone(), cookie.clone()];
    for (method, uri, cred) in [
        ("GET", format!("/kiosk?token={token}"), Cred::Nothing),
        (
            "GET",
            "/?token=wrong-token-0000000000".to_owned(),
            Cred::Nothing,
        ),
        (
            "GET",
            "/api/v1/status".to_owned(),
            Cred::Bearer("v", token.clone()),
        ),
        (
            "GET",
            format!("/api/v1/status?token={token}"),
            Cred::Nothing,
        ),
        (
            "GET",
            "/api/v1/status".to_owned(),
            Cred::Bearer("x", "pbt_wrong-0000000000000000".into()),
        ),
        (
            "GET",
            "/api/v1/summary?compare=1d".to_owned(),
            Cred::Cookie("l", cookie.clone(), None),
        ),
        ("GET", format!("/s/{id}x"), Cred::Nothing),
        (
            "POST",
            "/api/v1/annotations".to_owned(),
            Cred::Cookie("l", cookie.clone(), None),
        ),
        (
            "DELETE",
            format!("/api/v1/links/{}", link["key"].as_str().expect("key")),
            Cred::Bearer("a", ADMIN.into()),
        ),
        ("GET", format!("/s/{id}"), Cred::Nothing),
        (
            "GET",
            "/api/v1/status".to_owned(),
            Cred::Cookie("l", cookie.clone(), None),
        ),
        (
            "DELETE",
            format!("/api/v1/tokens/{}", viewer["key"].as_str().expect("key")),
            Cred::Bearer("a", ADMIN.into()),
        ),
        (
            "GET",
            "/api/v1/status".to_owned(),
            Cred::Bearer("v", token.clone()),
        ),
    ] {
        call(&app, method, &uri, &cred, "{}").await;
    }
    let (_, v, headers) = call(
        &app,
        "POST",
        "/api/v1/session",
        &Cred::Nothing,
        &json!({"token": ADMIN}).to_string(),
    )
    .await;
    assert!(v.is_null());
    let set = headers["set-cookie"].to_str().expect("cookie");
    secrets.push(set["pb_session=".len()..set.find(';').expect(";")].to_owned());
    let text = String::from_utf8_lossy(&log.0.lock().expect("log")).into_owned();
    assert!(
        text.contains("revoked"),
        "the log says what happened:\n{text}"
    );
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "{s} is in the log:\n{text}");
    }
}

/// `?token=` (for scripts) works as the header does, percent-encoded too; a wrong one is a
/// `401` naming `token`.
#[tokio::test]
async fn a_token_in_the_query_is_read_as_the_header_is() {
    let (app, _dir) = app();
    for (uri, want) in [
        ("/api/v1/status?token=s3cret", StatusCode::OK),
        ("/api/v1/status?token=s3%63ret", StatusCode::OK),
        ("/metrics?token=s3cret", StatusCode::OK),
        ("/api/v1/windows?token=wrong", StatusCode::UNAUTHORIZED),
        ("/api/v1/status", StatusCode::UNAUTHORIZED),
    ] {
        let (status, body, headers) = call(&app, "GET", uri, &Cred::Nothing, "").await;
        assert_eq!(status, want, "{uri}: {body}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["parameter"], "token", "{uri}");
            assert_eq!(headers["www-authenticate"], "Bearer", "{uri}");
        }
    }
}
