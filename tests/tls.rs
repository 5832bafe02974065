//! HTTPS through the real run (`--tls-cert`, `--tls-key`): the app is served over TLS on
//! `--listen`, says so in its status, and a certificate that cannot serve stops the start.
//! (The listener, the reload and the socket over TLS are unit-tested in `api::tls`.)

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_over_https_and_says_so() -> Result<()> {
    let dir = data_dir();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.key_pair.serialize_pem())?;
    let data = path_str(&dir.path().join("data"));
    let app = App::start(&[
        "--data-dir",
        &data,
        "--tls-cert",
        &path_str(&cert),
        "--tls-key",
        &path_str(&key),
    ])
    .await?;
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(made.cert.pem().as_bytes())?)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("https://{}/api/v1/status", app.addr);
    let status: Value = poll_until(Duration::from_secs(30), "the status over https", || async {
        let text = client.get(&url).send().await.ok()?.text().await.ok()?;
        serde_json::from_str(&text).ok()
    })
    .await?;
    let advertised = status["instance"]["url"].as_str().unwrap_or_default();
    assert_eq!(advertised, format!("https://{}", app.addr), "{status}");
    assert!(
        http_get(app.addr, "/healthz").await.is_err(),
        "plain HTTP answered on the HTTPS port"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_certificate_stops_the_start_naming_the_flag_and_the_file() -> Result<()> {
    let dir = data_dir();
    let missing = path_str(&dir.path().join("missing.pem"));
    let data = path_str(&dir.path().join("data"));
    let app = App::start(&[
        "--data-dir",
        &data,
        "--tls-cert",
        &missing,
        "--tls-key",
        &missing,
    ])
    .await?;
    let err = app
        .stop()
        .await
        .err()
        .context("the run started without its certificate")?;
    let err = format!("{err:#}");
    assert!(
        err.contains("--tls-cert") && err.contains(&missing),
        "{err}"
    );
    Ok(())
}
