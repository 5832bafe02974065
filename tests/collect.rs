//! `POST /collect`: what it accepts is counted and a bad body is refused (on the embedded
//! demo's broker); against a real broker, the server's receive time decides the window, a
//! client over its rate is refused without costing anyone else an event, and an oversized
//! body is refused whole.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use pulseboard_model::event::Event;
use pulseboard_model::time::format_rfc3339_ms;
use pulseboard_testkit::net::request;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::util::*;

const DAY: i64 = 86_400_000;

/// The values of `topic`'s partition 0 with their Kafka timestamps, once `n` are there.
pub(crate) fn read_topic(
    brokers: &str,
    topic: &str,
    n: usize,
) -> Result<Vec<(Option<i64>, Value)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "collect-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        if std::time::Instant::now() > deadline {
            bail!("read {} of {n} messages from {topic}", out.len());
        }
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m?;
        let ts = match m.timestamp() {
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
            Timestamp::NotAvailable => None,
        };
        out.push((ts, serde_json::from_slice(m.payload().unwrap_or_default())?));
    }
    Ok(out)
}

pub(crate) async fn start_app(
    brokers: &str,
    topic: &str,
    extra: &[&str],
) -> Result<(App, tempfile::TempDir)> {
    create_topic(brokers, topic, 1).await?;
    let dir = data_dir();
    let mut args = broker_args(brokers, topic, topic, dir.path());
    args.extend(extra.iter().map(|s| s.to_string()));
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    Ok((app, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collected_events_are_counted_and_bad_bodies_rejected() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let app = App::start(&["--data-dir", &data, "--demo-rate", "0"]).await?;
    let now = now_ms();
    let events: Vec<Event> = (0..50)
        .map(|i| Event {
            props: Vec::new(),
            site: None,
            ts: now,
            kind: "pageview".into(),
            visitor: format!("v{}", i % 7),
            session: Some(format!("s{}", i % 11)),
            url: format!("/p{}", i % 3),
            referrer: None,
            country: None,
            device: None,
        })
        .collect();
    let body: Vec<String> = events.iter().map(Event::to_json).collect();
    let (code, body) = http_post(app.addr, "/collect", &format!("[{}]", body.join(","))).await?;
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("\"accepted\":50"), "{body}");
    // One bad event in a separate request is dead-lettered by the pipeline, not lost silently.
    assert_eq!(
        http_post(app.addr, "/collect", r#"{"visitor":"x"}"#)
            .await?
            .0,
        202
    );
    let (code, body) = http_post(app.addr, "/collect", "[1,2]").await?;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"parameter\":\"body\""), "{body}");
    wait_for_totals(app.addr, 50, 1, Duration::from_secs(30)).await?;
    // Counted as sent (in the windows of their receive time, all within the range).
    let summary = get_json(app.addr, "/api/v1/summary?range=5m&top=1000")
        .await
        .unwrap_or_default();
    assert_figures_match("summary", &summary, &Truth::of(&events), ALL_TOP, WHOLE)?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collected_events_are_stamped_with_the_server_receive_time() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    let (app, _dir) = start_app(&brokers, "stamped", &[]).await?;
    let now = now_ms();
    // A client clock a day ahead (epoch ms) and one a day behind (RFC 3339).
    let ahead: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"ts":{},"visitor":"a{i}","url":"/ahead"}}"#, now + DAY))
        .collect();
    let behind_ts = format_rfc3339_ms(now - DAY);
    let behind: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"ts":"{behind_ts}","visitor":"b{i}","url":"/behind"}}"#))
        .collect();
    let before = now_ms();
    for batch in [&ahead, &behind] {
        let (code, body) =
            http_post(app.addr, "/collect", &format!("[{}]", batch.join(","))).await?;
        assert_eq!(code, 202, "{body}");
    }
    let after = now_ms();
    let status = wait_for_totals(app.addr, 20, 0, Duration::from_secs(60)).await?;
    assert_eq!(status["late_events_total"], 0, "{status}");

    // Counted in the windows of the receive time, not a day away.
    let width = 10_000;
    let from = before - before.rem_euclid(width);
    let windows = get_json(
        app.addr,
        &format!("/api/v1/windows?from={from}&to={}", after + width),
    )
    .await
    .ok_or_else(|| anyhow!("windows failed"))?;
    let counted: u64 = windows["windows"]
        .as_array()
        .ok_or_else(|| anyhow!("no windows: {windows}"))?
        .iter()
        .filter_map(|w| w["events"].as_u64())
        .sum();
    assert_eq!(counted, 20, "{windows}");

    // The produced messages carry the receive time, and the client's as client_ts.
    let produced = read_topic(&brokers, "stamped", 20)?;
    for (kafka_ts, v) in &produced {
        let ts = v["ts"].as_i64().ok_or_else(|| anyhow!("no ts in {v}"))?;
        assert!(
            (before..=after).contains(&ts),
            "ts {ts} outside [{before}, {after}]: {v}"
        );
        assert_eq!(
            *kafka_ts,
            Some(ts),
            "the record's timestamp is the receive time"
        );
        let want = if v["url"] == "/ahead" {
            Value::from(now + DAY)
        } else {
            Value::from(behind_ts.as_str())
        };
        assert_eq!(v["client_ts"], want, "{v}");
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_and_loses_nothing_else() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    let (app, _dir) = start_app(
        &brokers,
        "limited",
        &["--collect-rate", "2", "--collect-burst", "5"],
    )
    .await?;
    let (mut accepted, mut refused) = (0u64, 0u64);
    for i in 0..30 {
        let body = format!(
            r#"[{{"visitor":"v{i}","url":"/x"}},{{"visitor":"w{i}","url":"/y"}},{{"visitor":"u{i}","url":"/z"}}]"#
        );
        let r = request(app.addr, "POST", "/collect", &[], body.as_bytes()).await?;
        match r.status {
            202 => accepted += 1,
            429 => {
                refused += 1;
                let retry: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow!("429 without a Retry-After in seconds: {}", r.head))?;
                assert_eq!(retry, 1, "at 2/s a token is back within a second");
                let err: Value = serde_json::from_str(&r.body)?;
                assert!(
                    err["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("retry after")),
                    "{err}"
                );
            }
            other => bail!("unexpected {other}: {}", r.body),
        }
    }
    assert!(accepted >= 5, "the burst is accepted: {accepted}");
    assert!(
        refused >= 10,
        "30 requests in a few seconds exceed 2/s: {refused} refused"
    );
    // Every accepted event is counted, exactly; nothing refused is.
    let status = wait_for_totals(app.addr, accepted * 3, 0, Duration::from_secs(60)).await?;
    assert_eq!(sum_next_offsets(&status), (accepted * 3) as i64, "{status}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_and_nothing_of_it_is_counted() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    let (app, _dir) = start_app(&brokers, "oversized", &[]).await?;
    // Valid events, just too many bytes of them.
    let event = r#"{"visitor":"big","url":"/a-rather-long-path-to-make-the-body-large"}"#;
    let n = pulseboard::site::collect::MAX_BODY / event.len() + 100;
    let big = format!("[{}]", vec![event; n].join(","));
    assert!(big.len() > pulseboard::site::collect::MAX_BODY);
    let r = request(app.addr, "POST", "/collect", &[], big.as_bytes()).await?;
    assert_eq!(r.status, 413, "{}", r.body);
    let err: Value = serde_json::from_str(&r.body)?;
    assert_eq!(err["parameter"], "body", "{err}");
    // A small body after it is taken, and it alone is counted.
    let small: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"visitor":"s{i}","url":"/small"}}"#))
        .collect();
    let (code, body) = http_post(app.addr, "/collect", &format!("[{}]", small.join(","))).await?;
    assert_eq!(code, 202, "{body}");
    let status = wait_for_totals(app.addr, 5, 0, Duration::from_secs(60)).await?;
    assert_eq!(
        sum_next_offsets(&status),
        5,
        "nothing of the big body reached Kafka: {status}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_beyond_max_sites_are_counted_as_other_sites_and_said_so() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let app = App::start(&["--data-dir", &data, "--demo-rate", "0", "--max-sites", "1"]).await?;
    let now = now_ms();
    // One request: one receive time, one window; the shop's events before the blog's.
    let event = |site: &str, i: usize| Event {
        props: Vec::new(),
        site: Some(site.into()),
        ts: now,
        kind: "pageview".into(),
        visitor: format!("{site}-v{}", i % 5),
        session: None,
        url: "/".into(),
        referrer: None,
        country: None,
        device: None,
    };
    let events: Vec<Event> = (0..30)
        .map(|i| event("shop.example", i))
        .chain((0..12).map(|i| event("blog.example", i)))
        .collect();
    let body: Vec<String> = events.iter().map(Event::to_json).collect();
    let (code, body) = http_post(app.addr, "/collect", &format!("[{}]", body.join(","))).await?;
    assert_eq!(code, 202, "{body}");
    wait_for_totals(app.addr, 42, 0, Duration::from_secs(30)).await?;
    let summary = get_json(app.addr, "/api/v1/summary?range=5m")
        .await
        .ok_or_else(|| anyhow!("summary failed"))?;
    let sites: Vec<(String, u64)> = summary["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["site"].as_str()?.to_owned(), s["events"].as_u64()?)))
        .collect();
    // The shop came first everywhere: its own, whole. The blog is beyond the bound where
    // the shop took the one place (a partition's window that saw only the blog counted it
    // as its own): every event is listed once, "(other sites)" last.
    let listed = |name: &str| sites.iter().find(|(n, _)| n == name).map(|(_, e)| *e);
    assert_eq!(listed("shop.example"), Some(30), "{summary}");
    assert_eq!(
        sites.last().map(|(n, _)| n.as_str()),
        Some("(other sites)"),
        "{summary}"
    );
    assert_eq!(sites.iter().map(|(_, e)| e).sum::<u64>(), 42, "{summary}");
    let in_other = listed("(other sites)").unwrap_or_default();
    // The blog's view holds what was counted as its own, and says how many more may be
    // among "(other sites)".
    let blog = get_json(app.addr, "/api/v1/summary?range=5m&site=blog.example")
        .await
        .ok_or_else(|| anyhow!("blog failed"))?;
    assert_eq!(
        blog["events"].as_u64(),
        listed("blog.example").or(Some(0)),
        "{blog}"
    );
    assert_eq!(blog["site"]["complete"], false, "{blog}");
    assert_eq!(
        blog["site"]["missing_at_most"].as_u64(),
        Some(in_other),
        "{blog}"
    );
    assert!(in_other > 0 && in_other + listed("blog.example").unwrap_or(0) == 12);
    let other = get_json(app.addr, "/api/v1/summary?range=5m&site=(other%20sites)")
        .await
        .ok_or_else(|| anyhow!("other sites failed"))?;
    assert_eq!(other["events"].as_u64(), Some(in_other), "{other}");
    let shop = get_json(app.addr, "/api/v1/summary?range=5m&site=shop.example")
        .await
        .ok_or_else(|| anyhow!("shop failed"))?;
    assert_eq!(
        (shop["events"].as_u64(), &shop["site"]["complete"]),
        (Some(30), &Value::Bool(true))
    );
    app.stop().await
}
