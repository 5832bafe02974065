//! Step 7: the same windowed job in other stream processors, on the same broker and topic.
//!
//! The job (bench/peers/README.md): 10 s tumbling windows by event time (`ts`), 5 s of
//! allowed lateness, per window the events, the counts by type and the unique visitors.
//!
//! Contract of a peer process: `<launcher> --brokers B --topic T --output-topic O --group G
//! --state-dir DIR --events N`.
//! - Throughput (N > 0): it reads T from the beginning with a fresh group; when N input
//!   messages went through its window step it prints one JSON line (`events`, `malformed`,
//!   `first_ms`, `last_ms`, `seconds`, `eps`; the JVM peers also `jvm_start_ms` and
//!   `startup_ms`) and exits 0. `eps` is its own count from its first to its N-th message.
//! - Latency (N = 0): it runs until SIGTERM, writing every window update to O as JSON
//!   `{"start","end","events",..}`, maybe as partials with a `bucket` that add up per start
//!   (see [`latency`]).
//!
//! The JVM peers read the whole of `bench`, the same N events Pulseboard read; Quix Streams,
//! at a few thousand events/s, its first `--quix-events` (its `share` of the topic is in
//! the report). Start-up (process start to first
//! message) is reported beside eps, never folded into it. Peak RSS is the VmHWM of the peer's
//! process (the JVM, Spark's local executors included; python), sampled every 100 ms while
//! it runs. A peer that is not built or not wanted is skipped with a note; a peer that fails
//! keeps its error in the report and makes the run exit non-zero.

mod jvm;
mod latency;
mod quix;

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::process;
use serde::Deserialize;

use crate::load::TOPIC;
use crate::probe::percentile;
use crate::report::{PeerReport, Report};
use crate::{now_ms, step, Plan};

/// One peer: what it is, and how to start it or why it is skipped.
pub struct Peer {
    /// Its key in the report (`spark`, `kafka_streams`, `quix`).
    key: &'static str,
    version: String,
    launch: Result<Launch, String>,
    /// Messages its throughput run processes.
    events: u64,
    /// The slowest rate (events/s) at which the throughput run is still waited for.
    min_eps: u64,
    /// What to know when reading its numbers (added to its note).
    remark: &'static str,
    /// Its job, in words (the table shows it beside Pulseboard's).
    job: &'static str,
    /// The JVM's flags, for a JVM peer.
    jvm_flags: Option<Vec<String>>,
}

/// A command line that takes the contract's flags after `args`.
pub struct Launch {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(&'static str, &'static str)>,
}

/// The flags of one peer run.
struct RunArgs<'a> {
    brokers: &'a str,
    topic: &'a str,
    output: &'a str,
    events: u64,
}

/// Run every peer; returns the keys of those that failed.
pub fn measure(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Vec<&'static str> {
    let peers = [jvm::spark(plan), jvm::kafka_streams(plan), quix::peer(plan)];
    let mut failed = Vec::new();
    for peer in peers {
        let slot = report.peers.get_mut(peer.key);
        slot.version = peer.version.clone();
        slot.job = peer.job.to_owned();
        slot.jvm_flags = peer.jvm_flags.clone();
        let launch = match &peer.launch {
            Ok(launch) => launch,
            Err(skipped) => {
                step(&format!("peer {}: skipped: {skipped}", peer.key));
                slot.note = Some(format!("skipped: {skipped}"));
                continue;
            }
        };
        let mut errors = Vec::new();
        step(&format!(
            "peer {}: throughput on `{TOPIC}`, {} messages",
            peer.key, peer.events
        ));
        if let Err(e) = throughput(rt, &peer, launch, brokers, plan.events, slot) {
            step(&format!("peer {}: throughput failed: {e:#}", peer.key));
            errors.push(format!("throughput: {e:#}"));
        }
        step(&format!("peer {}: latency", peer.key));
        match latency::measure(rt, &peer, launch, brokers, plan.ws_probe_for) {
            Ok(run) => {
                let (lat, probes) = (&run.latencies_ms, run.probes);
                slot.latency_p50_ms = Some(percentile(lat, 50.0)).filter(|v| v.is_finite());
                slot.latency_p99_ms = Some(percentile(lat, 99.0)).filter(|v| v.is_finite());
                slot.latency_max_ms = lat.last().copied();
                slot.latency_probes = Some(probes);
                slot.latency_missed = Some(run.missed);
                let note = format!("latency: {probes} probes over {:?}", plan.ws_probe_for);
                slot.note = Some(match slot.note.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
            }
            Err(e) => {
                step(&format!("peer {}: latency failed: {e:#}", peer.key));
                errors.push(format!("latency: {e:#}"));
            }
        }
        if !peer.remark.is_empty() {
            slot.note = Some(match slot.note.take() {
                Some(n) => format!("{n}; {}", peer.remark),
                None => peer.remark.to_owned(),
            });
        }
        if !errors.is_empty() {
            slot.error = Some(errors.join("; "));
            failed.push(peer.key);
        }
    }
    failed
}

/// The line a peer prints at the end of a throughput run.
#[derive(Debug, Deserialize)]
struct ResultLine {
    events: u64,
    #[serde(default)]
    malformed: Option<u64>,
    #[serde(default)]
    first_ms: Option<i64>,
    seconds: f64,
    eps: f64,
    #[serde(default)]
    startup_ms: Option<f64>,
}

/// The peer on `bench`: its own first-to-last-message rate, start-up, peak RSS.
fn throughput(
    rt: &tokio::runtime::Runtime,
    peer: &Peer,
    launch: &Launch,
    brokers: &str,
    in_topic: u64,
    slot: &mut PeerReport,
) -> Result<()> {
    let output = format!("{TOPIC}_out_{}", peer.key);
    rt.block_on(create_topic(brokers, &output, 1, 1))?;
    let dir = state_dir(peer.key)?;
    let log = dir.path().join("peer.log");
    let run = RunArgs {
        brokers,
        topic: TOPIC,
        output: &output,
        events: peer.events,
    };
    let spawned_ms = now_ms();
    let mut child = spawn(launch, &run, peer.key, dir.path(), &log, Stdio::piped())?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::BufReader::new(stdout).read_to_string(&mut out);
        out
    });
    let timeout = Duration::from_secs(180 + peer.events / peer.min_eps.max(1));
    let waited = wait_sampling_rss(&mut child, timeout);
    let out = reader.join().unwrap_or_default();
    let (status, peak_rss_mb) =
        waited.map_err(|e| anyhow!("{e:#}{}", process::log_tail(&log, 15)))?;
    slot.peak_rss_mb = peak_rss_mb;
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if !status.success() {
        bail!(
            "exited with {status}: {last}{}",
            process::log_tail(&log, 15)
        );
    }
    let line: ResultLine = serde_json::from_str(last).with_context(|| {
        format!(
            "its result line {last:?} is not JSON{}",
            process::log_tail(&log, 15)
        )
    })?;
    if line.events != peer.events {
        bail!("it processed {} messages, not {}", line.events, peer.events);
    }
    slot.events = Some(line.events);
    slot.share = Some(line.events as f64 / in_topic.max(1) as f64);
    slot.malformed = line.malformed;
    slot.eps = Some(line.eps);
    slot.seconds = Some(line.seconds);
    // The JVM peers measure from the JVM's own start; otherwise from the spawn.
    slot.startup_ms = line
        .startup_ms
        .or_else(|| line.first_ms.map(|f| (f - spawned_ms) as f64));
    let which = if line.events < in_topic {
        format!("the first {} of the {in_topic}", line.events)
    } else {
        format!("all {in_topic}")
    };
    slot.note = Some(format!(
        "{which} messages of `{TOPIC}`, {:.1} s from its first to its last message",
        line.seconds
    ));
    Ok(())
}

/// A temporary state directory for one peer run.
fn state_dir(key: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("pulseboard-peer-{key}-"))
        .tempdir()
        .context("creating a temp dir")
}

/// Start one peer run; stderr goes to `log`, stdout where asked.
fn spawn(
    launch: &Launch,
    run: &RunArgs<'_>,
    key: &str,
    state: &Path,
    log: &Path,
    stdout: Stdio,
) -> Result<Child> {
    let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().copied())
        .args(["--brokers", run.brokers, "--topic", run.topic])
        .args(["--output-topic", run.output])
        .args(["--group", &format!("bench-{key}-{:08x}", fastrand::u32(..))])
        .arg("--state-dir")
        .arg(state.join("state"))
        .args(["--events", &run.events.to_string()])
        .current_dir(state)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log_file);
    process::spawn(cmd).with_context(|| format!("starting peer {key}"))
}

/// Wait for `child` to exit (killed after `timeout`), sampling its VmHWM every 100 ms.
fn wait_sampling_rss(child: &mut Child, timeout: Duration) -> Result<(ExitStatus, Option<f64>)> {
    let deadline = Instant::now() + timeout;
    let mut peak: Option<f64> = None;
    loop {
        if let Some(mb) = process::peak_rss_mb(child.id()) {
            peak = Some(peak.map_or(mb, |p: f64| p.max(mb)));
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no result within {timeout:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
