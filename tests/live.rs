//! The WebSocket `/ws` with a real client (tokio-tungstenite) against a running Pulseboard.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt, StreamExt};
use pulseboard_model::proto::{ServerMsg, PROTOCOL_VERSION};
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
    let ServerMsg::Snapshot {
        protocol,
        seq,
        window_ms,
        ..
    } = next_msg(&mut ws).await?
    else {
        bail!("the first message must be a snapshot");
    };
    assert_eq!(protocol, PROTOCOL_VERSION);
    assert_eq!(window_ms, 10_000);
    // Deltas follow in sequence, and the live window's count grows.
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
        last = m.seq();
        if let ServerMsg::Windows { windows, .. } = m {
            if let Some(w) = windows
                .iter()
                .rev()
                .find(|w| w.state == pulseboard_model::proto::WindowState::Live)
            {
                live_counts.push((w.start, w.figures.events));
            }
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
        matches!(m, ServerMsg::Windows { .. } | ServerMsg::Status { .. }) && m.seq() > last,
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
