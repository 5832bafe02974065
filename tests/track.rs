//! The tracking script's path on a real broker: `GET /pb.js`, then events posted as the
//! script posts them (`text/plain`, from a site's origin, with a browser's user agent) are
//! produced enriched (visitor id, session, country, device), robots' are dropped, and no client
//! address appears in any produced message.

use std::time::Duration;

use anyhow::{anyhow, Result};
use pulseboard_model::event::Event;
use pulseboard_testkit::net::request;
use serde_json::Value;

use crate::collect::{read_topic, start_app};
use crate::util::*;

const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const SITE: &str = "https://shop.example";

/// POST `body` as pb.js does: text/plain from the site's origin, through a proxy that says
/// the client is `ip`.
async fn beacon(addr: std::net::SocketAddr, ua: &str, ip: &str, body: &str) -> Result<u64> {
    let r = request(
        addr,
        "POST",
        "/collect",
        &[
            ("Content-Type", "text/plain;charset=UTF-8"),
            ("Origin", SITE),
            ("User-Agent", ua),
            ("X-Forwarded-For", ip),
        ],
        body.as_bytes(),
    )
    .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some(SITE));
    let v: Value = serde_json::from_str(&r.body)?;
    v["accepted"]
        .as_u64()
        .ok_or_else(|| anyhow!("no accepted count in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_events_are_enriched_and_no_address_is_produced() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    let (app, _dir) = start_app(
        &brokers,
        "tracked",
        &["--trust-forwarded-for", "--site-origin", SITE],
    )
    .await?;

    let script = request(app.addr, "GET", "/pb.js", &[], b"").await?;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert!(script.body.contains("sendBeacon"), "{}", script.body);

    // One desktop browser: two pageviews and a custom event, in three requests.
    let desk = "8.8.8.8";
    for body in [
        r#"{"type":"pageview","site":"shop.example","url":"/","referrer":"https://news.example/","screen":"desktop"}"#,
        r#"{"type":"pageview","site":"shop.example","url":"/pricing","referrer":"https://shop.example/","screen":"desktop"}"#,
        r#"{"type":"signup","site":"shop.example","url":"/pricing","props":{"plan":"pro"},"screen":"desktop"}"#,
    ] {
        assert_eq!(beacon(app.addr, FIREFOX, desk, body).await?, 1);
    }
    // A phone elsewhere.
    let phone = "1.0.16.1";
    let body = r#"{"type":"pageview","site":"shop.example","url":"/","screen":"mobile"}"#;
    assert_eq!(beacon(app.addr, IPHONE, phone, body).await?, 1);
    // A crawler running the script: answered, not counted.
    let body = r#"{"type":"pageview","site":"shop.example","url":"/robot"}"#;
    assert_eq!(beacon(app.addr, GOOGLEBOT, "66.249.66.1", body).await?, 0);
    // A server-side sender with its own visitor id: kept as it is.
    let (code, resp) = http_post(
        app.addr,
        "/collect",
        r#"{"type":"pageview","visitor":"sdk-7","url":"/api"}"#,
    )
    .await?;
    assert_eq!(code, 202, "{resp}");

    let produced: Vec<Value> = read_topic(&brokers, "tracked", 5)?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    for v in &produced {
        let text = v.to_string();
        for addr in [desk, phone, "66.249.66.1", "127.0.0.1"] {
            assert!(!text.contains(addr), "{addr} in a produced message: {text}");
        }
        assert_ne!(v["url"], "/robot", "a robot's event was produced");
    }
    let by_url = |url: &str, kind: &str| {
        produced
            .iter()
            .find(|v| v["url"] == url && v["type"] == kind)
            .ok_or_else(|| anyhow!("no {kind} of {url} in {produced:?}"))
    };
    let first = produced
        .iter()
        .find(|v| v["url"] == "/" && v["device"] == "desktop")
        .ok_or_else(|| anyhow!("no desktop pageview of / in {produced:?}"))?;
    let desk_id = first["visitor"]
        .as_str()
        .ok_or_else(|| anyhow!("no visitor in {first}"))?;
    assert_eq!(desk_id.len(), 16, "{first}");
    assert_eq!(first["country"], "US", "{first}");
    for v in [
        by_url("/pricing", "pageview")?,
        by_url("/pricing", "signup")?,
    ] {
        assert_eq!(v["visitor"], desk_id, "the same visitor all day: {v}");
        assert_eq!(v["country"], "US");
        assert_eq!(v["device"], "desktop");
    }
    assert_eq!(by_url("/pricing", "signup")?["props"]["plan"], "pro");
    // One visit of the desktop browser (three requests within the session timeout).
    let desk_session = first["session"]
        .as_str()
        .ok_or_else(|| anyhow!("no session in {first}"))?;
    assert_eq!(desk_session.len(), 16, "{first}");
    for v in [
        by_url("/pricing", "pageview")?,
        by_url("/pricing", "signup")?,
    ] {
        assert_eq!(v["session"], desk_session, "one visit: {v}");
    }
    let phone_ev = produced
        .iter()
        .find(|v| v["device"] == "mobile")
        .ok_or_else(|| anyhow!("no phone event in {produced:?}"))?;
    assert_eq!(phone_ev["country"], "JP", "{phone_ev}");
    assert_ne!(phone_ev["visitor"], desk_id);
    assert!(
        phone_ev["session"]
            .as_str()
            .is_some_and(|s| s != desk_session),
        "{phone_ev}"
    );
    let sdk = by_url("/api", "pageview")?;
    assert_eq!(sdk["visitor"], "sdk-7");
    assert!(
        sdk.get("country").is_none() && sdk.get("device").is_none() && sdk.get("session").is_none(),
        "{sdk}"
    );

    // Pulseboard counts what was produced: 5 events, 3 visitors.
    let events = produced
        .iter()
        .map(|v| serde_json::from_value::<Event>(v.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let truth = Truth::of(&events);
    assert_eq!(truth.visitors.len(), 3);
    assert_eq!(truth.sessions.len(), 2, "the two browsers' visits");
    assert_eq!(truth.by_type.get("pageview"), Some(&4));
    assert_eq!(truth.by_type.get("signup"), Some(&1));
    wait_for_totals(app.addr, 5, 0, Duration::from_secs(60)).await?;
    let summary = get_json(app.addr, "/api/v1/summary?range=15m&top=1000")
        .await
        .ok_or_else(|| anyhow!("no summary"))?;
    assert_figures_match("summary", &summary, &truth, ALL_TOP, WHOLE)?;
    let metrics = request(app.addr, "GET", "/metrics", &[], b"").await?;
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("pulseboard_collect_dropped_total{why=\"bot\"}")),
        "{}",
        metrics.body
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_post_from_another_origin_is_refused() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    let (app, _dir) = start_app(&brokers, "guarded", &["--site-origin", SITE]).await?;
    let pre = request(
        app.addr,
        "OPTIONS",
        "/collect",
        &[
            ("Origin", SITE),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    )
    .await?;
    assert_eq!(pre.status, 204, "{}", pre.head);
    assert_eq!(pre.header("access-control-allow-origin"), Some(SITE));
    let evil = request(
        app.addr,
        "POST",
        "/collect",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", "https://evil.example"),
            ("User-Agent", FIREFOX),
        ],
        br#"{"type":"pageview","site":"x","url":"/evil"}"#,
    )
    .await?;
    assert_eq!(evil.status, 403, "{}", evil.body);
    assert_eq!(evil.header("access-control-allow-origin"), None);
    // The site's own event still gets through, and is the only one counted.
    let ok = request(
        app.addr,
        "POST",
        "/collect",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", SITE),
            ("User-Agent", FIREFOX),
        ],
        br#"{"type":"pageview","site":"shop.example","url":"/ok"}"#,
    )
    .await?;
    assert_eq!(ok.status, 202, "{}", ok.body);
    wait_for_totals(app.addr, 1, 0, Duration::from_secs(60)).await?;
    app.stop().await
}
