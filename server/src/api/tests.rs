//! The app the API's tests call: the router over an empty store, a built frontend and a
//! token (`s3cret`), with requests that present it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{router, AppState};
use crate::config::Config;
use crate::hub::Hub;
use crate::progress::Progress;
use crate::store::Store;

pub(crate) fn app() -> (Router, tempfile::TempDir) {
    let (app, _, dir) = app_with(&[]);
    (app, dir)
}

/// The app with `extra` arguments, and its store.
pub(crate) fn app_with(extra: &[&str]) -> (Router, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("store"), 10_000).expect("store");
    let progress = Arc::new(Progress::new(
        "embedded".into(),
        true,
        10_000,
        Duration::from_secs(30),
    ));
    let hub = Hub::new(crate::hub::HubConfig::new(10_000), progress.clone(), None);
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(dist.join("index.html"), "<!doctype html><title>app</title>").expect("index");
    std::fs::write(dist.join("app.css"), "body{}").expect("css");
    std::fs::write(dir.path().join("secret.txt"), "secret").expect("secret");
    let config = <Config as clap::Parser>::try_parse_from(
        [
            "pulseboard".as_ref(),
            "--static-dir".as_ref(),
            dist.as_os_str(),
            "--token".as_ref(),
            "s3cret".as_ref(),
            "--frame-ancestors".as_ref(),
            "'self' https://intranet.example".as_ref(),
        ]
        .into_iter()
        .chain(extra.iter().map(std::ffi::OsStr::new)),
    )
    .expect("parse")
    .validate()
    .expect("valid");
    let state = AppState::new(
        &config,
        store.clone(),
        progress,
        hub,
        None,
        CancellationToken::new(),
    );
    (router(state), store, dir)
}

pub(crate) async fn get_raw(app: &Router, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header("authorization", "Bearer s3cret")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub(crate) async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let (status, body) = get_raw(app, uri).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}
