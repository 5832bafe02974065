//! The feeds: the hooks that fill the shared [`AppState`] from the server, the clock and the
//! browser's history.
//!
//! Contract:
//! - [`use_session`] asks the server who is looking before anything else, and the page's
//!   other feeds run only while the gate is open ([`crate::access::Gate`]): a `401` from any
//!   of them (or the socket closed because a share link was revoked or expired) closes it,
//!   which drops the page and stops every feed, so nothing hammers the server any more.
//! - [`use_socket`] keeps one WebSocket to `/ws` open forever: it resumes with
//!   `since=<last seq>`, reconnects at once with `since` on a sequence gap, and after a close
//!   waits 0.5 s doubling to 15 s (with jitter, reset by the first message of a new
//!   connection). It pings every 20 s and treats 30 s of silence as a dead socket.
//! - [`use_history`] loads `/api/v1/windows` for the range whenever the range changes and
//!   whenever the socket (re)connects, merging under the windows the socket delivered;
//!   [`use_summary`] reloads `/api/v1/summary` every 5 s and when the range changes.
//! - Every hook clears its timers and closes its socket when its owner is cleaned up.
//! - No URL carries a credential (the session cookie goes by itself); the page's segment
//!   (`filter`, see [`set_filter`]) is appended to every API and socket URL: the socket, the
//!   history, the summary and visitors now all show that segment. Changing it (a click on a row, or back and forward
//!   in the browser, [`use_filter_history`]) empties the windows, reconnects the socket with
//!   the new filter and reloads the rest; a snapshot whose echoed filter is not the page's
//!   is ignored.
//! - [`use_now`] reloads `/api/v1/now` every 5 s and when the filter changes;
//!   [`use_segments_info`] loads `/api/v1/segments` once; [`use_compare`] and
//!   [`use_annotations`] keep the comparison period and the annotations of the range (a
//!   share link's page asks for no comparison: outside its scope);
//!   [`use_clock`] ticks the clock every second.
//! - [`links`] is no hook: the admin's Share dialog calls it to list, make and revoke share
//!   links (its writes carry the session's CSRF token).
//!
//! [`urls`] (the URLs) and the socket's backoff rule are pure, tested on the host.
//!
//! [`set_filter`]: crate::state::set_filter

pub mod fetch;
pub mod links;
pub mod session;
pub mod socket;
pub mod urls;

pub use fetch::{
    use_annotations, use_compare, use_history, use_now, use_segments_info, use_summary,
};
pub use session::use_session;
pub use socket::{use_socket, DISPLAY_EVERY_MS};

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::{prelude::*, JsCast};
use web_sys::Event;

use crate::{
    route::{filter_of, site_of},
    state::{now_ms, AppState},
};

/// Ticks `app.clock` every second.
pub fn use_clock(app: AppState) {
    let handle =
        set_interval_with_handle(move || app.clock.set(now_ms()), Duration::from_secs(1)).ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
}

/// Follows the browser's back and forward buttons: the filter of the URL they lead to.
pub fn use_filter_history(app: AppState) {
    let on_pop = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let search = window().location().search().unwrap_or_default();
        let f = filter_of(&search);
        if app.filter.get_untracked() != f {
            app.filter.set(f);
        }
        let site = site_of(&search);
        if app.site.get_untracked() != site {
            app.site.set(site);
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

/// A JavaScript error as text.
fn js_err(v: JsValue) -> String {
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}
