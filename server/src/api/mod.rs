//! The HTTP surface: JSON API, health, readiness and Prometheus metrics.
//!
//! Contract:
//! - [`router`] is shared by `main` and the tests.
//! - `GET /api/v1/windows?from=&to=&limit=&top=`: windows whose start lies in `[from, to)`
//!   (epoch ms or RFC 3339; default the last hour), merged across partitions, oldest first;
//!   at most `limit` (default 1000, max 10000), with `next` giving the `from` of the next page.
//! - `GET /api/v1/summary?range=15m` (or `from`/`to`): one aggregate merged over the range;
//!   uniques are an HLL merge, never a sum.
//! - Both take `filter=DIMENSION:VALUE` (a segment: see [`crate::query::segments`], which also
//!   serves `GET /api/v1/now` and `GET /api/v1/segments`).
//! - `GET /api/v1/status`, `/healthz`, `/readyz`, `/metrics`.
//! - `GET /api/v1/openapi.json`: the OpenAPI description of all of it ([`crate::api::openapi`]);
//!   [`ROUTES`] lists the routes next to the router, and a test holds the three together.
//! - A bad parameter gets `400` with `{"error": ..., "parameter": ...}`; a store failure gets
//!   `500` with a message, and the cause is logged.

pub mod annotations;
pub mod error;
pub mod feed;
pub mod metrics;
pub mod openapi;
pub mod segments;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pulseboard_model::proto::{
    self, Change, Compare, Figures, Summary, SummaryComparison, WindowsComparison, WindowsResponse,
};
use pulseboard_model::time::{parse_duration_ms, parse_time_param};
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

pub use crate::api::error::ApiError;
use crate::api::ws::{ConnectPacer, SocketOptions, SocketState};
use crate::config::Config;
use crate::hub::Hub;
use crate::now_ms;
use crate::progress::Progress;
use crate::query::history;
use crate::query::segments::SegmentsState;
use crate::site::collect::CollectProducer;
use crate::site::enrich::Salts;
use crate::store::Store;
use prometheus_client::registry::Registry;
use pulseboard_model::agg::Filter;

/// Shared state of the HTTP handlers; each handler takes the part it needs (`FromRef`).
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub live: Arc<Progress>,
    pub hub: Arc<Hub>,
    pub window_ms: i64,
    /// The built frontend (Trunk's output), if any.
    pub static_dir: Option<PathBuf>,
    /// `POST /collect` into Kafka, when a producer could be made.
    pub collector: Option<CollectProducer>,
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
        live: Arc<Progress>,
        hub: Arc<Hub>,
        collector: Option<CollectProducer>,
        shutdown: CancellationToken,
    ) -> Self {
        let salts = Salts::new(Some(store.clone()));
        let pacer = Arc::new(ConnectPacer::from_args(&config.hub));
        let segments = SegmentsState::from_config(config);
        AppState {
            metrics: Arc::new(metrics::metrics_registry(
                live.clone(),
                hub.clone(),
                pacer.clone(),
            )),
            store,
            live,
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
            collector: collector.map(|c| {
                c.configured(&config.http, &config.kafka.mapping())
                    .with_salts(salts)
            }),
            security: Security {
                token: config.http.token.as_deref().map(Arc::from),
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

/// Optional bearer token for the API, the socket and the metrics, and the CSP
/// `frame-ancestors` sent with every response.
#[derive(Clone)]
pub struct Security {
    pub token: Option<Arc<str>>,
    pub frame_ancestors: Arc<str>,
}

impl FromRef<AppState> for Security {
    fn from_ref(st: &AppState) -> Self {
        st.security.clone()
    }
}

impl Default for Security {
    fn default() -> Self {
        Security {
            token: None,
            frame_ancestors: Arc::from("'self'"),
        }
    }
}

/// Constant-time comparison, so a wrong token's timing says nothing about the right one.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn presented_token(req: &Request) -> Option<Vec<u8>> {
    if let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().as_bytes().to_vec());
        }
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(percent_decode)
}

/// Whether `--token` guards `path`: the API (and its description), the socket, the metrics.
pub fn is_protected(path: &str) -> bool {
    path.starts_with("/api/") || path == "/ws" || path == "/metrics"
}

/// Token check for data paths, and security headers on every response.
async fn guard(State(sec): State<Security>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if let (true, Some(token)) = (is_protected(path), &sec.token) {
        if !presented_token(&req).is_some_and(|t| same(&t, token.as_bytes())) {
            let body = proto::ApiError {
                error: "missing or wrong token: send `Authorization: Bearer <token>` or add `?token=<token>` to the URL".into(),
                parameter: Some("token".into()),
            };
            let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let csp = format!(
        "frame-ancestors {}; base-uri 'self'; object-src 'none'",
        sec.frame_ancestors
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

impl FromRef<AppState> for crate::insight::annotations::Annotations {
    fn from_ref(st: &AppState) -> Self {
        crate::insight::annotations::Annotations {
            store: st.store.clone(),
            progress: st.live.clone(),
            hub: st.hub.clone(),
        }
    }
}

impl FromRef<AppState> for Option<CollectProducer> {
    fn from_ref(st: &AppState) -> Self {
        st.collector.clone()
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
];

/// The application's routes. The frontend's pages (`/`, `/kiosk`, `/embed/<panel>`) get
/// its `index.html`; its other files are served from `static_dir`, and a path that is not a
/// file there (including any that tries to leave it) is a 404.
pub fn router(state: AppState) -> Router {
    let files = state.static_dir.clone().map(ServeDir::new);
    let security = state.security.clone();
    let app = Router::new()
        .route("/", get(page))
        .route("/kiosk", get(page))
        .route("/embed/{panel}", get(page))
        .route("/ws", get(crate::api::ws::handler))
        .route(
            "/collect",
            post(crate::site::collect::handler)
                .options(crate::site::collect::preflight)
                .layer(DefaultBodyLimit::max(crate::site::collect::MAX_BODY)),
        )
        .route("/pb.js", get(crate::site::tracker::script))
        .route("/api/v1/windows", get(windows))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/now", get(segments::now))
        .route("/api/v1/segments", get(segments::segments))
        .route("/api/v1/status", get(status))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(crate::api::openapi::handler))
        .route(
            "/api/v1/annotations",
            get(annotations::list).post(annotations::create),
        )
        .route("/api/v1/annotations/{id}", delete(annotations::delete))
        .route("/api/v1/alerts", get(alerts))
        .with_state(state);
    let app = match files {
        Some(files) => app.fallback_service(files),
        None => app,
    };
    app.layer(middleware::from_fn_with_state(security, guard))
}

/// Raw query parameters: everything is parsed by hand so errors name the parameter. A
/// parameter given twice is a bad parameter too (a JSON `400` naming it, not the plain-text
/// rejection of axum's `Query`); parameters of other names (`token`) are ignored.
#[derive(Debug, Default)]
pub struct RangeParams {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) top: Option<String>,
    pub(crate) range: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) at: Option<String>,
    pub(crate) compare: Option<String>,
    pub(crate) step: Option<String>,
}

impl RangeParams {
    /// The parameters of a query string (`application/x-www-form-urlencoded`).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut p = RangeParams::default();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, slot) = match String::from_utf8_lossy(&percent_decode(k)).as_ref() {
                "from" => ("from", &mut p.from),
                "to" => ("to", &mut p.to),
                "limit" => ("limit", &mut p.limit),
                "top" => ("top", &mut p.top),
                "range" => ("range", &mut p.range),
                "filter" => ("filter", &mut p.filter),
                "at" => ("at", &mut p.at),
                "compare" => ("compare", &mut p.compare),
                "step" => ("step", &mut p.step),
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::BadParam {
                    parameter: name,
                    message: format!("{name} is given more than once"),
                });
            }
            *slot = Some(String::from_utf8_lossy(&percent_decode(v)).into_owned());
        }
        Ok(p)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RangeParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        RangeParams::parse(parts.uri.query().unwrap_or_default())
    }
}

pub(crate) fn time_param(name: &'static str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => parse_time_param(s).map(Some).ok_or_else(|| ApiError::BadParam {
            parameter: name,
            message: format!("{name}={s:?} is not a time: use epoch milliseconds or RFC 3339 (2026-11-24T10:15:30Z)"),
        }),
    }
}

pub(crate) fn int_param(
    name: &'static str,
    v: &Option<String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadParam {
                parameter: name,
                message: format!("{name}={s:?} must be a whole number from 1 to {max}"),
            }),
        },
    }
}

/// Resolve `[from, to)`: explicit bounds, or `range` back from `to`/now, or `default_span`.
pub(crate) fn resolve_range(p: &RangeParams, default_span: i64) -> Result<(i64, i64), ApiError> {
    let to = time_param("to", &p.to)?.unwrap_or_else(now_ms);
    let span = match p.range.as_deref() {
        None | Some("") => default_span,
        Some(s) => match parse_duration_ms(s) {
            Ok(ms) if ms > 0 => ms,
            _ => {
                return Err(ApiError::BadParam {
                    parameter: "range",
                    message: format!("range={s:?} is not a duration: use e.g. 5m, 15m, 1h, 24h"),
                })
            }
        },
    };
    let from = time_param("from", &p.from)?.unwrap_or(to.saturating_sub(span));
    if from > to {
        return Err(ApiError::BadParam {
            parameter: "from",
            message: format!("from ({from}) is after to ({to})"),
        });
    }
    Ok((from, to))
}

/// `compare=1d|7d`: the period one day or one week earlier.
fn compare_param(v: &Option<String>) -> Result<Option<Compare>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => Compare::from_label(s)
            .map(Some)
            .ok_or_else(|| ApiError::BadParam {
                parameter: "compare",
                message: format!(
                    "compare={s:?}: use 1d (the same range one day earlier) or 7d (one week earlier)"
                ),
            }),
    }
}

/// `step=`: merge items narrower than this (one of [`history::STEPS`], at least a window).
fn step_param(v: &Option<String>, window_ms: i64) -> Result<Option<i64>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => match history::STEPS.iter().find(|(name, _)| *name == s) {
            Some((_, ms)) if *ms >= window_ms => Ok(Some(*ms)),
            _ => Err(ApiError::BadParam {
                parameter: "step",
                message: format!(
                    "step={s:?}: use one of {} (at least the window, {window_ms} ms)",
                    history::STEPS.map(|(n, _)| n).join(", ")
                ),
            }),
        },
    }
}

/// The items of `[from, to)`, stepped when asked.
fn range_items(
    st: &RangeReader,
    range: (i64, i64),
    step: Option<i64>,
    filter: Option<&Filter>,
) -> Result<Vec<history::Item>, ApiError> {
    let state_of = st.live.window_states();
    let items = history::read((&st.store, &st.hub), st.window_ms, range, filter, state_of)?;
    Ok(match step {
        Some(ms) => history::step(items, ms),
        None => items,
    })
}

/// What reading a range takes (moved into a blocking task).
struct RangeReader {
    store: Store,
    hub: Arc<Hub>,
    live: Arc<Progress>,
    window_ms: i64,
}

impl RangeReader {
    fn of(st: &AppState) -> Self {
        RangeReader {
            store: st.store.clone(),
            hub: st.hub.clone(),
            live: st.live.clone(),
            window_ms: st.window_ms,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// Windows of a time range, merged across partitions.
#[utoipa::path(
    get,
    path = "/api/v1/windows",
    tag = "data",
    description = "Windows whose start lies in `[from, to)`, merged across partitions, oldest \
                   first. Default range: the last hour. A window is `live` (open), `final` \
                   (closed under the watermark) or `revised` (changed by late events after it \
                   was final). Past `--retention` the items are roll-up buckets of history \
                   (`resolution`: `minute`, then `hour` past `--minute-history`; `final`), kept \
                   for `--history`; `step` merges items into coarser steps. With `compare`, \
                   the same range one day or week earlier comes along, aligned. With `filter`, \
                   each item shows that segment (history's buckets too) and says in `segment` \
                   whether its figures hold every event of the value.",
    params(crate::api::openapi::WindowsQuery),
    responses(
        (status = 200, description = "The windows of the range.", body = WindowsResponse),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub(crate) async fn windows(
    State(st): State<AppState>,
    p: RangeParams,
) -> Result<Json<WindowsResponse>, ApiError> {
    let (from, to) = resolve_range(&p, 3_600_000)?;
    let limit = int_param("limit", &p.limit, 1000, 10_000)?;
    let top = int_param("top", &p.top, 10, 1000)?;
    let filter = st.segments.filter(p.filter.as_deref())?;
    let compare = compare_param(&p.compare)?;
    let width = st.window_ms;
    let step = step_param(&p.step, width)?;
    let reader = RangeReader::of(&st);
    let f = filter.clone();
    let (items, before) = blocking(move || {
        let items = range_items(&reader, (from, to), step, f.as_ref())?;
        let before = match compare {
            Some(c) => {
                let off = c.offset_ms();
                let range = (from.saturating_sub(off), to.saturating_sub(off));
                Some((c, range_items(&reader, range, step, f.as_ref())?))
            }
            None => None,
        };
        Ok((items, before))
    })
    .await?;
    let goals = st.segments.goals();
    let f = filter.as_ref();
    let next = items.get(limit).map(|i| i.start);
    let compare = before.map(|(c, earlier)| {
        let off = c.offset_ms();
        let now = history::total(&items);
        let then = history::total(&earlier);
        WindowsComparison {
            offset_ms: off,
            from: from.saturating_sub(off),
            to: to.saturating_sub(off),
            windows: earlier
                .iter()
                .take(limit)
                .map(|i| {
                    let mut v = i.view(top, goals, f);
                    v.start = v.start.saturating_add(off);
                    v.end = v.end.saturating_add(off);
                    v
                })
                .collect(),
            events: now.agg.events,
            events_before: then.agg.events,
            change: Change::between(
                &Figures::from_aggregate(&now.agg, 0),
                &Figures::from_aggregate(&then.agg, 0),
            ),
        }
    });
    let windows = items
        .iter()
        .take(limit)
        .map(|i| i.view(top, goals, f))
        .collect();
    Ok(Json(WindowsResponse {
        from,
        to,
        window_ms: width,
        windows,
        next,
        compare,
    }))
}

/// One aggregate over a time range.
#[utoipa::path(
    get,
    path = "/api/v1/summary",
    tag = "data",
    description = "One aggregate merged over the windows whose start lies in `[from, to)` \
                   (default: the last 15 minutes), history's roll-up buckets included. Uniques \
                   are a HyperLogLog merge, never a sum, and so are the converting visitors of \
                   each goal. With `compare`, the same range one day or week earlier and the \
                   percent change. With `filter`, the segment's figures, and in `segment` \
                   whether they hold every event of the value or are a lower bound.",
    params(crate::api::openapi::SummaryQuery),
    responses(
        (status = 200, description = "The figures of the range.", body = Summary),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub(crate) async fn summary(
    State(st): State<AppState>,
    p: RangeParams,
) -> Result<Json<Summary>, ApiError> {
    let (from, to) = resolve_range(&p, 15 * 60_000)?;
    let top = int_param("top", &p.top, 10, 1000)?;
    let filter = st.segments.filter(p.filter.as_deref())?;
    let compare = compare_param(&p.compare)?;
    let reader = RangeReader::of(&st);
    let f = filter.clone();
    let totals = blocking(move || {
        let items = range_items(&reader, (from, to), None, f.as_ref())?;
        let now = (items.len() as u64, history::total(&items));
        let before = match compare {
            Some(c) => {
                let off = c.offset_ms();
                let range = (from.saturating_sub(off), to.saturating_sub(off));
                let items = range_items(&reader, range, None, f.as_ref())?;
                Some((off, items.len() as u64, history::total(&items)))
            }
            None => None,
        };
        Ok((now, before))
    })
    .await?;
    let ((n, mut total), before) = totals;
    if filter.is_some() && total.coverage.is_none() {
        total.coverage = Some(Default::default()); // no window: complete, and empty
    }
    let goals = st.segments.goals();
    let mut summary = Summary {
        from,
        to,
        windows: n,
        figures: Figures::with_goals(&total.agg, top, goals),
        segment: total.note(filter.as_ref()),
        compare: None,
    };
    summary.compare = before.map(|(off, n, then)| {
        let figures = Figures::with_goals(&then.agg, top, goals);
        SummaryComparison {
            offset_ms: off,
            from: from.saturating_sub(off),
            to: to.saturating_sub(off),
            windows: n,
            change: Change::between(&summary.figures, &figures),
            figures,
        }
    });
    Ok(Json(summary))
}

/// The pipeline's status.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "ops",
    description = "The pipeline: partitions, offsets, lag, watermarks, throughput, dead letters, \
                   the cluster as the last metadata probe saw it.",
    responses(
        (status = 200, description = "The status.", body = proto::Status),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
    )
)]
pub(crate) async fn status(State(st): State<AppState>) -> Json<proto::Status> {
    Json(st.live.status())
}

/// Readiness.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    description = "Readiness: partitions are assigned and none failed. Open (no token).",
    responses(
        (status = 200, description = "Ready: counting.", body = proto::Readiness, example = json!({"ready": true})),
        (status = 503, description = "Not ready: waiting for a partition assignment, or a partition failed (then the process stops).", body = proto::Readiness),
    )
)]
pub(crate) async fn readyz(State(st): State<AppState>) -> Response {
    if let Some(why) = st.live.failure() {
        let body = proto::Readiness {
            ready: false,
            reason: Some(format!("{why}; Pulseboard is stopping, restart it")),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else if st.live.ready() {
        let body = proto::Readiness {
            ready: true,
            reason: None,
        };
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let body = proto::Readiness {
            ready: false,
            reason: Some("waiting for a partition assignment from the Kafka consumer group".into()),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `GET /api/v1/dead-letters?limit=`: dead letters their topic did not take, kept in the
/// store, newest first (default 100, at most 1000).
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "data",
    params(crate::api::openapi::DeadLettersQuery),
    responses(
        (status = 200, description = "The most recent recorded dead letters, newest first.", body = proto::DeadLettersResponse),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub(crate) async fn dead_letters(
    State(st): State<AppState>,
    p: RangeParams,
) -> Result<Json<proto::DeadLettersResponse>, ApiError> {
    let limit = int_param("limit", &p.limit, 100, 1000)?;
    let store = st.store.clone();
    let records = blocking(move || Ok(store.recorded_dead_letters(limit)?)).await?;
    let recorded_total = st.live.status().dead_letters_recorded_total;
    Ok(Json(proto::DeadLettersResponse {
        recorded_total,
        dead_letters: records
            .into_iter()
            .map(|r| proto::RecordedDeadLetter {
                topic: r.topic,
                partition: r.partition,
                offset: r.offset,
                reason: r.reason,
                error: r.error,
                at: r.at_ms,
                value_bytes: r.value_bytes,
                value_head: String::from_utf8_lossy(&r.value_head).into_owned(),
            })
            .collect(),
    }))
}

/// Alert rules, what fires, and the history.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "ops",
    description = "The alert rules in force (from `--alerts`, or the built-in demo rules in \
                   embedded mode) with their state, the rules firing now, the last 200 firing \
                   and resolved transitions (newest first), the webhook's counts, and why the \
                   rules file was refused if it was (the last good rules stay in force).",
    responses(
        (status = 200, description = "The alerts.", body = proto::AlertsResponse),
        (status = 401, description = "With `--token`: the token is missing or wrong.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
    )
)]
pub(crate) async fn alerts(
    State(alerts): State<crate::insight::alerts::Alerts>,
) -> Json<proto::AlertsResponse> {
    Json(alerts.view())
}

/// A page of the frontend: its `index.html`, or a plain page when it is not built.
async fn page(State(st): State<AppState>) -> Response {
    if let Some(dir) = &st.static_dir {
        match tokio::fs::read_to_string(dir.join("index.html")).await {
            Ok(html) => return Html(html).into_response(),
            Err(e) => tracing::debug!(dir = %dir.display(), error = %e, "frontend not found"),
        }
    }
    fallback_index(&st).into_response()
}

fn fallback_index(st: &AppState) -> Html<String> {
    let s = st.live.status();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Pulseboard</title><link rel=icon href=\"data:,\">\
         <h1>Pulseboard</h1><p>The dashboard is not built: run <code>cargo xtask run</code> (or point --static-dir at Trunk's output).</p>\
         <p>Broker: {} · events: {} · dead letters: {}</p>\
         <ul><li><a href=/api/v1/status>/api/v1/status</a><li><a href=/api/v1/windows>/api/v1/windows</a>\
         <li><a href=/api/v1/summary?range=5m>/api/v1/summary?range=5m</a><li><a href=/metrics>/metrics</a></ul>",
        html_escape(&s.broker),
        s.events_total,
        s.dead_letters_total
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use std::time::Duration;
    use tower::ServiceExt;

    fn app() -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("store"), 10_000).expect("store");
        let live = Arc::new(Progress::new(
            "embedded".into(),
            true,
            10_000,
            Duration::from_secs(30),
        ));
        let hub = Hub::new(crate::hub::HubConfig::new(10_000), live.clone(), None);
        let dist = dir.path().join("dist");
        std::fs::create_dir_all(&dist).expect("dist");
        std::fs::write(dist.join("index.html"), "<!doctype html><title>app</title>")
            .expect("index");
        std::fs::write(dist.join("app.css"), "body{}").expect("css");
        std::fs::write(dir.path().join("secret.txt"), "secret").expect("secret");
        let pacer = Arc::new(ConnectPacer::unlimited());
        let config = <Config as clap::Parser>::try_parse_from(["pulseboard"])
            .expect("parse")
            .validate()
            .expect("valid");
        let segments = SegmentsState::from_config(&config);
        let state = AppState {
            metrics: Arc::new(metrics::metrics_registry(
                live.clone(),
                hub.clone(),
                pacer.clone(),
            )),
            store,
            live,
            hub: hub.clone(),
            window_ms: 10_000,
            static_dir: Some(dist),
            collector: None,
            socket: SocketState {
                hub: hub.clone(),
                shutdown: CancellationToken::new(),
                options: SocketOptions::default(),
                pacer,
                feeds: Arc::new(crate::api::feed::Feeds::new(segments.clone())),
            },
            segments,
            security: Security {
                token: Some(Arc::from("s3cret")),
                frame_ancestors: Arc::from("'self' https://intranet.example"),
            },
            alerts: crate::insight::alerts::Alerts::new(10_000, 0),
        };
        (router(state), dir)
    }

    async fn get_raw(app: &Router, uri: &str) -> (StatusCode, String) {
        let resp = app
            .clone()
            .oneshot(
                Request::get(uri)
                    .header("authorization", "Bearer s3cret")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn token_guards_data_paths_and_headers_are_set() {
        let (app, _dir) = app();
        let call = |uri: &str, auth: Option<&str>| {
            let mut req = Request::get(uri);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            app.clone()
                .oneshot(req.body(Body::empty()).expect("request"))
        };
        for uri in ["/api/v1/status", "/metrics", "/api/v1/windows?token=wrong"] {
            let resp = call(uri, None).await.expect("response");
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        }
        assert_eq!(
            call("/api/v1/status", Some("Bearer nope"))
                .await
                .expect("r")
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call("/api/v1/status?token=s3cret", None)
                .await
                .expect("r")
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            call("/api/v1/status?token=s3%63ret", None)
                .await
                .expect("r")
                .status(),
            StatusCode::OK
        );
        // Health and the pages stay open; the pages carry the token to the API themselves.
        for uri in ["/healthz", "/kiosk"] {
            let resp = call(uri, None).await.expect("response");
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            let csp = resp
                .headers()
                .get("content-security-policy")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                csp.contains("frame-ancestors 'self' https://intranet.example"),
                "{csp}"
            );
            assert_eq!(
                resp.headers()
                    .get("x-content-type-options")
                    .map(|v| v.as_bytes()),
                Some(&b"nosniff"[..])
            );
        }
    }

    #[tokio::test]
    async fn pages_get_the_frontend_and_files_stay_inside_their_folder() {
        let (app, _dir) = app();
        for page in ["/", "/kiosk", "/embed/events", "/kiosk?kiosk"] {
            let (status, body) = get_raw(&app, page).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(body.contains("<title>app</title>"), "{page}: {body}");
        }
        assert_eq!(get_raw(&app, "/app.css").await.0, StatusCode::OK);
        for escape in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/nope.js",
        ] {
            let (status, body) = get_raw(&app, escape).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{escape}: {body}");
            assert!(!body.contains("secret"), "{escape}");
        }
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let (status, body) = get_raw(app, uri).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn bad_parameters_get_400_naming_the_parameter() {
        let (app, _dir) = app();
        for (uri, param) in [
            ("/api/v1/windows?from=yesterday", "from"),
            ("/api/v1/windows?to=12x", "to"),
            ("/api/v1/windows?limit=0", "limit"),
            ("/api/v1/windows?limit=-3", "limit"),
            ("/api/v1/windows?from=2000&to=1000", "from"),
            ("/api/v1/summary?range=forever", "range"),
            ("/api/v1/summary?top=abc", "top"),
            ("/api/v1/summary?top=1&top=2", "top"),
            ("/api/v1/dead-letters?limit=null&limit=null", "limit"),
            ("/api/v1/windows?from=1&%66rom=2", "from"),
            ("/api/v1/windows?filter=city:Berlin", "filter"),
            ("/api/v1/summary?filter=DE", "filter"),
            ("/api/v1/summary?filter=type:a&filter=type:b", "filter"),
            ("/api/v1/now?filter=country:", "filter"),
            ("/api/v1/now?at=soon", "at"),
            ("/api/v1/now?top=0", "top"),
            ("/api/v1/windows?compare=2d", "compare"),
            ("/api/v1/summary?compare=week", "compare"),
            ("/api/v1/windows?step=7s", "step"),
            ("/api/v1/windows?step=1m&step=1m", "step"),
            ("/api/v1/summary?compare=1w", "compare"),
        ] {
            let (status, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["parameter"], param, "{uri}: {body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }

    #[tokio::test]
    async fn a_comparison_at_the_edge_of_time_does_not_overflow() {
        let (app, _dir) = app();
        for uri in [
            "/api/v1/summary?from=-9223372036854775808&to=-9223372036854775808&compare=1d",
            "/api/v1/windows?from=-9223372036854775808&to=-9223372036854775800&compare=7d&step=30m",
        ] {
            let (status, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        }
    }

    #[tokio::test]
    async fn empty_store_answers_empty_windows_and_zero_summary() {
        let (app, _dir) = app();
        let (status, body) = get(&app, "/api/v1/windows?from=0").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["windows"].as_array().map(Vec::len), Some(0));
        let (status, body) = get(&app, "/api/v1/summary?range=5m").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["events"], 0);
        let (status, _) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        // A filter on an empty store: an empty segment, complete; goals listed with zeros.
        let (status, body) = get(&app, "/api/v1/summary?range=5m&filter=country:DE").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["segment"]["filter"], "country:DE");
        assert_eq!(body["segment"]["complete"], true);
        assert_eq!(body["goals"][0]["name"], "signup", "{body}");
        assert_eq!(body["goals"][0]["conversion_rate"], 0.0);
        let (status, body) = get(&app, "/api/v1/now?filter=device:mobile&at=1800000000000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["visitors"], 0);
        assert_eq!(body["at"], 1_800_000_000_000i64);
        assert_eq!(body["span_ms"], 300_000);
        assert_eq!(body["segment"]["filter"], "device:mobile");
        assert!(body["definition"]
            .as_str()
            .is_some_and(|d| d.contains("5m")));
        let (status, body) = get(&app, "/api/v1/segments").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["dimensions"],
            serde_json::json!(["country", "device", "type", "referrer"])
        );
        assert_eq!(body["top_n"], 10);
        assert_eq!(body["goals"][1]["rule"], "type:pageview,url:/pricing");
    }
}
