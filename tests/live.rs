//! The WebSocket `/ws` with a real client (tokio-tungstenite) against a running Pulseboard.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt, StreamExt};
use pulseboard_model::proto::{ServerMsg, PROTOCOL_VERSION};
use pulseboard_model::stream::{Apply, StreamState};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::util::*;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(addr: std::net::SocketAddr, query: &str) -> Result<Socket> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}")).await?;
    Ok(ws)
}

/// The next message of the socket (within 10 s).
pub async fn next_msg(ws: &mut Socket) -> Result<ServerMsg> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| anyhow!("no message within 10 s"))?
            .ok_or_else(|| anyhow!("socket closed"))??;
        match m {
            Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
            Message::Close(f) => bail!("closed: {f:?}"),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_streams_snapshot_then_live_deltas_and_resumes() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let app = App::start(&["--data-dir", &data, "--demo-rate", "500"]).await?;
    let mut ws = connect(app.addr, "").await?;
    let snapshot = next_msg(&mut ws).await?;
    let ServerMsg::Snapshot {
        protocol,
        seq,
        window_ms,
        ..
    } = snapshot
    else {
        bail!("the first message must be a snapshot");
    };
    assert_eq!(protocol, PROTOCOL_VERSION);
    assert_eq!(window_ms, 10_000);
    let mut client = StreamState::new(0);
    client.apply(snapshot);
    // Changes follow in sequence, and the live window's count grows.
    let mut last = seq;
    let mut live_counts: Vec<(i64, u64)> = Vec::new();
    let grew = |counts: &[(i64, u64)]| {
        counts
            .windows(2)
            .any(|p| p[0].0 == p[1].0 && p[1].1 > p[0].1)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !grew(&live_counts) {
        if std::time::Instant::now() > deadline {
            bail!("no live window grew within 30 s: {live_counts:?}");
        }
        let m = next_msg(&mut ws).await?;
        assert_eq!(m.seq(), last + 1, "sequence numbers increase by one");
        assert!(
            matches!(m, ServerMsg::Changes { after, .. } if after == last),
            "{m:?}"
        );
        last = m.seq();
        assert_eq!(client.apply(m), Apply::Applied);
        if let Some(w) = client
            .windows
            .values()
            .rev()
            .find(|w| w.state == pulseboard_model::proto::WindowState::Live)
        {
            live_counts.push((w.start, w.figures.events));
        }
    }
    // A window's count never shrinks while it is shown live.
    for p in live_counts.windows(2) {
        if p[0].0 == p[1].0 {
            assert!(p[1].1 >= p[0].1, "a live count went down: {live_counts:?}");
        }
    }
    ws.close(None).await?;

    // Reconnecting with the last sequence seen resumes right after it.
    let mut ws = connect(app.addr, &format!("?since={last}")).await?;
    let m = next_msg(&mut ws).await?;
    assert!(
        matches!(m, ServerMsg::Changes { after, .. } if after == last),
        "resumed with a delta after {last}, got {m:?}"
    );
    // A sequence the server never published (e.g. from before a restart) gets a snapshot.
    let mut ws2 = connect(app.addr, "?since=999999999").await?;
    assert!(matches!(
        next_msg(&mut ws2).await?,
        ServerMsg::Snapshot { .. }
    ));

    // A malformed client frame closes that socket with a reason; the others go on.
    ws2.send(Message::Text("{\"type\":\"subscribe\"}".into()))
        .await?;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws2.next()).await? {
            Some(Ok(Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => bail!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(closed.code), 1008);
    assert!(closed.reason.contains("ping"), "{}", closed.reason);
    next_msg(&mut ws).await?;
    let (code, body) = http_get(app.addr, "/ws?since=abc").await?;
    assert_eq!(code, 400, "{body}");
    app.stop().await
}

/// A paced socket (`every=500`, as the kiosk asks) over permessage-deflate (as browsers
/// offer it, here yawc's client): at most one message per interval, each one following the
/// last, and the windows it builds equal those of a client of every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_compressed_socket_holds_what_an_unpaced_one_holds() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let app = App::start(&["--data-dir", &data, "--demo-rate", "500"]).await?;
    // The server agrees to compress when offered, without context takeover.
    let mut req = format!("ws://{}/ws", app.addr).into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits".parse()?,
    );
    let (_, response) = tokio_tungstenite::connect_async(req).await?;
    let agreed = response
        .headers()
        .get("sec-websocket-extensions")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(agreed.starts_with("permessage-deflate"), "{agreed:?}");
    assert!(agreed.contains("server_no_context_takeover"), "{agreed:?}");

    // A bad interval is refused before the upgrade, naming the parameter.
    match tokio_tungstenite::connect_async(format!("ws://{}/ws?every=soon", app.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 400);
            let body: serde_json::Value =
                serde_json::from_slice(r.body().as_deref().unwrap_or_default())?;
            assert_eq!(body["parameter"], "every", "{body}");
        }
        other => bail!("every=soon must be refused, got {other:?}"),
    }

    let url = format!("ws://{}/ws?every=500", app.addr).parse()?;
    let mut paced = yawc::WebSocket::connect(url)
        .with_options(yawc::Options::default().with_low_latency_compression())
        .await?;
    let mut all = connect(app.addr, "").await?;
    let mut client = StreamState::new(0);
    let mut arrivals = Vec::new();
    while arrivals.len() < 12 {
        let frame = tokio::time::timeout(Duration::from_secs(10), paced.next())
            .await
            .map_err(|_| anyhow!("no message within 10 s"))?
            .ok_or_else(|| anyhow!("socket closed"))?;
        if frame.opcode() != yawc::frame::OpCode::Text {
            continue;
        }
        let m: ServerMsg = serde_json::from_str(frame.as_str())?;
        if let (Some(last), ServerMsg::Changes { after, .. }) = (client.last_seq, &m) {
            assert_eq!(*after, last, "each message follows the last");
        }
        assert_eq!(client.apply(m), Apply::Applied);
        arrivals.push(std::time::Instant::now());
    }
    // Eleven intervals after the snapshot: at least ~5 s (the first may go at once).
    let span = arrivals[11] - arrivals[1];
    assert!(span >= Duration::from_millis(4_500), "{span:?}");
    // The unpaced client catches up to the same sequence, and holds the same windows.
    let target = client.last_seq.unwrap_or_default();
    let mut every = StreamState::new(0);
    while every.last_seq.is_none_or(|s| s < target) {
        every.apply(next_msg(&mut all).await?);
    }
    assert_eq!(every.last_seq, Some(target));
    // (The paced client's snapshot was older: it may still hold a window the hub has let go.)
    let held: Vec<_> = client
        .windows
        .iter()
        .filter(|(s, _)| every.windows.contains_key(s))
        .collect();
    assert_eq!(held, every.windows.iter().collect::<Vec<_>>());
    let _ = paced.close().await;
    app.stop().await
}
