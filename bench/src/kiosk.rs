//! Live traffic in real time, and what one kiosk receives meanwhile (part of the history
//! step, [`crate::history`]).
//!
//! Contract: [`live`] produces realistic events at a steady rate of wall-clock time (event
//! time = now) for a given span, while one WebSocket client opened as the kiosk opens it
//! (`/ws`, no filter, no `since` on its first connection, a `{"type":"ping"}` every 20 s as
//! `frontend/src/feeds/socket.rs` does) reads everything the server sends. Bytes are text
//! payload bytes (the server does not compress frames; WebSocket framing adds 2–10 bytes a
//! frame). The first frame (the snapshot) is counted apart; the rate is over what follows
//! it, until the traffic stops.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use pulseboard_model::gen::Generator;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::now_ms;

/// How often the kiosk pings (`frontend/src/feeds/socket.rs`: every 4th 5 s tick).
const KIOSK_PING_EVERY: Duration = Duration::from_secs(20);

/// What the kiosk received while the live traffic ran.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KioskFigures {
    /// Events/s of the live traffic, and for how long, seconds.
    pub rate: u64,
    pub seconds: f64,
    pub events: u64,
    /// Its first frame (the snapshot), bytes.
    pub snapshot_bytes: u64,
    /// After the snapshot: text frames and their bytes, and per second.
    pub frames: u64,
    pub bytes: u64,
    pub frames_per_s: f64,
    pub bytes_per_s: f64,
}

/// Send `rate` realistic events/s of wall-clock time to `topic` for `span`, event time
/// now, while a kiosk reads the server at `addr`. Returns what it received, and the
/// wall-clock span of the traffic (epoch ms).
pub fn live(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    topic: &str,
    addr: SocketAddr,
    gen: &mut Generator,
    rate: u64,
    span: Duration,
) -> Result<(KioskFigures, (i64, i64))> {
    let stop = CancellationToken::new();
    let (mut ws, _) = rt
        .block_on(tokio_tungstenite::connect_async(format!("ws://{addr}/ws")))
        .context("the kiosk's WebSocket")?;
    let snapshot = rt
        .block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
                    Ok(Some(Ok(WsMessage::Text(t)))) => return Ok(t.len() as u64),
                    Ok(Some(Ok(_))) => continue,
                    Ok(other) => bail!("the kiosk's socket ended before its snapshot: {other:?}"),
                    Err(_) => bail!("no snapshot within 20 s"),
                }
            }
        })
        .context("the kiosk's snapshot")?;
    let reader = rt.spawn(read_kiosk(ws, stop.clone()));
    let from = now_ms();
    let sent = send_paced(brokers, topic, gen, rate, span);
    let to = now_ms();
    stop.cancel();
    let (frames, bytes, secs) = rt
        .block_on(reader)
        .context("the kiosk task panicked")?
        .context("the kiosk's socket")?;
    let events = sent?;
    Ok((
        KioskFigures {
            rate,
            seconds: (to - from) as f64 / 1000.0,
            events,
            snapshot_bytes: snapshot,
            frames,
            bytes,
            frames_per_s: frames as f64 / secs.max(1e-3),
            bytes_per_s: bytes as f64 / secs.max(1e-3),
        },
        (from, to),
    ))
}

/// Read text frames until `stop`, pinging as the kiosk does: (frames, bytes, seconds).
async fn read_kiosk(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    stop: CancellationToken,
) -> Result<(u64, u64, f64)> {
    let started = Instant::now();
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + KIOSK_PING_EVERY,
        KIOSK_PING_EVERY,
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ping.tick() => ws.send(WsMessage::text(r#"{"type":"ping"}"#)).await?,
            m = ws.next() => match m {
                Some(Ok(WsMessage::Text(t))) => {
                    frames += 1;
                    bytes += t.len() as u64;
                }
                Some(Ok(WsMessage::Close(f))) => bail!("the server closed the kiosk's socket: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(anyhow!(e)),
                None => bail!("the kiosk's socket ended"),
            },
        }
    }
    let _ = ws.close(None).await;
    Ok((frames, bytes, started.elapsed().as_secs_f64()))
}

/// `rate` events/s of wall-clock time for `span`, sent as they fall due (every 10 ms),
/// keyed by visitor; waits for every delivery. Returns the events sent.
fn send_paced(
    brokers: &str,
    topic: &str,
    gen: &mut Generator,
    rate: u64,
    span: Duration,
) -> Result<u64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the live producer")?;
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < span {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let ev = gen.next_event(now_ms());
            let payload = ev.to_json();
            let record = BaseRecord::to(topic).key(&ev.visitor).payload(&payload);
            if let Err((e, _)) = producer.send(record) {
                return Err(e).with_context(|| format!("producing to {topic}"));
            }
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(10));
    }
    producer
        .flush(Duration::from_secs(30))
        .with_context(|| format!("flushing the live traffic to {topic}"))?;
    Ok(sent)
}
