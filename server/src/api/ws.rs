//! The WebSocket `/ws`: one client, fed from the hub.
//!
//! Contract:
//! - `GET /ws?since=SEQ`: the client first gets what it missed after `SEQ` (or a snapshot),
//!   then every message the hub publishes, in sequence order, each at most once.
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
//! - [`serve`] is generic over `Sink`/`Stream`, so it is tested without a network; send and
//!   receive run as two tasks and the survivor is stopped.
//! - `GET /ws?filter=DIMENSION:VALUE` follows the stream as that segment sees it (see
//!   [`crate::api::feed`]); a bad filter is a `400` naming `filter`, as in the API.
//! - New sessions are paced ([`ConnectPacer`]): at most `--ws-connect-rate` a second on
//!   average and `--ws-connect-burst` at once, the rest waiting their turn in order of
//!   arrival before the handshake is answered; one whose turn is more than
//!   `--ws-connect-max-wait` away gets `503` with `Retry-After`. A reconnect storm then
//!   costs ingest a bounded share of the CPU, however many clients take part.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use pulseboard_model::proto::{ClientMsg, MAX_CLIENT_FRAME};
use serde::Deserialize;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::feed::{Feeds, Segment};
use crate::config::HubArgs;
use crate::hub::{Frame, Hub, Start, Subscription};
use crate::telemetry;

/// What the socket handler needs (taken from the app's state with `FromRef`).
#[derive(Clone)]
pub struct SocketState {
    pub hub: Arc<Hub>,
    /// Cancelled at shutdown; sockets close with "going away".
    pub shutdown: CancellationToken,
    pub options: SocketOptions,
    /// Paces new sessions.
    pub pacer: Arc<ConnectPacer>,
    /// The frames of filtered sockets.
    pub feeds: Arc<Feeds>,
}

/// Close codes (RFC 6455).
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// Timing of one socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
}

impl SocketOptions {
    /// `--ws-ping-interval`, `--ws-idle-timeout`, `--ws-send-timeout`.
    pub fn from_args(args: &HubArgs) -> Self {
        SocketOptions {
            ping_interval: args.ws_ping_interval,
            idle_timeout: args.ws_idle_timeout,
            send_timeout: args.ws_send_timeout,
        }
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// Refusals are logged at most this often (each is counted).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Paces the opening of new sessions: at most `rate` a second on average and `burst` at
/// once, by the generic cell rate algorithm (Kafka's `max.connection.creation.rate`
/// throttles new connections the same way). A session over the rate is told how long to
/// wait; turns are handed out in order of arrival. One whose turn is more than `max_wait`
/// away is refused and takes no turn.
///
/// Time is a parameter ([`ConnectPacer::admit`] takes `now`), so tests drive it with plain
/// values.
#[derive(Debug)]
pub struct ConnectPacer {
    /// Time between two sessions at the rate; `None`: no limit.
    interval: Option<Duration>,
    /// How far a burst may run ahead of the rate: `interval * (burst - 1)`.
    tolerance: Duration,
    max_wait: Duration,
    state: Mutex<PacerState>,
    /// Sessions that waited for their turn, refused, and the seconds waited (as ms).
    pub waited_total: AtomicU64,
    pub refused_total: AtomicU64,
    pub wait_ms_total: AtomicU64,
}

#[derive(Debug, Default)]
struct PacerState {
    /// When the next session would be due at exactly the rate (the "theoretical arrival
    /// time"); `None` before the first.
    next: Option<Instant>,
    last_log: Option<Instant>,
    refused_since_log: u64,
}

/// What a new session is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Now,
    /// Its turn comes after this wait.
    After(Duration),
    /// Its turn is too far away: try again after this.
    Refused {
        retry_after: Duration,
    },
}

impl ConnectPacer {
    /// `rate` sessions a second (0 = no limit), `burst` at once (at least 1).
    pub fn new(rate: u32, burst: u32, max_wait: Duration) -> Self {
        let interval = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
        ConnectPacer {
            interval,
            tolerance: interval.map_or(Duration::ZERO, |i| i * burst.max(1).saturating_sub(1)),
            max_wait,
            state: Mutex::default(),
            waited_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            wait_ms_total: AtomicU64::new(0),
        }
    }

    /// `--ws-connect-rate`, `--ws-connect-burst`, `--ws-connect-max-wait`.
    pub fn from_args(args: &HubArgs) -> Self {
        Self::new(
            args.ws_connect_rate,
            args.ws_connect_burst,
            args.ws_connect_max_wait,
        )
    }

    /// No limit.
    pub fn unlimited() -> Self {
        Self::new(0, 1, Duration::ZERO)
    }

    /// The turn of a session arriving at `now`.
    pub fn admit(&self, now: Instant) -> Admission {
        let Some(interval) = self.interval else {
            return Admission::Now;
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let next = st.next.map_or(now, |t| t.max(now));
        let turn = next.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
        let wait = turn - now;
        if wait > self.max_wait {
            let total = self.refused_total.fetch_add(1, Ordering::Relaxed) + 1;
            st.refused_since_log += 1;
            if st
                .last_log
                .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_EVERY)
            {
                tracing::warn!(
                    refused = st.refused_since_log,
                    refused_total = total,
                    wait_s = wait.as_secs_f64(),
                    "WebSocket sessions over --ws-connect-rate refused with 503: more clients are (re)connecting than it lets in within --ws-connect-max-wait"
                );
                st.last_log = Some(now);
                st.refused_since_log = 0;
            }
            return Admission::Refused { retry_after: wait };
        }
        st.next = Some(next + interval);
        if wait.is_zero() {
            return Admission::Now;
        }
        self.waited_total.fetch_add(1, Ordering::Relaxed);
        self.wait_ms_total
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        Admission::After(wait)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    since: Option<String>,
    filter: Option<String>,
}

/// `GET /ws`.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(st): State<SocketState>,
    Query(p): Query<WsParams>,
) -> Result<Response, ApiError> {
    let since = match p.since.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| ApiError::BadParam {
            parameter: "since",
            message: format!(
                "since={s:?} must be the sequence number of the last message received"
            ),
        })?),
    };
    let segment = st
        .feeds
        .segments()
        .filter(p.filter.as_deref())?
        .map(|f| st.feeds.join(f));
    match st.pacer.admit(Instant::now()) {
        Admission::Now => {}
        Admission::After(wait) => {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = st.shutdown.cancelled() => return Err(ApiError::Busy {
                    why: "the server is shutting down",
                    retry_after: Duration::from_secs(1),
                }),
            }
        }
        Admission::Refused { retry_after } => {
            return Err(ApiError::Busy {
                why: "too many dashboards are connecting at once",
                retry_after,
            })
        }
    }
    let hub = st.hub.clone();
    let shutdown = st.shutdown.clone();
    let options = st.options;
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        // Clients send tiny frames: a small read buffer keeps a socket at a few KB
        // instead of the default 128 KiB, which matters with a thousand wall displays.
        .read_buffer_size(2 * MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            serve(sink, stream, hub, segment, since, options, shutdown).await;
        })
        .into_response())
}

/// Serve one client until it leaves, is dropped, or the server shuts down; with a segment,
/// the stream as that segment sees it.
pub async fn serve<S, R, E>(
    sink: S,
    stream: R,
    hub: Arc<Hub>,
    segment: Option<Segment>,
    since: Option<u64>,
    opts: SocketOptions,
    shutdown: CancellationToken,
) where
    S: Sink<Message, Error = E> + Unpin + Send + 'static,
    E: Display + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
{
    hub.stats.clients.fetch_add(1, Ordering::Relaxed);
    hub.stats.connects_total.fetch_add(1, Ordering::Relaxed);
    let (close_tx, close_rx) = oneshot::channel();
    // Subscribe now, at connect time, so nothing published from here on is missed.
    let sub = match &segment {
        None => hub.subscribe(since),
        Some(s) => s.subscribe(&hub),
    };
    let mut send = tokio::spawn(send_loop(
        sink,
        hub.clone(),
        segment,
        sub,
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

async fn send_loop<S, E>(
    mut sink: S,
    hub: Arc<Hub>,
    segment: Option<Segment>,
    sub: Subscription,
    opts: SocketOptions,
    mut close_rx: oneshot::Receiver<(u16, String)>,
    shutdown: CancellationToken,
) where
    S: Sink<Message, Error = E> + Unpin,
    E: Display,
{
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
    let close = loop {
        tokio::select! {
            // A close request from the receiver or the server first, so a misbehaving client
            // or a shutdown is not kept waiting behind a backlog of updates.
            biased;
            reason = &mut close_rx => break reason.ok(),
            _ = shutdown.cancelled() => break Some((close::GOING_AWAY, "server shutting down".to_owned())),
            _ = ping.tick() => {
                if tokio::time::timeout(opts.send_timeout, sink.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                    return;
                }
            }
            msg = rx.recv() => match msg {
                Ok((seq, text)) => {
                    if seq > last_seq {
                        let frame = match &segment {
                            None => Some(text),
                            Some(s) => s.frame(&hub, seq, &text),
                        };
                        let (seq, frame) = match frame {
                            Some(f) => (seq, f),
                            // The hub no longer knows what that message carried: resync.
                            None => {
                                hub.stats.resyncs_total.fetch_add(1, Ordering::Relaxed);
                                telemetry::socket_client_resynced(seq - last_seq);
                                snapshot(&hub, segment.as_ref())
                            }
                        };
                        if !send_text(&mut sink, &frame, opts).await {
                            return;
                        }
                        last_seq = seq;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    hub.stats.resyncs_total.fetch_add(1, Ordering::Relaxed);
                    telemetry::socket_client_resynced(missed);
                    let (seq, snap) = snapshot(&hub, segment.as_ref());
                    if !send_text(&mut sink, &snap, opts).await {
                        return;
                    }
                    last_seq = seq;
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
    use super::*;
    use futures::channel::mpsc;
    use pulseboard_model::agg::Aggregate;
    use pulseboard_model::proto::ServerMsg;

    fn hub(queue: usize) -> Arc<Hub> {
        crate::hub::tests::test_hub(|c| c.client_queue = queue)
    }

    struct Client {
        to_server: mpsc::UnboundedSender<Result<Message, axum::Error>>,
        from_server: mpsc::Receiver<Message>,
        task: tokio::task::JoinHandle<()>,
    }

    fn connect(hub: &Arc<Hub>, since: Option<u64>, buffer: usize) -> Client {
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
            since,
            opts,
            CancellationToken::new(),
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
            ServerMsg::Windows { seq: 1, .. }
        ));
        assert!(matches!(
            next_msg(&mut c).await,
            ServerMsg::Status { seq: 2, .. }
        ));
    }

    #[tokio::test]
    async fn reconnect_with_since_gets_what_it_missed() {
        let h = hub(16);
        h.publish_status();
        h.publish_status();
        h.publish_status();
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
            if let (Some(l), ServerMsg::Status { seq, .. }) = (last, &msg) {
                assert_eq!(*seq, l + 1, "deltas arrive without gaps");
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

    /// The turns of `n` sessions all arriving at `now`.
    fn turns(p: &ConnectPacer, now: Instant, n: usize) -> Vec<Admission> {
        (0..n).map(|_| p.admit(now)).collect()
    }

    #[test]
    fn a_burst_is_let_in_at_once_then_one_session_per_interval() {
        let p = ConnectPacer::new(10, 3, Duration::from_secs(10));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            turns(&p, t0, 6),
            vec![
                Admission::Now,
                Admission::Now,
                Admission::Now,
                Admission::After(ms(100)),
                Admission::After(ms(200)),
                Admission::After(ms(300)),
            ]
        );
        assert_eq!(p.waited_total.load(Ordering::Relaxed), 3);
        assert_eq!(p.wait_ms_total.load(Ordering::Relaxed), 600);
        assert_eq!(p.refused_total.load(Ordering::Relaxed), 0);
        // 250 ms later the queue has moved on by that much.
        assert_eq!(p.admit(t0 + ms(250)), Admission::After(ms(150)));
    }

    #[test]
    fn a_session_whose_turn_is_beyond_the_max_wait_is_refused_and_takes_no_turn() {
        let p = ConnectPacer::new(10, 2, Duration::from_millis(250));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            turns(&p, t0, 4),
            vec![
                Admission::Now,
                Admission::Now,
                Admission::After(ms(100)),
                Admission::After(ms(200)),
            ]
        );
        assert_eq!(
            p.admit(t0),
            Admission::Refused {
                retry_after: ms(300)
            }
        );
        assert_eq!(
            p.admit(t0),
            Admission::Refused {
                retry_after: ms(300)
            },
            "a refusal takes no turn, so the next one is told the same"
        );
        assert_eq!(p.refused_total.load(Ordering::Relaxed), 2);
        assert_eq!(p.admit(t0 + ms(100)), Admission::After(ms(200)));
    }

    #[test]
    fn an_idle_pacer_refills_its_burst() {
        let p = ConnectPacer::new(10, 3, Duration::ZERO);
        let t0 = Instant::now();
        assert!(turns(&p, t0, 3).iter().all(|a| *a == Admission::Now));
        assert!(matches!(p.admit(t0), Admission::Refused { .. }));
        let later = t0 + Duration::from_secs(5);
        assert!(turns(&p, later, 3).iter().all(|a| *a == Admission::Now));
        assert!(matches!(p.admit(later), Admission::Refused { .. }));
    }

    #[test]
    fn an_unlimited_pacer_lets_everyone_in_at_once() {
        let p = ConnectPacer::new(0, 1, Duration::ZERO);
        let t0 = Instant::now();
        assert!(turns(&p, t0, 10_000).iter().all(|a| *a == Admission::Now));
        assert_eq!(p.waited_total.load(Ordering::Relaxed), 0);
        assert_eq!(p.refused_total.load(Ordering::Relaxed), 0);
    }
}
