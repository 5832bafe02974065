//! The HTTP surface: JSON API, health, readiness and Prometheus metrics.
//!
//! Contract:
//! - [`router`] is shared by `main` and the tests; [`AppState`] holds what the handlers
//!   share, and each handler takes the part it needs (`FromRef`).
//! - The routes, by family: `/api/v1/windows` and `/api/v1/summary` ([`windows`]),
//!   `/api/v1/export` ([`export`]),
//!   `/api/v1/now` and `/api/v1/segments` ([`segments`]), `/api/v1/status`, `/readyz` and
//!   `/api/v1/dead-letters` ([`status`]; `/healthz` answers `ok` from the router),
//!   `/api/v1/annotations` ([`annotations`]), `/api/v1/alerts` ([`alerts`]), `/metrics`
//!   ([`metrics`]), `/ws` ([`ws`]), the frontend's pages ([`pages`]); `/collect` and
//!   `/pb.js` are the site's ([`crate::site`]).
//! - `GET /api/v1/openapi.json`: the OpenAPI description of all of it ([`crate::api::openapi`]);
//!   [`ROUTES`] lists the routes next to the router, and a test holds the three together.
//! - Who may call what ([`auth`]: roles, share links, sessions, CSRF; the table is
//!   `auth::rights`), the access routes ([`access`]: `/s/<id>`, `/api/v1/session`,
//!   `/api/v1/links`, `/api/v1/tokens`); every response carries the security headers.
//! - With `--tls-cert` and `--tls-key` the router is served over HTTPS ([`tls`]: the
//!   listener, and the certificate reloaded when its files change); the session cookie is
//!   then `Secure`.
//! - A bad parameter gets `400` with `{"error": ..., "parameter": ...}` ([`params`]); a store
//!   failure gets `500` with a message, and the cause is logged ([`error`]).

pub(crate) mod access;
pub(crate) mod alerts;
pub(crate) mod annotations;
pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod export;
pub(crate) mod feed;
pub(crate) mod metrics;
pub mod openapi;
pub(crate) mod pages;
pub(crate) mod params;
pub(crate) mod segments;
pub(crate) mod status;
pub mod tls;
pub(crate) mod windows;
pub(crate) mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

pub use crate::api::auth::Security;
pub use crate::api::error::ApiError;
pub use crate::api::params::RangeParams;
use crate::api::ws::{ConnectPacer, SocketOptions, SocketState};
use crate::config::Config;
use crate::hub::Hub;
use crate::now_ms;
use crate::progress::Progress;
use crate::query::segments::SegmentsState;
use crate::site::collect::CollectProducer;
use crate::site::enrich::Salts;
use crate::store::Store;

/// Shared state of the HTTP handlers; each handler takes the part it needs (`FromRef`).
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub progress: Arc<Progress>,
    pub hub: Arc<Hub>,
    pub window_ms: i64,
    /// The built frontend (Trunk's output), if any.
    pub static_dir: Option<PathBuf>,
    /// `POST /collect` into Kafka, when a producer could be made.
    pub collect: Option<CollectProducer>,
    /// Access control and response headers.
    pub security: Security,
    /// What the socket handler needs.
    pub socket: SocketState,
    /// What `/metrics` renders.
    pub metrics: Arc<Registry>,
    /// Segments, goals and visitors now.
    pub segments: SegmentsState,
    /// Alert rules and their state (`GET /api/v1/alerts`).
    pub alerts: crate::insight::alerts::Alerts,
}

impl AppState {
    /// The state of a run, from its configuration.
    pub fn new(
        config: &Config,
        store: Store,
        progress: Arc<Progress>,
        hub: Arc<Hub>,
        collect: Option<CollectProducer>,
        shutdown: CancellationToken,
    ) -> Self {
        let salts = Salts::new(Some(store.clone()));
        let pacer = Arc::new(ConnectPacer::from_args(&config.hub));
        let segments = SegmentsState::from_config(config);
        let access = crate::access::Access::new(
            store.clone(),
            config.http.token.as_deref(),
            config.public_dashboard(),
            config.tls.enabled(),
        )
        .with_guess_limit(config.http.guesses_per_minute);
        access.announce(now_ms());
        AppState {
            metrics: Arc::new(metrics::metrics_registry(
                progress.clone(),
                hub.clone(),
                pacer.clone(),
            )),
            store,
            progress,
            socket: SocketState {
                hub: hub.clone(),
                shutdown,
                options: SocketOptions::from_args(&config.hub),
                pacer,
                feeds: Arc::new(crate::api::feed::Feeds::new(segments.clone())),
            },
            segments,
            hub,
            window_ms: config.windows.config().width_ms,
            static_dir: config.http.static_dir(),
            collect: collect.map(|c| {
                c.configured(&config.http, &config.kafka.mapping())
                    .with_salts(salts)
            }),
            security: Security {
                access,
                frame_ancestors: Arc::from(config.http.frame_ancestors.as_str()),
            },
            alerts: crate::insight::alerts::Alerts::new(config.windows.config().width_ms, now_ms()),
        }
    }

    /// The same state serving `alerts`.
    pub fn with_alerts(mut self, alerts: crate::insight::alerts::Alerts) -> Self {
        self.alerts = alerts;
        self
    }
}

impl FromRef<AppState> for crate::insight::alerts::Alerts {
    fn from_ref(st: &AppState) -> Self {
        st.alerts.clone()
    }
}

impl FromRef<AppState> for Arc<Registry> {
    fn from_ref(st: &AppState) -> Self {
        st.metrics.clone()
    }
}

impl FromRef<AppState> for SocketState {
    fn from_ref(st: &AppState) -> Self {
        st.socket.clone()
    }
}

impl FromRef<AppState> for Security {
    fn from_ref(st: &AppState) -> Self {
        st.security.clone()
    }
}

impl FromRef<AppState> for crate::insight::annotations::Annotations {
    fn from_ref(st: &AppState) -> Self {
        crate::insight::annotations::Annotations {
            store: st.store.clone(),
            progress: st.progress.clone(),
            hub: st.hub.clone(),
        }
    }
}

impl FromRef<AppState> for Option<CollectProducer> {
    fn from_ref(st: &AppState) -> Self {
        st.collect.clone()
    }
}

/// Every route of [`router`], as `(method, path)`: keep it in step with the router. The
/// OpenAPI description must describe exactly these (a test in [`crate::api::openapi`] checks the
/// router's `.route(` calls, this list and the description against each other).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/kiosk"),
    ("GET", "/embed/{panel}"),
    ("GET", "/ws"),
    ("POST", "/collect"),
    ("OPTIONS", "/collect"),
    ("GET", "/pb.js"),
    ("GET", "/api/v1/windows"),
    ("GET", "/api/v1/summary"),
    ("GET", "/api/v1/export"),
    ("GET", "/api/v1/now"),
    ("GET", "/api/v1/segments"),
    ("GET", "/api/v1/status"),
    ("GET", "/healthz"),
    ("GET", "/api/v1/dead-letters"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/annotations"),
    ("POST", "/api/v1/annotations"),
    ("DELETE", "/api/v1/annotations/{id}"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/s/{id}"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/links"),
    ("POST", "/api/v1/links"),
    ("DELETE", "/api/v1/links/{key}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{key}"),
];

/// The application's routes. The frontend's pages (`/`, `/kiosk`, `/embed/<panel>`) get
/// its `index.html`; its other files are served from `static_dir`, and a path that is not a
/// file there (including any that tries to leave it) is a 404.
pub fn router(state: AppState) -> Router {
    let files = state.static_dir.clone().map(ServeDir::new);
    let security = state.security.clone();
    let app = Router::new()
        .route("/", get(pages::page))
        .route("/kiosk", get(pages::page))
        .route("/embed/{panel}", get(pages::page))
        .route("/ws", get(crate::api::ws::handler))
        .route(
            "/collect",
            post(crate::site::collect::handler)
                .options(crate::site::collect::preflight)
                .layer(DefaultBodyLimit::max(crate::site::collect::MAX_BODY)),
        )
        .route("/pb.js", get(crate::site::tracker::script))
        .route("/api/v1/windows", get(windows::windows))
        .route("/api/v1/summary", get(windows::summary))
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/now", get(segments::now))
        .route("/api/v1/segments", get(segments::segments))
        .route("/api/v1/status", get(status::status))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/dead-letters", get(status::dead_letters))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(crate::api::openapi::handler))
        .route(
            "/api/v1/annotations",
            get(annotations::list).post(annotations::create),
        )
        .route("/api/v1/annotations/{id}", delete(annotations::delete))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/s/{id}", get(access::share))
        .route(
            "/api/v1/session",
            get(access::session)
                .post(access::sign_in)
                .delete(access::sign_out),
        )
        .route(
            "/api/v1/links",
            get(access::links).post(access::create_link),
        )
        .route("/api/v1/links/{key}", delete(access::revoke_link))
        .route(
            "/api/v1/tokens",
            get(access::tokens).post(access::create_token),
        )
        .route("/api/v1/tokens/{key}", delete(access::revoke_token))
        .route_layer(middleware::from_fn_with_state(
            security.clone(),
            auth::authorize,
        ))
        .with_state(state);
    // An unknown API path answers in JSON, as the API does; any other path is a file of
    // the frontend (or a plain 404 without one).
    let app = app.fallback(move |req: axum::extract::Request| async move {
        let path = req.uri().path();
        if path == "/api" || path.starts_with("/api/") {
            return not_found(path);
        }
        match files {
            Some(files) => match tower::ServiceExt::oneshot(files, req).await {
                Ok(r) => r.into_response(),
                Err(e) => match e {},
            },
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    });
    app.layer(middleware::from_fn_with_state(security, auth::headers))
}

/// `404` for an API path there is none of, naming where the API is described.
fn not_found(path: &str) -> axum::response::Response {
    let message =
        format!("no such API path: {path}; the API's paths are listed in /api/v1/openapi.json");
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(pulseboard_model::proto::ApiError::new(message)),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
