//! Kafka → windows → sled → API against a real broker process, checked against an
//! independent recomputation.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use pulseboard_model::event::Event;
use pulseboard_model::gen::{GenConfig, Generator};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;

/// A known event set: the messages as produced, the good events among them (with their
/// partition) and how many messages are malformed.
pub struct EventSet {
    pub payloads: Vec<(i32, Vec<u8>)>,
    pub events: Vec<(i32, Event)>,
    pub malformed: u64,
}

/// A known event set over `partitions`: realistic events across ~`span_ms`, with the
/// generator's own share of out-of-order and late events, plus a few malformed messages.
pub fn event_set(seed: u64, n: usize, partitions: i32, start: i64, span_ms: i64) -> EventSet {
    // Two sites, as a shop and its blog sending to one topic.
    let cfg = GenConfig {
        malformed: 0.0,
        sites: vec!["shop.example".into(), "blog.example".into()],
        props: true,
        ..GenConfig::default()
    };
    let mut gen = Generator::new(seed, cfg);
    let mut payloads = Vec::with_capacity(n);
    let mut events = Vec::with_capacity(n);
    let mut malformed = 0;
    for i in 0..n {
        let p = (i as i32) % partitions;
        let now = start + (i as i64) * span_ms / (n as i64);
        let ev = gen.next_event(now);
        payloads.push((p, ev.to_json().into_bytes()));
        events.push((p, ev));
        if i % 97 == 0 {
            payloads.push((p, format!("not json {i}").into_bytes()));
            malformed += 1;
        }
    }
    EventSet {
        payloads,
        events,
        malformed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_numbers_equal_independent_recomputation() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let start = now_ms() - 20 * 60_000;
    let EventSet {
        payloads,
        events,
        malformed,
    } = event_set(7, 6_000, 4, start, 90_000);
    let (folded, late) = expected_folded(&events, WIDTH, LATENESS);
    produce(&producer(&brokers)?, "clicks", &payloads).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "api-test", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let status = wait_for_totals(
        app.addr,
        folded.len() as u64,
        malformed,
        Duration::from_secs(90),
    )
    .await?;
    assert_eq!(status["late_events_total"].as_u64(), Some(late));
    assert!(late > 0, "the event set has late events");
    assert_eq!(
        status["revised_events_total"].as_u64(),
        Some(late),
        "every late event is folded as a revision: {status}"
    );
    assert_eq!(status["broker"].as_str(), Some(brokers.as_str()));
    let parts = status["partitions"]
        .as_array()
        .ok_or_else(|| anyhow!("no partitions"))?;
    assert_eq!(parts.len(), 4, "{status}");
    let next_total: i64 = parts.iter().filter_map(|p| p["next_offset"].as_i64()).sum();
    assert_eq!(
        next_total as usize,
        payloads.len(),
        "next offsets cover every message: {status}"
    );

    let truth = recompute(&folded, WIDTH);
    let windows = get_json(app.addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow!("windows endpoint failed"))?;
    assert_windows_match(&windows, &truth)?;
    assert_sites_match(app.addr, &folded, WIDTH).await?;
    assert_props_match(app.addr, &folded, WIDTH).await?;
    crate::export::assert_exports_match(app.addr).await?;
    // Windows are final (or revised, when late events reached them) up to the watermark,
    // and the one still open is live.
    let status = get_json(app.addr, "/api/v1/status")
        .await
        .ok_or_else(|| anyhow!("status failed"))?;
    let watermark = status["watermark"]
        .as_i64()
        .ok_or_else(|| anyhow!("no watermark: {status}"))?;
    let list = windows["windows"].as_array().cloned().unwrap_or_default();
    let (mut finals, mut revised) = (0, 0);
    for w in &list {
        let (end, state) = (w["end"].as_i64().unwrap_or(i64::MAX), &w["state"]);
        if end <= watermark {
            assert!(
                state == "final" || state == "revised",
                "window ending {end} <= watermark {watermark} is {state}"
            );
            finals += 1;
            if state == "revised" {
                revised += 1;
            }
        }
    }
    assert!(finals > 0, "windows behind the watermark are final");
    assert!(revised > 0, "the windows late events reached are revised");
    let newest = list.last().ok_or_else(|| anyhow!("no windows"))?;
    if newest["end"].as_i64() > Some(watermark) {
        assert_eq!(newest["state"], "live", "the open window is live: {newest}");
    }

    // The summary merges uniques by HLL over the whole range, never a sum of windows: its
    // figures are those of all the events (top lists cut to the 10 asked).
    let to = now_ms() + 60_000;
    let summary = get_json(app.addr, &format!("/api/v1/summary?from=0&to={to}&top=10"))
        .await
        .ok_or_else(|| anyhow!("summary failed"))?;
    assert_figures_match("summary", &summary, &Truth::of(&folded), 10, WHOLE)?;
    let sum_of_windows: u64 = windows["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["unique_visitors"].as_u64())
        .sum();
    assert!(
        summary["unique_visitors"].as_u64() < Some(sum_of_windows),
        "visitors recur across windows"
    );

    // Health, readiness and metrics answer.
    assert_eq!(http_get(app.addr, "/healthz").await?.0, 200);
    assert_eq!(http_get(app.addr, "/readyz").await?.0, 200);
    let (code, metrics) = http_get(app.addr, "/metrics").await?;
    assert_eq!(code, 200);
    assert!(
        metrics.contains(&format!("pulseboard_events_total {}", folded.len())),
        "{metrics}"
    );
    let (code, body) = http_get(app.addr, "/api/v1/windows?limit=zero").await?;
    assert_eq!(code, 400);
    assert!(body.contains("\"parameter\":\"limit\""), "{body}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dead_lettered_with_reasons_and_late_ones_revise_their_window(
) -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "raw", 1).await?;
    create_topic(&brokers, "raw-dlq", 1).await?;
    let t = now_ms() - now_ms().rem_euclid(WIDTH) - 10 * 60_000;
    let ev =
        |ts: i64, v: &str| format!(r#"{{"ts":{ts},"type":"pageview","visitor":"{v}","url":"/"}}"#);
    let msgs: Vec<(&str, String)> = vec![
        ("ok", ev(t, "a")),
        ("ok", ev(t + 20_000, "b")),
        // A day ahead of the wall clock and of the message's timestamp: a wrong clock.
        ("future", ev(now_ms() + 2 * 24 * 3_600_000, "e")),
        // Its window closed more than the revision horizon (24 h) before the watermark.
        ("too_late", ev(t - 25 * 3_600_000, "f")),
        ("not_json", "{not json".into()),
        ("not_object", "[1,2,3]".into()),
        ("missing_field", r#"{"ts":1,"visitor":"x"}"#.into()),
        (
            "wrong_type",
            format!(r#"{{"ts":{t},"visitor":"x","url":42}}"#),
        ),
        (
            "bad_timestamp",
            r#"{"ts":"yesterday","visitor":"x","url":"/"}"#.into(),
        ),
        ("ok", ev(t + 21_000, "d")),
        // Window [t, t+10s) ended before the watermark (t+21s − 5s) and was shown final: this
        // late event is folded into it, and it becomes revised. Produced once the rest is in.
        ("revised", ev(t + 1_000, "c")),
    ];
    let payloads: Vec<(i32, Vec<u8>)> = msgs
        .iter()
        .map(|(_, m)| (0, m.clone().into_bytes()))
        .collect();
    let p = producer(&brokers)?;
    let (first, last) = payloads.split_at(payloads.len() - 1);
    produce(&p, "raw", first).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "raw", "dlq-test", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    wait_for_totals(app.addr, 3, 7, Duration::from_secs(90)).await?;
    let windows = get_json(
        app.addr,
        &format!("/api/v1/windows?from={t}&to={}", t + WIDTH),
    )
    .await
    .ok_or_else(|| anyhow!("windows failed"))?;
    assert_eq!(windows["windows"][0]["state"], "final", "{windows}");
    produce(&p, "raw", last).await?;
    let status = wait_for_totals(app.addr, 4, 7, Duration::from_secs(90)).await?;
    assert_eq!(status["late_events_total"].as_u64(), Some(2), "{status}");
    assert_eq!(status["revised_events_total"].as_u64(), Some(1), "{status}");
    assert_eq!(
        status["watermark"].as_i64(),
        Some(t + 21_000 - LATENESS),
        "the event from the future moved no watermark: {status}"
    );
    let windows = get_json(
        app.addr,
        &format!("/api/v1/windows?from={t}&to={}", t + WIDTH),
    )
    .await
    .ok_or_else(|| anyhow!("windows failed"))?;
    let first = &windows["windows"][0];
    assert_eq!(first["start"].as_i64(), Some(t), "{windows}");
    assert_eq!(first["state"], "revised", "{windows}");
    assert_eq!(first["events"].as_u64(), Some(2), "{windows}");
    let by_reason: BTreeMap<String, u64> =
        serde_json::from_value(status["dead_letters_by_reason"].clone())?;
    let expected: BTreeMap<String, u64> = [
        "future",
        "too_late",
        "not_json",
        "not_object",
        "missing_field",
        "wrong_type",
        "bad_timestamp",
    ]
    .iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    assert_eq!(by_reason, expected);
    app.stop().await?;

    // The dead-letter topic holds each bad message with its reason and source offset.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("raw-dlq", 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut seen: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 7 && std::time::Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m?;
        let headers = m
            .headers()
            .ok_or_else(|| anyhow!("dead letter without headers"))?;
        let get = |k: &str| {
            headers
                .iter()
                .find(|h| h.key == k)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
        let offset: i64 = get("source-offset").parse()?;
        seen.insert(get("reason"), (payload, offset));
    }
    for (i, (reason, payload)) in msgs.iter().enumerate() {
        if *reason == "ok" || *reason == "revised" {
            continue;
        }
        let (p, off) = seen
            .get(*reason)
            .ok_or_else(|| anyhow!("no dead letter with reason {reason}; got {seen:?}"))?;
        assert_eq!(p, payload, "reason {reason}");
        assert_eq!(*off, i as i64, "reason {reason}");
    }
    Ok(())
}
