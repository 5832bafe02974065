//! History against a real broker: windows past retention rolled up into minute and hour
//! buckets, ranges and comparisons served from them, and roll-ups surviving SIGKILL —
//! every number checked against an independent recomputation of the produced events.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Result};
use pulseboard_model::event::Event;
use pulseboard_model::gen::{GenConfig, Generator};
use serde_json::Value;

use crate::util::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// The sites of the events.
const SITES: [&str; 2] = ["shop.example", "blog.example"];

/// `n` events over `[from, from + span)`, exactly inside it (no out-of-order or late ones,
/// which a one-minute revision horizon would dead-letter), round-robin over 4 partitions.
fn span_events(seed: u64, n: usize, from: i64, span: i64) -> Vec<(i32, Event)> {
    let cfg = GenConfig {
        out_of_order: 0.0,
        late: 0.0,
        malformed: 0.0,
        sites: SITES.iter().map(|s| (*s).to_owned()).collect(),
        ..GenConfig::default()
    };
    let mut gen = Generator::new(seed, cfg);
    (0..n)
        .map(|i| {
            let ev = gen.next_event(from + i as i64 * span / n as i64);
            ((i % 4) as i32, ev)
        })
        .collect()
}

/// Produce `msgs` (partition, event) to `topic`, as JSON.
async fn produce_events(brokers: &str, topic: &str, msgs: &[(i32, Event)]) -> Result<()> {
    let payloads: Vec<(i32, Vec<u8>)> = msgs
        .iter()
        .map(|(p, e)| (*p, e.to_json().into_bytes()))
        .collect();
    produce(&producer(brokers)?, topic, &payloads).await
}

/// The recomputation of the events with `ts` in `[from, to)`.
fn truth(events: &[Event], from: i64, to: i64) -> Truth {
    Truth::of(events.iter().filter(|e| (from..to).contains(&e.ts)))
}

/// The events and uniques of summary figures `api` against the recomputation `t`: events
/// exactly, unique visitors and sessions within the sketch's error of the exact counts.
/// (Roll-ups keep shorter top lists; those are the store tests' to check.)
fn check_summary(what: &str, api: &Value, t: &Truth) -> Result<()> {
    if api["events"].as_u64() != Some(t.events) {
        bail!("{what}: events {} != {}: {api}", api["events"], t.events);
    }
    let (visitors, sessions) = (
        api["unique_visitors"].as_u64(),
        api["unique_sessions"].as_u64(),
    );
    assert_distinct(
        &format!("{what}: unique_visitors"),
        t.visitors.len(),
        visitors,
        TOP_HLL_SIGMA,
    )?;
    assert_distinct(
        &format!("{what}: unique_sessions"),
        t.sessions.len(),
        sessions,
        TOP_HLL_SIGMA,
    )
}

/// The items of `/api/v1/windows` for `[from, to)`: `(start, end, resolution, events)`.
fn items(v: &Value) -> Vec<(i64, i64, String, u64)> {
    v["windows"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    (
                        w["start"].as_i64().unwrap_or_default(),
                        w["end"].as_i64().unwrap_or_default(),
                        w["resolution"].as_str().unwrap_or_default().to_owned(),
                        w["events"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Percent change rounded to 0.1, recomputed.
fn pct(now: u64, before: u64) -> Option<f64> {
    (before > 0).then(|| ((now as f64 - before as f64) / before as f64 * 1000.0).round() / 10.0)
}

fn history_args(brokers: &str, topic: &str, group: &str, dir: &std::path::Path) -> Vec<String> {
    let mut args = broker_args(brokers, topic, group, dir);
    for a in [
        "--retention",
        "10m",
        "--revision-horizon",
        "1m",
        "--minute-history",
        "3d",
        "--retention-interval",
        "200ms",
    ] {
        args.push(a.into());
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_past_retention_and_comparisons_equal_the_recomputation() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "history", 4).await?;
    // The same 20 minutes of the clock today (an hour ago, hour-aligned), a day earlier and
    // a week earlier; produced oldest first, as a backlog.
    let r = now_ms() / HOUR * HOUR - HOUR;
    let span = 20 * MIN;
    let mut msgs = Vec::new();
    msgs.extend(span_events(1, 2_400, r - 7 * DAY, span));
    msgs.extend(span_events(2, 1_800, r - DAY, span));
    msgs.extend(span_events(3, 3_000, r, span));
    produce_events(&brokers, "history", &msgs).await?;
    let events: Vec<Event> = msgs.into_iter().map(|(_, e)| e).collect();

    // A child process: its retention counters are its own.
    let dir = data_dir();
    let args = history_args(&brokers, "history", "history-test", dir.path());
    let app = spawn_child(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    app.with_log(
        wait_for_totals(app.addr, events.len() as u64, 0, Duration::from_secs(120)).await,
        40,
    )?;

    // Retention rolls the week into hour buckets, the day into minute buckets, and today's
    // windows older than 10 minutes (of the watermark) into minute buckets.
    let all = format!(
        "/api/v1/windows?from={}&to={}&limit=10000",
        r - 8 * DAY,
        r + HOUR
    );
    let listed = poll_until(Duration::from_secs(60), "history rolled up", || async {
        let v = get_json(app.addr, &all).await?;
        let it = items(&v);
        let week = it
            .iter()
            .filter(|i| i.0 < r - 6 * DAY)
            .all(|i| i.2 == "hour");
        let day = it
            .iter()
            .filter(|i| (r - 2 * DAY..r - HOUR).contains(&i.0))
            .all(|i| i.2 == "minute");
        let today = it.iter().any(|i| i.0 >= r && i.2 == "minute")
            && it.iter().any(|i| i.0 >= r && i.2 == "window");
        (week && day && today).then_some(it)
    })
    .await;
    let listed = match listed {
        Ok(l) => l,
        Err(e) => {
            let v = get_json(app.addr, &all).await.unwrap_or_default();
            let shape: Vec<(i64, String)> = items(&v)
                .into_iter()
                .map(|i| ((i.0 - r) / MIN, i.2))
                .collect();
            bail!(
                "{e}: items (minutes from r, resolution): {shape:?}\n{}",
                app.log_tail(20)
            );
        }
    };
    // Every item holds exactly the events whose time falls in it; nothing overlaps.
    let mut last_end = i64::MIN;
    for (start, end, res, n) in &listed {
        assert!(*start >= last_end, "items overlap at {start}");
        last_end = *end;
        let width = end - start;
        let expected_width = match res.as_str() {
            "hour" => HOUR,
            "minute" => MIN,
            _ => 10_000,
        };
        assert_eq!(width, expected_width, "{res} item at {start}");
        assert_eq!(
            *n,
            truth(&events, *start, *end).events,
            "{res} item at {start}"
        );
    }
    assert_eq!(
        listed.iter().map(|i| i.3).sum::<u64>(),
        events.len() as u64,
        "nothing lost or doubled by rolling up"
    );

    // Summaries over each span: events and HyperLogLog uniques of exactly its events.
    for (from, label) in [(r - 7 * DAY, "week"), (r - DAY, "day"), (r, "today")] {
        let s = get_json(
            app.addr,
            &format!("/api/v1/summary?from={from}&to={}", from + span),
        )
        .await
        .unwrap_or_default();
        check_summary(label, &s, &truth(&events, from, from + span))?;
    }

    // Each site alone over the same spans (history and roll-ups per site), and its
    // comparison with the week before.
    for site in SITES {
        let of_site: Vec<Event> = events
            .iter()
            .filter(|e| e.site.as_deref() == Some(site))
            .cloned()
            .collect();
        for (from, label) in [(r - 7 * DAY, "week"), (r - DAY, "day"), (r, "today")] {
            let s = get_json(
                app.addr,
                &format!("/api/v1/summary?from={from}&to={}&site={site}", from + span),
            )
            .await
            .unwrap_or_default();
            check_summary(
                &format!("{site} {label}"),
                &s,
                &truth(&of_site, from, from + span),
            )?;
        }
        let s = get_json(
            app.addr,
            &format!(
                "/api/v1/summary?from={r}&to={}&compare=7d&site={site}",
                r + span
            ),
        )
        .await
        .unwrap_or_default();
        let before = truth(&of_site, r - 7 * DAY, r - 7 * DAY + span);
        check_summary(
            &format!("{site} 7d before"),
            &s["compare"]["figures"],
            &before,
        )?;
    }

    // Comparisons: today's span against the day and the week before.
    let now_n = truth(&events, r, r + span).events;
    for (c, off) in [("1d", DAY), ("7d", 7 * DAY)] {
        let before = truth(&events, r - off, r - off + span);
        let s = get_json(
            app.addr,
            &format!("/api/v1/summary?from={r}&to={}&compare={c}", r + span),
        )
        .await
        .unwrap_or_default();
        let cmp = &s["compare"];
        assert_eq!(cmp["offset_ms"].as_i64(), Some(off), "{c}: {s}");
        check_summary(&format!("{c} today"), &s, &truth(&events, r, r + span))?;
        check_summary(&format!("{c} before"), &cmp["figures"], &before)?;
        assert_eq!(
            cmp["change"]["events_pct"].as_f64(),
            pct(now_n, before.events),
            "{c}"
        );
        // The change of uniques is that of the two estimates, each checked above.
        let uniques = |v: &Value| v["unique_visitors"].as_u64().unwrap_or_default();
        assert_eq!(
            cmp["change"]["unique_visitors_pct"].as_f64(),
            pct(uniques(&s), uniques(&cmp["figures"])),
            "{c}"
        );
        // The windows' comparison: the earlier items moved onto today's span.
        let w = get_json(
            app.addr,
            &format!(
                "/api/v1/windows?from={r}&to={}&compare={c}&limit=10000",
                r + span
            ),
        )
        .await
        .unwrap_or_default();
        let cw = &w["compare"];
        assert_eq!(cw["events"].as_u64(), Some(now_n), "{c}");
        assert_eq!(cw["events_before"].as_u64(), Some(before.events), "{c}");
        let moved = cw["windows"].as_array().cloned().unwrap_or_default();
        let mut sum = 0;
        for item in &moved {
            let (start, end) = (
                item["start"].as_i64().unwrap_or(0),
                item["end"].as_i64().unwrap_or(0),
            );
            assert!(
                start >= r && start < r + span,
                "{c}: aligned onto today: {start}"
            );
            assert_eq!(
                item["events"].as_u64(),
                Some(truth(&events, start - off, end - off).events),
                "{c}: earlier item at {start}"
            );
            sum += item["events"].as_u64().unwrap_or(0);
        }
        assert_eq!(sum, before.events, "{c}");
    }

    // Steps over a long range: 30-minute steps, hours kept whole, the same total.
    let stepped = get_json(
        app.addr,
        &format!(
            "/api/v1/windows?from={}&to={}&step=30m&limit=10000",
            r - 8 * DAY,
            r + HOUR
        ),
    )
    .await
    .unwrap_or_default();
    let st = items(&stepped);
    assert!(st.iter().all(|i| i.1 - i.0 >= 30 * MIN), "{st:?}");
    assert_eq!(st.iter().map(|i| i.3).sum::<u64>(), events.len() as u64);
    app.terminate()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_rolling_up_loses_and_doubles_nothing() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "rollkill", 4).await?;
    // Six hours a week back and an hour today: thousands of windows to roll up.
    let r = now_ms() / HOUR * HOUR - HOUR;
    let mut msgs = span_events(11, 12_000, r - 7 * DAY - 6 * HOUR, 6 * HOUR);
    msgs.extend(span_events(12, 3_000, r, 40 * MIN));
    produce_events(&brokers, "rollkill", &msgs).await?;
    let events: Vec<Event> = msgs.into_iter().map(|(_, e)| e).collect();

    let dir = data_dir();
    let args = history_args(&brokers, "rollkill", "rollkill-test", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut rolled_seen = 0;
    for kill in 0..6 {
        let started = std::time::Instant::now();
        let child = spawn_child(&args)?;
        let counting = poll_until(Duration::from_secs(90), "the child to count", || async {
            let s = get_json(child.addr, "/api/v1/status").await?;
            (s["events_total"].as_u64()? > 0).then_some(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("start {} of 6: {e}", kill + 1));
        child.with_log(counting, 60)?;
        let counted = started.elapsed();
        // Kill at an arbitrary instant while it ingests and rolls up.
        tokio::time::sleep(Duration::from_millis(rng.u64(100..3_000))).await;
        if let Some(m) = get_json(child.addr, "/api/v1/windows?from=0&limit=10000").await {
            rolled_seen += items(&m).iter().filter(|i| i.2 != "window").count();
        }
        child.kill9()?;
        eprintln!(
            "kill {} of 6 (counting {:?} after the start; {rolled_seen} buckets seen so far)",
            kill + 1,
            counted
        );
    }
    assert!(rolled_seen > 0, "the kills should land while buckets exist");
    let child = spawn_child(&args)?;
    child.with_log(
        wait_for_totals(child.addr, events.len() as u64, 0, Duration::from_secs(120)).await,
        40,
    )?;
    // Once everything past retention is rolled up, every hour holds exactly its events.
    let path = format!(
        "/api/v1/windows?from={}&to={}&limit=10000",
        r - 8 * DAY,
        r + 2 * HOUR
    );
    let listed = poll_until(
        Duration::from_secs(90),
        "the week rolled up into hours",
        || async {
            let it = items(&get_json(child.addr, &path).await?);
            it.iter()
                .filter(|i| i.0 < r - DAY)
                .all(|i| i.2 == "hour")
                .then_some(it)
        },
    )
    .await?;
    let mut per_hour: BTreeMap<i64, u64> = BTreeMap::new();
    for (start, end, res, n) in &listed {
        assert_eq!(
            *n,
            truth(&events, *start, *end).events,
            "{res} item at {start}"
        );
        *per_hour.entry(start / HOUR * HOUR).or_default() += n;
    }
    assert_eq!(per_hour.values().sum::<u64>(), events.len() as u64);
    let week = get_json(
        child.addr,
        &format!("/api/v1/summary?from={}&to={}", r - 8 * DAY, r - DAY),
    )
    .await
    .unwrap_or_default();
    assert_eq!(week["events"].as_u64(), Some(12_000));
    child.terminate()?;
    Ok(())
}

/// The seq of the checkpoint `group` committed for `topic`'s `partition` (in its offset
/// commit's metadata), read without joining the group.
fn committed_seq(brokers: &str, group: &str, topic: &str, partition: i32) -> Result<u64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    committed
        .find_partition(topic, partition)
        .and_then(|e| pulseboard::store::record::parse_commit_seq(e.metadata()))
        .ok_or_else(|| anyhow::anyhow!("no checkpoint committed for {topic}/{partition}"))
}

/// A backlog spread over much event time (50,000 one-second windows in one partition) is
/// checkpointed in bounded pieces: at most 1,000 windows a checkpoint, so at most that many
/// window records in its transaction, however many windows a checkpoint interval reads
/// (unbounded, this backlog went in 5 checkpoints of about 10,000 windows in a debug build;
/// a release build reading a week of sparse backlog puts tens of thousands in one, a
/// transaction that can overrun its budget, abort, and be read again for ever).
/// It ends exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_much_event_time_commits_in_bounded_transactions() -> Result<()> {
    const WINDOWS: usize = 50_000;
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "wide", 1).await?;
    // One event a second, ending an hour ago: all within the default 24 h retention.
    let from = now_ms() / 1_000 * 1_000 - HOUR - WINDOWS as i64 * 1_000;
    let msgs: Vec<(i32, Event)> = span_events(21, WINDOWS, from, WINDOWS as i64 * 1_000)
        .into_iter()
        .map(|(_, e)| (0, e))
        .collect();
    produce_events(&brokers, "wide", &msgs).await?;

    let dir = data_dir();
    let mut args = broker_args(&brokers, "wide", "wide-test", dir.path());
    args.extend(["--window", "1s"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_child(&args)?;
    child.with_log(
        wait_for_totals(child.addr, WINDOWS as u64, 0, Duration::from_secs(240)).await,
        40,
    )?;
    // At most MAX_CHECKPOINT_WINDOWS (1,000) windows a checkpoint: 50 checkpoints at least.
    let seq = committed_seq(&brokers, "wide-test", "wide", 0)?;
    assert!(seq >= 50, "checkpoints of at most 1,000 windows: seq {seq}");
    let to = from + WINDOWS as i64 * 1_000;
    let summary = get_json(child.addr, &format!("/api/v1/summary?from={from}&to={to}"))
        .await
        .unwrap_or_default();
    assert_eq!(
        summary["events"].as_u64(),
        Some(WINDOWS as u64),
        "{summary}"
    );
    // The first page: a window a second, an event each.
    let listed = get_json(
        child.addr,
        &format!("/api/v1/windows?from={from}&to={to}&limit=10000"),
    )
    .await
    .unwrap_or_default();
    let it = items(&listed);
    assert_eq!(it.len(), 10_000, "one window a second");
    assert!(
        it.iter().all(|i| i.1 - i.0 == 1_000 && i.3 == 1),
        "one event each"
    );
    child.terminate()?;
    Ok(())
}
