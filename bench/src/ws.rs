//! Step 6: Pulseboard's own end-to-end latency, as 1,000 dashboards see it.
//!
//! Contract: a fresh child on a fresh topic, 1,000 WebSocket clients connected (each must
//! complete its handshake), then paced probes ([`crate::probe`]). Each client notes when each
//! window's count grew; every (client, probe) pair is a latency sample, from the probe's send
//! to the client's read of the frame that counted it. A client that is closed or never saw a
//! probe is reported, not hidden.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::net::{get_json, poll_until};
use pulseboard_testkit::process;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::child::{consumed, Child};
use crate::probe::{self, percentile, WindowSteps, PROBE_EVERY};
use crate::report::Report;
use crate::{step, Plan, PARTITIONS};

const TOPIC_WS: &str = "bench_ws";
const WS_CLIENTS: usize = 1_000;

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
            self.steps.observe(w.start, w.events, at);
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
