//! Step 6: Pulseboard's own end-to-end latency, as 1,000 dashboards see it.
//!
//! Contract: a fresh child on a fresh topic, 1,000 WebSocket clients connected (each must
//! complete its handshake), then paced probes ([`crate::probe`]). Each client notes when each
//! window's count grew; every (client, probe) pair is a latency sample, from the probe's send
//! to the client's read of the frame that counted it. A client that is closed or never saw a
//! probe is reported, not hidden.
//!
//! Step 4b, the reconnect storm ([`measure_reconnect_storm`]): the pipeline run of step 4
//! again, while [`Plan::storm_clients`] clients each connect, read their first frame (which
//! must be a snapshot), close and connect again, until the topic is consumed; kiosks after
//! a server restart, at their worst. A client whose attempt fails (a `503` from the
//! server's session pacing included) waits [`STORM_RETRY_AFTER`] before the next one, as a
//! kiosk backs off; failures are counted. It runs twice: with the server's default pacing
//! and without (`--ws-connect-rate 0`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::net::{get_json, poll_until};
use pulseboard_testkit::process;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::child::{self, consumed, Child, CpuSplit, Workload};
use crate::probe::{self, percentile, WindowSteps, PROBE_EVERY};
use crate::report::{Report, StormFigures};
use crate::{step, Plan, PARTITIONS};

const TOPIC_WS: &str = "bench_ws";
const WS_CLIENTS: usize = 1_000;
/// A storm client's pause after a failed attempt (none after a successful one).
const STORM_RETRY_AFTER: Duration = Duration::from_millis(100);
/// How long one storm attempt (handshake and snapshot) may take before it counts as failed.
const STORM_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// Rounds of step 4b. One busy moment of the machine moves a short run by 15 %; a round
/// compares runs made side by side, and the report takes the median round.
const STORM_ROUNDS: usize = 3;
/// The topic of step 4b: canonical events as in `bench`, [`STORM_EVENTS_FACTOR`] times as
/// many (default mode), so each run lasts long enough (~15 s at 600,000 events/s, rather
/// than `bench`'s 3–4 s) for the storm's effect to stand out of the machine's noise.
const TOPIC_STORM: &str = "bench_storm";
const STORM_EVENTS_FACTOR: u64 = 4;

/// Step 4b: `pipeline_eps` again, under a reconnect storm of [`Plan::storm_clients`] clients,
/// in [`STORM_ROUNDS`] rounds (one with `--quick`). A round runs the pipeline three times on
/// the same topic, fresh child each: without clients (its baseline), with the storm and the
/// child's default session pacing (`--ws-connect-rate`: what users run, the report's
/// `reconnect_storm_*` figures), and with the storm and no pacing (`--ws-connect-rate 0`:
/// `reconnect_storm_unpaced`), so the report shows what the pacing buys and what it costs
/// (how long an attempt waits for its snapshot). A ratio is storm ÷ baseline of its round;
/// the report gives the median of the rounds' ratios, and every round.
pub fn measure_reconnect_storm(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    let clients = plan.storm_clients;
    report.reconnect_storm_clients = clients;
    let quick = plan.mode == "quick";
    let rounds = if quick { 1 } else { STORM_ROUNDS };
    let events = if quick {
        plan.events
    } else {
        plan.events * STORM_EVENTS_FACTOR
    };
    step(&format!(
        "reconnect storm: prefilling `{TOPIC_STORM}` with {events} events"
    ));
    rt.block_on(create_topic(brokers, TOPIC_STORM, PARTITIONS, 1))?;
    crate::load::prefill_canonical_stream(brokers, TOPIC_STORM, events)?;
    report.reconnect_storm_events = events;
    let work = Workload {
        topic: TOPIC_STORM,
        events,
        target: events as i64,
    };
    let (mut paced, mut unpaced) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        step(&format!(
            "reconnect storm, round {round} of {rounds}: baseline without clients"
        ));
        let (baseline, (), _) =
            child::pipeline_under_load(rt, plan, brokers, work, &[], |_, stop| async move {
                stop.cancelled().await;
                Ok(())
            })?;
        report.reconnect_storm_baseline_eps.push(baseline);
        paced.push((
            baseline,
            storm_run(rt, plan, brokers, work, "paced (default)", &[])?,
        ));
        unpaced.push((
            baseline,
            storm_run(
                rt,
                plan,
                brokers,
                work,
                "unpaced (--ws-connect-rate 0)",
                &["--ws-connect-rate", "0"],
            )?,
        ));
    }
    report.reconnect_storm = StormFigures::of_rounds(paced);
    report.reconnect_storm_unpaced = StormFigures::of_rounds(unpaced);
    Ok(())
}

/// One storm run: the child started with `args` added.
fn storm_run(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    work: Workload<'_>,
    label: &str,
    args: &[&str],
) -> Result<(f64, Storm, CpuSplit)> {
    let clients = plan.storm_clients;
    step(&format!(
        "reconnect storm, {label}: pulseboard child consuming `{}` while {clients} WebSocket clients reconnect in a loop",
        work.topic
    ));
    let (eps, storm, cpu) =
        child::pipeline_under_load(rt, plan, brokers, work, args, move |addr, stop| {
            reconnect_storm(addr, clients, stop)
        })?;
    if storm.snapshots == 0 {
        bail!(
            "no storm client got a snapshot ({} failed attempts; last error: {})",
            storm.failures,
            storm.last_error.as_deref().unwrap_or("none")
        );
    }
    if storm.not_snapshot > 0 {
        bail!(
            "{} storm clients got a first frame that was not a snapshot",
            storm.not_snapshot
        );
    }
    if let Some(e) = &storm.last_error {
        step(&format!(
            "reconnect storm, {label}: {} failed attempts, the last: {e}",
            storm.failures
        ));
    }
    Ok((eps, storm, cpu))
}

impl StormFigures {
    /// The figures of storm runs, each with the baseline of its round: eps and ratio are the
    /// medians (the ratio is taken per round), the rest is summed or pooled over the rounds.
    fn of_rounds(runs: Vec<(f64, (f64, Storm, CpuSplit))>) -> StormFigures {
        let mut eps: Vec<f64> = runs.iter().map(|(_, (e, _, _))| *e).collect();
        let round_ratios: Vec<f64> = runs
            .iter()
            .map(|(base, (e, _, _))| if *base > 0.0 { e / base } else { 0.0 })
            .collect();
        let mut ratios = round_ratios.clone();
        eps.sort_by(f64::total_cmp);
        ratios.sort_by(f64::total_cmp);
        let (mut snapshots, mut failures, mut secs) = (0, 0, 0.0);
        let (mut server_cpu_s, mut client_cpu_s) = (0.0, 0.0);
        let mut attempts = Vec::new();
        for (_, (_, storm, cpu)) in runs {
            snapshots += storm.snapshots;
            failures += storm.failures;
            secs += storm.secs;
            server_cpu_s += cpu.server_s;
            client_cpu_s += cpu.load_s;
            attempts.extend(storm.attempt_ms);
        }
        attempts.sort_by(f64::total_cmp);
        StormFigures {
            pipeline_eps: percentile(&eps, 50.0),
            ratio: percentile(&ratios, 50.0),
            round_ratios,
            snapshots,
            snapshots_per_s: snapshots as f64 / f64::max(secs, 1e-3),
            failures,
            attempt_p50_ms: percentile(&attempts, 50.0),
            attempt_p99_ms: percentile(&attempts, 99.0),
            server_cpu_s,
            client_cpu_s,
        }
    }
}

/// What the storm clients did, together.
#[derive(Debug, Default)]
pub struct Storm {
    /// Snapshots read (one per completed connection).
    pub snapshots: u64,
    /// Attempts that did not end with a snapshot (refused, reset, timed out).
    pub failures: u64,
    /// First frames that were not a snapshot.
    pub not_snapshot: u64,
    pub last_error: Option<String>,
    /// From the first attempt until `stop`.
    pub secs: f64,
    /// Of each attempt that got its snapshot: ms from the start of the connect to the
    /// snapshot read (a paced session's wait for its turn included).
    pub attempt_ms: Vec<f64>,
}

#[derive(Default)]
struct StormCounts {
    snapshots: AtomicU64,
    failures: AtomicU64,
    not_snapshot: AtomicU64,
}

/// `clients` clients connecting, reading their snapshot and closing, over and over, until
/// `stop`.
pub async fn reconnect_storm(
    addr: SocketAddr,
    clients: usize,
    stop: CancellationToken,
) -> Result<Storm> {
    let url = format!("ws://{addr}/ws");
    let counts = Arc::new(StormCounts::default());
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(storm_client(url.clone(), counts.clone(), stop.clone())))
        .collect();
    let mut last_error = None;
    let mut attempt_ms = Vec::new();
    for t in tasks {
        let (error, ms) = t.await.context("a storm client panicked")?;
        if error.is_some() {
            last_error = error;
        }
        attempt_ms.extend(ms);
    }
    Ok(Storm {
        snapshots: counts.snapshots.load(Ordering::Relaxed),
        failures: counts.failures.load(Ordering::Relaxed),
        not_snapshot: counts.not_snapshot.load(Ordering::Relaxed),
        last_error,
        secs: started.elapsed().as_secs_f64(),
        attempt_ms,
    })
}

/// One storm client; returns its last error, if any, and the duration of each attempt that
/// got a snapshot.
async fn storm_client(
    url: String,
    counts: Arc<StormCounts>,
    stop: CancellationToken,
) -> (Option<String>, Vec<f64>) {
    let mut last_error = None;
    let mut attempt_ms = Vec::new();
    while !stop.is_cancelled() {
        let began = Instant::now();
        let attempt = tokio::time::timeout(STORM_ATTEMPT_TIMEOUT, connect_read_snapshot(&url));
        let outcome = tokio::select! {
            _ = stop.cancelled() => break,
            r = attempt => r.unwrap_or_else(|_| Err(anyhow!("no snapshot within {STORM_ATTEMPT_TIMEOUT:?}"))),
        };
        match outcome {
            Ok(true) => {
                attempt_ms.push(began.elapsed().as_secs_f64() * 1e3);
                counts.snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {
                counts.not_snapshot.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counts.failures.fetch_add(1, Ordering::Relaxed);
                last_error = Some(format!("{e:#}"));
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(STORM_RETRY_AFTER) => {}
                }
            }
        }
    }
    (last_error, attempt_ms)
}

/// Connect, read the first text frame, close. `Ok(true)` when that frame was a snapshot.
async fn connect_read_snapshot(url: &str) -> Result<bool> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let first = loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(text))) => break text,
            Some(Ok(WsMessage::Close(f))) => bail!("closed before the snapshot: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before the snapshot"),
        }
    };
    // Say goodbye; the client does not wait for the server's reply.
    let _ = ws.close(None).await;
    Ok(is_snapshot(&first))
}

/// A server message is internally tagged, with the tag first.
fn is_snapshot(text: &str) -> bool {
    text.starts_with(r#"{"type":"snapshot""#)
}

/// Step 6: 1,000 WebSocket clients and paced probe events on one partition.
pub fn measure_websockets(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    step(&format!("websockets: {WS_CLIENTS} clients"));
    rt.block_on(create_topic(brokers, TOPIC_WS, PARTITIONS, 1))?;
    let mut child = Child::spawn(plan, brokers, TOPIC_WS, &["--window", "10s"])?;
    let ws = rt
        .block_on(ws_run(
            brokers,
            child.addr(),
            child.pid(),
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
    report.rss_ws_mb = ws.rss_mb;
    report.rss_ws_before_clients_mb = ws.rss_before_clients_mb;
    child.stop();
    Ok(())
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The two fields of a window a client needs; everything else is skipped. A change carries
/// `events` only when the count changed.
#[derive(Deserialize)]
struct WindowCount {
    start: i64,
    events: Option<u64>,
}

/// `snapshot` and `changes` messages carry `windows` (a status change has none).
#[derive(Deserialize)]
struct Frame {
    #[serde(default)]
    windows: Vec<WindowCount>,
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    steps: WindowSteps,
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
            if let Some(events) = w.events {
                self.steps.observe(w.start, events, at);
            }
        }
    }
}

struct WsRun {
    clients: usize,
    dropped: usize,
    probes: usize,
    latencies_ms: Vec<f64>,
    missed: usize,
    rss_mb: f64,
    rss_before_clients_mb: f64,
}

fn rss_mb(pid: u32) -> Result<f64> {
    process::rss_mb(pid).ok_or_else(|| anyhow!("no VmRSS of pulseboard ({pid})"))
}

async fn ws_run(
    brokers: &str,
    addr: SocketAddr,
    pid: u32,
    clients: usize,
    probe_for: Duration,
) -> Result<WsRun> {
    let producer = probe::producer(brokers)?;
    probe::send_warm_up(&producer, TOPIC_WS).await?;
    poll_until(
        Duration::from_secs(60),
        "pulseboard to consume the warm-up event",
        || async {
            (consumed(&get_json(addr, "/api/v1/status").await?, TOPIC_WS) >= 1).then_some(())
        },
    )
    .await?;
    let rss_before_clients_mb = rss_mb(pid)?;
    let streams = connect_clients(addr, clients).await?;
    let stop = CancellationToken::new();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|ws| tokio::spawn(read_windows(ws, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await; // every client has its snapshot
    step(&format!(
        "websockets: probing every {PROBE_EVERY:?} for {probe_for:?}"
    ));
    let probes = probe::send_probes(&producer, TOPIC_WS, probe_for).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // the last probes reach the clients
    let rss_mb = rss_mb(pid)?;
    stop.cancel();
    let mut logs = Vec::with_capacity(readers.len());
    for r in readers {
        logs.push(r.await.context("a WebSocket client task panicked")?);
    }
    let (latencies_ms, missed) = probe::latencies(logs.iter().map(|l| &l.steps), &probes);
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
        rss_mb,
        rss_before_clients_mb,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(eps: f64, snapshots: u64, attempt_ms: Vec<f64>) -> (f64, Storm, CpuSplit) {
        let storm = Storm {
            snapshots,
            secs: 2.0,
            attempt_ms,
            ..Storm::default()
        };
        (eps, storm, CpuSplit::default())
    }

    #[test]
    fn a_storm_ratio_is_taken_per_round_against_its_own_baseline_then_the_median() {
        // Round 2 ran on a slow moment: its baseline is low too, so its ratio is not.
        let f = StormFigures::of_rounds(vec![
            (100.0, run(95.0, 10, vec![1.0, 2.0])),
            (60.0, run(57.0, 10, vec![3.0])),
            (100.0, run(80.0, 20, vec![4.0])),
        ]);
        assert_eq!(f.round_ratios.len(), 3);
        assert!((f.round_ratios[1] - 0.95).abs() < 1e-9);
        assert!((f.ratio - 0.95).abs() < 1e-9, "median of 0.95, 0.95, 0.80");
        assert!((f.pipeline_eps - 80.0).abs() < 1e-9, "median of 95, 57, 80");
        assert_eq!(f.snapshots, 40);
        assert!((f.snapshots_per_s - 40.0 / 6.0).abs() < 1e-9);
        assert!((f.attempt_p50_ms - 2.0).abs() < 1e-9);
    }
    use pulseboard_model::proto::{ServerMsg, Status, PROTOCOL_VERSION};

    #[test]
    fn a_snapshot_is_told_from_other_messages_by_its_first_bytes() {
        let snapshot = ServerMsg::Snapshot {
            site: None,
            protocol: PROTOCOL_VERSION,
            seq: 3,
            window_ms: 10_000,
            windows: Vec::new(),
            status: Status::default(),
            filter: None,
        };
        let windows = ServerMsg::Changes {
            seq: 4,
            after: 3,
            windows: Vec::new(),
            status: None,
        };
        let json = |m: &ServerMsg| serde_json::to_string(m).expect("json");
        assert!(is_snapshot(&json(&snapshot)));
        assert!(!is_snapshot(&json(&windows)));
    }
}
