//! End-to-end benchmark of Pulseboard on a real broker (Tansu), in one run:
//!
//! 1. prefill topic `bench` (4 partitions) with N realistic canonical events;
//! 2. `raw_consume_eps`: a bare rdkafka consumer reading them back (the physical limit);
//! 3. `decode_eps`: the canonical decoder on the same payloads, in memory, one thread;
//! 4. `pipeline_eps`: the release `pulseboard` binary as a child process, consuming `bench`;
//! 5. `rss_peak_mb` of that child, and of a child fed N events with distinct URLs;
//! 6. `ws_latency_p50_ms`/`p99`: 1,000 WebSocket clients watching paced probe events;
//! 7. `peer_eps`: the same windowed job in Quix Streams (bench/peer_quix.py).
//!
//! Prints one table and writes the numbers as JSON (see `--help`). It is a measurement:
//! it exits 0 when targets are missed and non-zero only when something broke.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use pulseboard::now_ms;
use pulseboard_model::event::{Decoder, Event};
use pulseboard_model::gen::{GenConfig, Generator};
use pulseboard_model::time::format_rfc3339_ms;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext,
};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;
const TOPIC: &str = "bench";
const TOPIC_HC: &str = "bench_hc";
const TOPIC_WS: &str = "bench_ws";
const WS_CLIENTS: usize = 1_000;
const WS_PROBE_EVERY: Duration = Duration::from_millis(20);
const WS_WINDOW_MS: i64 = 10_000;
const POLL_EVERY: Duration = Duration::from_millis(50);
/// `fetch.wait.max.ms` of the raw consumer. Tansu holds a fetch for a good part of it even
/// when data is waiting (seen: ~27k messages per ~250 ms with the default 500 ms, about
/// 110k/s); 10 ms lifts that limit about tenfold.
const RAW_FETCH_WAIT_MS: u32 = 10;
/// librdkafka's default `fetch.wait.max.ms`.
const DEFAULT_FETCH_WAIT_MS: u32 = 500;
/// Session settings that make a fresh consumer group join in seconds on Tansu.
const FAST_GROUP: [&str; 4] = [
    "--kafka-option",
    "session.timeout.ms=3000",
    "--kafka-option",
    "heartbeat.interval.ms=300",
];
/// File descriptors the WebSocket step needs (1,000 sockets on each side, plus Kafka).
const WANT_FDS: u64 = 8_192;
const MIN_FDS: u64 = 4_096;

const SETUP: &str = "\
Setup (once per machine):
  cargo build --release -p pulseboard
  cargo install --locked tansu --version 0.6.0 --features dynostore   # if ~/.cargo/bin/tansu is missing
  python3 -m venv ~/.cache/pulseboard/peer-venv
  ~/.cache/pulseboard/peer-venv/bin/pip install -r bench/requirements.txt

Run (from the workspace root):
  PULSEBOARD_BIN=target/release/pulseboard \\
  PULSEBOARD_PEER_PYTHON=$HOME/.cache/pulseboard/peer-venv/bin/python \\
  cargo bench -p pulseboard --bench pipeline -- --quick

Environment:
  PULSEBOARD_BIN          release pulseboard binary, relative to the workspace root
                          (default: target/release/pulseboard)
  PULSEBOARD_TANSU        tansu binary (default: ~/.cargo/bin/tansu)
  PULSEBOARD_PEER_PYTHON  python of a venv with bench/requirements.txt; unset: the peer is skipped
                          (peer_eps: null)

The WebSocket step needs about 2,100 open files in each process; the bench raises its soft
RLIMIT_NOFILE to the hard limit (the child inherits it). If the hard limit is below 4096,
run it under `ulimit -n 8192`.

Relative paths given to --out are resolved against the workspace root.";

/// Pulseboard end-to-end benchmark (Tansu broker, release binary, WebSockets, Quix peer).
#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    bin_name = "cargo bench -p pulseboard --bench pipeline --",
    after_help = SETUP
)]
struct Args {
    /// Small sizes: 200,000 events, 20,000 peer events, 8 s of WebSocket probes.
    #[arg(long)]
    quick: bool,
    /// Events prefilled and consumed (default 2,000,000; --quick 200,000).
    #[arg(long)]
    events: Option<u64>,
    /// Messages the Quix peer processes (default 200,000; --quick 20,000).
    #[arg(long)]
    peer_events: Option<u64>,
    /// Extra librdkafka option KEY=VALUE for every pulseboard child (repeatable), e.g.
    /// `fetch.wait.max.ms=10`; none by default.
    #[arg(long = "child-kafka-option", value_name = "KEY=VALUE")]
    child_kafka_options: Vec<String>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Everything one run needs, resolved from the arguments and the environment.
struct Plan {
    mode: &'static str,
    events: u64,
    peer_events: u64,
    ws_probe_for: Duration,
    out: PathBuf,
    tansu: PathBuf,
    pulseboard: PathBuf,
    peer_python: Option<PathBuf>,
    child_kafka_options: Vec<String>,
}

fn workspace_root() -> PathBuf {
    let server = Path::new(env!("CARGO_MANIFEST_DIR"));
    server.parent().unwrap_or(server).to_path_buf()
}

fn home_path(rel: &str) -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(rel)
}

impl Plan {
    fn from_args(args: Args) -> Result<Plan> {
        let root = workspace_root();
        let tansu = std::env::var_os("PULSEBOARD_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|| home_path(".cargo/bin/tansu"));
        let pulseboard = std::env::var_os("PULSEBOARD_BIN")
            .map(|p| root.join(p))
            .unwrap_or_else(|| root.join("target/release/pulseboard"));
        let peer_python = std::env::var_os("PULSEBOARD_PEER_PYTHON").map(PathBuf::from);
        if !tansu.is_file() {
            bail!(
                "no tansu binary at {} (set PULSEBOARD_TANSU, or: cargo install --locked tansu --version 0.6.0 --features dynostore)",
                tansu.display()
            );
        }
        if !pulseboard.is_file() {
            bail!(
                "no pulseboard binary at {} (build it with `cargo build --release -p pulseboard`, or set PULSEBOARD_BIN)",
                pulseboard.display()
            );
        }
        let (mode, events, peer_events, ws_secs) = if args.quick {
            ("quick", 200_000, 20_000, 8)
        } else {
            ("default", 2_000_000, 200_000, 20)
        };
        Ok(Plan {
            mode,
            events: args.events.unwrap_or(events).max(1),
            peer_events: args.peer_events.unwrap_or(peer_events).max(1),
            ws_probe_for: Duration::from_secs(ws_secs),
            out: root.join(args.out),
            tansu,
            pulseboard,
            peer_python,
            child_kafka_options: args.child_kafka_options,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Results

#[derive(Debug, Default, Serialize)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    mem_total_mb: u64,
    loadavg_at_start: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct RssSample {
    progress_pct: u32,
    rss_mb: f64,
}

#[derive(Debug, Serialize)]
struct Target {
    metric: &'static str,
    op: &'static str,
    threshold: f64,
    value: Option<f64>,
    met: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    mode: &'static str,
    events: u64,
    timestamp: String,
    child_kafka_options: Vec<String>,
    machine: Machine,
    payload_bytes_avg: f64,
    prefill_eps: f64,
    raw_consume_eps: f64,
    raw_consume_eps_default_fetch_wait: f64,
    decode_eps: f64,
    pipeline_eps: f64,
    pipeline_eps_wall: f64,
    pipeline_startup_secs: f64,
    pipeline_vs_raw: f64,
    rss_peak_mb: f64,
    rss_sampled_max_mb: f64,
    pipeline_eps_high_cardinality: f64,
    rss_peak_mb_high_cardinality: f64,
    rss_hc_samples: Vec<RssSample>,
    ws_clients: usize,
    ws_clients_dropped: usize,
    ws_probes: usize,
    ws_latency_p50_ms: f64,
    ws_latency_p99_ms: f64,
    ws_latency_max_ms: f64,
    ws_latency_missed: usize,
    rss_ws_mb: f64,
    rss_ws_before_clients_mb: f64,
    peer: String,
    peer_events: u64,
    peer_eps: Option<f64>,
    vs_peer: Option<f64>,
    peer_note: Option<String>,
    targets: Vec<Target>,
}

// ---------------------------------------------------------------------------------------
// Entry point

fn main() -> ExitCode {
    let args = Args::parse();
    match Plan::from_args(args).and_then(|plan| run(&plan)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("\nbenchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(plan: &Plan) -> Result<ExitCode> {
    let fds = raise_fd_limit(WANT_FDS)?;
    if fds < MIN_FDS {
        bail!("open-file limit is {fds}, the WebSocket step needs {MIN_FDS}: run under `ulimit -n {WANT_FDS}`");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut report = Report {
        mode: plan.mode,
        events: plan.events,
        timestamp: format_rfc3339_ms(now_ms()),
        machine: machine_info(),
        peer: peer_pin(),
        peer_events: plan.peer_events,
        child_kafka_options: plan.child_kafka_options.clone(),
        ..Report::default()
    };
    step(&format!(
        "{} mode: {} events, pulseboard {}",
        plan.mode,
        plan.events,
        plan.pulseboard.display()
    ));
    let tansu = Tansu::start(&plan.tansu)?;
    let brokers = tansu.bootstrap();

    let payloads = prefill_canonical(&rt, &brokers, plan.events, &mut report)?;
    let ends = measure_raw_consume(&brokers, plan.events, &mut report)?;
    measure_decode(&payloads, &mut report)?;
    drop(payloads);
    measure_pipeline(plan, &brokers, ends, &mut report)?;
    measure_high_cardinality(&rt, plan, &brokers, &mut report)?;
    measure_websockets(&rt, plan, &brokers, &mut report)?;
    let peer_failed = measure_peer(plan, &brokers, &mut report);
    drop(tansu);

    report.targets = targets(&report);
    print_table(&report);
    write_json(&plan.out, &report)?;
    println!("\nresults written to {}", plan.out.display());
    match peer_failed {
        Err(e) => {
            eprintln!("\nthe peer failed: {e:#}");
            Ok(ExitCode::FAILURE)
        }
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn step(what: &str) {
    eprintln!("[bench] {what}");
}

// ---------------------------------------------------------------------------------------
// Steps

/// Step 1: topic `bench`, N canonical events keyed by visitor. Returns the payloads.
fn prefill_canonical(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    n: u64,
    report: &mut Report,
) -> Result<Vec<Vec<u8>>> {
    step(&format!("prefilling `{TOPIC}` with {n} events"));
    rt.block_on(create_topic(brokers, TOPIC, PARTITIONS))?;
    let (keys, payloads) = canonical_messages(n);
    let stats = produce_all(brokers, TOPIC, n, |k, key, payload| {
        key.extend_from_slice(keys[k as usize].as_bytes());
        payload.extend_from_slice(&payloads[k as usize]);
    })?;
    report.payload_bytes_avg = stats.bytes as f64 / n as f64;
    report.prefill_eps = n as f64 / stats.seconds;
    Ok(payloads)
}

/// Step 2: a bare consumer, manual assignment, from the beginning, until N messages; then
/// the same with librdkafka's default `fetch.wait.max.ms` (500 ms), which is what a client
/// that does not set it (Pulseboard, by default) gets from Tansu. Returns the sum of the
/// partitions' next offsets (the pipeline's target).
fn measure_raw_consume(brokers: &str, n: u64, report: &mut Report) -> Result<i64> {
    step("raw consume");
    let raw = raw_consume(brokers, TOPIC, n, RAW_FETCH_WAIT_MS)?;
    report.raw_consume_eps = n as f64 / raw.seconds;
    step("raw consume with the default fetch.wait.max.ms");
    let default_wait = raw_consume(brokers, TOPIC, n, DEFAULT_FETCH_WAIT_MS)?;
    report.raw_consume_eps_default_fetch_wait = n as f64 / default_wait.seconds;
    let ends: i64 = raw.next_offsets.iter().sum();
    if ends != n as i64 {
        bail!(
            "offsets of `{TOPIC}` are not dense: next offsets {:?} add up to {ends}, not {n}; progress by offset would be wrong",
            raw.next_offsets
        );
    }
    Ok(ends)
}

/// Step 3: decode the payloads in memory on one thread.
fn measure_decode(payloads: &[Vec<u8>], report: &mut Report) -> Result<()> {
    step("decode");
    let decoder = Decoder::default();
    let msg_ts = Some(now_ms());
    let start = Instant::now();
    let mut failed = 0u64;
    for p in payloads {
        if std::hint::black_box(decoder.decode(p, msg_ts)).is_err() {
            failed += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if failed > 0 {
        bail!("{failed} generated events failed to decode");
    }
    report.decode_eps = payloads.len() as f64 / secs;
    Ok(())
}

/// Steps 4 and 5a: the child consuming `bench`, with its memory.
fn measure_pipeline(plan: &Plan, brokers: &str, target: i64, report: &mut Report) -> Result<()> {
    step("pipeline: pulseboard child consuming `bench`");
    let mut child = Pulseboard::spawn(plan, brokers, TOPIC, &["--checkpoint-interval", "200ms"])?;
    let run = child
        .watch_ingest(TOPIC, target, ingest_timeout(plan.events))
        .with_context(|| child.log_tail())?;
    child
        .verify_totals(plan.events)
        .with_context(|| child.log_tail())?;
    let n = plan.events as f64;
    report.pipeline_eps = run.eps(plan.events);
    report.pipeline_eps_wall = n / (run.last - run.spawned).as_secs_f64();
    report.pipeline_startup_secs = (run.first - run.spawned).as_secs_f64();
    report.pipeline_vs_raw = report.pipeline_eps / report.raw_consume_eps;
    report.rss_peak_mb = kb_to_mb(run.hwm_kb);
    report.rss_sampled_max_mb = kb_to_mb(run.rss_max_kb);
    child.stop();
    Ok(())
}

/// Step 5b: N events where every URL is distinct, a fresh child; memory as it grows.
fn measure_high_cardinality(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    let n = plan.events;
    step(&format!(
        "high cardinality: prefilling `{TOPIC_HC}` with {n} distinct URLs"
    ));
    rt.block_on(create_topic(brokers, TOPIC_HC, PARTITIONS))?;
    let mut gen = Generator::new(2, GenConfig::default());
    let base = now_ms() - n as i64;
    produce_all(brokers, TOPIC_HC, n, |k, key, payload| {
        let mut ev = gen.next_event(base + k as i64);
        ev.url = format!("/p/{k}");
        key.extend_from_slice(ev.visitor.as_bytes());
        payload.extend_from_slice(ev.to_json().as_bytes());
    })?;
    step("high cardinality: pulseboard child consuming it");
    let mut child =
        Pulseboard::spawn(plan, brokers, TOPIC_HC, &["--checkpoint-interval", "200ms"])?;
    let run = child
        .watch_ingest(TOPIC_HC, n as i64, ingest_timeout(n))
        .with_context(|| child.log_tail())?;
    child.verify_totals(n).with_context(|| child.log_tail())?;
    report.pipeline_eps_high_cardinality = run.eps(n);
    report.rss_peak_mb_high_cardinality = kb_to_mb(run.hwm_kb);
    report.rss_hc_samples = run.rss_at_progress;
    child.stop();
    Ok(())
}

/// Step 6: 1,000 WebSocket clients and paced probe events on one partition.
fn measure_websockets(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    step(&format!("websockets: {WS_CLIENTS} clients"));
    rt.block_on(create_topic(brokers, TOPIC_WS, PARTITIONS))?;
    let mut child = Pulseboard::spawn(plan, brokers, TOPIC_WS, &["--window", "10s"])?;
    let ws = rt
        .block_on(ws_run(
            brokers,
            child.addr,
            child.pid,
            WS_CLIENTS,
            plan.ws_probe_for,
        ))
        .with_context(|| child.log_tail())?;
    child.ensure_running()?;
    report.ws_clients = ws.clients;
    report.ws_clients_dropped = ws.dropped;
    report.ws_probes = ws.probes;
    report.ws_latency_p50_ms = percentile(&ws.latencies_ms, 50.0);
    report.ws_latency_p99_ms = percentile(&ws.latencies_ms, 99.0);
    report.ws_latency_max_ms = ws.latencies_ms.last().copied().unwrap_or(f64::NAN);
    report.ws_latency_missed = ws.missed;
    report.rss_ws_mb = kb_to_mb(ws.rss_kb);
    report.rss_ws_before_clients_mb = kb_to_mb(ws.rss_before_clients_kb);
    child.stop();
    Ok(())
}

/// Step 7: Quix Streams on `bench`. An error here is reported after the results are saved.
fn measure_peer(plan: &Plan, brokers: &str, report: &mut Report) -> Result<()> {
    let Some(python) = &plan.peer_python else {
        let note = "PULSEBOARD_PEER_PYTHON is not set: peer skipped (see --help for the setup)";
        step(note);
        report.peer_events = 0;
        report.peer_note = Some(note.to_owned());
        return Ok(());
    };
    step(&format!(
        "peer: Quix Streams on `{TOPIC}`, {} messages",
        plan.peer_events
    ));
    match run_peer(python, brokers, TOPIC, plan.peer_events) {
        Ok(peer) => {
            report.peer_events = peer.events;
            report.peer_eps = Some(peer.eps);
            report.vs_peer = Some(report.pipeline_eps / peer.eps);
            report.peer_note = Some(format!(
                "first {} messages of `{TOPIC}`, {:.1} s from first to last message",
                peer.events, peer.seconds
            ));
            Ok(())
        }
        Err(e) => {
            report.peer_note = Some(format!("peer failed: {e:#}"));
            Err(e)
        }
    }
}

fn ingest_timeout(n: u64) -> Duration {
    Duration::from_secs(120 + n / 5_000)
}

// ---------------------------------------------------------------------------------------
// Events

/// N canonical events, one per millisecond of event time, ending now: (keys, payloads).
fn canonical_messages(n: u64) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut gen = Generator::new(1, GenConfig::default());
    let base = now_ms() - n as i64;
    (0..n)
        .map(|k| {
            let ev = gen.next_event(base + k as i64);
            (ev.visitor.clone(), ev.to_json().into_bytes())
        })
        .unzip()
}

// ---------------------------------------------------------------------------------------
// Tansu

/// A Tansu broker with in-memory storage on a free port; killed on drop.
struct Tansu {
    child: Child,
    port: u16,
}

impl Tansu {
    fn start(bin: &Path) -> Result<Tansu> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        step(&format!("starting tansu on {url}"));
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
            ])
            .args([&url, "--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let tansu = Tansu { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(tansu)
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------
// Kafka

/// Create a topic with a retention config (Tansu reports an empty config otherwise, which
/// Quix Streams refuses).
async fn create_topic(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating the admin client")?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1))
        .set("retention.ms", "604800000");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .with_context(|| format!("creating topic {name}"))?;
    for r in results {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Counts failed deliveries of the bulk producer.
#[derive(Default)]
struct DeliveryTally {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTally {}

impl ProducerContext for DeliveryTally {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

struct ProduceStats {
    bytes: u64,
    seconds: f64,
}

/// Produce `n` keyed messages (partition chosen by the producer from the key) and wait for
/// every delivery. `message(k, key, payload)` fills the (cleared) buffers of message `k`.
fn produce_all(
    brokers: &str,
    topic: &str,
    n: u64,
    mut message: impl FnMut(u64, &mut Vec<u8>, &mut Vec<u8>),
) -> Result<ProduceStats> {
    let producer: BaseProducer<DeliveryTally> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create_with_context(DeliveryTally::default())
        .context("creating the prefill producer")?;
    let start = Instant::now();
    let mut bytes = 0u64;
    let (mut key, mut payload) = (Vec::new(), Vec::new());
    for k in 0..n {
        key.clear();
        payload.clear();
        message(k, &mut key, &mut payload);
        bytes += payload.len() as u64;
        send_with_backpressure(&producer, topic, &key, &payload)?;
        if k % 1_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .with_context(|| format!("flushing {n} messages to {topic}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let tally = producer.context();
    let failed = tally.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = tally.first_error.lock().ok().and_then(|e| e.clone());
        bail!("{failed} of {n} messages to {topic} were not delivered (first error: {first:?})");
    }
    Ok(ProduceStats { bytes, seconds })
}

fn send_with_backpressure(
    producer: &BaseProducer<DeliveryTally>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
) -> Result<()> {
    loop {
        match producer.send(BaseRecord::to(topic).key(key).payload(payload)) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e).with_context(|| format!("producing to {topic}")),
        }
    }
}

struct RawConsume {
    seconds: f64,
    next_offsets: Vec<i64>,
}

/// Read `n` messages of every partition of `topic` from the beginning, without a group.
fn raw_consume(brokers: &str, topic: &str, n: u64, fetch_wait_ms: u32) -> Result<RawConsume> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-raw-{:08x}", fastrand::u32(..)))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "1048576")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()
        .context("creating the raw consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assigning partitions")?;
    let deadline = Instant::now() + Duration::from_secs(60 + n / 20_000);
    let mut next_offsets = vec![0i64; PARTITIONS as usize];
    let (mut read, mut touched) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    while read < n {
        if Instant::now() > deadline {
            bail!("raw consumer read only {read} of {n} messages before its deadline");
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.context("raw consumer")?;
        first.get_or_insert_with(Instant::now);
        touched += msg.payload().map_or(0, |p| p.len() as u64);
        if let Some(slot) = next_offsets.get_mut(msg.partition() as usize) {
            *slot = (*slot).max(msg.offset() + 1);
        }
        read += 1;
    }
    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    std::hint::black_box(touched);
    Ok(RawConsume {
        seconds,
        next_offsets,
    })
}

// ---------------------------------------------------------------------------------------
// The pulseboard child process

/// The release binary on port 0 with a temporary data dir; its log goes to a file there.
struct Pulseboard {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    spawned: Instant,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// What one ingest run looked like from outside.
struct IngestRun {
    spawned: Instant,
    first: Instant,
    done_at_first: u64,
    last: Instant,
    hwm_kb: u64,
    rss_max_kb: u64,
    rss_at_progress: Vec<RssSample>,
}

impl IngestRun {
    /// Messages per second between the first and the last observation. Offsets become
    /// visible only at checkpoints, so the first observation already covers up to one
    /// checkpoint interval of work: those `done_at_first` messages are not counted against
    /// the interval, which keeps short runs from being overestimated.
    fn eps(&self, total: u64) -> f64 {
        let secs = (self.last - self.first).as_secs_f64().max(1e-3);
        total.saturating_sub(self.done_at_first) as f64 / secs
    }
}

impl Pulseboard {
    fn spawn(plan: &Plan, brokers: &str, topic: &str, extra: &[&str]) -> Result<Pulseboard> {
        let bin = &plan.pulseboard;
        let dir = tempfile::Builder::new()
            .prefix("pulseboard-bench-")
            .tempdir()
            .context("creating a temp dir")?;
        let log = dir.path().join("pulseboard.log");
        let log_file = File::create(&log).context("creating the child's log file")?;
        let group = format!("bench-{:08x}", fastrand::u32(..));
        let data = dir.path().join("data");
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["--brokers", brokers, "--topics", topic, "--group", &group])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .args(FAST_GROUP)
            .args(extra)
            .args(
                plan.child_kafka_options
                    .iter()
                    .flat_map(|o| ["--kafka-option", o.as_str()]),
            )
            .current_dir(dir.path())
            .env("RUST_LOG", "warn,librdkafka=warn")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        let addr_rx = forward_stdout(stdout, &log)?;
        let mut pb = Pulseboard {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            spawned,
            log,
            _dir: dir,
        };
        pb.addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a
                .parse()
                .with_context(|| format!("bad address printed by pulseboard: {a:?}"))?,
            Err(_) => bail!(
                "pulseboard did not print its address within 30 s\n{}",
                pb.log_tail()
            ),
        };
        Ok(pb)
    }

    fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("pulseboard exited early ({status})\n{}", self.log_tail());
        }
        Ok(())
    }

    /// Poll the status every 50 ms until the offsets of `topic` add up to `target`.
    fn watch_ingest(&mut self, topic: &str, target: i64, timeout: Duration) -> Result<IngestRun> {
        let deadline = Instant::now() + timeout;
        let mut rss = RssTrack::default();
        let mut first: Option<(Instant, i64)> = None;
        let mut failures = 0u32;
        let mut next_tick = Instant::now();
        loop {
            self.ensure_running()?;
            let rss_kb = proc_status_kb(self.pid, "VmRSS")?;
            let now = Instant::now();
            match status(self.addr).map(|s| consumed(&s, topic)) {
                Ok(done) => {
                    failures = 0;
                    rss.sample(rss_kb, done as f64 / target as f64);
                    if done > 0 {
                        first.get_or_insert((now, done));
                    }
                    if done >= target {
                        return Ok(IngestRun {
                            spawned: self.spawned,
                            first: first.map_or(now, |f| f.0),
                            done_at_first: first.map_or(0, |f| f.1.max(0) as u64),
                            last: now,
                            hwm_kb: proc_status_kb(self.pid, "VmHWM")?,
                            rss_max_kb: rss.max_kb,
                            rss_at_progress: rss.at_progress,
                        });
                    }
                }
                Err(e) if failures >= 40 => return Err(e.context("status unreachable for 2 s")),
                Err(_) => failures += 1,
            }
            if now > deadline {
                bail!("ingest of {target} messages of `{topic}` not done after {timeout:?}");
            }
            next_tick += POLL_EVERY;
            std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        }
    }

    /// Every message is either folded into a window or a dead letter.
    fn verify_totals(&self, n: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = status(self.addr)?;
            let events = s["events_total"].as_u64().unwrap_or(0);
            let dead = s["dead_letters_total"].as_u64().unwrap_or(0);
            if events + dead == n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("events_total {events} + dead_letters_total {dead} != {n} messages");
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pulseboard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copy the child's stdout into its log; send the address of "Pulseboard on http://ADDR".
fn forward_stdout(
    stdout: std::process::ChildStdout,
    log: &Path,
) -> Result<std::sync::mpsc::Receiver<String>> {
    let mut log = OpenOptions::new()
        .append(true)
        .open(log)
        .context("opening the child's log")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("Pulseboard on http://") {
                let _ = tx.send(addr.trim().to_owned());
            }
            let _ = writeln!(log, "{line}");
        }
    });
    Ok(rx)
}

/// Max VmRSS, and the first VmRSS at or past 25/50/75/100 % of the messages.
#[derive(Default)]
struct RssTrack {
    max_kb: u64,
    at_progress: Vec<RssSample>,
}

impl RssTrack {
    fn sample(&mut self, rss_kb: u64, progress: f64) {
        self.max_kb = self.max_kb.max(rss_kb);
        for pct in [25u32, 50, 75, 100] {
            let seen = self.at_progress.iter().any(|s| s.progress_pct == pct);
            if !seen && progress * 100.0 >= f64::from(pct) {
                self.at_progress.push(RssSample {
                    progress_pct: pct,
                    rss_mb: kb_to_mb(rss_kb),
                });
            }
        }
    }
}

/// Sum of `partitions[].next_offset` of `topic` in a status document.
fn consumed(status: &Value, topic: &str) -> i64 {
    status["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["topic"] == topic)
        .filter_map(|p| p["next_offset"].as_i64())
        .sum()
}

/// A `kB` line of /proc/<pid>/status (VmRSS, VmHWM).
fn proc_status_kb(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no {field} in {path}"))
}

fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------
// HTTP

/// `GET /api/v1/status` over a fresh connection.
fn status(addr: SocketAddr) -> Result<Value> {
    let (code, body) = http_get(addr, "/api/v1/status")?;
    if code != 200 {
        bail!("GET /api/v1/status: HTTP {code}: {body}");
    }
    serde_json::from_str(&body).context("parsing /api/v1/status")
}

fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response from {addr}{path}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no status code in {head:?}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("chunked response from {addr}{path}: not supported by the bench's HTTP client");
    }
    Ok((code, body.to_owned()))
}

async fn status_async(addr: SocketAddr) -> Result<Value> {
    tokio::task::spawn_blocking(move || status(addr)).await?
}

// ---------------------------------------------------------------------------------------
// WebSockets

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The two fields of a window a client needs; everything else is skipped.
#[derive(Deserialize)]
struct WindowCount {
    start: i64,
    events: u64,
}

/// `snapshot` and `windows` messages carry `windows`; `status` has none.
#[derive(Deserialize)]
struct Frame {
    #[serde(default)]
    windows: Vec<WindowCount>,
}

/// When one client first saw each window's count grow: start → [(events, when)].
#[derive(Default)]
struct ClientLog {
    seen: HashMap<i64, Vec<(u64, Instant)>>,
    closed: bool,
    bad_frames: u64,
}

impl ClientLog {
    fn record(&mut self, text: &str, at: Instant) {
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            self.bad_frames += 1;
            return;
        };
        for w in frame.windows {
            let steps = self.seen.entry(w.start).or_default();
            if steps.last().is_none_or(|(e, _)| w.events > *e) {
                steps.push((w.events, at));
            }
        }
    }

    /// When this client first saw window `start` at `events` or more.
    fn first_at_least(&self, start: i64, events: u64) -> Option<Instant> {
        let steps = self.seen.get(&start)?;
        let i = steps.partition_point(|(e, _)| *e < events);
        steps.get(i).map(|(_, at)| *at)
    }
}

/// One probe: the k-th event of its window (1-based), and when it was handed to Kafka.
struct Probe {
    window: i64,
    index: u64,
    sent: Instant,
}

struct WsRun {
    clients: usize,
    dropped: usize,
    probes: usize,
    latencies_ms: Vec<f64>,
    missed: usize,
    rss_kb: u64,
    rss_before_clients_kb: u64,
}

async fn ws_run(
    brokers: &str,
    addr: SocketAddr,
    pid: u32,
    clients: usize,
    probe_for: Duration,
) -> Result<WsRun> {
    let producer = probe_producer(brokers)?;
    warm_up(&producer, addr).await?;
    let rss_before_clients_kb = proc_status_kb(pid, "VmRSS")?;
    let streams = connect_clients(addr, clients).await?;
    let stop = CancellationToken::new();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|ws| tokio::spawn(read_windows(ws, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await; // every client has its snapshot
    step(&format!(
        "websockets: probing every {WS_PROBE_EVERY:?} for {probe_for:?}"
    ));
    let probes = send_probes(&producer, probe_for).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // the last probes reach the clients
    let rss_kb = proc_status_kb(pid, "VmRSS")?;
    stop.cancel();
    let mut logs = Vec::with_capacity(readers.len());
    for r in readers {
        logs.push(r.await.context("a WebSocket client task panicked")?);
    }
    let (mut latencies_ms, missed) = latencies(&logs, &probes);
    latencies_ms.sort_by(f64::total_cmp);
    let bad: u64 = logs.iter().map(|l| l.bad_frames).sum();
    if bad > 0 {
        bail!("{bad} WebSocket frames were not valid server messages");
    }
    Ok(WsRun {
        clients: logs.len(),
        dropped: logs.iter().filter(|l| l.closed).count(),
        probes: probes.len(),
        latencies_ms,
        missed,
        rss_kb,
        rss_before_clients_kb,
    })
}

fn probe_producer(brokers: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the probe producer")
}

fn probe_payload(k: u64, ts: i64) -> (String, String) {
    let ev = Event {
        ts,
        kind: "pageview".into(),
        visitor: format!("v-probe-{}", k % 50),
        session: None,
        url: format!("/probe/{k}"),
        referrer: None,
        country: None,
        device: None,
    };
    (ev.visitor.clone(), ev.to_json())
}

/// One event (a minute old, so in another window than the probes) to partition 0, and wait
/// until the child has consumed it: the group is joined and the partition is being read.
async fn warm_up(producer: &FutureProducer, addr: SocketAddr) -> Result<()> {
    let (key, payload) = probe_payload(u64::MAX, now_ms() - 60_000);
    let rec = FutureRecord::to(TOPIC_WS)
        .partition(0)
        .key(&key)
        .payload(&payload);
    producer
        .send(rec, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| anyhow!("producing the warm-up event: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = status_async(addr).await {
            if consumed(&s, TOPIC_WS) >= 1 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("pulseboard did not consume the warm-up event of `{TOPIC_WS}` within 60 s");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Open `n` sockets, 100 handshakes at a time; every one must succeed.
async fn connect_clients(addr: SocketAddr, n: usize) -> Result<Vec<WsStream>> {
    let url = format!("ws://{addr}/ws");
    futures::stream::iter(0..n)
        .map(|i| {
            let url = url.clone();
            async move {
                let connect = tokio_tungstenite::connect_async(url.as_str());
                match tokio::time::timeout(Duration::from_secs(20), connect).await {
                    Ok(Ok((ws, _))) => Ok(ws),
                    Ok(Err(e)) => Err(anyhow!("WebSocket client {i} of {n}: {e}")),
                    Err(_) => Err(anyhow!("WebSocket client {i} of {n}: no handshake in 20 s")),
                }
            }
        })
        .buffer_unordered(100)
        .try_collect()
        .await
}

/// Read until `stop`, noting when each window's count grows.
async fn read_windows(mut ws: WsStream, stop: CancellationToken) -> ClientLog {
    let mut log = ClientLog::default();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = ws.next() => m,
        };
        let at = Instant::now();
        match msg {
            Some(Ok(WsMessage::Text(text))) => log.record(&text, at),
            Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => {
                log.closed = true;
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    log
}

/// One event every 20 ms to partition 0, `ts` = send time, a unique URL each.
async fn send_probes(producer: &FutureProducer, probe_for: Duration) -> Result<Vec<Probe>> {
    let mut tick = tokio::time::interval(WS_PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let count = (probe_for.as_millis() / WS_PROBE_EVERY.as_millis()) as u64;
    let mut probes = Vec::with_capacity(count as usize);
    let mut deliveries = Vec::with_capacity(count as usize);
    let mut per_window: HashMap<i64, u64> = HashMap::new();
    for k in 0..count {
        tick.tick().await;
        let ts = now_ms();
        let (key, payload) = probe_payload(k, ts);
        let rec = FutureRecord::to(TOPIC_WS)
            .partition(0)
            .key(&key)
            .payload(&payload);
        let sent = Instant::now();
        let delivery = producer
            .send_result(rec)
            .map_err(|(e, _)| anyhow!("producing probe {k}: {e}"))?;
        deliveries.push(delivery);
        let window = ts - ts.rem_euclid(WS_WINDOW_MS);
        let index = per_window.entry(window).or_default();
        *index += 1;
        probes.push(Probe {
            window,
            index: *index,
            sent,
        });
    }
    for (k, d) in deliveries.into_iter().enumerate() {
        d.await
            .map_err(|_| anyhow!("probe {k}: delivery cancelled"))?
            .map_err(|(e, _)| anyhow!("probe {k} not delivered: {e}"))?;
    }
    Ok(probes)
}

/// Latency of every (client, probe) pair that was seen, in ms, and the count never seen.
fn latencies(logs: &[ClientLog], probes: &[Probe]) -> (Vec<f64>, usize) {
    let mut out = Vec::with_capacity(logs.len() * probes.len());
    let mut missed = 0;
    for log in logs {
        for p in probes {
            match log.first_at_least(p.window, p.index) {
                Some(at) => out.push(at.saturating_duration_since(p.sent).as_secs_f64() * 1e3),
                None => missed += 1,
            }
        }
    }
    (out, missed)
}

/// Nearest-rank percentile of sorted values; NaN when empty.
fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// The Quix Streams peer

#[derive(Debug, Deserialize)]
struct PeerResult {
    events: u64,
    seconds: f64,
    eps: f64,
}

/// The pinned Quix Streams of bench/requirements.txt, for the report.
fn peer_pin() -> String {
    let reqs =
        fs::read_to_string(workspace_root().join("bench/requirements.txt")).unwrap_or_default();
    let pin = reqs
        .lines()
        .find(|l| l.trim_start().starts_with("quixstreams"))
        .map_or("quixstreams (unpinned?)", str::trim);
    format!("{pin} (bench/peer_quix.py)")
}

fn run_peer(python: &Path, brokers: &str, topic: &str, n: u64) -> Result<PeerResult> {
    let script = workspace_root().join("bench/peer_quix.py");
    let dir = tempfile::Builder::new()
        .prefix("pulseboard-quix-")
        .tempdir()
        .context("creating a temp dir")?;
    let log = dir.path().join("peer.log");
    let mut child = Command::new(python)
        .arg(&script)
        .args(["--brokers", brokers, "--topic", topic])
        .args(["--group", &format!("bench-quix-{:08x}", fastrand::u32(..))])
        .args(["--events", &n.to_string()])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(File::create(&log).context("creating the peer's log")?)
        .spawn()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut out);
        out
    });
    let timeout = Duration::from_secs(120 + n / 1_000);
    let exit = wait_with_timeout(&mut child, timeout);
    let out = reader.join().unwrap_or_default();
    let tail = || {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let status = exit.with_context(|| format!("peer log:\n{}", tail()))?;
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if !status.success() {
        bail!("peer exited with {status}: {last}\npeer log:\n{}", tail());
    }
    serde_json::from_str(last).with_context(|| format!("peer printed {last:?}"))
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no result within {timeout:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// Machine and limits

fn machine_info() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        mem_total_mb: field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024),
        loadavg_at_start: fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

/// Raise the soft RLIMIT_NOFILE towards `want` (at most the hard limit); returns the soft
/// limit now in force. Children inherit it.
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]
fn raise_fd_limit(want: u64) -> Result<u64> {
    use std::os::raw::c_int;
    /// `struct rlimit` of 64-bit Linux (`rlim_t` is a 64-bit unsigned integer).
    #[repr(C)]
    struct RLimit {
        cur: u64,
        max: u64,
    }
    extern "C" {
        fn getrlimit(resource: c_int, rlim: *mut RLimit) -> c_int;
        fn setrlimit(resource: c_int, rlim: *const RLimit) -> c_int;
    }
    const RLIMIT_NOFILE: c_int = 7;
    let mut lim = RLimit { cur: 0, max: 0 };
    // SAFETY: `lim` is a valid, writable `struct rlimit` for the duration of the call.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    let target = want.min(lim.max);
    if lim.cur < target {
        let new = RLimit {
            cur: target,
            max: lim.max,
        };
        // SAFETY: `new` is a valid `struct rlimit`; raising the soft limit up to the hard
        // limit needs no privilege.
        if unsafe { setrlimit(RLIMIT_NOFILE, &new) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
        }
        lim.cur = target;
    }
    Ok(lim.cur)
}

#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
)))]
fn raise_fd_limit(_want: u64) -> Result<u64> {
    bail!("cannot check RLIMIT_NOFILE on this platform; run on Linux under `ulimit -n 8192`")
}

// ---------------------------------------------------------------------------------------
// Output

fn targets(r: &Report) -> Vec<Target> {
    let t = |metric, op, threshold, value: Option<f64>| {
        let value = value.filter(|v| v.is_finite());
        let met = value.map(|v| {
            if op == ">=" {
                v >= threshold
            } else {
                v <= threshold
            }
        });
        Target {
            metric,
            op,
            threshold,
            value,
            met,
        }
    };
    vec![
        t("pipeline_vs_raw", ">=", 0.7, Some(r.pipeline_vs_raw)),
        t("vs_peer", ">=", 20.0, r.vs_peer),
        t("ws_latency_p99_ms", "<=", 300.0, Some(r.ws_latency_p99_ms)),
        t(
            "rss_peak_mb_high_cardinality",
            "<=",
            300.0,
            Some(r.rss_peak_mb_high_cardinality),
        ),
    ]
}

fn rows(r: &Report) -> Vec<(String, String)> {
    let int = |v: f64| group_thousands(v.round() as i64);
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("n/a".into(), f);
    let hc: Vec<String> = r
        .rss_hc_samples
        .iter()
        .map(|s| format!("{}%:{:.0}", s.progress_pct, s.rss_mb))
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("mode", r.mode.to_string()),
        ("events", group_thousands(r.events as i64)),
        ("payload_bytes_avg", format!("{:.1}", r.payload_bytes_avg)),
        ("prefill_eps", int(r.prefill_eps)),
        ("raw_consume_eps", int(r.raw_consume_eps)),
        (
            "raw_consume_eps_default_fetch_wait",
            int(r.raw_consume_eps_default_fetch_wait),
        ),
        ("decode_eps", int(r.decode_eps)),
        ("pipeline_eps", int(r.pipeline_eps)),
        ("pipeline_eps_wall", int(r.pipeline_eps_wall)),
        (
            "pipeline_startup_secs",
            format!("{:.1}", r.pipeline_startup_secs),
        ),
        ("pipeline_vs_raw", format!("{:.2}", r.pipeline_vs_raw)),
        ("rss_peak_mb", format!("{:.1}", r.rss_peak_mb)),
        ("rss_sampled_max_mb", format!("{:.1}", r.rss_sampled_max_mb)),
        (
            "pipeline_eps_high_cardinality",
            int(r.pipeline_eps_high_cardinality),
        ),
        (
            "rss_peak_mb_high_cardinality",
            format!("{:.1}", r.rss_peak_mb_high_cardinality),
        ),
        ("rss_hc_samples (MB)", hc.join(" ")),
        ("ws_clients", r.ws_clients.to_string()),
        ("ws_clients_dropped", r.ws_clients_dropped.to_string()),
        ("ws_probes", r.ws_probes.to_string()),
        ("ws_latency_p50_ms", format!("{:.1}", r.ws_latency_p50_ms)),
        ("ws_latency_p99_ms", format!("{:.1}", r.ws_latency_p99_ms)),
        ("ws_latency_max_ms", format!("{:.1}", r.ws_latency_max_ms)),
        ("ws_latency_missed", r.ws_latency_missed.to_string()),
        ("rss_ws_mb", format!("{:.1}", r.rss_ws_mb)),
        (
            "rss_ws_before_clients_mb",
            format!("{:.1}", r.rss_ws_before_clients_mb),
        ),
        ("peer_events", group_thousands(r.peer_events as i64)),
        ("peer_eps", opt(r.peer_eps, &int)),
        ("vs_peer", opt(r.vs_peer, &|v| format!("{v:.1}"))),
    ];
    rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn print_table(r: &Report) {
    let targets: HashMap<&str, &Target> = r.targets.iter().map(|t| (t.metric, t)).collect();
    let rows = rows(r);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0).min(40);
    println!();
    println!(
        "{:<width$}  {:>vwidth$}  {:<10}  met",
        "metric", "value", "target"
    );
    println!("{}", "-".repeat(width + vwidth + 19));
    for (k, v) in &rows {
        let (target, met) = match targets.get(k.as_str()) {
            Some(t) => (
                format!("{} {}", t.op, t.threshold),
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "n/a",
                },
            ),
            None => (String::new(), ""),
        };
        println!("{k:<width$}  {v:>vwidth$}  {target:<10}  {met}");
    }
    if let Some(note) = &r.peer_note {
        println!("\npeer: {note}");
    }
    if !r.child_kafka_options.is_empty() {
        println!(
            "pulseboard children ran with --kafka-option {}",
            r.child_kafka_options.join(" --kafka-option ")
        );
    }
    println!(
        "machine: {} x {}, {} MB, load at start {}",
        r.machine.nproc, r.machine.cpu_model, r.machine.mem_total_mb, r.machine.loadavg_at_start
    );
}

fn group_thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        out.insert(0, '-');
    }
    out
}

fn write_json(path: &Path, report: &Report) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(report).context("serialising the results")?;
    fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}
