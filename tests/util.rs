//! Shared test harness: a standalone Tansu broker on a free port, Pulseboard in-process or
//! as a child process on port 0 with a temp store, a producer, a raw HTTP client, polling,
//! and an independent recomputation of the expected numbers.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard::config::Config;
use pulseboard_model::agg::Hll;
use pulseboard_model::event::Event;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Librdkafka settings for test clients and for the Pulseboard under test.
/// A member killed with SIGKILL stays in the group until its session times out, and the
/// next member's join waits for that; a short session (with frequent heartbeats) makes a
/// restart after a SIGKILL rejoin in a few seconds instead of tens.
pub const FAST_GROUP_OPTIONS: &[(&str, &str)] = &[
    ("session.timeout.ms", "3000"),
    ("heartbeat.interval.ms", "300"),
];

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// Poll `f` every 50 ms until it returns `Some`, or fail after `timeout` with `what`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Tansu binary: `$PULSEBOARD_TANSU` (set by `cargo xtask test`), else `~/.cargo/bin/tansu`.
fn tansu_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PULSEBOARD_TANSU") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    let p = PathBuf::from(home).join(".cargo/bin/tansu");
    if p.exists() {
        Ok(p)
    } else {
        bail!("tansu not found: run the tests with `cargo xtask test`, which installs it")
    }
}

/// A standalone Kafka-compatible broker process (Tansu, in-memory storage).
pub struct Tansu {
    child: Child,
    pub port: u16,
}

impl Tansu {
    pub fn start() -> Result<Self> {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_path()?)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tansu")?;
        let t = Tansu { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(t)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Create a topic (retention set: Tansu reports an empty config otherwise).
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1))
        .set("retention.ms", "604800000");
    let res = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .context("create_topics")?;
    for r in res {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

pub fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()?)
}

/// Produce `(partition, payload)` pairs and wait for every delivery.
pub async fn produce(p: &FutureProducer, topic: &str, msgs: &[(i32, Vec<u8>)]) -> Result<()> {
    let mut futs = Vec::with_capacity(msgs.len());
    for (part, payload) in msgs {
        let rec: FutureRecord<'_, (), [u8]> =
            FutureRecord::to(topic).partition(*part).payload(payload);
        match p.send_result(rec) {
            Ok(f) => futs.push(f),
            Err((e, _)) => bail!("enqueue failed: {e}"),
        }
    }
    for f in futs {
        f.await
            .map_err(|_| anyhow!("delivery cancelled"))?
            .map_err(|(e, _)| anyhow!("delivery failed: {e}"))?;
    }
    p.flush(Duration::from_secs(10))?;
    Ok(())
}

/// GET over a fresh connection; returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    http_request(addr, "GET", path, "")
}

/// POST a body over a fresh connection; returns status and body.
pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    http_request(addr, "POST", path, body)
}

fn http_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response: {text:?}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status in {head:?}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GET and parse JSON; `None` while the server is not answering 200.
pub async fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let path = path.to_owned();
    let r = tokio::task::spawn_blocking(move || http_get(addr, &path))
        .await
        .ok()?;
    match r {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
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

/// Pulseboard as a child process (the real binary), on port 0.
pub struct ChildApp {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ChildApp {
    pub fn spawn(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pulseboard"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning pulseboard")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Pulseboard on http://") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .context("pulseboard did not print its address within 60 s")?
            .parse()?;
        Ok(ChildApp { child, addr })
    }

    pub fn kill9(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let s = Command::new("kill").args(["-KILL", &pid]).status()?;
        if !s.success() {
            bail!("kill -KILL {pid} failed");
        }
        self.child.wait()?;
        Ok(())
    }

    pub fn terminate(mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for ChildApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// HLL estimate of a set of strings (the "HLL of the same inputs").
pub fn hll_of<'a>(items: impl IntoIterator<Item = &'a String>) -> u64 {
    let mut h = Hll::new();
    for i in items {
        h.insert(i);
    }
    h.estimate()
}

/// Compare the API's windows (`/api/v1/windows` JSON) with the recomputation.
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

/// Which events a correct Pulseboard folds, given messages in per-partition order: an event
/// is late when its window ended at or before its partition's watermark (max event time seen
/// before it minus `lateness`). Returns the folded events and the number of late ones.
pub fn expected_folded(msgs: &[(i32, Event)], width: i64, lateness: i64) -> (Vec<Event>, u64) {
    let mut max_ts: HashMap<i32, i64> = HashMap::new();
    let mut folded = Vec::new();
    let mut late = 0;
    for (p, e) in msgs {
        let start = e.ts - e.ts.rem_euclid(width);
        let late_now = max_ts.get(p).is_some_and(|m| start + width <= m - lateness);
        if late_now {
            late += 1;
        } else {
            folded.push(e.clone());
            let m = max_ts.entry(*p).or_insert(e.ts);
            *m = (*m).max(e.ts);
        }
    }
    (folded, late)
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

/// Pulseboard arguments for a Tansu broker, with the fast group settings.
pub fn broker_args(brokers: &str, topic: &str, group: &str, dir: &Path) -> Vec<String> {
    broker_args_with(brokers, topic, group, dir, FAST_GROUP_OPTIONS)
}

/// Pulseboard arguments for a Tansu broker with the given librdkafka options.
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
