//! Pulseboard's browser app: a Leptos (CSR, wasm) dashboard fed by the server's WebSocket
//! and JSON API, a kiosk wall display and embeddable panels.
//!
//! The app knows only `pulseboard-model` (wire types and the pure [`LiveState`] resume
//! rules) and the server's HTTP/WebSocket surface. Everything that can be pure is, and is
//! tested on the host with `cargo test -p pulseboard-frontend`; browser-only code sits
//! behind web-sys/leptos APIs that compile natively but only run in the browser.
//!
//! # Layout
//!
//! - [`format`] — numbers and durations for people (`12.3k`, `3 s ago`). Pure.
//! - [`chart`] — linear scales, nice ticks, time ticks, bucketing, SVG bar and path
//!   geometry. Pure.
//! - [`figures`] — what each panel shows: range bounds, totals, merged top lists, lag,
//!   staleness. Pure.
//! - [`route`] — page and range from the URL (`/`, `/kiosk`, `/embed/<panel>`). Pure.
//! - [`live`] — the shared reactive state and the hooks that fill it: WebSocket with
//!   resume and backoff, history and summary fetches, the clock.
//! - [`app`] — the components: dashboard, kiosk, embeds, chart and lists.
//!
//! [`LiveState`]: pulseboard_model::proto::LiveState

pub mod app;
pub mod chart;
pub mod figures;
pub mod format;
pub mod live;
pub mod route;

/// Mounts the app on `<body>`.
pub fn start() {
    leptos::mount::mount_to_body(app::App);
}
