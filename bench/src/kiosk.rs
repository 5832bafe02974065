//! Live traffic in real time, and what one kiosk receives meanwhile (part of the history
//! step, [`crate::history`]).
//!
//! Contract: [`live`] produces realistic events at a steady rate of wall-clock time (event
//! time = now) for a given span, while one WebSocket client opened as the kiosk opens it
//! (`/ws?every=500`, no filter, no `since` on its first connection, offering
//! permessage-deflate as Chromium does, a `{"type":"ping"}` every 20 s as
//! `frontend/src/feeds/socket.rs` does) reads everything the server sends. Bytes are what
//! the server sent on the wire (every byte read from the TCP socket: frames, headers,
//! compression, pings); the text the frames decompress to is counted apart. The first
//! frame (the snapshot) is counted apart; the rates are over what follows it, until the
//! traffic stops.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use pulseboard_model::gen::Generator;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use yawc::frame::{Frame, OpCode};

use crate::now_ms;

/// How often the kiosk pings (`frontend/src/feeds/socket.rs`: every 4th 5 s tick).
const KIOSK_PING_EVERY: Duration = Duration::from_secs(20);

/// What the kiosk asks of the socket (`frontend/src/feeds/socket.rs`: `DISPLAY_EVERY_MS`).
const KIOSK_EVERY_MS: u64 = 500;

/// What the kiosk received while the live traffic ran.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KioskFigures {
    /// Events/s of the live traffic, and for how long, seconds.
    pub rate: u64,
    pub seconds: f64,
    pub events: u64,
    /// Its first frame (the snapshot): bytes on the wire, and its text.
    pub snapshot_bytes: u64,
    pub snapshot_text_bytes: u64,
    /// After the snapshot: text frames, bytes on the wire, the frames' text, and per
    /// second.
    pub frames: u64,
    pub bytes: u64,
    pub text_bytes: u64,
    pub frames_per_s: f64,
    pub bytes_per_s: f64,
    pub text_bytes_per_s: f64,
}

/// A TCP stream that counts the bytes read from it.
struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type KioskSocket = yawc::WebSocket<Counted>;

/// Open the socket as the kiosk does; with the counter of the bytes read from it.
async fn open_kiosk(addr: SocketAddr) -> Result<(KioskSocket, Arc<AtomicU64>)> {
    let read = Arc::new(AtomicU64::new(0));
    let io = Counted {
        inner: TcpStream::connect(addr).await?,
        read: read.clone(),
    };
    let url = format!("ws://{addr}/ws?every={KIOSK_EVERY_MS}").parse()?;
    let options = yawc::Options::default().with_low_latency_compression();
    let ws = yawc::WebSocket::handshake(url, io, options).await?;
    Ok((ws, read))
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
    let (mut ws, wire) = rt
        .block_on(open_kiosk(addr))
        .context("the kiosk's WebSocket")?;
    let snapshot_text = rt
        .block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
                    Ok(Some(f)) if f.opcode() == OpCode::Text => {
                        return Ok(f.payload().len() as u64)
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => bail!("the kiosk's socket ended before its snapshot"),
                    Err(_) => bail!("no snapshot within 20 s"),
                }
            }
        })
        .context("the kiosk's snapshot")?;
    let snapshot = wire.swap(0, Ordering::Relaxed);
    let reader = rt.spawn(read_kiosk(ws, stop.clone()));
    let from = now_ms();
    let sent = send_paced(brokers, topic, gen, rate, span);
    let to = now_ms();
    stop.cancel();
    let (frames, text_bytes, secs) = rt
        .block_on(reader)
        .context("the kiosk task panicked")?
        .context("the kiosk's socket")?;
    let bytes = wire.load(Ordering::Relaxed);
    let events = sent?;
    let per_s = |n: u64| n as f64 / secs.max(1e-3);
    Ok((
        KioskFigures {
            rate,
            seconds: (to - from) as f64 / 1000.0,
            events,
            snapshot_bytes: snapshot,
            snapshot_text_bytes: snapshot_text,
            frames,
            bytes,
            text_bytes,
            frames_per_s: per_s(frames),
            bytes_per_s: per_s(bytes),
            text_bytes_per_s: per_s(text_bytes),
        },
        (from, to),
    ))
}

/// Read text frames until `stop`, pinging as the kiosk does: (frames, their text bytes,
/// seconds).
async fn read_kiosk(mut ws: KioskSocket, stop: CancellationToken) -> Result<(u64, u64, f64)> {
    let started = Instant::now();
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + KIOSK_PING_EVERY,
        KIOSK_PING_EVERY,
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ping.tick() => ws.send(Frame::text(r#"{"type":"ping"}"#)).await?,
            f = ws.next() => match f {
                Some(f) if f.opcode() == OpCode::Text => {
                    frames += 1;
                    bytes += f.payload().len() as u64;
                }
                Some(f) if f.opcode() == OpCode::Close => {
                    bail!("the server closed the kiosk's socket: {:?}", f.close_reason().ok().flatten())
                }
                Some(_) => {}
                None => bail!("the kiosk's socket ended"),
            },
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = ws.close().await;
    Ok((frames, bytes, secs))
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
