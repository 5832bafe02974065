//! Live data: the shared reactive state, and the hooks that fill it from the server.
//!
//! Contract:
//! - [`Live`] is the one shared state (provided by context): a [`StreamState`] fed by the
//!   WebSocket and the history API, the connection state, the time of the last message,
//!   a clock ticking every second, the selected range and the range's [`Summary`].
//! - [`use_socket`] keeps one WebSocket to `/ws` open forever: it resumes with
//!   `since=<last seq>`, reconnects at once with `since` on a sequence gap, and after a close
//!   waits 0.5 s doubling to 15 s (with jitter, reset by the first message of a new
//!   connection). It pings every 20 s and treats 30 s of silence as a dead socket.
//! - [`use_history`] loads `/api/v1/windows` for the range whenever the range changes and
//!   whenever the socket (re)connects, merging under the live windows; [`use_summary`]
//!   reloads `/api/v1/summary` every 5 s and when the range changes.
//! - Every hook clears its timers and closes its socket when its owner is cleaned up.
//! - A `token` from the page URL is appended to every API and socket URL, and so is the
//!   page's segment (`filter`, see [`set_filter`]): the socket, the history, the summary and
//!   visitors now all show that segment. Changing it (a click on a row, or back and forward
//!   in the browser) empties the windows, reconnects the socket with the new filter and
//!   reloads the rest; a snapshot whose echoed filter is not the page's is ignored.
//! - [`use_now`] reloads `/api/v1/now` every 5 s and when the filter changes;
//!   [`use_segments_info`] loads `/api/v1/segments` once.
//!
//! The URL and backoff rules are pure functions at the top, tested on the host.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use pulseboard_model::{
    agg::Filter,
    proto::{
        Annotation, AnnotationsResponse, Compare, SegmentsInfo, ServerMsg, Summary, VisitorsNow,
        WindowView, WindowsResponse, PROTOCOL_VERSION,
    },
    stream::{Apply, StreamState},
};
use serde::de::DeserializeOwned;
use wasm_bindgen::{prelude::*, JsCast};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::{
    figures,
    route::{filter_of, search_with_filter, Range},
};

// ---------------------------------------------------------------------------------------
// Pure rules
// ---------------------------------------------------------------------------------------

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with `token=<token>` appended as a query parameter, when there is a token.
pub fn with_token(url: String, token: Option<&str>) -> String {
    match token {
        Some(t) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}token={}", encode(t))
        }
        None => url,
    }
}

/// `url` with `filter=<filter>` appended as a query parameter, when there is a filter.
pub fn with_filter(url: String, filter: Option<&Filter>) -> String {
    match filter {
        Some(f) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}filter={}", encode(&f.to_string()))
        }
        None => url,
    }
}

/// `/api/v1/now`.
pub fn now_url(token: Option<&str>, filter: Option<&Filter>) -> String {
    with_token(with_filter("/api/v1/now".to_owned(), filter), token)
}

/// `/api/v1/segments`.
pub fn segments_url(token: Option<&str>) -> String {
    with_token("/api/v1/segments".to_owned(), token)
}

/// The socket URL for a page served over `page_protocol` (`http:`/`https:`) from `host`
/// (`name:port`), resuming after `since` when given.
pub fn socket_url(
    page_protocol: &str,
    host: &str,
    since: Option<u64>,
    token: Option<&str>,
) -> String {
    let scheme = if page_protocol == "https:" {
        "wss"
    } else {
        "ws"
    };
    let mut url = format!("{scheme}://{host}/ws");
    if let Some(s) = since {
        url.push_str(&format!("?since={s}"));
    }
    with_token(url, token)
}

/// `/api/v1/windows` for `[from, to)`.
pub fn windows_url(from: i64, to: i64, token: Option<&str>) -> String {
    with_token(
        format!("/api/v1/windows?from={from}&to={to}&limit=10000"),
        token,
    )
}

/// `/api/v1/windows` for `[from, to)` in steps of `step`, with the period `compare` earlier.
pub fn history_url(
    from: i64,
    to: i64,
    step: Option<&str>,
    compare: Option<Compare>,
    token: Option<&str>,
) -> String {
    let mut url = format!("/api/v1/windows?from={from}&to={to}&limit=10000");
    if let Some(s) = step {
        url.push_str(&format!("&step={s}"));
    }
    if let Some(c) = compare {
        url.push_str(&format!("&compare={}", c.label()));
    }
    with_token(url, token)
}

/// `/api/v1/summary` for a range, with its comparison when one is chosen.
pub fn summary_url(range: Range, compare: Option<Compare>, token: Option<&str>) -> String {
    let mut url = format!("/api/v1/summary?range={}", range.label());
    if let Some(c) = compare {
        url.push_str(&format!("&compare={}", c.label()));
    }
    with_token(url, token)
}

/// `/api/v1/annotations` for `[from, to)`.
pub fn annotations_url(from: i64, to: i64, token: Option<&str>) -> String {
    with_token(
        format!("/api/v1/annotations?from={from}&to={to}&limit=1000"),
        token,
    )
}

/// The page's query string with `name` set to `value` (or removed for `None`), keeping
/// every other parameter: what the address bar shows so the view can be bookmarked.
pub fn with_query_param(search: &str, name: &str, value: Option<&str>) -> String {
    let q = search.strip_prefix('?').unwrap_or(search);
    let mut parts: Vec<String> = q
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        parts.push(format!("{name}={}", encode(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `/api/v1/status`.
pub fn status_url(token: Option<&str>) -> String {
    with_token("/api/v1/status".to_owned(), token)
}

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

// ---------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------

/// State of the socket, as shown to the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// First connection not yet open.
    Connecting,
    /// Open.
    Live,
    /// Closed; a reconnect is scheduled or under way.
    Reconnecting,
}

impl ConnState {
    /// `connecting`, `live` or `reconnecting` (the text browser tests read).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Live => "live",
            ConnState::Reconnecting => "reconnecting",
        }
    }
}

/// The app's shared live state; `Copy`, provided by context (see [`use_live`]).
#[derive(Clone, Copy)]
pub struct Live {
    /// Windows, status and last sequence.
    pub state: RwSignal<StreamState>,
    /// Socket state.
    pub conn: RwSignal<ConnState>,
    /// `Date.now()` of the last message received on the socket.
    pub last_message: RwSignal<Option<f64>>,
    /// `Date.now()`, updated every second (and when a message arrives).
    pub clock: RwSignal<f64>,
    /// `Date.now()` when the page opened.
    pub opened: f64,
    /// The selected range.
    pub range: RwSignal<Range>,
    /// The server's summary of the selected range (`None` until loaded for this range).
    pub summary: RwSignal<Option<Summary>>,
    /// The segment every panel shows (`None`: all traffic).
    pub filter: RwSignal<Option<Filter>>,
    /// Visitors now (`None` until loaded for this filter).
    pub now: RwSignal<Option<VisitorsNow>>,
    /// What the server segments and counts: dimensions, goals, visitors-now definition.
    pub info: RwSignal<Option<SegmentsInfo>>,
    /// Access token from the page URL, appended to every request.
    pub token: StoredValue<Option<String>>,
    /// `[from, to)` of the selected range (see [`figures::range_bounds`]).
    pub bounds: Memo<(i64, i64)>,
    /// Events in the windows of the selected range.
    pub total_events: Memo<u64>,
    /// The comparison chosen (`?compare=1d|7d`), if any.
    pub compare: RwSignal<Option<Compare>>,
    /// The comparison period's items, moved onto the current range (from the API).
    pub earlier: RwSignal<Vec<WindowView>>,
    /// Annotations of the selected range (from the API, reloaded when they change).
    pub annotations: RwSignal<Vec<Annotation>>,
}

impl Live {
    /// Fresh state for `range`, the segment `filter` and the comparison `compare`, keeping
    /// enough windows for the range.
    pub fn new(
        range: Range,
        token: Option<String>,
        filter: Option<Filter>,
        compare: Option<Compare>,
    ) -> Self {
        let now = now_ms();
        let state = RwSignal::new(StreamState::new(range.keep(0)));
        let clock = RwSignal::new(now);
        let range = RwSignal::new(range);
        let bounds = Memo::new(move |_| {
            let now = clock.get() as i64;
            let range_ms = range.get().ms();
            let step = range.get().step().map(|(_, ms)| ms);
            state.with(|s| {
                let newest = s.windows.last_key_value().map(|(_, w)| w.end);
                figures::align_start(
                    figures::range_bounds(now, s.window_ms, newest, range_ms),
                    step,
                )
            })
        });
        let total_events = Memo::new(move |_| {
            let (from, to) = bounds.get();
            state.with(|s| figures::total_events(s.range(from, to)))
        });
        Live {
            state,
            conn: RwSignal::new(ConnState::Connecting),
            last_message: RwSignal::new(None),
            clock,
            opened: now,
            range,
            summary: RwSignal::new(None),
            filter: RwSignal::new(filter),
            now: RwSignal::new(None),
            info: RwSignal::new(None),
            token: StoredValue::new(token),
            bounds,
            total_events,
            compare: RwSignal::new(compare),
            earlier: RwSignal::new(Vec::new()),
            annotations: RwSignal::new(Vec::new()),
        }
    }

    /// The token, if any (untracked).
    pub fn token(&self) -> Option<String> {
        self.token.get_value()
    }

    /// The filter (untracked).
    pub fn filter(&self) -> Option<Filter> {
        self.filter.get_untracked()
    }
}

/// Shows the segment `filter` (or all traffic) on every panel, and puts it in the page's
/// URL (a new history entry), so the page can be bookmarked, pinned in a kiosk or embedded.
pub fn set_filter(live: Live, filter: Option<Filter>) {
    if live.filter.get_untracked() == filter {
        return;
    }
    let location = window().location();
    let search = search_with_filter(&location.search().unwrap_or_default(), filter.as_ref());
    let url = format!("{}{search}", location.pathname().unwrap_or_default());
    if let Ok(h) = window().history() {
        let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&url));
    }
    live.filter.set(filter);
}

/// Follows the browser's back and forward buttons: the filter of the URL they lead to.
pub fn use_filter_history(live: Live) {
    let on_pop = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let search = window().location().search().unwrap_or_default();
        let f = filter_of(&search);
        if live.filter.get_untracked() != f {
            live.filter.set(f);
        }
    });
    let _ = window().add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
    let stored = StoredValue::new_local(on_pop);
    on_cleanup(move || {
        stored.try_with_value(|cb| {
            let _ = window()
                .remove_event_listener_with_callback("popstate", cb.as_ref().unchecked_ref());
        });
    });
}

/// The [`Live`] provided by an ancestor.
pub fn use_live() -> Live {
    expect_context::<Live>()
}

/// `Date.now()` in the browser; 0 elsewhere (host tests never reach it).
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}

// ---------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------

/// Ticks `live.clock` every second.
pub fn use_clock(live: Live) {
    let handle =
        set_interval_with_handle(move || live.clock.set(now_ms()), Duration::from_secs(1)).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
}

/// Fetches `url` and decodes its JSON body.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(js_err)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    let text = JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    let text = text.as_string().unwrap_or_default();
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}: {text}", resp.status()));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

fn js_err(v: JsValue) -> String {
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// Loads the history of the selected range into `live.state`, on every range change and
/// every (re)connection, and sets how many windows the state keeps.
pub fn use_history(live: Live) {
    let connected = Memo::new(move |_| live.conn.get() == ConnState::Live);
    Effect::new(move |prev: Option<(Range, bool, Option<Filter>)>| {
        let range = live.range.get();
        let up = connected.get();
        let filter = live.filter.get();
        let changed = prev
            .as_ref()
            .map(|(r, _, f)| *r != range || *f != filter)
            .unwrap_or(true);
        if changed || up {
            let width = live.state.with_untracked(|s| s.window_ms);
            let range_changed = prev.as_ref().map(|(r, _, _)| *r != range).unwrap_or(true);
            live.state.update(|s| {
                if range_changed {
                    s.drop_coarse();
                }
                s.keep = range.keep(width);
            });
            leptos::task::spawn_local(load_history(live, range, filter.clone()));
        }
        (range, up, filter)
    });
}

async fn load_history(live: Live, range: Range, filter: Option<Filter>) {
    let token = live.token();
    let now = now_ms() as i64;
    // The displayed range's start (aligned to the step of a long range).
    let mut from = live.bounds.get_untracked().0;
    // A long range: its history in steps, then its last hour at full resolution.
    if let Some((step, step_ms)) = range.step() {
        let split = (now - crate::route::FINE_MS).div_euclid(step_ms) * step_ms;
        let url = with_filter(
            history_url(from, split, Some(step), None, token.as_deref()),
            filter.as_ref(),
        );
        match get_json::<WindowsResponse>(&url).await {
            Ok(page) if live.range.get_untracked() == range => {
                live.state.update(|s| s.load_history(page.windows));
            }
            Ok(_) => return,
            Err(e) => leptos::logging::warn!("history: {e}"),
        }
        from = split;
    }
    let to = now + 60_000;
    // Follow `next` for a few pages at most; 24 h of 10 s windows fits in one.
    for _ in 0..8 {
        let url = with_filter(windows_url(from, to, token.as_deref()), filter.as_ref());
        let page: WindowsResponse = match get_json(&url).await {
            Ok(p) => p,
            Err(e) => {
                leptos::logging::warn!("history: {e}");
                return;
            }
        };
        if live.range.get_untracked() != range || live.filter() != filter {
            return; // the viewer picked another range or segment meanwhile
        }
        let next = page.next;
        let width = page.window_ms;
        live.state.update(|s| {
            s.keep = range.keep(if width > 0 { width } else { s.window_ms });
            s.load_history(page.windows);
        });
        match next {
            Some(n) if n > from && n < to => from = n,
            _ => return,
        }
    }
}

/// Keeps `live.earlier` to the comparison period of the selected range (when a comparison
/// is chosen): reloaded when the range or the comparison changes, and every minute.
pub fn use_compare(live: Live) {
    let load = move || {
        let (range, compare) = (live.range.get_untracked(), live.compare.get_untracked());
        let Some(c) = compare else {
            live.earlier.set(Vec::new());
            return;
        };
        let now = now_ms() as i64;
        let filter = live.filter();
        let url = with_filter(
            history_url(
                now - range.ms(),
                now + 60_000,
                range.compare_step(),
                Some(c),
                live.token().as_deref(),
            ),
            filter.as_ref(),
        );
        leptos::task::spawn_local(async move {
            match get_json::<WindowsResponse>(&url).await {
                Ok(page)
                    if live.range.get_untracked() == range
                        && live.compare.get_untracked() == compare
                        && live.filter() == filter =>
                {
                    live.earlier
                        .set(page.compare.map(|c| c.windows).unwrap_or_default());
                }
                Ok(_) => {}
                Err(e) => leptos::logging::warn!("compare: {e}"),
            }
        });
    };
    Effect::new(move |_| {
        live.range.track();
        live.compare.track();
        live.filter.track();
        live.earlier.set(Vec::new());
        load();
    });
    let handle = set_interval_with_handle(load, Duration::from_secs(60)).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
}

/// Keeps `live.annotations` to the annotations of the selected range: reloaded when the
/// range changes and whenever the status's `annotations_version` moves (an annotation was
/// added or deleted anywhere: the server pushes the status at once).
pub fn use_annotations(live: Live) {
    let version = Memo::new(move |_| {
        live.state
            .with(|s| s.status.as_ref().map(|st| st.annotations_version))
    });
    Effect::new(move |_| {
        let range = live.range.get();
        if version.get().is_none() {
            return;
        }
        let now = now_ms() as i64;
        let url = annotations_url(now - range.ms(), now + 3_600_000, live.token().as_deref());
        leptos::task::spawn_local(async move {
            match get_json::<AnnotationsResponse>(&url).await {
                Ok(a) if live.range.get_untracked() == range => live.annotations.set(a.annotations),
                Ok(_) => {}
                Err(e) => leptos::logging::warn!("annotations: {e}"),
            }
        });
    });
}

/// Keeps `live.summary` to the server's summary of the selected range: cleared and
/// reloaded when the range changes, reloaded every 5 s.
pub fn use_summary(live: Live) {
    let load = move || {
        let range = live.range.get_untracked();
        let filter = live.filter();
        let url = with_filter(
            summary_url(range, live.compare.get_untracked(), live.token().as_deref()),
            filter.as_ref(),
        );
        leptos::task::spawn_local(async move {
            match get_json::<Summary>(&url).await {
                Ok(s) if live.range.get_untracked() == range && live.filter() == filter => {
                    live.summary.set(Some(s))
                }
                Ok(_) => {}
                Err(e) => leptos::logging::warn!("summary: {e}"),
            }
        });
    };
    reload_every_5s(
        move || {
            live.range.track();
            live.filter.track();
            live.compare.track();
            live.summary.set(None);
        },
        load,
    );
}

/// Runs `load` now, whenever what `reset` tracks changes (after `reset` ran), and every 5 s;
/// stops when the owner is cleaned up.
fn reload_every_5s(reset: impl Fn() + 'static, load: impl Fn() + Clone + 'static) {
    let first = load.clone();
    Effect::new(move |_| {
        reset();
        first();
    });
    let handle = set_interval_with_handle(load, Duration::from_secs(5)).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
}

/// Keeps `live.now` to the server's visitors now for the page's segment: cleared and
/// reloaded when the filter changes, reloaded every 5 s.
pub fn use_now(live: Live) {
    let load = move || {
        let filter = live.filter();
        let url = now_url(live.token().as_deref(), filter.as_ref());
        leptos::task::spawn_local(async move {
            match get_json::<VisitorsNow>(&url).await {
                Ok(n) if live.filter() == filter => live.now.set(Some(n)),
                Ok(_) => {}
                Err(e) => leptos::logging::warn!("visitors now: {e}"),
            }
        });
    };
    reload_every_5s(
        move || {
            live.filter.track();
            live.now.set(None);
        },
        load,
    );
}

/// Loads what the server segments and counts (`/api/v1/segments`) once.
pub fn use_segments_info(live: Live) {
    let url = segments_url(live.token().as_deref());
    leptos::task::spawn_local(async move {
        match get_json::<SegmentsInfo>(&url).await {
            Ok(i) => live.info.set(Some(i)),
            Err(e) => leptos::logging::warn!("segments: {e}"),
        }
    });
}

/// Sets `data-ready="1"` on `<body>` once `ready` is true, after the browser has laid out
/// what that render produced.
pub fn use_ready_marker(ready: Signal<bool>) {
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        if !ready.get() {
            return false;
        }
        request_animation_frame(|| {
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-ready", "1");
            }
        });
        true
    });
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
    live: Live,
    conn: Option<Conn>,
    retry: Option<TimeoutHandle>,
    attempt: u32,
    /// Messages received on the current connection.
    received: u64,
    stopped: bool,
}

type Shared = Rc<RefCell<Socket>>;

/// Keeps a WebSocket to the server open for as long as the calling owner lives, applying
/// every message to `live.state` (see the module doc for the rules).
pub fn use_socket(live: Live) {
    let shared: Shared = Rc::new(RefCell::new(Socket {
        live,
        conn: None,
        retry: None,
        attempt: 0,
        received: 0,
        stopped: false,
    }));
    connect(&shared);

    // Another segment: the windows shown so far are another segment's; start from its
    // snapshot on a new socket.
    let weak = Rc::downgrade(&shared);
    Effect::new(move |prev: Option<Option<Filter>>| {
        let filter = live.filter.get();
        if prev.is_some_and(|p| p != filter) {
            live.state.update(|s| *s = StreamState::new(s.keep));
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
            let silent = live
                .last_message
                .get_untracked()
                .map(|at| now_ms() - at > 30_000.0)
                .unwrap_or(false);
            if live.conn.get_untracked() == ConnState::Live && silent {
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
    let live = shared.borrow().live;
    if shared.borrow().stopped {
        return;
    }
    let since = live.state.with_untracked(|s| s.last_seq);
    let location = window().location();
    let url = socket_url(
        &location.protocol().unwrap_or_default(),
        &location.host().unwrap_or_default(),
        since,
        live.token().as_deref(),
    );
    let url = with_filter(url, live.filter().as_ref());
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            leptos::logging::warn!("socket: {}", js_err(e));
            schedule_reconnect(shared);
            return;
        }
    };

    let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        live.conn.set(ConnState::Live);
    });

    let weak = Rc::downgrade(shared);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let Some(shared) = weak.upgrade() else { return };
        let Some(text) = e.data().as_string() else {
            return;
        };
        let now = now_ms();
        live.last_message.set(Some(now));
        live.clock.set(now);
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
            protocol, filter, ..
        } = &msg
        {
            if *protocol != PROTOCOL_VERSION {
                leptos::logging::warn!(
                    "server speaks protocol {protocol}, this page {PROTOCOL_VERSION}; reload the page after an upgrade"
                );
            }
            let want = live.filter().map(|f| f.to_string());
            if *filter != want {
                // Another segment's (a socket being replaced), or a server that cannot filter.
                leptos::logging::warn!("socket: ignoring a snapshot of {filter:?}, not {want:?}");
                return;
            }
        }
        match live.state.try_update_untracked(|s| s.apply(msg)) {
            Some(Apply::Applied) => live.state.notify(),
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
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
        let Some(shared) = weak.upgrade() else { return };
        if shared.borrow().stopped {
            return;
        }
        live.conn.set(ConnState::Reconnecting);
        schedule_reconnect(&shared);
    });

    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));

    let mut s = shared.borrow_mut();
    s.received = 0;
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
        shared.borrow().live.conn.set(ConnState::Reconnecting);
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
    fn socket_url_follows_the_page_scheme_and_resumes() {
        assert_eq!(
            socket_url("http:", "localhost:8080", None, None),
            "ws://localhost:8080/ws"
        );
        assert_eq!(
            socket_url("https:", "dash.example", Some(42), None),
            "wss://dash.example/ws?since=42"
        );
        assert_eq!(
            socket_url("http:", "h:1", Some(7), Some("a b&c")),
            "ws://h:1/ws?since=7&token=a%20b%26c"
        );
        assert_eq!(
            socket_url("http:", "h:1", None, Some("xyz")),
            "ws://h:1/ws?token=xyz"
        );
    }

    #[test]
    fn api_urls_carry_the_token() {
        assert_eq!(
            windows_url(1, 2, None),
            "/api/v1/windows?from=1&to=2&limit=10000"
        );
        assert_eq!(
            windows_url(1, 2, Some("t")),
            "/api/v1/windows?from=1&to=2&limit=10000&token=t"
        );
        assert_eq!(
            summary_url(Range::H24, None, None),
            "/api/v1/summary?range=24h"
        );
        assert_eq!(
            summary_url(Range::M15, Some(Compare::Week), Some("t")),
            "/api/v1/summary?range=15m&compare=7d&token=t"
        );
        assert_eq!(
            history_url(1, 2, Some("30m"), Some(Compare::Day), None),
            "/api/v1/windows?from=1&to=2&limit=10000&step=30m&compare=1d"
        );
        assert_eq!(
            annotations_url(1, 2, Some("t")),
            "/api/v1/annotations?from=1&to=2&limit=1000&token=t"
        );
        assert_eq!(status_url(Some("t")), "/api/v1/status?token=t");
        assert_eq!(status_url(None), "/api/v1/status");
        let de = Filter::parse("type:sign up").expect("filter");
        assert_eq!(
            with_filter(summary_url(Range::M5, None, None), Some(&de)),
            "/api/v1/summary?range=5m&filter=type%3Asign%20up"
        );
        assert_eq!(
            now_url(Some("t"), Some(&de)),
            "/api/v1/now?filter=type%3Asign%20up&token=t"
        );
        assert_eq!(now_url(None, None), "/api/v1/now");
        assert_eq!(segments_url(None), "/api/v1/segments");
        assert_eq!(
            with_filter(socket_url("http:", "h:1", None, None), Some(&de)),
            "ws://h:1/ws?filter=type%3Asign%20up"
        );
    }

    #[test]
    fn the_address_bar_keeps_other_parameters_when_one_changes() {
        assert_eq!(with_query_param("", "compare", Some("1d")), "?compare=1d");
        assert_eq!(
            with_query_param("?token=a%20b&compare=7d", "compare", Some("1d")),
            "?token=a%20b&compare=1d"
        );
        assert_eq!(with_query_param("?compare=7d", "compare", None), "");
        assert_eq!(
            with_query_param("?kiosk&range=1h", "range", Some("7d")),
            "?kiosk&range=7d"
        );
    }

    #[test]
    fn encode_keeps_unreserved_characters_only() {
        assert_eq!(encode("aZ0-_.~"), "aZ0-_.~");
        assert_eq!(encode("a/b?c=d é"), "a%2Fb%3Fc%3Dd%20%C3%A9");
    }

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

    #[test]
    fn conn_state_text_is_stable() {
        assert_eq!(ConnState::Connecting.as_str(), "connecting");
        assert_eq!(ConnState::Live.as_str(), "live");
        assert_eq!(ConnState::Reconnecting.as_str(), "reconnecting");
    }
}
