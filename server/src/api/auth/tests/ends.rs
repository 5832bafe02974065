//! What ends access (a revocation closes the sockets open on it), what the log keeps (no
//! secret), and the query token read as the header is.

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::api::tests::{app, app_with};

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
        revoke(&app, what, key).await;
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
