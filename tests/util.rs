//! Shared test harness: Apache Kafka (through the dev-only test kit), Pulseboard in-process
//! or as a child process on port 0 with a temp store, and an independent recomputation of
//! the expected numbers.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pulseboard::config::Config;
use pulseboard_model::agg::{Hll, HLL_PRECISION, HLL_SUB_PRECISION};
use pulseboard_model::event::Event;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use pulseboard_testkit::kafka::{delete_topic, produce, producer, Kafka};
pub use pulseboard_testkit::net::{get_json, http_get, http_post, poll_until};
pub use pulseboard_testkit::process::cpu_time;
use rdkafka::producer::FutureProducer;

/// Librdkafka settings for the Pulseboard under test.
/// A member killed with SIGKILL stays in the group until its session times out, and the
/// next member's join waits for that; a short session (with frequent heartbeats) makes a
/// restart after a SIGKILL rejoin in a few seconds instead of tens. (The test brokers
/// accept sessions from 1 s on: `group.min.session.timeout.ms`.)
pub const FAST_GROUP_OPTIONS: &[(&str, &str)] = &[
    ("session.timeout.ms", "3000"),
    ("heartbeat.interval.ms", "300"),
];

/// Create a topic with replication factor 1 (the single-node test broker).
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    pulseboard_testkit::kafka::create_topic(brokers, name, partitions, 1).await
}

/// Pulseboard running inside the test process.
pub struct App {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), pulseboard::RunError>>,
}

impl App {
    /// Start with `args` (as on the command line, without the program name).
    pub async fn start(args: &[&str]) -> Result<Self> {
        let mut argv = vec!["pulseboard", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let settings = <Config as clap::Parser>::try_parse_from(argv)?.validate()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(pulseboard::run(settings, listener, shutdown.clone()));
        Ok(App {
            addr,
            shutdown,
            handle,
        })
    }

    /// Graceful stop: the last checkpoint is flushed before this returns.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        self.handle.await??;
        Ok(())
    }
}

/// Pulseboard as a child process: the binary built for these tests.
pub type ChildApp = pulseboard_testkit::PulseboardProcess;

/// Start the binary under test with `args`.
pub fn spawn_child(args: &[&str]) -> Result<ChildApp> {
    ChildApp::spawn(Path::new(env!("CARGO_BIN_EXE_pulseboard")), args)
}

/// The expected numbers of one window, recomputed independently of Pulseboard's code.
#[derive(Debug, Default, Clone)]
pub struct Truth {
    pub events: u64,
    pub by_type: BTreeMap<String, u64>,
    pub visitors: HashSet<String>,
    pub sessions: HashSet<String>,
    pub urls: HashMap<String, u64>,
    pub referrers: HashMap<String, u64>,
    pub countries: HashMap<String, u64>,
    pub devices: HashMap<String, u64>,
}

/// Group events by `ts - ts mod width` with plain maps.
pub fn recompute(events: &[Event], width: i64) -> BTreeMap<i64, Truth> {
    let mut out: BTreeMap<i64, Truth> = BTreeMap::new();
    for e in events {
        let start = e.ts - e.ts.rem_euclid(width);
        let t = out.entry(start).or_default();
        t.events += 1;
        *t.by_type.entry(e.kind.clone()).or_default() += 1;
        t.visitors.insert(e.visitor.clone());
        if let Some(s) = &e.session {
            t.sessions.insert(s.clone());
        }
        if e.kind == "pageview" {
            *t.urls.entry(e.url.clone()).or_default() += 1;
        }
        for (map, v) in [
            (&mut t.referrers, &e.referrer),
            (&mut t.countries, &e.country),
            (&mut t.devices, &e.device),
        ] {
            if let Some(v) = v {
                *map.entry(v.clone()).or_default() += 1;
            }
        }
    }
    out
}

/// HLL estimate of a set of strings (the "HLL of the same inputs") at the window's
/// precision: visitors and sessions of the whole traffic.
pub fn hll_of<'a>(items: impl IntoIterator<Item = &'a String>) -> u64 {
    hll_at(HLL_PRECISION, items)
}

/// HLL estimate of a set of strings at the precision of segments and goals: a segment's
/// figures and converting visitors.
pub fn sub_hll_of<'a>(items: impl IntoIterator<Item = &'a String>) -> u64 {
    hll_at(HLL_SUB_PRECISION, items)
}

fn hll_at<'a>(p: u8, items: impl IntoIterator<Item = &'a String>) -> u64 {
    let mut h = Hll::with_precision(p);
    for i in items {
        h.insert(i);
    }
    h.estimate()
}

/// Compare the API's windows (`/api/v1/windows` JSON) with the recomputation.
/// The API's windows (all of them, top lists whole) equal the recomputation of `events`.
pub async fn assert_api_matches(addr: SocketAddr, events: &[Event], width: i64) -> Result<()> {
    let windows = get_json(addr, "/api/v1/windows?from=0&limit=10000&top=1000")
        .await
        .ok_or_else(|| anyhow!("windows endpoint failed"))?;
    assert_windows_match(&windows, &recompute(events, width))
}

pub fn assert_windows_match(api: &Value, truth: &BTreeMap<i64, Truth>) -> Result<()> {
    let windows = api["windows"]
        .as_array()
        .ok_or_else(|| anyhow!("no windows in {api}"))?;
    let got: BTreeMap<i64, &Value> = windows
        .iter()
        .filter_map(|w| Some((w["start"].as_i64()?, w)))
        .collect();
    let want: Vec<i64> = truth.keys().copied().collect();
    let have: Vec<i64> = got.keys().copied().collect();
    if want != have {
        bail!("window starts differ: expected {want:?}, API has {have:?}");
    }
    for (start, t) in truth {
        let w = got[start];
        let ctx = || format!("window {start}");
        if w["events"].as_u64() != Some(t.events) {
            bail!("{}: events {} != expected {}", ctx(), w["events"], t.events);
        }
        let by_type: BTreeMap<String, u64> = serde_json::from_value(w["by_type"].clone())?;
        if by_type != t.by_type {
            bail!("{}: by_type {by_type:?} != expected {:?}", ctx(), t.by_type);
        }
        let uv = w["unique_visitors"].as_u64().unwrap_or(u64::MAX);
        if uv != hll_of(&t.visitors) {
            bail!(
                "{}: unique_visitors {uv} != HLL of the inputs {}",
                ctx(),
                hll_of(&t.visitors)
            );
        }
        let exact = t.visitors.len() as f64;
        if (uv as f64 - exact).abs() > 0.02 * exact.max(1.0) {
            bail!(
                "{}: unique_visitors {uv} not within 2% of exact {exact}",
                ctx()
            );
        }
        let us = w["unique_sessions"].as_u64().unwrap_or(u64::MAX);
        if us != hll_of(&t.sessions) {
            bail!(
                "{}: unique_sessions {us} != HLL of the inputs {}",
                ctx(),
                hll_of(&t.sessions)
            );
        }
        for (field, map) in [
            ("top_urls", &t.urls),
            ("top_referrers", &t.referrers),
            ("countries", &t.countries),
            ("devices", &t.devices),
        ] {
            for c in w[field].as_array().into_iter().flatten() {
                let key = c["key"].as_str().unwrap_or_default();
                let count = c["count"].as_u64().unwrap_or(u64::MAX);
                if map.get(key).copied() != Some(count) {
                    bail!(
                        "{}: {field}[{key}] = {count}, expected {:?}",
                        ctx(),
                        map.get(key)
                    );
                }
            }
            // The list is the top of the map: its first count is the map's max.
            let max = map.values().max().copied();
            let first = w[field].get(0).and_then(|c| c["count"].as_u64());
            if first != max {
                bail!(
                    "{}: {field} starts with {first:?}, expected max {max:?}",
                    ctx()
                );
            }
        }
    }
    Ok(())
}

/// A fresh temporary data directory.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Which events a correct Pulseboard folds, given messages in per-partition order, and how
/// many of them are late: an event is late when its window ended at or before its
/// partition's watermark (max event time seen before it minus `lateness`). Late events within
/// the revision horizon (24 h by default, far wider than any test's spread) are folded too,
/// into windows that become `revised`; so every event is folded, and the late count is also
/// the expected `revised_events_total`.
pub fn expected_folded(msgs: &[(i32, Event)], width: i64, lateness: i64) -> (Vec<Event>, u64) {
    let mut max_ts: HashMap<i32, i64> = HashMap::new();
    let mut late = 0;
    for (p, e) in msgs {
        let start = e.ts - e.ts.rem_euclid(width);
        let m = max_ts.entry(*p).or_insert(e.ts);
        if start + width <= *m - lateness {
            late += 1;
        }
        *m = (*m).max(e.ts);
    }
    (msgs.iter().map(|(_, e)| e.clone()).collect(), late)
}

pub use pulseboard::now_ms;

/// Sum of `partitions[].next_offset` in a status document (0 without partitions).
pub fn sum_next_offsets(status: &Value) -> i64 {
    status["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["next_offset"].as_i64()).sum())
        .unwrap_or(0)
}

/// Produce `payloads` to `topic` in chunks of 100, one chunk every `every`, in the background.
pub fn paced_writer(
    p: FutureProducer,
    topic: &'static str,
    payloads: Vec<(i32, Vec<u8>)>,
    every: Duration,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for chunk in payloads.chunks(100) {
            tick.tick().await;
            produce(&p, topic, chunk).await?;
        }
        Ok(())
    })
}

/// Pulseboard arguments for a broker, with the fast group settings.
pub fn broker_args(brokers: &str, topic: &str, group: &str, dir: &Path) -> Vec<String> {
    broker_args_with(brokers, topic, group, dir, FAST_GROUP_OPTIONS)
}

/// Pulseboard arguments for a broker with the given librdkafka options.
pub fn broker_args_with(
    brokers: &str,
    topic: &str,
    group: &str,
    dir: &Path,
    options: &[(&str, &str)],
) -> Vec<String> {
    let mut v: Vec<String> = [
        "--brokers",
        brokers,
        "--topics",
        topic,
        "--group",
        group,
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(path_str(dir));
    for (k, val) in options {
        v.push("--kafka-option".into());
        v.push(format!("{k}={val}"));
    }
    v
}

/// Status JSON once `events_total` and `dead_letters_total` reach the given numbers.
pub async fn wait_for_totals(
    addr: SocketAddr,
    events: u64,
    dead: u64,
    timeout: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut last = Value::Null;
    loop {
        if let Some(s) = get_json(addr, "/api/v1/status").await {
            if s["events_total"].as_u64() == Some(events)
                && s["dead_letters_total"].as_u64() == Some(dead)
            {
                return Ok(s);
            }
            last = s;
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}: wanted events_total={events} dead_letters_total={dead}; last status: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delete `topic` and create it again (empty, offsets from 0).
pub async fn recreate_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    delete_topic(brokers, topic).await?;
    // The deletion is asynchronous inside the cluster: retry the creation while the old
    // topic is still being removed.
    poll_until(
        Duration::from_secs(60),
        "the topic to be created again",
        || async { create_topic(brokers, topic, partitions).await.ok() },
    )
    .await
}
