//! Pulseboard's browser app: a Leptos (CSR, wasm) dashboard fed by the server's WebSocket
//! and JSON API, a kiosk wall display and embeddable panels.
//!
//! The app knows only `pulseboard-model` (wire types, the pure [`StreamState`] resume
//! rules) and the server's HTTP/WebSocket surface. Everything that can be pure is, and is
//! tested on the host with `cargo test -p pulseboard-frontend`; browser-only code sits
//! behind web-sys/leptos APIs that compile natively but only run in the browser.
//!
//! # Layout
//!
//! - [`access`] — who is looking and why the server may refuse: the session
//!   (`GET /api/v1/session`), the gate (the page, the sign-in form, or the end of a share
//!   link), how a `401`/`403` and a socket's policy close read. Pure.
//! - [`format`](mod@format) — numbers and durations for people (`12.3k`, `3 s ago`, `5 min`). Pure.
//! - [`zone`] — times of day in the viewer's zone and locale (the browser's `Intl`); the
//!   zone offset; [`zone::clock_time`], a time of day at a given offset (pure).
//! - [`chart`] — chart maths, pure: [`chart::scale`] (linear scales, nice ticks),
//!   [`chart::time_axis`], [`chart::bars`] (bars and bucketing), [`chart::geometry`] (SVG
//!   rectangles and paths) and [`chart::events`], the whole events-chart layout
//!   ([`chart::events_layout`]).
//! - [`figures`] — what each panel shows: range bounds, totals, merged top lists, lag,
//!   staleness. Pure.
//! - [`share`] — share links made from the dashboard: the Share form and the body it posts,
//!   the link's full address, the listed links as the dialog describes them. Pure.
//! - [`route`] — page, range and segment from the URL (`/`, `/kiosk`, `/embed/<panel>`,
//!   `?filter=`). Pure.
//! - [`state`] — the app's shared reactive state ([`state::AppState`], by context): the
//!   stream state, connection, clock, range, segment, comparison and what the API said.
//! - [`feeds`] — the hooks that fill that state: [`feeds::session`] (who is looking, sign
//!   in and out, what closes the gate), [`feeds::socket`] (the WebSocket, with resume and
//!   backoff), [`feeds::fetch`] (history in steps for long ranges, summary,
//!   visitors now, segments, comparison, annotations), the clock and the browser's back and
//!   forward buttons; [`feeds::urls`] builds every server URL. URLs and backoff are pure.
//! - [`pages`] — the app root (which provides the state, asks who is looking, starts the
//!   feeds and marks the page ready) and its pages: dashboard, kiosk, embeds; the sign-in
//!   form and the screen of a share link that was revoked or expired.
//! - [`panels`] — the panel components: [`panels::totals`] (totals, visitors now, goals),
//!   [`panels::events_chart`], [`panels::top_list`] (whose rows set the segment) and
//!   [`panels::status`] (the pipeline); and [`panels::share`], the admin's Share button and
//!   dialog.
//! - [`chrome`] — what frames the panels: cards, brand and demo badge, range picker,
//!   compare toggle, alert banner, connection state, last update, status strip, the
//!   segment bar.
//!
//! # Stable hooks for browser tests (keep them)
//!
//! `total-events` and `unique-visitors` (with `data-value` = the raw integer),
//! `connection-state` (text `connecting`|`live`|`reconnecting`), `last-update`,
//! `events-chart` (the `<svg>`, bars are
//! `rect[data-testid=bar][data-start][data-events][data-state]`), `top-pages`, `kiosk`,
//! `stale`, `embed-<panel>`, `range-5m`…`range-30d`, `demo-badge`; `compare-off`,
//! `compare-1d`, `compare-7d` (the toggle), `compare-line` (the earlier period's `<path>`),
//! `change-events`, `change-visitors`, `change-sessions` (with `data-value` = the percent
//! change), `annotation` (`data-ts`, `data-id`), `alert-banner` and `alert`
//! (`data-rule`, `data-kind`); `total-events` also carries the range on screen
//! (`data-from`, `data-to`); `visitors-now` (the headline, `data-value`; its definition in
//! the `title` of `.kpi-now`), `now-visitors`, `now-pages`, `now-sources` (the visitors-now
//! panel), `goals` (a table whose rows carry `data-goal`, `data-completions`,
//! `data-converting`, `data-rate`), `kiosk-goal`, `filter-bar` (`data-filter` =
//! `dimension:value`), `filter-clear`, `filter-hint`, `segment-note` (a segment's figures
//! miss events); top-list rows `li[data-key]` that filter when clicked have the class
//! `clickable`; `<body data-ready="1">` once the first snapshot is applied and drawn;
//! instead of the page, `sign-in` (with `sign-in-token`, `sign-in-submit`,
//! `sign-in-error`) or `access-ended` (`data-reason` = `revoked`|`expired`); `sign-out`;
//! for an admin, `share-open` and the Share dialog's hooks (listed in [`panels::share`]).
//!
//! [`StreamState`]: pulseboard_model::stream::StreamState

pub mod access;
pub mod chart;
pub mod chrome;
pub mod definitions;
pub mod feeds;
pub mod figures;
pub mod format;
pub mod pages;
pub mod panels;
pub mod route;
pub mod share;
pub mod state;
pub mod zone;

/// Mounts the app on `<body>`.
pub fn start() {
    leptos::mount::mount_to_body(pages::App);
}
