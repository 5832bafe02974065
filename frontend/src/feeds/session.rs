//! The session feed: who is looking ([`use_session`]: `GET /api/v1/session` once, when the
//! page opens), what ends the page ([`refuse`], [`ask_session`]), and signing in and out
//! ([`sign_in`], [`sign_out`]).
//!
//! Contract:
//! - the page's feeds start only once the server has said who is looking (the gate opens);
//!   a `401` there shows the sign-in form or the link's end instead. A server that answers
//!   anything else (an error, no session endpoint) or does not answer is not in the way:
//!   the page opens and its feeds retry as they always do;
//! - a share link's session pins the page to the link's segment, opens it at the link's
//!   range (the dashboard may pick a shorter one: the server refuses longer), and compares
//!   nothing;
//! - any later `401` (a fetch, or the session asked after the socket failed to connect or
//!   was closed by policy) closes the gate: the page and its feeds are dropped, so nothing
//!   reconnects or reloads any more; an ended link stays ended;
//! - a page opened through a share link is remembered for the tab (`sessionStorage`, no
//!   secret in it), so that after its cookie ran out, a `401` without a credential still
//!   reads as the link's end, also after a reload ([`Refusal::gate_on`]);
//! - signing in posts the token in a JSON body (never in a URL) and reloads the page; signing
//!   out deletes the session with its CSRF token and reloads.

use leptos::prelude::*;
use pulseboard_model::agg::Filter;

use super::fetch::send;
use crate::{
    access::{refusal, sign_in_body, ApiError, Gate, Refusal, Session, CSRF_HEADER, SESSION_URL},
    state::AppState,
};

/// The `sessionStorage` key that holds the path (no secret) of the page this tab opened
/// through a share link.
const LINK_PAGE_KEY: &str = "pb_link_page";

/// The page's path (`/kiosk`, `/embed/events`, `/`; its query changes with its range).
fn this_page() -> String {
    window().location().pathname().unwrap_or_default()
}

/// Whether this page was opened through a share link (this load, or an earlier load of the
/// same page in this tab).
fn link_page(app: AppState) -> bool {
    app.is_link_untracked()
        || storage().is_some_and(|s| s.get_item(LINK_PAGE_KEY).ok().flatten() == Some(this_page()))
}

/// Remembers (or forgets) for the tab that this page is a share link's.
fn remember_link_page(yes: bool) {
    if let Some(s) = storage() {
        let _ = if yes {
            s.set_item(LINK_PAGE_KEY, &this_page())
        } else {
            s.remove_item(LINK_PAGE_KEY)
        };
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

/// Asks the server who is looking, then opens the gate (or shows the sign-in form or the
/// link's end).
pub fn use_session(app: AppState) {
    leptos::task::spawn_local(async move {
        match send("GET", SESSION_URL, None, &[]).await {
            Ok((200, body)) => match serde_json::from_str::<Session>(&body) {
                Ok(s) => {
                    remember_link_page(s.is_link());
                    pin_to_link(app, &s);
                    app.session.set(Some(s));
                }
                Err(e) => leptos::logging::warn!("session: cannot read {body:?}: {e}"),
            },
            Ok((status, body)) => {
                if let Some(gate) = refusal(status, &body).and_then(|r| r.gate_on(link_page(app))) {
                    app.gate.set(gate);
                    return;
                }
                leptos::logging::warn!("session: HTTP {status}: {body}");
            }
            Err(e) => leptos::logging::warn!("session: {e}"),
        }
        if app.gate.get_untracked() == Gate::Checking {
            app.gate.set(Gate::Open);
        }
    });
}

/// A share link's page shows the link's segment, opens at its range, without a comparison:
/// what the link's scope allows (anything else the server refuses with a `403`).
fn pin_to_link(app: AppState, session: &Session) {
    if !session.is_link() {
        return;
    }
    let link = session.link.clone().unwrap_or_default();
    if let Some(r) = link.pinned_range() {
        app.range.set(r);
    }
    let filter = link
        .filter
        .as_deref()
        .and_then(|f| Filter::parse_registering(f).ok());
    if app.filter.get_untracked() != filter {
        app.filter.set(filter);
    }
    if app.site.get_untracked() != link.site {
        app.site.set(link.site.clone());
    }
    app.compare.set(None);
}

/// What a refused request means for the page: a `401` closes the gate (an ended link stays
/// ended); a `403` changes nothing here.
pub fn refuse(app: AppState, r: &Refusal) {
    let Some(next) = r.gate_on(link_page(app)) else {
        return;
    };
    let now = app.gate.get_untracked();
    let next = now.after(next);
    if next != now {
        leptos::logging::log!("access: {r:?}; the page gives way to {next:?}");
        app.gate.set(next);
    }
}

/// Asks the server whether the page may still look (after the socket failed to connect or
/// was closed by policy: the browser does not say why); a `401` closes the gate.
pub fn ask_session(app: AppState) {
    leptos::task::spawn_local(async move {
        if let Ok((status, body)) = send("GET", SESSION_URL, None, &[]).await {
            if let Some(r) = refusal(status, &body) {
                refuse(app, &r);
            }
        }
    });
}

/// Signs in with an admin or viewer `token` (the server sets the session cookie) and reloads
/// the page; `Err` says why not, for people.
pub async fn sign_in(token: &str) -> Result<(), String> {
    let (status, body) = send("POST", SESSION_URL, Some(&sign_in_body(token)), &[])
        .await
        .map_err(|e| format!("The server did not answer ({e}). Try again."))?;
    if (200..300).contains(&status) {
        remember_link_page(false);
        let _ = window().location().reload();
        return Ok(());
    }
    // A wrong token is the common case: say it for people (the server's message is for
    // API clients); anything else is the server's to explain.
    let e = ApiError::parse(&body);
    Err(match status {
        401 => "That token was not accepted. Check it and try again.".to_owned(),
        _ if e.error.is_empty() => format!("Sign-in failed (HTTP {status})."),
        _ => e.error,
    })
}

/// Signs out (deletes the session, with its CSRF token) and reloads the page.
pub async fn sign_out(app: AppState) {
    let csrf = app
        .session
        .with_untracked(|s| s.as_ref().and_then(|s| s.csrf.clone()))
        .unwrap_or_default();
    match send("DELETE", SESSION_URL, None, &[(CSRF_HEADER, &csrf)]).await {
        Ok((status, _)) if (200..300).contains(&status) => {
            let _ = window().location().reload();
        }
        Ok((status, body)) => leptos::logging::warn!("sign out: HTTP {status}: {body}"),
        Err(e) => leptos::logging::warn!("sign out: {e}"),
    }
}
