//! `pulseboard-bench`: Pulseboard end to end on Apache Kafka, and the same job in its peers,
//! in one run:
//!
//! 1. prefill topic `bench` (4 partitions) of a one-node Apache Kafka with N realistic
//!    canonical events;
//! 2. `raw_consume_eps`: a consumer with the pipeline's own client configuration reading
//!    them back, every payload byte read (the limit); `raw_consume_eps_bare`: the bench's
//!    bare loop of before;
//! 3. `decode_eps`: the canonical decoder on the same payloads, in memory, one thread, into
//!    one reused event as the pipeline decodes; 3b. `sites`: counting and encoding windows of
//!    one site, then two, then one with the property `plan` kept, and decoding with and
//!    without it ([`load::measure_sites`]);
//! 4. `pipeline_eps`: the release `pulseboard` binary as a child process (default flags,
//!    so the default `--checkpoint-interval`), consuming `bench` without a state topic;
//!    4c. `pipeline_eps_transactional`: the same with the state topic (a Kafka transaction
//!    per checkpoint), as users run it with a broker, its ratio
//!    `transactional_vs_pipeline` and `bytes_written_per_event`;
//!    4d. `pipeline_eps_same_job`: the same without segment tables
//!    (`--segment-dimensions none`), the job the peers run (`vs_*_same_job`);
//!    4b. `pipeline_eps_reconnect_storm`: the pipeline on `bench_storm` (the same events, 4×
//!    as many) while 1,000 WebSocket clients connect, read their snapshot and leave in a
//!    loop, with the server's default session pacing, then without it; in 3 rounds, each
//!    against its own run without clients (`reconnect_storm_ratio`, `_unpaced`: medians);
//! 5. `rss_peak_mb` of that child, and of a child fed N events with distinct URLs;
//! 6. `ws_latency_p50_ms`/`p99`: 1,000 WebSocket clients watching paced probe events;
//! 7. `peers`: the same windowed job in Spark Structured Streaming and Kafka Streams
//!    (`bench/peers/`, on the whole of `bench`, each JVM with the smallest heap that keeps
//!    its rate) and in Quix Streams (`bench/peer_quix.py`, on its first messages, its share
//!    stated): events/s from first to last message with start-up apart, peak RSS, then each
//!    peer's end-to-end latency on paced probes (see [`peers`]); `vs_*` divide
//!    `pipeline_eps_transactional` by their eps;
//! 8. `restore_empty_instance_ms`: one hour of history read by one instance of a group; an
//!    instance with an empty data dir joins: until it serves the whole history;
//! 9. history through the real server ([`history`]): a child with the defaults and two goals
//!    fed a compressed simulated day of realistic traffic, then live traffic with one kiosk
//!    watching: the bytes of a window, minute and hour row, `history_bytes_per_day`, the
//!    state topic's bytes per window, `ws_bytes_per_s_kiosk`.
//!
//! Prints one table and writes the numbers as JSON (see `--help`). It is a measurement: it
//! exits 0 when targets are missed and non-zero only when something broke (a step failed, or
//! a peer that was run crashed; the results are written first).
//!
//! # Layout
//! - `main`: arguments, the plan, the order of the steps.
//! - [`load`]: the bulk producer and the decoder (steps 1, 3); [`raw`]: the raw consumers
//!   (step 2).
//! - [`child`]: the pulseboard child watched through its status API (steps 4–5);
//!   [`restore`] (step 8); [`history`] and [`kiosk`] (step 9); [`state_topic`]: a child's
//!   state topic read back (steps 4c, 9).
//! - [`ws`]: the reconnect storm (step 4b) and the 1,000-client WebSocket probe (step 6).
//! - [`probe`]: paced probe events and when their counts became visible (steps 6–7).
//! - [`peers`]: Spark, Kafka Streams and Quix Streams as child processes (step 7).
//! - [`report`]: the results, targets, the table and the JSON.

mod child;
mod history;
mod kiosk;
mod load;
mod peers;
mod probe;
mod raw;
mod report;
mod restore;
mod state_topic;
mod ws;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use pulseboard_testkit::kafka::{self, Jvm, Kafka, KafkaConfig};
use pulseboard_testkit::process;

use crate::report::Report;

/// Partitions of every input topic.
const PARTITIONS: i32 = 4;
/// File descriptors the WebSocket step needs (1,000 sockets on each side, plus Kafka).
const WANT_FDS: u64 = 8_192;
const MIN_FDS: u64 = 4_096;
/// Clients of the reconnect storm (step 4b); `--quick` runs a tenth of them.
const STORM_CLIENTS: usize = 1_000;

const SETUP: &str = "\
Run (from the workspace root):
  cargo xtask bench [--quick] [ARGS]
which installs what is missing (a JDK, Maven, the Apache Kafka jars, the Quix Streams venv),
builds the release pulseboard and, unless JVM peers are off, the JVM peers in bench/peers/
(Maven), then runs `cargo run --release -p pulseboard-bench -- ARGS` with the environment below.

Environment:
  PULSEBOARD_BIN          release pulseboard binary (default: $CARGO_TARGET_DIR/release/pulseboard,
                          else target/release/pulseboard of the workspace)
  PULSEBOARD_KAFKA_LIBS   the Apache Kafka broker's jars (default: the cache of `cargo xtask setup`)
  PULSEBOARD_PEER_PYTHON  python of a venv with bench/requirements.txt; unset: Quix is skipped
  PULSEBOARD_PEERS_DIR    the built JVM peers: <dir>/<peer>/peer.jar and <dir>/<peer>/libs/*.jar
                          for <peer> = spark, kafka-streams (default: ~/.cache/pulseboard/peers,
                          or $PULSEBOARD_CACHE/peers); a peer missing there is skipped with a note

The WebSocket step needs about 2,100 open files in each process; the bench raises its soft
RLIMIT_NOFILE to the hard limit (the child inherits it). If the hard limit is below 4096,
run it under `ulimit -n 8192`.

Relative paths given to --out are resolved against the workspace root.";

/// Pulseboard end-to-end benchmark on Apache Kafka (release binary, 1,000 WebSockets) against
/// Spark, Kafka Streams and Quix Streams.
#[derive(Debug, Parser)]
#[command(name = "pulseboard-bench", after_help = SETUP)]
struct Args {
    /// Small sizes (200,000 events, 20,000 Quix events, 8 s of probes, 100 reconnecting
    /// clients, a 5-minute day and 20 s of live traffic for history), JVM peers off.
    #[arg(long)]
    quick: bool,
    /// Events prefilled and consumed by Pulseboard and the JVM peers (default 2,000,000;
    /// --quick 200,000).
    #[arg(long)]
    events: Option<u64>,
    /// Messages the Quix Streams peer processes: the first N of the same topic (default
    /// 200,000; --quick 20,000). At a few thousand events/s it cannot take the whole topic.
    #[arg(long, alias = "peer-events")]
    quix_events: Option<u64>,
    /// Run the JVM peers (Spark, Kafka Streams): the default, except with --quick.
    #[arg(long, overrides_with = "no_jvm_peers")]
    jvm_peers: bool,
    /// Skip the JVM peers.
    #[arg(long, overrides_with = "jvm_peers")]
    no_jvm_peers: bool,
    /// Extra librdkafka option KEY=VALUE for every pulseboard child (repeatable), e.g.
    /// `fetch.wait.max.ms=10`; none by default.
    #[arg(long = "child-kafka-option", value_name = "KEY=VALUE")]
    child_kafka_options: Vec<String>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Prefill `bench`, print the broker's address, and keep it running until a line is
    /// read on stdin (for profiling a pulseboard by hand); then stop without measuring.
    #[arg(long)]
    hold: bool,
    /// Run only step 9, history through the server (Apache Kafka and a pulseboard child,
    /// the compressed day and the live traffic with a kiosk), and print its figures.
    #[arg(long)]
    history_only: bool,
}

/// Everything one run needs, resolved from the arguments and the environment.
pub(crate) struct Plan {
    pub mode: &'static str,
    pub events: u64,
    pub quix_events: u64,
    pub ws_probe_for: Duration,
    /// Events of the hour of history of the restore step (step 8).
    pub restore_events: u64,
    /// Clients of the reconnect storm (step 4b).
    pub storm_clients: usize,
    pub out: PathBuf,
    pub pulseboard: PathBuf,
    pub peer_python: Option<PathBuf>,
    pub jvm_peers: bool,
    pub peers_dir: PathBuf,
    pub child_kafka_options: Vec<String>,
    pub hold: bool,
    /// The sizes of step 9.
    pub day: history::DayPlan,
    pub history_only: bool,
}

/// The workspace this bench was built in (its scripts and peer poms are read from there).
pub(crate) fn workspace_root() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    bench.parent().unwrap_or(bench).to_path_buf()
}

impl Plan {
    fn from_args(args: Args) -> Result<Plan> {
        let root = workspace_root();
        let pulseboard = match std::env::var_os("PULSEBOARD_BIN") {
            Some(p) => root.join(p),
            None => std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), |t| root.join(t))
                .join("release/pulseboard"),
        };
        if !pulseboard.is_file() {
            bail!(
                "no pulseboard binary at {} (build it with `cargo build --release -p pulseboard`, or set PULSEBOARD_BIN)",
                pulseboard.display()
            );
        }
        let peers_dir = std::env::var_os("PULSEBOARD_PEERS_DIR")
            .map_or_else(|| kafka::cache_dir().join("peers"), PathBuf::from);
        let (mode, events, quix_events, ws_secs, storm_clients) = if args.quick {
            ("quick", 200_000, 20_000, 8, STORM_CLIENTS / 10)
        } else {
            ("default", 2_000_000, 200_000, 20, STORM_CLIENTS)
        };
        let jvm_peers = if args.quick {
            args.jvm_peers
        } else {
            !args.no_jvm_peers
        };
        Ok(Plan {
            mode,
            events: args.events.unwrap_or(events).max(1),
            quix_events: args.quix_events.unwrap_or(quix_events).max(1),
            ws_probe_for: Duration::from_secs(ws_secs),
            // 100 events/s over the hour (10/s with --quick).
            restore_events: if args.quick { 36_000 } else { 360_000 },
            storm_clients,
            out: root.join(args.out),
            pulseboard,
            peer_python: std::env::var_os("PULSEBOARD_PEER_PYTHON").map(PathBuf::from),
            jvm_peers,
            peers_dir,
            child_kafka_options: args.child_kafka_options,
            hold: args.hold,
            day: history::DayPlan::new(args.quick),
            history_only: args.history_only,
        })
    }
}

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
    let fds = process::raise_fd_limit(WANT_FDS)?;
    if fds < MIN_FDS {
        bail!("open-file limit is {fds}, the WebSocket step needs {MIN_FDS}: run under `ulimit -n {WANT_FDS}`");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut report = Report::new(plan);
    step(&format!(
        "{} mode: {} events, pulseboard {}",
        plan.mode,
        plan.events,
        plan.pulseboard.display()
    ));
    step(&format!(
        "starting Apache Kafka {} (one node)",
        kafka::kafka_version()
    ));
    let broker = Kafka::start_with(KafkaConfig {
        jvm: Jvm::Bench,
        ..KafkaConfig::default()
    })
    .context("starting Apache Kafka")?;
    let brokers = broker.bootstrap();
    if plan.history_only {
        history::measure(&rt, plan, &brokers, &mut report)?;
        println!("{}", serde_json::to_string_pretty(&report.history)?);
        return Ok(ExitCode::SUCCESS);
    }

    let payloads = load::prefill_canonical(&rt, &brokers, plan.events, &mut report)?;
    if plan.hold {
        child::prefill_high_cardinality(&rt, &brokers, plan.events)?;
        println!("holding: Apache Kafka at {brokers}, topics `bench` and `bench_hc` prefilled with {} events each; press Enter to stop", plan.events);
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return Ok(ExitCode::SUCCESS);
    }
    let broker_pid = broker.pid(0);
    let ends = raw::measure_raw_consume(plan, &brokers, broker_pid, &mut report)?;
    load::measure_decode(&payloads, &mut report)?;
    load::measure_sites(payloads.len() as u64, &mut report)?;
    drop(payloads);
    let pipeline = child::PipelineRuns {
        rt: &rt,
        plan,
        brokers: &brokers,
        broker_pid,
        target: ends,
    };
    pipeline.measure_pipeline(&mut report)?;
    pipeline.measure_transactional(&mut report)?;
    pipeline.measure_same_job(&mut report)?;
    ws::measure_reconnect_storm(&rt, plan, &brokers, &mut report)?;
    child::measure_high_cardinality(&rt, plan, &brokers, &mut report)?;
    ws::measure_websockets(&rt, plan, &brokers, &mut report)?;
    restore::measure_restore(&rt, plan, &brokers, &mut report)?;
    history::measure(&rt, plan, &brokers, &mut report)?;
    let peers_failed = peers::measure(&rt, plan, &brokers, &mut report);
    drop(broker);

    report.finish();
    report::print_table(&report);
    report::write_json(&plan.out, &report)?;
    println!("\nresults written to {}", plan.out.display());
    if peers_failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("\npeers that failed: {}", peers_failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// A progress line on stderr.
pub(crate) fn step(what: &str) {
    eprintln!("[bench] {what}");
}

/// Wall-clock time in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
