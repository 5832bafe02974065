//! The app's shared reactive state, [`AppState`], provided by context (see
//! [`use_app_state`]): who is looking (the session, and the gate: the page or a screen
//! instead of it), the stream state (windows, status, last sequence) that the socket and
//! the history fill, the connection state, the clock, the selected range, segment and
//! comparison, and what the API says about them. The feeds (`crate::feeds`) fill it;
//! components only read it.
//!
//! Contract: changing the segment ([`set_filter`]) also writes it into the page's URL (a
//! new history entry), so the view can be bookmarked, pinned in a kiosk or embedded.

use leptos::prelude::*;
use pulseboard_model::{
    agg::Filter,
    proto::{Annotation, Compare, SegmentsInfo, Summary, VisitorsNow, WindowView},
    stream::StreamState,
};
use wasm_bindgen::JsValue;

use crate::{
    access::{Gate, Session},
    figures,
    route::{search_with, search_with_filter, Range},
};

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

/// The app's shared state; `Copy`, provided by context (see [`use_app_state`]).
#[derive(Clone, Copy)]
pub struct AppState {
    /// Windows, status and last sequence, from the socket and the history.
    pub stream: RwSignal<StreamState>,
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
    /// The site every panel shows (`None`: every site).
    pub site: RwSignal<Option<String>>,
    /// Visitors now (`None` until loaded for this filter).
    pub now: RwSignal<Option<VisitorsNow>>,
    /// What the server segments and counts: dimensions, goals, visitors-now definition.
    pub info: RwSignal<Option<SegmentsInfo>>,
    /// The page, or the screen shown instead of it (sign in, a link's access ended).
    pub gate: RwSignal<Gate>,
    /// Who is looking (`GET /api/v1/session`; `None` until known, or from a server without
    /// sessions).
    pub session: RwSignal<Option<Session>>,
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

impl AppState {
    /// Fresh state for `range`, the segment `filter` and the comparison `compare`, keeping
    /// enough windows for the range.
    pub fn new(range: Range, filter: Option<Filter>, compare: Option<Compare>) -> Self {
        let now = now_ms();
        let stream = RwSignal::new(StreamState::new(range.keep(0)));
        let clock = RwSignal::new(now);
        let range = RwSignal::new(range);
        let bounds = Memo::new(move |_| {
            let now = clock.get() as i64;
            let range_ms = range.get().ms();
            let step = range.get().step().map(|(_, ms)| ms);
            stream.with(|s| {
                let newest = s.windows.last_key_value().map(|(_, w)| w.end);
                figures::align_start(
                    figures::range_bounds(now, s.window_ms, newest, range_ms),
                    step,
                )
            })
        });
        let total_events = Memo::new(move |_| {
            let (from, to) = bounds.get();
            stream.with(|s| figures::total_events(s.range(from, to)))
        });
        AppState {
            stream,
            conn: RwSignal::new(ConnState::Connecting),
            last_message: RwSignal::new(None),
            clock,
            opened: now,
            range,
            summary: RwSignal::new(None),
            filter: RwSignal::new(filter),
            site: RwSignal::new(None),
            now: RwSignal::new(None),
            info: RwSignal::new(None),
            gate: RwSignal::new(Gate::Checking),
            session: RwSignal::new(None),
            bounds,
            total_events,
            compare: RwSignal::new(compare),
            earlier: RwSignal::new(Vec::new()),
            annotations: RwSignal::new(Vec::new()),
        }
    }

    /// Whether the page was opened through a share link (tracked): one view, pinned to
    /// the link's segment and range, no segment browser, no comparison.
    pub fn is_link(&self) -> bool {
        self.session
            .with(|s| s.as_ref().is_some_and(Session::is_link))
    }

    /// [`AppState::is_link`], untracked.
    pub fn is_link_untracked(&self) -> bool {
        self.session
            .with_untracked(|s| s.as_ref().is_some_and(Session::is_link))
    }

    /// The filter (untracked).
    pub fn filter(&self) -> Option<Filter> {
        self.filter.get_untracked()
    }

    /// The site and the segment shown (untracked).
    pub fn view(&self) -> ViewKey {
        (self.site.get_untracked(), self.filter.get_untracked())
    }

    /// The site and the segment shown (tracked).
    pub fn view_tracked(&self) -> ViewKey {
        (self.site.get(), self.filter.get())
    }
}

/// What the panels show: a site (or every site) and a segment (or all of it).
pub type ViewKey = (Option<String>, Option<Filter>);

/// Shows the site `site` (or every site) on every panel, and puts it in the page's URL (a
/// new history entry), as [`set_filter`] does the segment.
pub fn set_site(app: AppState, site: Option<String>) {
    if app.site.get_untracked() == site {
        return;
    }
    let location = window().location();
    let search = search_with(
        &location.search().unwrap_or_default(),
        "site",
        site.as_deref(),
    );
    let url = format!("{}{search}", location.pathname().unwrap_or_default());
    if let Ok(h) = window().history() {
        let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&url));
    }
    app.site.set(site);
}

/// Shows the segment `filter` (or all traffic) on every panel, and puts it in the page's
/// URL (a new history entry), so the page can be bookmarked, pinned in a kiosk or embedded.
pub fn set_filter(app: AppState, filter: Option<Filter>) {
    if app.filter.get_untracked() == filter {
        return;
    }
    let location = window().location();
    let search = search_with_filter(&location.search().unwrap_or_default(), filter.as_ref());
    let url = format!("{}{search}", location.pathname().unwrap_or_default());
    if let Ok(h) = window().history() {
        let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&url));
    }
    app.filter.set(filter);
}

/// The [`AppState`] provided by an ancestor.
pub fn use_app_state() -> AppState {
    expect_context::<AppState>()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_state_text_is_stable() {
        assert_eq!(ConnState::Connecting.as_str(), "connecting");
        assert_eq!(ConnState::Live.as_str(), "live");
        assert_eq!(ConnState::Reconnecting.as_str(), "reconnecting");
    }
}
