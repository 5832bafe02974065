//! A user's worst day: wrong clocks, late batches, dead-letter sinks that fail, panics.
//! Each test is named after the guarantee it checks, on Apache Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pulseboard_model::event::Event;
use rdkafka::producer::FutureRecord;
use serde_json::Value;

use crate::backbone::{event_set, EventSet};
use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;
const MINUTE: i64 = 60_000;

/// A counter of `/metrics` (e.g. `retention_passes`), 0 when absent.
async fn metric(addr: SocketAddr, name: &str) -> Result<f64> {
    let (status, text) = http_get(addr, "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let full = format!("pulseboard_{name}_total ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&full))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0))
}

/// The windows of `[from, to)` as the API lists them: start → (state, events).
async fn window_states(
    addr: SocketAddr,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, (String, u64)>> {
    let w = get_json(
        addr,
        &format!("/api/v1/windows?from={from}&to={to}&limit=10000&top=1000"),
    )
    .await
    .ok_or_else(|| anyhow!("windows endpoint failed"))?;
    Ok(w["windows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|w| {
            Some((
                w["start"].as_i64()?,
                (w["state"].as_str()?.to_owned(), w["events"].as_u64()?),
            ))
        })
        .collect())
}

/// Events in per-partition time order from `from` to `to`, `per_partition` in each.
fn in_order(partitions: i32, per_partition: i64, from: i64, to: i64) -> Vec<(i32, Event)> {
    let mut out = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let ts = from + (to - from) * i / per_partition;
            out.push((
                p,
                Event {
                    props: Vec::new(),
                    site: None,
                    ts,
                    kind: "pageview".into(),
                    visitor: format!("v{}", (i * 7 + p as i64) % 50),
                    session: None,
                    url: format!("/p{}", i % 5),
                    referrer: None,
                    country: None,
                    device: None,
                },
            ));
        }
    }
    out
}

fn payloads(events: &[(i32, Event)]) -> Vec<(i32, Vec<u8>)> {
    events
        .iter()
        .map(|(p, e)| (*p, e.to_json().into_bytes()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_wrong_clock_moves_no_watermark_and_retention_keeps_history() -> Result<()>
{
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let now = now_ms();
    let mut events = in_order(2, 150, now - 5 * MINUTE, now - 10_000);
    // One event a day ahead, in the middle of partition 0.
    let ahead = Event {
        ts: now + 2 * 24 * 3_600_000,
        ..events[0].1.clone()
    };
    let mut msgs = payloads(&events);
    msgs.insert(150, (0, ahead.to_json().into_bytes()));
    produce(&producer(&brokers)?, "clicks", &msgs).await?;

    let dir = data_dir();
    let mut args = broker_args(&brokers, "clicks", "wrong-clock", dir.path());
    for a in [
        "--retention",
        "10m",
        "--revision-horizon",
        "10m",
        "--retention-interval",
        "200ms",
        "--idle-timeout",
        "1s",
    ] {
        args.push(a.into());
    }
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let s = wait_for_totals(app.addr, events.len() as u64, 1, Duration::from_secs(90)).await?;
    assert_eq!(s["late_events_total"].as_u64(), Some(0), "none late: {s}");
    assert_eq!(
        s["dead_letters_by_reason"]["future"].as_u64(),
        Some(1),
        "{s}"
    );
    let watermark = s["watermark"].as_i64().unwrap_or(i64::MAX);
    assert!(watermark < now, "the future event moved no watermark: {s}");

    // Every partition goes idle, and retention runs a few passes after that.
    poll_until(Duration::from_secs(30), "idle partitions", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        let parts = s["partitions"].as_array()?;
        (parts.len() == 2 && parts.iter().all(|p| p["idle"] == true)).then_some(())
    })
    .await?;
    let passes = metric(app.addr, "retention_passes").await?;
    poll_until(
        Duration::from_secs(30),
        "three retention passes",
        || async {
            let n = metric(app.addr, "retention_passes").await.ok()?;
            (n >= passes + 3.0).then_some(())
        },
    )
    .await?;
    assert_eq!(metric(app.addr, "retention_windows_deleted").await?, 0.0);
    events.sort_by_key(|(_, e)| e.ts);
    let folded: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_api_matches(app.addr, &folded, WIDTH).await?;
    app.stop().await
}

/// Produce a live-ish stream, then a batch 0–10 minutes old; returns (all events in
/// per-partition order, the late batch).
async fn live_then_late_batch(brokers: &str, now: i64) -> Result<(Vec<(i32, Event)>, EventSet)> {
    let live = in_order(2, 100, now - 40_000, now);
    produce(&producer(brokers)?, "clicks", &payloads(&live)).await?;
    let batch = event_set(91, 3_000, 2, now - 10 * MINUTE, 10 * MINUTE - 20_000);
    Ok((live, batch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_within_the_horizon_are_counted_and_their_windows_revised() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let now = now_ms();
    let (live, batch) = live_then_late_batch(&brokers, now).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "late-batch", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    wait_for_totals(app.addr, live.len() as u64, 0, Duration::from_secs(60)).await?;
    let before = window_states(app.addr, 0, now + MINUTE).await?;
    assert!(before.values().all(|(s, _)| s != "revised"), "{before:?}");

    // Batched SDK traffic arrives late: every event is counted.
    produce(&producer(&brokers)?, "clicks", &batch.payloads).await?;
    let all: Vec<(i32, Event)> = live.iter().chain(&batch.events).cloned().collect();
    let (folded, late) = expected_folded(&all, WIDTH, LATENESS);
    let s = wait_for_totals(
        app.addr,
        folded.len() as u64,
        batch.malformed,
        Duration::from_secs(90),
    )
    .await?;
    assert!(
        late as usize >= batch.events.len() * 9 / 10,
        "the batch is late"
    );
    assert_eq!(s["late_events_total"].as_u64(), Some(late), "{s}");
    assert_eq!(s["revised_events_total"].as_u64(), Some(late), "{s}");
    assert_api_matches(app.addr, &folded, WIDTH).await?;
    assert_late_windows_revised(app.addr, &batch, now).await?;
    app.stop().await
}

/// Every window a late event of `batch` reached (and that was closed by then) is `revised`.
async fn assert_late_windows_revised(addr: SocketAddr, batch: &EventSet, now: i64) -> Result<()> {
    let states = window_states(addr, 0, now + MINUTE).await?;
    let reached: BTreeSet<i64> = batch
        .events
        .iter()
        .map(|(_, e)| e.ts - e.ts.rem_euclid(WIDTH))
        .filter(|s| s + WIDTH <= now - 60_000)
        .collect();
    assert!(reached.len() > 40, "the batch spans many windows");
    for s in &reached {
        let (state, _) = states.get(s).ok_or_else(|| anyhow!("no window at {s}"))?;
        assert_eq!(state, "revised", "window {s}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_under_sigkill_are_counted_exactly_once_and_stay_revised() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let now = now_ms();
    let (live, batch) = live_then_late_batch(&brokers, now).await?;
    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "late-kill", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let child = spawn_child(&args)?;
    wait_for_totals(child.addr, live.len() as u64, 0, Duration::from_secs(60)).await?;
    // The late batch arrives in paced slices while Pulseboard is killed three times: a
    // slice per kill and the last after them, so every kill lands while the batch arrives.
    let mut writer = SlicedWriter::new(
        producer(&brokers)?,
        "clicks",
        &batch.payloads,
        4,
        Duration::from_millis(600),
        live.len() as i64,
    );
    let mut child = child;
    let total = (live.len() + batch.payloads.len()) as i64;
    let mut rng = fastrand::Rng::with_seed(11);
    let t0 = Instant::now();
    for kill in 0..3 {
        let slice = writer.next_slice().await?;
        let into = slice.start + 200;
        let addr = child.addr;
        // This incarnation reads into the slice being written.
        let seen = poll_until(Duration::from_secs(60), "progress", || async {
            let s = get_json(addr, "/api/v1/status").await?;
            let next = sum_next_offsets(&s);
            (next > into).then_some(next)
        })
        .await?;
        assert!(
            seen < total && writer.slices_left() > 0,
            "the kill lands while the batch arrives: offsets {seen} of {total}"
        );
        tokio::time::sleep(Duration::from_millis(rng.u64(0..1_000))).await;
        child.kill9()?;
        eprintln!(
            "kill {} of 3 after offset sum {seen} of {total} (slice {slice:?}) at {:?}",
            kill + 1,
            t0.elapsed()
        );
        child = spawn_child(&args)?;
    }
    writer.finish().await?;
    let all: Vec<(i32, Event)> = live.iter().chain(&batch.events).cloned().collect();
    let (folded, late) = expected_folded(&all, WIDTH, LATENESS);
    let s = wait_for_totals(
        child.addr,
        folded.len() as u64,
        batch.malformed,
        Duration::from_secs(120),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "exactly once: {s}"
    );
    assert_api_matches(child.addr, &folded, WIDTH).await?;
    assert_late_windows_revised(child.addr, &batch, now).await?;

    // The revised state survives a restart and never goes back to final or live.
    let status = child.terminate()?;
    assert!(status.success(), "{status}");
    let child = spawn_child(&args)?;
    wait_for_totals(
        child.addr,
        folded.len() as u64,
        batch.malformed,
        Duration::from_secs(60),
    )
    .await?;
    assert_late_windows_revised(child.addr, &batch, now).await?;
    Ok(())
}

/// Dead letters listed by `/api/v1/dead-letters`.
async fn recorded(addr: SocketAddr) -> Result<Vec<Value>> {
    let d = get_json(addr, "/api/v1/dead-letters?limit=1000")
        .await
        .ok_or_else(|| anyhow!("dead-letters endpoint failed"))?;
    Ok(d["dead_letters"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_values_are_recorded_and_never_stall_their_partition() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    pulseboard_testkit::kafka::create_topic_with(
        &brokers,
        "clicks",
        1,
        1,
        &[("max.message.bytes", "25000000")],
    )
    .await?;
    let now = now_ms();
    let events = in_order(1, 2_000, now - 4 * MINUTE, now - MINUTE);
    let msgs = payloads(&events);
    let p: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.max.bytes", "25000000")
        .create()?;
    // 1,000 good events, a 1.5 MB value, 1,000 more with a 20 MB value among them.
    produce(&p, "clicks", &msgs[..1_000]).await?;
    let mut offsets = Vec::new();
    for (i, size) in [(0, 1_500_000usize), (1, 20_000_000)] {
        let value = format!(
            r#"{{"ts":{now},"type":"pageview","visitor":"v","url":"/{}"}}"#,
            "x".repeat(size)
        );
        let rec: FutureRecord<'_, (), str> = FutureRecord::to("clicks").payload(&value);
        let delivery = p
            .send(rec, Duration::from_secs(60))
            .await
            .map_err(|(e, _)| anyhow!("big value: {e}"))?;
        offsets.push(delivery.offset);
        let half = &msgs[1_000 + i * 500..1_500 + i * 500];
        produce(&p, "clicks", half).await?;
    }

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "oversized", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let s = wait_for_totals(app.addr, 2_000, 2, Duration::from_secs(90)).await?;
    assert_eq!(s["dead_letters_recorded_total"].as_u64(), Some(2), "{s}");
    let list = recorded(app.addr).await?;
    let got: BTreeSet<i64> = list.iter().filter_map(|d| d["offset"].as_i64()).collect();
    assert_eq!(got, offsets.iter().copied().collect(), "{list:?}");
    for d in &list {
        assert!(d["value_bytes"].as_u64() >= Some(1_500_000), "{d}");
        assert!(!d["error"].as_str().unwrap_or_default().is_empty(), "{d}");
    }
    let folded: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_api_matches(app.addr, &folded, WIDTH).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_topic_that_cannot_be_created_is_recorded_and_loses_nothing() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 1).await?;
    // Kafka refuses `clicks.dlq`: it collides with `clicks_dlq` ('.' and '_' clash).
    create_topic(&brokers, "clicks_dlq", 1).await?;
    let now = now_ms();
    let events = in_order(1, 300, now - 3 * MINUTE, now - MINUTE);
    let mut msgs = payloads(&events);
    for i in 0..3 {
        msgs.insert(100 * i + 50, (0, format!("not json {i}").into_bytes()));
    }
    produce(&producer(&brokers)?, "clicks", &msgs).await?;

    let dir = data_dir();
    let mut args = broker_args(&brokers, "clicks", "no-dlq", dir.path());
    args.extend(["--dead-letter-topic".into(), "clicks.dlq".into()]);
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let s = wait_for_totals(app.addr, 300, 3, Duration::from_secs(90)).await?;
    assert_eq!(s["dead_letters_recorded_total"].as_u64(), Some(3), "{s}");
    let offsets: BTreeSet<i64> = recorded(app.addr)
        .await?
        .iter()
        .filter_map(|d| d["offset"].as_i64())
        .collect();
    assert_eq!(offsets, [50, 150, 250].into_iter().collect());
    assert_eq!(s["partitions"][0]["next_offset"].as_i64(), Some(303), "{s}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_dead_letter_topic_is_unreachable_exits_in_bounded_time() -> Result<()> {
    let mut kafka = Kafka::start_cluster(3)?;
    let brokers = kafka.bootstrap();
    // The input on nodes 0 and 1, the dead-letter topic only on node 2, which then dies.
    let (n0, n1, n2) = (
        kafka.node_id(0) as i32,
        kafka.node_id(1) as i32,
        kafka.node_id(2) as i32,
    );
    pulseboard_testkit::kafka::create_topic_assigned(&brokers, "clicks", &[&[n0, n1]]).await?;
    pulseboard_testkit::kafka::create_topic_assigned(&brokers, "clicks-dlq", &[&[n2]]).await?;
    let now = now_ms();
    let events = in_order(1, 400, now - 3 * MINUTE, now - MINUTE);
    let mut msgs = payloads(&events);
    for i in 0..4 {
        msgs.insert(100 * i + 20, (0, format!("not json {i}").into_bytes()));
    }
    let p = producer(&brokers)?;
    produce(&p, "clicks", &msgs[..200]).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "dlq-down", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_child(&args)?;
    wait_for_totals(child.addr, 198, 2, Duration::from_secs(90)).await?;
    kafka.kill(2)?;
    produce(&p, "clicks", &msgs[200..]).await?;
    // The rest arrives; its two dead letters cannot be delivered. SIGTERM as soon as they
    // are handed to the producer, while their delivery is pending.
    let addr = child.addr;
    poll_until(
        Duration::from_secs(60),
        "the last dead letters read",
        || async {
            let (_, text) = http_get(addr, "/metrics").await.ok()?;
            text.lines()
                .any(|l| l == r#"pulseboard_dead_letters_sent_total{reason="not_json"} 4"#)
                .then_some(())
        },
    )
    .await?;
    let t = std::time::Instant::now();
    let status = child.terminate_within(Duration::from_secs(40))?;
    eprintln!(
        "SIGTERM with the dead-letter topic down: {status} in {:?}",
        t.elapsed()
    );
    assert!(status.success(), "a clean stop: {status}");
    assert!(
        t.elapsed() < Duration::from_secs(35),
        "SIGTERM exits within its stated bound (35 s): {:?}",
        t.elapsed()
    );

    // The next start resumes exactly: nothing lost, nothing counted twice, and every dead
    // letter either delivered before the outage or recorded.
    let child = spawn_child(&args)?;
    wait_for_totals(child.addr, 400, 4, Duration::from_secs(90)).await?;
    let addr = child.addr;
    let s = poll_until(Duration::from_secs(60), "every offset", || async {
        let s = get_json(addr, "/api/v1/status").await?;
        (sum_next_offsets(&s) == msgs.len() as i64).then_some(s)
    })
    .await?;
    assert!(
        s["dead_letters_recorded_total"].as_u64() >= Some(1),
        "the dead letters after the outage are recorded: {s}"
    );
    let folded: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_api_matches(child.addr, &folded, WIDTH).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_partition_task_exits_nonzero_and_the_restart_is_exact() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let now = now_ms();
    let events = in_order(2, 500, now - 4 * MINUTE, now - MINUTE);
    produce(&producer(&brokers)?, "clicks", &payloads(&events)).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "panic", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = pulseboard_testkit::PulseboardProcess::spawn_with_env(
        std::path::Path::new(env!("CARGO_BIN_EXE_pulseboard")),
        &args,
        &[
            ("RUST_LOG", "info"),
            ("PULSEBOARD_TEST_PANIC_AT", "clicks/1@300"),
        ],
    )?;
    let status =
        pulseboard_testkit::process::wait_timeout(&mut child.child, Duration::from_secs(60))?
            .ok_or_else(|| anyhow!("still running 60 s after the panic"))?;
    assert!(
        !status.success(),
        "a panic never ends in exit code 0: {status}"
    );
    let log = child.log_tail(200);
    assert!(log.contains("partition task panicked"), "{log}");
    assert!(log.contains("clicks/1"), "{log}");

    // Restarted without the hook: partition 1 resumes from its last checkpoint.
    let child = spawn_child(&args)?;
    let s = wait_for_totals(child.addr, 1_000, 0, Duration::from_secs(60)).await?;
    assert_eq!(sum_next_offsets(&s), 1_000, "{s}");
    let folded: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_api_matches(child.addr, &folded, WIDTH).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_an_offset_reset_skips_nothing() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 1).await?;
    let now = now_ms();
    let old = in_order(1, 300, now - 20 * MINUTE, now - 15 * MINUTE);
    let p = producer(&brokers)?;
    produce(&p, "clicks", &payloads(&old)).await?;
    let dir = data_dir();
    let mut args = broker_args(&brokers, "clicks", "reset-crash", dir.path());
    args.extend(["--offset-reset".into(), "latest".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_child(&args)?;
    wait_for_totals(child.addr, 300, 0, Duration::from_secs(60)).await?;
    assert!(child.terminate()?.success());

    // The topic is recreated below the stored offset (300): 50 messages that `latest` skips
    // by design, then, once the reset is done, 50 that must be counted.
    recreate_topic(&brokers, "clicks", 1).await?;
    let new = in_order(1, 100, now - 10 * MINUTE, now - 5 * MINUTE);
    produce(&p, "clicks", &payloads(&new[..50])).await?;
    let mut child = pulseboard_testkit::PulseboardProcess::spawn_with_env(
        std::path::Path::new(env!("CARGO_BIN_EXE_pulseboard")),
        &args,
        &[
            ("RUST_LOG", "info"),
            // Crash on the tenth message after the reset target (offset 50).
            ("PULSEBOARD_TEST_PANIC_AT", "clicks/0@60"),
        ],
    )?;
    let addr = child.addr;
    poll_until(Duration::from_secs(60), "the offset reset", || async {
        let s = get_json(addr, "/api/v1/status").await?;
        (!s["offset_resets"].as_array()?.is_empty()).then_some(())
    })
    .await?;
    produce(&p, "clicks", &payloads(&new[50..])).await?;
    let status =
        pulseboard_testkit::process::wait_timeout(&mut child.child, Duration::from_secs(60))?
            .ok_or_else(|| anyhow!("still running 60 s after the panic"))?;
    assert!(!status.success(), "{status}");

    // The reset target was checkpointed before reading restarted: the next start resumes at
    // offset 50, not at a second reset to the log's end (which would skip 50..100).
    let child = spawn_child(&args)?;
    let s = wait_for_totals(child.addr, 350, 0, Duration::from_secs(60)).await?;
    assert_eq!(s["partitions"][0]["next_offset"].as_i64(), Some(100), "{s}");
    let folded: Vec<Event> = old
        .iter()
        .chain(&new[50..])
        .map(|(_, e)| e.clone())
        .collect();
    assert_api_matches(child.addr, &folded, WIDTH).await?;
    Ok(())
}
