//! One socket's session: the first messages, then the hub's feed, and the client's frames.
//!
//! Contract:
//! - The snapshot a client gets (on connect or on resync) is the hub's one encoding of its
//!   current sequence, shared by every client that asks at that sequence; building it never
//!   holds the lock the partitions publish through (see [`crate::hub`]).
//! - A client that falls behind by more than the hub's client queue gets a fresh snapshot
//!   (resync) instead of the messages it missed; one that does not take a frame within
//!   [`SocketOptions::send_timeout`] is dropped. The pipeline never waits for a client.
//! - Keepalive: a ping every [`SocketOptions::ping_interval`]; a client silent for
//!   [`SocketOptions::idle_timeout`] is closed. Client frames may only be
//!   `{"type":"ping"}` text of at most `MAX_CLIENT_FRAME` bytes; anything else closes that
//!   socket with a code and reason, and touches nothing else.
//! - Paced (`every` > 0, a display asking for a few frames a second): the messages of an
//!   interval are folded into one `changes` message ([`Changed::compose`]), sent when the
//!   interval since the last one has passed (at once when the stream was quiet), so a
//!   display gets at most one message per `every` and loses nothing.
//! - [`serve`] is generic over `Sink`/`Stream`, so it is tested without a network; send and
//!   receive run as two tasks and the survivor is stopped.

use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use pulseboard_model::proto::{ClientMsg, MAX_CLIENT_FRAME};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;

use super::SocketOptions;
use crate::access::Ended;
use crate::api::feed::Segment;
use crate::hub::{Changed, Frame, Hub, Start, Subscription};
use crate::telemetry;

/// Close codes (RFC 6455).
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// What a client asked for: to resume after `since`, and at most one message per `every`
/// (zero: every message as published).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask {
    pub since: Option<u64>,
    pub every: Duration,
}

/// What ends a socket from outside: the server's shutdown ("going away"), and the end of
/// the access it was opened with (a revoked token or link, an expired link: 1008).
#[derive(Clone, Default)]
pub struct Stop {
    pub shutdown: CancellationToken,
    pub ended: Ended,
}

/// Serve one client until it leaves, is dropped, or the server shuts down; with a segment,
/// the stream as that segment sees it.
pub async fn serve<S, R, E>(
    sink: S,
    stream: R,
    hub: Arc<Hub>,
    segment: Option<Segment>,
    ask: Ask,
    opts: SocketOptions,
    stop: Stop,
) where
    S: Sink<Message, Error = E> + Unpin + Send + 'static,
    E: Display + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
{
    let Stop { shutdown, ended } = stop;
    hub.stats.clients.fetch_add(1, Ordering::Relaxed);
    hub.stats.connects_total.fetch_add(1, Ordering::Relaxed);
    let (close_tx, close_rx) = oneshot::channel();
    // Subscribe now, at connect time, so nothing published from here on is missed.
    let sub = match &segment {
        None => hub.subscribe(ask.since),
        Some(s) => s.subscribe(&hub),
    };
    let mut send = tokio::spawn(send_loop(
        sink,
        Feed {
            hub: hub.clone(),
            segment,
            sub,
            every: ask.every,
            ended,
        },
        opts,
        close_rx,
        shutdown,
    ));
    let mut recv = tokio::spawn(recv_loop(stream, opts, close_tx));
    tokio::select! {
        _ = &mut send => recv.abort(),
        _ = &mut recv => {
            // The receiver told the sender why (or dropped its end): let it send the close
            // frame, but not forever.
            if tokio::time::timeout(opts.send_timeout, &mut send).await.is_err() {
                send.abort();
            }
        }
    }
    hub.stats.clients.fetch_sub(1, Ordering::Relaxed);
}

async fn send_text<S, E>(sink: &mut S, text: &Frame, opts: SocketOptions) -> bool
where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
    match tokio::time::timeout(opts.send_timeout, sink.send(Message::Text(text.clone()))).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "socket send failed");
            false
        }
        Err(_) => {
            telemetry::socket_client_dropped("too slow to take a frame");
            false
        }
    }
}

/// What a socket sends from: the hub's feed, as a segment sees it, paced.
struct Feed {
    hub: Arc<Hub>,
    segment: Option<Segment>,
    sub: Subscription,
    every: Duration,
    /// Ends the socket when its token or link is revoked or the link expires.
    ended: Ended,
}

/// The messages of a paced socket's interval, folded: they follow message `after`, up to
/// message `seq`.
struct Pending {
    after: u64,
    seq: u64,
    changed: Changed,
}

async fn send_loop<S, E>(
    mut sink: S,
    feed: Feed,
    opts: SocketOptions,
    mut close_rx: oneshot::Receiver<(u16, String)>,
    shutdown: CancellationToken,
) where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
    let Feed {
        hub,
        segment,
        sub,
        every,
        ended,
    } = feed;
    let expiry = ended.expires_ms.map(|e| {
        tokio::time::Instant::now()
            + Duration::from_millis(u64::try_from(e - crate::now_ms()).unwrap_or(0))
    });
    let expired = async move {
        match expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let mut rx = sub.rx;
    let mut last_seq = sub.last_seq;
    let first: Vec<Frame> = match sub.start {
        Start::Replay(msgs) => msgs,
        Start::Snapshot(_, snap) => vec![snap],
    };
    for m in &first {
        if !send_text(&mut sink, m, opts).await {
            return;
        }
    }
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.ping_interval,
        opts.ping_interval,
    );
    let mut pending: Option<Pending> = None;
    // When a paced socket may send next.
    let mut due = tokio::time::Instant::now();
    let close = loop {
        tokio::select! {
            // A close request from the receiver or the server first, so a misbehaving client
            // or a shutdown is not kept waiting behind a backlog of updates.
            biased;
            reason = &mut close_rx => break reason.ok(),
            _ = shutdown.cancelled() => break Some((close::GOING_AWAY, "server shutting down".to_owned())),
            _ = ended.revoked.cancelled() => break Some((close::POLICY, ended.reason(crate::now_ms()).to_owned())),
            _ = &mut expired => break Some((close::POLICY, "link expired".to_owned())),
            _ = ping.tick() => {
                if tokio::time::timeout(opts.send_timeout, sink.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                    return;
                }
            }
            _ = tokio::time::sleep_until(due), if pending.is_some() => {
                if !flush(&mut sink, &mut pending, &mut due, every, opts).await {
                    return;
                }
            }
            msg = rx.recv() => match msg {
                Ok((seq, text, changed)) => {
                    if seq > last_seq {
                        let sent = match &segment {
                            None => Some((text, changed)),
                            Some(s) => s.frame(&hub, seq, &text, &changed),
                        };
                        let Some((frame, changed)) = sent else {
                            // The hub no longer knows what that message carried: resync.
                            pending = None;
                            match resync(&mut sink, &hub, segment.as_ref(), seq - last_seq, opts).await {
                                Some(seq) => last_seq = seq,
                                None => return,
                            }
                            continue;
                        };
                        if every.is_zero() {
                            if !send_text(&mut sink, &frame, opts).await {
                                return;
                            }
                        } else {
                            let p = pending.get_or_insert_with(|| Pending {
                                after: last_seq,
                                seq,
                                changed: Changed::default(),
                            });
                            p.seq = seq;
                            p.changed.compose(&changed);
                            if tokio::time::Instant::now() >= due
                                && !flush(&mut sink, &mut pending, &mut due, every, opts).await
                            {
                                return;
                            }
                        }
                        last_seq = seq;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    pending = None;
                    match resync(&mut sink, &hub, segment.as_ref(), missed, opts).await {
                        Some(seq) => last_seq = seq,
                        None => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break Some((close::GOING_AWAY, "server shutting down".to_owned())),
            }
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ =
            tokio::time::timeout(opts.send_timeout, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(opts.send_timeout, sink.close()).await;
}

/// Send what a paced socket folded, if anything; its next turn is `every` from now.
async fn flush<S, E>(
    sink: &mut S,
    pending: &mut Option<Pending>,
    due: &mut tokio::time::Instant,
    every: Duration,
    opts: SocketOptions,
) -> bool
where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
    *due = tokio::time::Instant::now() + every;
    // Nothing changed yet (messages that only announced a window to filtered sockets):
    // keep folding, from the same `after`.
    if pending.as_ref().is_none_or(|p| p.changed.is_empty()) {
        return true;
    }
    match pending.take() {
        Some(p) => send_text(sink, &p.changed.encode(p.seq, p.after), opts).await,
        None => true,
    }
}

/// A client that fell `missed` messages behind (or whose message the hub no longer knows)
/// gets a fresh snapshot: counted, logged, sent. Its sequence, or `None` when the client is
/// gone.
async fn resync<S, E>(
    sink: &mut S,
    hub: &Hub,
    segment: Option<&Segment>,
    missed: u64,
    opts: SocketOptions,
) -> Option<u64>
where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
    hub.stats.resyncs_total.fetch_add(1, Ordering::Relaxed);
    telemetry::socket_client_resynced(missed);
    let (seq, snap) = snapshot(hub, segment);
    send_text(sink, &snap, opts).await.then_some(seq)
}

/// A snapshot of the whole traffic, or of a segment.
fn snapshot(hub: &Hub, segment: Option<&Segment>) -> (u64, Frame) {
    match segment {
        None => hub.snapshot(),
        Some(s) => s.snapshot(hub),
    }
}

/// Read client frames; on a bad one, say why through `close_tx` and stop.
async fn recv_loop<R>(mut stream: R, opts: SocketOptions, close_tx: oneshot::Sender<(u16, String)>)
where
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let reason = loop {
        let next = match tokio::time::timeout(opts.idle_timeout, stream.next()).await {
            Err(_) => {
                break Some((
                    close::POLICY,
                    format!("no message or pong for {} s", opts.idle_timeout.as_secs()),
                ))
            }
            Ok(None) => break None,
            Ok(Some(Err(e))) => break Some((close::TOO_BIG, format!("invalid frame: {e}"))),
            Ok(Some(Ok(m))) => m,
        };
        match next {
            Message::Text(t) => {
                if t.len() > MAX_CLIENT_FRAME {
                    break Some((
                        close::TOO_BIG,
                        format!("frame over {MAX_CLIENT_FRAME} bytes"),
                    ));
                }
                if let Err(e) = serde_json::from_str::<ClientMsg>(t.as_str()) {
                    break Some((
                        close::POLICY,
                        format!("malformed message ({e}); only {{\"type\":\"ping\"}} is accepted"),
                    ));
                }
            }
            Message::Binary(_) => {
                break Some((
                    close::UNSUPPORTED,
                    "binary frames are not accepted".to_owned(),
                ))
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => break None,
        }
    };
    if let Some(r) = reason {
        tracing::debug!(code = r.0, reason = %r.1, "closing socket");
        let _ = close_tx.send(r);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::tests::{agg, touch_status};
    use futures::channel::mpsc;
    use pulseboard_model::agg::Aggregate;
    use pulseboard_model::proto::ServerMsg;
    use pulseboard_model::stream::{Apply, StreamState};

    fn hub(queue: usize) -> Arc<Hub> {
        crate::hub::tests::test_hub(|c| c.client_queue = queue)
    }

    struct Client {
        to_server: mpsc::UnboundedSender<Result<Message, axum::Error>>,
        from_server: mpsc::Receiver<Message>,
        task: tokio::task::JoinHandle<()>,
    }

    fn connect(hub: &Arc<Hub>, since: Option<u64>, buffer: usize) -> Client {
        connect_asking(
            hub,
            Ask {
                since,
                every: Duration::ZERO,
            },
            buffer,
        )
    }

    fn connect_asking(hub: &Arc<Hub>, ask: Ask, buffer: usize) -> Client {
        let (to_server, server_in) = mpsc::unbounded();
        let (server_out, from_server) = mpsc::channel(buffer);
        let opts = SocketOptions {
            ping_interval: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(3600),
            send_timeout: Duration::from_millis(500),
        };
        let task = tokio::spawn(serve(
            server_out,
            server_in,
            hub.clone(),
            None,
            ask,
            opts,
            Stop::default(),
        ));
        Client {
            to_server,
            from_server,
            task,
        }
    }

    async fn next_msg(c: &mut Client) -> ServerMsg {
        match c.from_server.next().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).expect("server message"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn client_gets_snapshot_then_updates_in_sequence() {
        let h = hub(16);
        let mut c = connect(&h, None, 16);
        assert!(matches!(
            next_msg(&mut c).await,
            ServerMsg::Snapshot { seq: 0, .. }
        ));
        h.update("t", 0, vec![(0, Aggregate::new())]);
        h.publish_windows();
        h.publish_status();
        assert!(matches!(
            next_msg(&mut c).await,
            ServerMsg::Changes { seq: 1, after: 0, ref windows, status: None } if windows.len() == 1
        ));
        assert!(matches!(
            next_msg(&mut c).await,
            ServerMsg::Changes { seq: 2, after: 1, ref windows, status: Some(_) } if windows.is_empty()
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_client_gets_one_message_per_interval_that_holds_everything() {
        let h = hub(64);
        let every = Duration::from_millis(500);
        let mut c = connect_asking(&h, Ask { since: None, every }, 64);
        let mut client = StreamState::new(0);
        assert_eq!(client.apply(next_msg(&mut c).await), Apply::Applied);
        // Ten window changes (and status changes) within 100 ms: the first goes at once (the
        // stream was quiet), the others in one message at the end of the interval.
        for i in 1..=10u64 {
            h.update("t", 0, vec![(0, agg(i))]);
            h.publish_windows();
            h.publish_status();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let first = next_msg(&mut c).await;
        assert!(
            matches!(
                first,
                ServerMsg::Changes {
                    seq: 1,
                    after: 0,
                    ..
                }
            ),
            "{first:?}"
        );
        assert_eq!(client.apply(first), Apply::Applied);
        let started = tokio::time::Instant::now();
        let folded = next_msg(&mut c).await;
        let published = h.subscribe(None).last_seq;
        assert!(published >= 11);
        assert!(
            matches!(folded, ServerMsg::Changes { seq, after: 1, .. } if seq == published),
            "{folded:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(350),
            "not before its turn"
        );
        assert_eq!(client.apply(folded), Apply::Applied);
        // It holds what a client of every message holds.
        let mut every_msg = StreamState::new(0);
        let Start::Snapshot(_, snap) = h.subscribe(None).start else {
            panic!("snapshot")
        };
        every_msg.apply(serde_json::from_str(snap.as_str()).expect("json"));
        assert_eq!(client.windows, every_msg.windows);
        assert_eq!(client.windows[&0].figures.events, 10);
        assert_eq!(client.status, every_msg.status);
        assert_eq!(client.last_seq, Some(published));
    }

    #[tokio::test]
    async fn reconnect_with_since_gets_what_it_missed() {
        let h = hub(16);
        for i in 1..=3 {
            h.update("t", 0, vec![(0, agg(i))]);
            h.publish_windows();
        }
        let mut c = connect(&h, Some(1), 16);
        assert_eq!(next_msg(&mut c).await.seq(), 2);
        assert_eq!(next_msg(&mut c).await.seq(), 3);
    }

    #[tokio::test]
    async fn slow_client_is_resynced_and_does_not_stall_the_hub() {
        let h = hub(4);
        // The client's buffer holds one frame, and after the snapshot nobody reads it.
        let mut c = connect(&h, None, 1);
        assert!(matches!(next_msg(&mut c).await, ServerMsg::Snapshot { .. }));
        for _ in 0..100 {
            touch_status(&h);
            h.publish_status();
        }
        // The hub published everything without waiting. The client either catches up with a
        // snapshot (resync) or was dropped for not taking frames; never a gap.
        let mut last = None;
        while last != Some(100) {
            let m = tokio::time::timeout(Duration::from_secs(5), c.from_server.next())
                .await
                .expect("the client catches up")
                .expect("socket open");
            let Message::Text(t) = m else { continue };
            let msg: ServerMsg = serde_json::from_str(t.as_str()).expect("json");
            if let (Some(l), ServerMsg::Changes { after, .. }) = (last, &msg) {
                assert_eq!(*after, l, "changes arrive without gaps");
            }
            last = Some(msg.seq());
        }
        assert!(
            h.stats.resyncs_total.load(Ordering::Relaxed) >= 1,
            "the slow client was resynced"
        );
        assert_eq!(last, Some(100), "and caught up with the latest message");
    }

    #[tokio::test]
    async fn malformed_or_binary_frames_close_that_socket_with_a_reason() {
        for (frame, code) in [
            (Message::Text("hello".into()), close::POLICY),
            (
                Message::Text(r#"{"type":"subscribe"}"#.into()),
                close::POLICY,
            ),
            (Message::Binary(vec![1, 2, 3].into()), close::UNSUPPORTED),
            (
                Message::Text("x".repeat(MAX_CLIENT_FRAME + 1).into()),
                close::TOO_BIG,
            ),
        ] {
            let h = hub(16);
            let mut c = connect(&h, None, 16);
            let _snapshot = next_msg(&mut c).await;
            c.to_server
                .unbounded_send(Ok(Message::Text(r#"{"type":"ping"}"#.into())))
                .expect("send");
            c.to_server.unbounded_send(Ok(frame)).expect("send");
            let closing = loop {
                match c.from_server.next().await {
                    Some(Message::Close(Some(f))) => break f,
                    Some(_) => continue,
                    None => panic!("socket ended without a close frame"),
                }
            };
            assert_eq!(closing.code, code, "{}", closing.reason);
            assert!(!closing.reason.is_empty());
            tokio::time::timeout(Duration::from_secs(2), c.task)
                .await
                .expect("socket task ends")
                .expect("no panic");
            assert_eq!(
                h.stats.clients.load(Ordering::Relaxed),
                0,
                "closed sockets are cleaned up"
            );
        }
    }
}
