//! The socket feed: one WebSocket to `/ws`, kept open for as long as its owner lives
//! ([`use_socket`]), every message applied to the stream state.
//!
//! Contract:
//! - it resumes with `since=<last seq>` and reconnects at once with `since` on a sequence
//!   gap; a wall display or an embed asks the server for one message per
//!   [`DISPLAY_EVERY_MS`] (`every=`), the dashboard for every message;
//! - after a close it waits [`backoff_ms`]: 0.5 s doubling to 15 s (with jitter, reset by
//!   the first message of a new connection);
//! - it pings every 20 s and treats 30 s of silence as a dead socket;
//! - a close with code 1008 `link revoked` or `link expired` ends the page's access at once
//!   (no reconnect); after another policy close, or a socket that closed without opening
//!   (refused at its handshake, or a server that is down: the browser cannot tell), it asks
//!   `GET /api/v1/session` why, and reconnects as usual meanwhile: a `401` there ends the
//!   page, and with it this socket (see [`crate::access`]);
//! - another segment (`filter`) empties the windows and reconnects with the new filter; a
//!   snapshot whose echoed filter is not the page's is ignored;
//! - its timers are cleared and its socket closed when its owner is cleaned up.
//!
//! The backoff rule is pure and tested on the host; the rest runs only in the browser.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use pulseboard_model::{
    proto::{ServerMsg, PROTOCOL_VERSION},
    stream::{Apply, StreamState},
};
use wasm_bindgen::{prelude::*, JsCast};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use super::{
    js_err, session,
    urls::{socket_url, with_view},
};
use crate::{
    access::{socket_close, Refusal, SocketClose},
    state::{now_ms, AppState, ConnState, ViewKey},
};

/// What a wall display or an embed asks of the socket: one message per half second at most
/// (each holds everything that changed meanwhile), a few frames a second being all such a
/// display needs; the dashboard takes every message (an event on screen within 100 ms).
pub const DISPLAY_EVERY_MS: u64 = 500;

/// First reconnect delay, ms.
pub const BACKOFF_START_MS: f64 = 500.0;
/// Longest reconnect delay, ms.
pub const BACKOFF_MAX_MS: f64 = 15_000.0;

/// Delay before reconnect attempt `attempt` (0 = first after a close): 0.5 s doubling up to
/// 15 s, spread by ±20% with `jitter` in `[0, 1)` (whole ms) so that many displays do not reconnect in
/// step after a server restart, and never above 15 s.
pub fn backoff_ms(attempt: u32, jitter: f64) -> f64 {
    let base = (BACKOFF_START_MS * 2f64.powi(attempt.min(16) as i32)).min(BACKOFF_MAX_MS);
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    (base * (0.8 + 0.4 * j)).min(BACKOFF_MAX_MS).round()
}

/// A socket and the callbacks attached to it (dropped together).
struct Conn {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Conn {
    fn detach_and_close(self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// The socket manager behind [`use_socket`].
struct Socket {
    app: AppState,
    /// One message per this many ms at most (0: every message as published).
    every_ms: u64,
    conn: Option<Conn>,
    retry: Option<TimeoutHandle>,
    attempt: u32,
    /// Messages received on the current connection.
    received: u64,
    /// Whether the current connection opened (a close before that: refused or unreachable).
    opened: bool,
    stopped: bool,
}

type Shared = Rc<RefCell<Socket>>;

/// Keeps a WebSocket to the server open for as long as the calling owner lives, applying
/// every message to `app.stream` (see the module doc for the rules); paced by the server
/// to one message per `every_ms` when not 0 (a wall display or an embed).
pub fn use_socket(app: AppState, every_ms: u64) {
    let shared: Shared = Rc::new(RefCell::new(Socket {
        app,
        every_ms,
        conn: None,
        retry: None,
        attempt: 0,
        received: 0,
        opened: false,
        stopped: false,
    }));
    connect(&shared);

    // Another segment: the windows shown so far are another segment's; start from its
    // snapshot on a new socket.
    let weak = Rc::downgrade(&shared);
    Effect::new(move |prev: Option<ViewKey>| {
        let filter = app.view_tracked();
        if prev.is_some_and(|p| p != filter) {
            app.stream.update(|s| *s = StreamState::new(s.keep));
            if let Some(shared) = weak.upgrade() {
                restart(&shared, true);
            }
        }
        filter
    });

    // Keepalive: ping every 20 s; a socket silent for 30 s (the server pushes status about
    // once a second) is treated as dead and replaced.
    let weak = Rc::downgrade(&shared);
    let ticks = Rc::new(RefCell::new(0u32));
    let keepalive = set_interval_with_handle(
        move || {
            let Some(shared) = weak.upgrade() else { return };
            let mut t = ticks.borrow_mut();
            *t += 1;
            let silent = app
                .last_message
                .get_untracked()
                .map(|at| now_ms() - at > 30_000.0)
                .unwrap_or(false);
            if app.conn.get_untracked() == ConnState::Live && silent {
                leptos::logging::warn!("socket silent for 30 s; reconnecting");
                restart(&shared, false);
                return;
            }
            if *t % 4 == 0 {
                if let Some(c) = &shared.borrow().conn {
                    if c.ws.ready_state() == WebSocket::OPEN {
                        let _ = c.ws.send_with_str(r#"{"type":"ping"}"#);
                    }
                }
            }
        },
        Duration::from_secs(5),
    )
    .ok();

    let stored = StoredValue::new_local(shared);
    on_cleanup(move || {
        if let Some(h) = keepalive {
            h.clear();
        }
        stored.try_with_value(|shared| {
            let mut s = shared.borrow_mut();
            s.stopped = true;
            if let Some(h) = s.retry.take() {
                h.clear();
            }
            if let Some(c) = s.conn.take() {
                c.detach_and_close();
            }
        });
    });
}

/// Opens a new socket, resuming after the last applied sequence.
fn connect(shared: &Shared) {
    let (app, every_ms) = {
        let s = shared.borrow();
        (s.app, s.every_ms)
    };
    if shared.borrow().stopped {
        return;
    }
    let since = app.stream.with_untracked(|s| s.last_seq);
    let location = window().location();
    let url = socket_url(
        &location.protocol().unwrap_or_default(),
        &location.host().unwrap_or_default(),
        since,
        every_ms,
    );
    let url = with_view(url, &app.view());
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            leptos::logging::warn!("socket: {}", js_err(e));
            schedule_reconnect(shared);
            return;
        }
    };

    let weak = Rc::downgrade(shared);
    let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        if let Some(shared) = weak.upgrade() {
            shared.borrow_mut().opened = true;
        }
        app.conn.set(ConnState::Live);
    });

    let weak = Rc::downgrade(shared);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let Some(shared) = weak.upgrade() else { return };
        let Some(text) = e.data().as_string() else {
            return;
        };
        let now = now_ms();
        app.last_message.set(Some(now));
        app.clock.set(now);
        {
            let mut s = shared.borrow_mut();
            s.received += 1;
            if s.received == 1 {
                s.attempt = 0; // the server is really back: start backing off from scratch
            }
        }
        let msg = match serde_json::from_str::<ServerMsg>(&text) {
            Ok(m) => m,
            Err(err) => {
                leptos::logging::warn!("socket: ignoring a message I cannot read: {err}");
                return;
            }
        };
        if let ServerMsg::Snapshot {
            protocol,
            filter,
            site,
            ..
        } = &msg
        {
            if *protocol != PROTOCOL_VERSION {
                leptos::logging::warn!(
                    "server speaks protocol {protocol}, this page {PROTOCOL_VERSION}; reload the page after an upgrade"
                );
            }
            let (want_site, want) = app.view();
            let want = want.map(|f| f.to_string());
            if *filter != want || *site != want_site {
                // Another segment's or site's (a socket being replaced), or a server that
                // cannot filter.
                leptos::logging::warn!(
                    "socket: ignoring a snapshot of {site:?} {filter:?}, not {want_site:?} {want:?}"
                );
                return;
            }
        }
        match app.stream.try_update_untracked(|s| s.apply(msg)) {
            Some(Apply::Applied) => app.stream.notify(),
            Some(Apply::Stale) | None => {}
            Some(Apply::Gap { last_seq }) => {
                leptos::logging::log!("socket: gap after seq {last_seq}; resuming");
                // Not from inside this callback: replacing the socket drops this closure.
                let weak = Rc::downgrade(&shared);
                set_timeout(
                    move || {
                        if let Some(shared) = weak.upgrade() {
                            restart(&shared, true);
                        }
                    },
                    Duration::ZERO,
                );
            }
        }
    });

    let weak = Rc::downgrade(shared);
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
        let Some(shared) = weak.upgrade() else { return };
        let (stopped, opened) = {
            let s = shared.borrow();
            (s.stopped, s.opened)
        };
        if stopped {
            return;
        }
        match socket_close(e.code(), &e.reason()) {
            SocketClose::Ended(end) => {
                leptos::logging::log!(
                    "socket: closed by the server ({}); not reconnecting",
                    e.reason()
                );
                shared.borrow_mut().stopped = true;
                session::refuse(app, &Refusal::Ended(end));
                return;
            }
            SocketClose::AskSession => session::ask_session(app),
            SocketClose::Reconnect if !opened => session::ask_session(app),
            SocketClose::Reconnect => {}
        }
        app.conn.set(ConnState::Reconnecting);
        schedule_reconnect(&shared);
    });

    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));

    let mut s = shared.borrow_mut();
    s.received = 0;
    s.opened = false;
    if let Some(old) = s.conn.replace(Conn {
        ws,
        _on_open: on_open,
        _on_message: on_message,
        _on_close: on_close,
    }) {
        old.detach_and_close();
    }
}

/// Closes the current socket (without its close handler) and opens a new one: at once on a
/// sequence gap (`immediate`), else after the backoff delay.
fn restart(shared: &Shared, immediate: bool) {
    let old = shared.borrow_mut().conn.take();
    if let Some(c) = old {
        c.detach_and_close();
    }
    if immediate {
        connect(shared);
    } else {
        shared.borrow().app.conn.set(ConnState::Reconnecting);
        schedule_reconnect(shared);
    }
}

fn schedule_reconnect(shared: &Shared) {
    let mut s = shared.borrow_mut();
    if s.stopped {
        return;
    }
    if let Some(h) = s.retry.take() {
        h.clear();
    }
    let delay = backoff_ms(s.attempt, random());
    s.attempt = s.attempt.saturating_add(1);
    let weak = Rc::downgrade(shared);
    s.retry = set_timeout_with_handle(
        move || {
            if let Some(shared) = weak.upgrade() {
                shared.borrow_mut().retry = None;
                connect(&shared);
            }
        },
        Duration::from_millis(delay as u64),
    )
    .ok();
}

fn random() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Math::random()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_to_fifteen() {
        let mid: Vec<f64> = (0..8).map(|a| backoff_ms(a, 0.5)).collect();
        assert_eq!(
            mid,
            vec![500.0, 1_000.0, 2_000.0, 4_000.0, 8_000.0, 15_000.0, 15_000.0, 15_000.0]
        );
        assert_eq!(backoff_ms(0, 0.0), 400.0, "jitter spreads -20%");
        assert_eq!(backoff_ms(0, 1.0), 600.0, "… and +20%");
        assert_eq!(backoff_ms(30, 1.0), 15_000.0, "never above the cap");
        assert_eq!(backoff_ms(u32::MAX, f64::NAN), 15_000.0);
        for a in 0..40 {
            for j in [0.0, 0.3, 0.99] {
                let d = backoff_ms(a, j);
                assert!((400.0..=15_000.0).contains(&d), "{a} {j} {d}");
            }
        }
    }
}
