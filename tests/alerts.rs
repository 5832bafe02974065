//! Alerts and annotations end to end: a rule fires on real traffic from Apache Kafka, shows
//! in the status and `GET /api/v1/alerts`, notifies a real local webhook that fails first
//! (retried with backoff), resolves after its suppression interval; the rules file is
//! reloaded, and a broken one keeps the last good rules. Annotations are validated, guarded
//! by the token, listed, deleted, and announced in the status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use pulseboard_model::gen::{GenConfig, Generator};
use serde_json::Value;

use crate::util::*;

/// What the webhook receiver saw: when, and the body.
type Seen = Arc<Mutex<Vec<(Instant, Value)>>>;

/// A webhook receiver on 127.0.0.1:0 that answers 500 to the first request and 200 after,
/// recording every request (time received, body).
struct Hook {
    url: String,
    seen: Seen,
    stop: tokio_util::sync::CancellationToken,
}

async fn hook() -> Result<Hook> {
    let seen: Seen = Arc::default();
    async fn receive(State(seen): State<Seen>, body: axum::body::Bytes) -> StatusCode {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut g = seen.lock().unwrap_or_else(|e| e.into_inner());
        g.push((Instant::now(), v));
        if g.len() == 1 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    Ok(Hook { url, seen, stop })
}

fn received(h: &Hook) -> Vec<(Instant, Value)> {
    h.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_fires_notifies_a_failing_webhook_with_retries_and_resolves() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "alerts", 2).await?;
    let hook = hook().await?;
    let dir = data_dir();
    let rules = dir.path().join("alerts.toml");
    std::fs::write(
        &rules,
        format!(
            "webhook = \"{}\"\n[[rule]]\nname = \"burst\"\nkind = \"events_above\"\nthreshold = 199\nover = \"10s\"\nsuppress = \"3s\"\n",
            hook.url
        ),
    )?;
    let store = dir.path().join("store");
    let mut args = broker_args(&brokers, "alerts", "alerts-test", &store);
    for a in [
        "--window",
        "1s",
        "--allowed-lateness",
        "500ms",
        "--alerts-interval",
        "200ms",
        "--alerts",
    ] {
        args.push(a.into());
    }
    args.push(path_str(&rules));
    let app = spawn_child(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    poll_until(Duration::from_secs(90), "partitions assigned", || async {
        let (code, _) = http_get(app.addr, "/readyz").await.ok()?;
        (code == 200).then_some(())
    })
    .await?;
    let v = get_json(app.addr, "/api/v1/alerts")
        .await
        .unwrap_or_default();
    assert_eq!(v["rules"][0]["name"], "burst", "{v}");
    assert_eq!(v["firing"].as_array().map(Vec::len), Some(0));

    // Past the rule's start-up grace (its span and a window): evaluated, not firing.
    poll_until(Duration::from_secs(30), "the rule evaluated", || async {
        let v = get_json(app.addr, "/api/v1/alerts").await?;
        (v["rules"][0]["state"] == "ok").then_some(())
    })
    .await?;
    // A burst: 200 events stamped in one window just past. The rule fires once all of them
    // are counted (above 199), whenever that is within its 10 s span.
    let now = now_ms();
    let at = now - now.rem_euclid(1_000) - 1_000;
    let mut gen = Generator::new(
        5,
        GenConfig {
            out_of_order: 0.0,
            late: 0.0,
            ..GenConfig::default()
        },
    );
    let payloads: Vec<(i32, Vec<u8>)> = (0..200)
        .map(|i| {
            (
                i % 2,
                gen.next_event(at + i64::from(i)).to_json().into_bytes(),
            )
        })
        .collect();
    let produced = Instant::now();
    produce(&producer(&brokers)?, "alerts", &payloads).await?;

    // Firing: in the status (the banner), in the API, and at the webhook after one retry.
    let firing = poll_until(Duration::from_secs(30), "the rule to fire", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        let a = s["alerts"].as_array()?.first()?.clone();
        Some(a)
    })
    .await?;
    let fired_after = produced.elapsed();
    assert_eq!(firing["rule"], "burst");
    assert_eq!(
        firing["value"].as_f64(),
        Some(200.0),
        "the events of the span: {firing}"
    );
    let delivered = poll_until(Duration::from_secs(30), "the webhook to get it", || async {
        let r = received(&hook);
        (r.len() >= 2).then_some(r)
    })
    .await?;
    let webhook_after = delivered[1].0.duration_since(produced);
    assert_eq!(
        delivered[0].1, delivered[1].1,
        "the retry sends the same payload"
    );
    let p = &delivered[1].1;
    assert_eq!(
        (p["version"].as_u64(), p["source"].as_str()),
        (Some(1), Some("pulseboard"))
    );
    assert_eq!(
        (p["rule"].as_str(), p["kind"].as_str(), p["state"].as_str()),
        (Some("burst"), Some("events_above"), Some("firing"))
    );
    assert_eq!(
        (p["value"].as_f64(), p["threshold"].as_f64()),
        (Some(200.0), Some(199.0))
    );
    eprintln!(
        "alert latency: produced → firing in the status {fired_after:?}, → webhook delivered (after one failed attempt and 1 s backoff) {webhook_after:?}"
    );

    // Resolved once quiet for the suppression interval (3 s), notified too.
    let resolved = poll_until(Duration::from_secs(30), "the rule to resolve", || async {
        let r = received(&hook);
        r.iter().find(|(_, v)| v["state"] == "resolved").cloned()
    })
    .await?;
    // Not before the condition had been false for the whole suppression interval.
    let quiet = resolved.1["at"].as_i64().unwrap_or(0) - p["at"].as_i64().unwrap_or(i64::MAX);
    assert!(
        quiet >= 3_000,
        "resolved {quiet} ms after firing: {}",
        resolved.1
    );
    assert_eq!(resolved.1["since"], p["since"]);
    // The receiver has the POST before the server has its answer and counts it sent.
    let v = poll_until(
        Duration::from_secs(10),
        "the resolved webhook counted",
        || async {
            let v = get_json(app.addr, "/api/v1/alerts").await?;
            (v["webhook"]["queued"].as_u64() == Some(0)).then_some(v)
        },
    )
    .await?;
    let states: Vec<&str> = v["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|e| e["state"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states, vec!["resolved", "firing"], "{v}");
    assert_eq!(v["webhook"]["sent"].as_u64(), Some(2), "{v}");
    assert_eq!(v["firing"].as_array().map(Vec::len), Some(0));
    let s = get_json(app.addr, "/api/v1/status")
        .await
        .unwrap_or_default();
    assert!(s.get("alerts").is_none(), "no banner once resolved: {s}");
    let (_, metrics) = http_get(app.addr, "/metrics").await?;
    assert!(
        metrics.contains("pulseboard_webhook_attempts_failed_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pulseboard_webhook_deliveries_total{outcome=\"sent\"} 2"),
        "{metrics}"
    );

    // A broken file keeps the rules in force and says why; a fixed one is loaded.
    std::fs::write(&rules, "[[rule]\nname = ")?;
    let v = poll_until(Duration::from_secs(10), "the error to show", || async {
        let v = get_json(app.addr, "/api/v1/alerts").await?;
        v["error"].is_string().then_some(v)
    })
    .await?;
    assert_eq!(
        v["rules"][0]["name"], "burst",
        "the last good rules stay: {v}"
    );
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"lag\"\nkind = \"lag\"\nthreshold = 1000\n",
    )?;
    poll_until(
        Duration::from_secs(10),
        "the fixed file to load",
        || async {
            let v = get_json(app.addr, "/api/v1/alerts").await?;
            (v["error"].is_null() && v["rules"][0]["name"] == "lag").then_some(())
        },
    )
    .await?;
    hook.stop.cancel();
    if let Err(e) = app.terminate() {
        bail!("{e}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_are_validated_guarded_listed_and_announced() -> Result<()> {
    let dir = data_dir();
    let store = path_str(dir.path());
    let app = App::start(&[
        "--data-dir",
        &store,
        "--demo-rate",
        "0",
        "--token",
        "s3cret",
    ])
    .await?;
    let post = |path: &'static str, body: String| async move {
        pulseboard_testkit::net::request(app.addr, "POST", path, &[], body.as_bytes()).await
    };
    // No token: refused, nothing stored.
    let r = post("/api/v1/annotations", r#"{"text":"deploy"}"#.into()).await?;
    assert_eq!(r.status, 401);
    let status = |s: Option<Value>| s.unwrap_or_default()["annotations_version"].as_u64();
    let v0 = status(get_json(app.addr, "/api/v1/status?token=s3cret").await);
    assert!(v0.is_some());
    // Bad input: 400 naming the field.
    for (body, field) in [
        ("{", "body"),
        (r#"{"ts":"soon","text":"x"}"#, "ts"),
        (r#"{"ts":1795515330123,"text":""}"#, "text"),
    ] {
        let r = post("/api/v1/annotations?token=s3cret", body.into()).await?;
        assert_eq!(r.status, 400, "{body}");
        let e: Value = serde_json::from_str(&r.body)?;
        assert_eq!(e["parameter"], field, "{body}: {e}");
    }
    let r = post(
        "/api/v1/annotations?token=s3cret",
        format!(r#"{{"text":"{}"}}"#, "x".repeat(5000)),
    )
    .await?;
    assert_eq!(r.status, 413);
    // Stored: listed, and the status announces the change.
    let r = post(
        "/api/v1/annotations?token=s3cret",
        r#"{"ts":"2026-11-24T10:15:30Z","text":"deploy v2"}"#.into(),
    )
    .await?;
    assert_eq!(r.status, 201);
    let a: Value = serde_json::from_str(&r.body)?;
    assert_eq!(
        (a["ts"].as_i64(), a["text"].as_str()),
        (Some(1_795_515_330_000), Some("deploy v2"))
    );
    let v1 = status(get_json(app.addr, "/api/v1/status?token=s3cret").await);
    assert!(v1 > v0, "{v1:?} after {v0:?}");
    let list = get_json(
        app.addr,
        "/api/v1/annotations?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z&token=s3cret",
    )
    .await
    .unwrap_or_default();
    assert_eq!(
        list["annotations"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(list["annotations"][0]["id"], a["id"]);
    assert_eq!(list["version"].as_u64(), v1);
    // Deleted, once.
    let path = format!("/api/v1/annotations/{}?token=s3cret", a["id"]);
    let del = pulseboard_testkit::net::request(app.addr, "DELETE", &path, &[], b"").await?;
    assert_eq!(del.status, 204);
    let again = pulseboard_testkit::net::request(app.addr, "DELETE", &path, &[], b"").await?;
    assert_eq!(again.status, 404);
    let v2 = status(get_json(app.addr, "/api/v1/status?token=s3cret").await);
    assert!(v2 > v1);
    app.stop().await
}
