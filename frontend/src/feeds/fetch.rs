//! The API feeds: the range's history (`/api/v1/windows`, in steps for a long range), the
//! comparison period, the annotations, the range's summary, visitors now and what the
//! server segments; and [`get_json`] over [`send`], the fetches they share.
//!
//! Contract: each hook loads when what it depends on changes (range, segment, comparison,
//! a (re)connection, the annotations version) and, for some, on a timer; an answer that
//! arrives after the viewer picked another range or segment is dropped. Timers are cleared
//! when the owner is cleaned up. A `401` ends the page ([`get_json`] moves the gate, see
//! [`crate::access`]); a `403` (outside a share link's scope) hides what the fetch would
//! have shown, quietly: a link session does not even ask for the segments or a comparison.

use std::time::Duration;

use leptos::prelude::*;
use pulseboard_model::proto::{
    AnnotationsResponse, SegmentsInfo, Summary, VisitorsNow, WindowsResponse,
};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;

use super::{
    js_err, session,
    urls::{
        annotations_url, history_url, now_url, segments_url, summary_url, windows_url, with_view,
    },
};
use crate::{
    access::{refusal, Refusal},
    route::Range,
    state::{now_ms, AppState, ConnState, ViewKey},
};

/// Sends a same-origin request (the session cookie goes with it) and reads the answer's
/// status and body; `Err` when no answer came (network, server down).
pub async fn send(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let h = web_sys::Headers::new().map_err(js_err)?;
    for (name, value) in headers {
        h.set(name, value).map_err(js_err)?;
    }
    if let Some(b) = body {
        h.set("content-type", "application/json").map_err(js_err)?;
        init.set_body(&wasm_bindgen::JsValue::from_str(b));
    }
    init.set_headers(&h);
    let resp = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(js_err)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    let text = JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    Ok((resp.status(), text.as_string().unwrap_or_default()))
}

/// Why [`get_json`] has nothing.
#[derive(Debug)]
pub enum FetchError {
    /// `401`/`403`: a `401` has already moved the page's gate; a `403` means "not for this
    /// credential or link": the caller shows nothing rather than an error.
    Refused(Refusal),
    /// Anything else: no answer, another status, a body it cannot read.
    Failed(String),
}

/// Logs `e` as `what` failing, unless the server refused it (that is not an error to
/// report: the gate or the hidden panel says it).
fn warn(what: &str, e: FetchError) {
    if let FetchError::Failed(e) = e {
        leptos::logging::warn!("{what}: {e}");
    }
}

/// Fetches `url` and decodes its JSON body; a `401` moves `app`'s gate (the page gives way
/// to the sign-in form or the link's end, and its feeds stop).
pub async fn get_json<T: DeserializeOwned>(app: AppState, url: &str) -> Result<T, FetchError> {
    let (status, text) = send("GET", url, None, &[])
        .await
        .map_err(FetchError::Failed)?;
    if let Some(r) = refusal(status, &text) {
        session::refuse(app, &r);
        return Err(FetchError::Refused(r));
    }
    if !(200..300).contains(&status) {
        return Err(FetchError::Failed(format!("{url}: HTTP {status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|e| FetchError::Failed(format!("{url}: {e}")))
}

/// Loads the history of the selected range into `app.stream`, on every range change and
/// every (re)connection, and sets how many windows the state keeps.
pub fn use_history(app: AppState) {
    let connected = Memo::new(move |_| app.conn.get() == ConnState::Live);
    Effect::new(move |prev: Option<(Range, bool, ViewKey)>| {
        let range = app.range.get();
        let up = connected.get();
        let filter = app.view_tracked();
        let changed = prev
            .as_ref()
            .map(|(r, _, f)| *r != range || *f != filter)
            .unwrap_or(true);
        if changed || up {
            let width = app.stream.with_untracked(|s| s.window_ms);
            let range_changed = prev.as_ref().map(|(r, _, _)| *r != range).unwrap_or(true);
            app.stream.update(|s| {
                if range_changed {
                    s.drop_coarse();
                }
                s.keep = range.keep(width);
            });
            leptos::task::spawn_local(load_history(app, range, filter.clone()));
        }
        (range, up, filter)
    });
}

async fn load_history(app: AppState, range: Range, filter: ViewKey) {
    let now = now_ms() as i64;
    // The displayed range's start (aligned to the step of a long range).
    let mut from = app.bounds.get_untracked().0;
    // A long range: its history in steps, then its last hour at full resolution.
    if let Some((step, step_ms)) = range.step() {
        let split = (now - crate::route::FINE_MS).div_euclid(step_ms) * step_ms;
        let url = with_view(history_url(from, split, Some(step), None), &filter);
        match get_json::<WindowsResponse>(app, &url).await {
            Ok(page) if app.range.get_untracked() == range => {
                app.stream.update(|s| s.load_history(page.windows));
            }
            Ok(_) | Err(FetchError::Refused(_)) => return,
            Err(e) => warn("history", e),
        }
        from = split;
    }
    let to = now + 60_000;
    // Follow `next` for a few pages at most; 24 h of 10 s windows fits in one.
    for _ in 0..8 {
        let url = with_view(windows_url(from, to), &filter);
        let page: WindowsResponse = match get_json(app, &url).await {
            Ok(p) => p,
            Err(e) => {
                warn("history", e);
                return;
            }
        };
        if app.range.get_untracked() != range || app.view() != filter {
            return; // the viewer picked another range or segment meanwhile
        }
        let next = page.next;
        let width = page.window_ms;
        app.stream.update(|s| {
            s.keep = range.keep(if width > 0 { width } else { s.window_ms });
            s.load_history(page.windows);
        });
        match next {
            Some(n) if n > from && n < to => from = n,
            _ => return,
        }
    }
}

/// Keeps `app.earlier` to the comparison period of the selected range (when a comparison
/// is chosen): reloaded when the range or the comparison changes, and every minute. A
/// share link's page compares nothing (its scope has no comparison).
pub fn use_compare(app: AppState) {
    let load = move || {
        let (range, compare) = (app.range.get_untracked(), app.compare.get_untracked());
        let compare = compare.filter(|_| !app.is_link_untracked());
        let Some(c) = compare else {
            app.earlier.set(Vec::new());
            return;
        };
        let now = now_ms() as i64;
        let filter = app.view();
        let url = with_view(
            history_url(
                now - range.ms(),
                now + 60_000,
                range.compare_step(),
                Some(c),
            ),
            &filter,
        );
        leptos::task::spawn_local(async move {
            match get_json::<WindowsResponse>(app, &url).await {
                Ok(page)
                    if app.range.get_untracked() == range
                        && app.compare.get_untracked() == compare
                        && app.view() == filter =>
                {
                    app.earlier
                        .set(page.compare.map(|c| c.windows).unwrap_or_default());
                }
                Ok(_) => {}
                Err(FetchError::Refused(_)) => app.earlier.set(Vec::new()),
                Err(e) => warn("compare", e),
            }
        });
    };
    reload_every(
        Duration::from_secs(60),
        move || {
            app.range.track();
            app.compare.track();
            app.filter.track();
            app.site.track();
            app.earlier.set(Vec::new());
        },
        load,
    );
}

/// Keeps `app.annotations` to the annotations of the selected range: reloaded when the
/// range changes and whenever the status's `annotations_version` moves (an annotation was
/// added or deleted anywhere: the server pushes the status at once).
pub fn use_annotations(app: AppState) {
    let version = Memo::new(move |_| {
        app.stream
            .with(|s| s.status.as_ref().map(|st| st.annotations_version))
    });
    Effect::new(move |_| {
        let range = app.range.get();
        if version.get().is_none() {
            return;
        }
        let now = now_ms() as i64;
        let url = annotations_url(now - range.ms(), now + 3_600_000);
        leptos::task::spawn_local(async move {
            match get_json::<AnnotationsResponse>(app, &url).await {
                Ok(a) if app.range.get_untracked() == range => app.annotations.set(a.annotations),
                Ok(_) => {}
                Err(e) => warn("annotations", e),
            }
        });
    });
}

/// Keeps `app.summary` to the server's summary of the selected range: cleared and
/// reloaded when the range changes, reloaded every 5 s (with the comparison's change, but
/// for a share link's page).
pub fn use_summary(app: AppState) {
    let load = move || {
        let range = app.range.get_untracked();
        let filter = app.view();
        let compare = app
            .compare
            .get_untracked()
            .filter(|_| !app.is_link_untracked());
        let url = with_view(summary_url(range, compare), &filter);
        leptos::task::spawn_local(async move {
            match get_json::<Summary>(app, &url).await {
                Ok(s) if app.range.get_untracked() == range && app.view() == filter => {
                    app.summary.set(Some(s))
                }
                Ok(_) => {}
                Err(e) => warn("summary", e),
            }
        });
    };
    reload_every(
        Duration::from_secs(5),
        move || {
            app.range.track();
            app.filter.track();
            app.site.track();
            app.compare.track();
            app.summary.set(None);
        },
        load,
    );
}

/// Runs `load` now, whenever what `reset` tracks changes (after `reset` ran), and every
/// `period`; stops when the owner is cleaned up.
fn reload_every(period: Duration, reset: impl Fn() + 'static, load: impl Fn() + Clone + 'static) {
    let first = load.clone();
    Effect::new(move |_| {
        reset();
        first();
    });
    let handle = set_interval_with_handle(load, period).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
}

/// Keeps `app.now` to the server's visitors now for the page's segment: cleared and
/// reloaded when the filter changes, reloaded every 5 s.
pub fn use_now(app: AppState) {
    let load = move || {
        let filter = app.view();
        let url = with_view(now_url(None), &filter);
        leptos::task::spawn_local(async move {
            match get_json::<VisitorsNow>(app, &url).await {
                Ok(n) if app.view() == filter => app.now.set(Some(n)),
                Ok(_) => {}
                Err(e) => warn("visitors now", e),
            }
        });
    };
    reload_every(
        Duration::from_secs(5),
        move || {
            app.filter.track();
            app.site.track();
            app.now.set(None);
        },
        load,
    );
}

/// Loads what the server segments and counts (`/api/v1/segments`) once. A server that
/// refuses it (a share link's page) leaves it unknown, quietly: the goals keep their figures
/// without their rules.
pub fn use_segments_info(app: AppState) {
    leptos::task::spawn_local(async move {
        match get_json::<SegmentsInfo>(app, &segments_url()).await {
            Ok(i) => app.info.set(Some(i)),
            Err(e) => warn("segments", e),
        }
    });
}
