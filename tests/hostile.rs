//! Hostile input: nothing crashes, nothing else is lost.

use std::time::Duration;

use anyhow::{anyhow, Result};
use rdkafka::producer::FutureRecord;

use crate::backbone::event_set;
use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;

/// The `i`-th kind of bad Kafka value. Every one must be dead-lettered.
fn bad_value(i: usize, now: i64) -> Vec<u8> {
    let ok_rest = r#""type":"pageview","visitor":"v-1","url":"/""#;
    match i % 16 {
        0 => b"\xff\xfe{\"ts\":1}".to_vec(),
        1 => format!("not json {i}").into_bytes(),
        2 => b"[1,2,3]".to_vec(),
        3 => ["42", "\"text\"", "null", "true"][i / 16 % 4]
            .as_bytes()
            .to_vec(),
        4 => format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)).into_bytes(),
        5 => format!(
            r#"{{"a":{}1{}}}"#,
            "{\"a\":".repeat(3_000),
            "}".repeat(3_000)
        )
        .into_bytes(),
        6 => format!(r#"{{"ts":"{now}",{ok_rest}}}"#).into_bytes(),
        7 => format!(r#"{{"ts":NaN,{ok_rest}}}"#).into_bytes(),
        8 => format!(r#"{{"ts":-5,{ok_rest}}}"#).into_bytes(),
        9 => format!(r#"{{"ts":{},{ok_rest}}}"#, now + 10 * 86_400_000).into_bytes(),
        10 => format!(r#"{{"ts":{now},"visitor":"v"}}"#).into_bytes(),
        11 => format!(r#"{{"ts":{now},"url":"/"}}"#).into_bytes(),
        12 => format!(r#"{{"ts":{now},"visitor":{{"a":1}},"url":"/"}}"#).into_bytes(),
        13 => format!(r#"{{"ts":{now},"visitor":"v","url":5,"type":[1]}}"#).into_bytes(),
        14 => format!(r#"{{"ts":1e300,{ok_rest}}}"#).into_bytes(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_messages_are_dead_lettered_and_good_ones_all_counted() -> Result<()> {
    const BAD: usize = 10_000;
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let now = now_ms();
    let set = event_set(71, 10_000, 4, now - 20 * 60_000, 60_000);
    let mut msgs: Vec<(i32, Vec<u8>)> = Vec::with_capacity(set.payloads.len() + BAD);
    let mut bad = 0u64;
    for (i, good) in set.payloads.iter().enumerate() {
        msgs.push(good.clone());
        if i < BAD {
            msgs.push(((i % 4) as i32, bad_value(i, now)));
            bad += 1;
        }
    }
    let p = producer(&brokers)?;
    produce(&p, "clicks", &msgs).await?;
    // Values of about 1 MB, and a good event under a 100 KB key.
    let big = format!(
        r#"{{"ts":{now},"type":"pageview","visitor":"v","url":"/","x":"{}"}}"#,
        "a".repeat(900_000)
    );
    for part in 0..4 {
        let rec: FutureRecord<'_, (), [u8]> = FutureRecord::to("clicks")
            .partition(part)
            .payload(big.as_bytes());
        p.send(rec, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow!("big value: {e}"))?;
        bad += 1;
    }
    let huge_key = "k".repeat(100_000);
    let good_ts = set.events.last().map(|(_, e)| e.ts).unwrap_or(now);
    let keyed = format!(r#"{{"ts":{good_ts},"type":"pageview","visitor":"v-key","url":"/key"}}"#);
    let rec = FutureRecord::to("clicks")
        .partition(0)
        .key(huge_key.as_str())
        .payload(keyed.as_str());
    p.send(rec, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow!("huge key: {e}"))?;

    let (folded, late) = expected_folded(&set.events, WIDTH, LATENESS);
    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "hostile", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let s = wait_for_totals(
        app.addr,
        folded.len() as u64 + 1,
        bad + set.malformed,
        Duration::from_secs(180),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows"
    );
    let reasons = s["dead_letters_by_reason"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for r in [
        "not_json",
        "not_object",
        "missing_field",
        "wrong_type",
        "bad_timestamp",
        "oversized",
    ] {
        assert!(
            reasons.get(r).and_then(|v| v.as_u64()) > Some(0),
            "reason {r} counted: {reasons:?}"
        );
    }
    let mut all = folded.clone();
    all.push(pulseboard_model::event::Event {
        props: Vec::new(),
        site: None,
        ts: good_ts,
        kind: "pageview".into(),
        visitor: "v-key".into(),
        session: None,
        url: "/key".into(),
        referrer: None,
        country: None,
        device: None,
    });
    assert_api_matches(app.addr, &all, WIDTH).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_socket_cycles_leave_no_client_behind() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    // Unpaced: this is about cleanup, not about the connect rate.
    let app = App::start(&[
        "--data-dir",
        &data,
        "--demo-rate",
        "50",
        "--ws-connect-rate",
        "0",
    ])
    .await?;
    for i in 0..2_000 {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr)).await?;
        if i % 2 == 0 {
            ws.close(None).await?;
        }
        // Odd ones just vanish (dropped TCP connection without a close frame).
    }
    poll_until(
        Duration::from_secs(60),
        "every socket cleaned up",
        || async {
            let (code, metrics) = http_get(app.addr, "/metrics").await.ok()?;
            (code == 200
                && metrics.contains("pulseboard_ws_clients 0")
                && metrics.contains("pulseboard_ws_connects_total 2000"))
            .then_some(())
        },
    )
    .await?;
    assert_eq!(http_get(app.addr, "/healthz").await?.0, 200);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_connect_rate_wait_or_get_503_with_retry_after() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    // One session a second, three at once, nobody waits: of twenty opened together, the
    // first three are let in (and one more for each second the attempts span), the rest
    // refused.
    let app = App::start(&[
        "--data-dir",
        &data,
        "--demo-rate",
        "0",
        "--ws-connect-rate",
        "1",
        "--ws-connect-burst",
        "3",
        "--ws-connect-max-wait",
        "0s",
    ])
    .await?;
    let url = format!("ws://{}/ws", app.addr);
    let attempts =
        futures::future::join_all((0..20).map(|_| tokio_tungstenite::connect_async(url.clone())))
            .await;
    let mut open = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt {
            Ok((ws, _)) => open.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503);
                let retry: u64 = resp
                    .headers()
                    .get("retry-after")
                    .ok_or_else(|| anyhow!("a 503 without Retry-After"))?
                    .to_str()?
                    .parse()?;
                assert!((1..=10).contains(&retry), "Retry-After: {retry}");
                let body = resp.body().as_deref().unwrap_or_default();
                let err: serde_json::Value = serde_json::from_slice(body)?;
                assert!(
                    err["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("too many dashboards")),
                    "{err}"
                );
                refused += 1;
            }
            Err(e) => return Err(anyhow!("unexpected connect error: {e}")),
        }
    }
    assert!((3..=6).contains(&open.len()), "{} admitted", open.len());
    assert_eq!(open.len() + refused, 20);
    let (_, metrics) = http_get(app.addr, "/metrics").await?;
    assert!(
        metrics.contains(&format!("pulseboard_ws_connects_refused_total {refused}")),
        "{metrics}"
    );
    // The admitted sessions work: each gets its snapshot.
    for ws in &mut open {
        let first = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(ws))
            .await?
            .ok_or_else(|| anyhow!("socket closed before its snapshot"))??;
        assert!(first.to_text()?.contains("\"snapshot\""), "{first}");
    }
    app.stop().await
}

/// With room to wait (the default 10 s), a crowd opening at once is let in, one after
/// another: 25 at 5 a second with a burst of 5 take 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_sessions_within_the_max_wait_is_let_in_in_turn() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let app = App::start(&[
        "--data-dir",
        &data,
        "--demo-rate",
        "0",
        "--ws-connect-rate",
        "5",
        "--ws-connect-burst",
        "5",
    ])
    .await?;
    let url = format!("ws://{}/ws", app.addr);
    let attempts =
        futures::future::join_all((0..25).map(|_| tokio_tungstenite::connect_async(url.clone())))
            .await;
    let admitted = attempts.into_iter().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(admitted.len(), 25);
    let (_, metrics) = http_get(app.addr, "/metrics").await?;
    assert!(
        metrics.contains("pulseboard_ws_connects_refused_total 0"),
        "{metrics}"
    );
    let waited: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pulseboard_ws_connects_waited_total "))
        .ok_or_else(|| anyhow!("no waited counter in {metrics}"))?
        .trim()
        .parse()?;
    assert!(waited >= 15, "{waited} of 25 waited their turn");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_paths_cannot_escape_their_folder_and_bad_params_get_400() -> Result<()> {
    let dir = data_dir();
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist)?;
    std::fs::write(dist.join("index.html"), "<!doctype html><title>pb</title>")?;
    std::fs::write(dir.path().join("secret.txt"), "top secret")?;
    let data = path_str(&dir.path().join("data"));
    let dist_s = path_str(&dist);
    let app = App::start(&[
        "--data-dir",
        &data,
        "--demo-rate",
        "0",
        "--static-dir",
        &dist_s,
    ])
    .await?;
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/..\\secret.txt",
        "/%252e%252e/secret.txt",
        "/dist/../../secret.txt",
        "//etc/passwd",
    ] {
        let (code, body) = http_get(app.addr, path).await?;
        assert_eq!(code, 404, "{path}: {body}");
        assert!(!body.contains("top secret"), "{path}");
    }
    assert_eq!(http_get(app.addr, "/kiosk").await?.0, 200);
    for (path, param) in [
        ("/api/v1/windows?from=-x", "from"),
        ("/api/v1/windows?limit=99999999999999999999", "limit"),
        ("/api/v1/summary?range=-5m", "range"),
        ("/api/v1/summary?to=2026-13-45T00:00:00Z", "to"),
    ] {
        let (code, body) = http_get(app.addr, path).await?;
        assert_eq!(code, 400, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(v["parameter"], param, "{path}");
    }
    app.stop().await
}
