//! `GET /api/v1/now` (visitors now) and `GET /api/v1/segments` (what a filter may name, the
//! goals, and what visitors now means); the rules are in `query::segments`.

use axum::extract::{FromRef, State};
use axum::Json;
use pulseboard_model::agg::Coverage;
use pulseboard_model::now::{now_range, visitors_now};
use pulseboard_model::proto::{self, SegmentNote, SegmentsInfo, VisitorsNow};

use crate::api::error::ApiError;
use crate::api::params::{int_param, time_param, RangeParams};
use crate::api::AppState;
use crate::now_ms;
use crate::query::segments::{merged, Part, SegmentsState};

impl FromRef<AppState> for SegmentsState {
    fn from_ref(st: &AppState) -> Self {
        st.segments.clone()
    }
}

/// Visitors now.
#[utoipa::path(
    get,
    path = "/api/v1/now",
    tag = "data",
    description = "Visitors now: distinct visitors (a HyperLogLog merge) with an event in the \
                   windows overlapping the last `--now-window` (default 5 min) up to `at` \
                   (default: wall-clock now), with the active pages (page views by URL) and \
                   the sources (events by referrer domain) of the same windows. With no event \
                   for that long plus one window, everything is 0 and the lists are empty. \
                   `definition` says so for people.",
    params(crate::api::openapi::NowQuery),
    responses(
        (status = 200, description = "Visitors now.", body = VisitorsNow),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub(crate) async fn now(
    State(st): State<AppState>,
    p: RangeParams,
) -> Result<Json<VisitorsNow>, ApiError> {
    let seg = st.segments.clone();
    let view = seg.view(p.site.as_deref(), p.filter.as_deref())?;
    let filter = view.filter.clone();
    let top = int_param("top", &p.top, 10, 1000)?;
    let at = time_param("at", &p.at)?.unwrap_or_else(now_ms);
    let (from, to) = now_range(at, seg.now_span_ms, seg.window_ms);
    let (store, hub) = (st.store.clone(), st.hub.clone());
    let v = view.clone();
    let total = tokio::task::spawn_blocking(move || -> Result<Part, ApiError> {
        let mut total = Part::default();
        for part in merged(&hub, &store, from, to, &v)?.values() {
            total.merge(part);
        }
        Ok(total)
    })
    .await??;
    let mut out = visitors_now(&total.agg, at, seg.now_span_ms, seg.window_ms, top);
    out.segment = total.note(filter.as_ref()).or_else(|| {
        // A filtered view of windows that hold nothing: complete, and empty.
        filter
            .as_ref()
            .map(|f| SegmentNote::new(f, &Coverage::default()))
    });
    out.site = total.site_note(&view);
    Ok(Json(out))
}

/// What a filter may name, the goals, and visitors now.
#[utoipa::path(
    get,
    path = "/api/v1/segments",
    tag = "data",
    description = "The dimensions `filter=DIMENSION:VALUE` may name (`--segment-dimensions`), \
                   how many values per window and dimension have their own sub-aggregate \
                   (`--segment-top`; the rest share the window's \"other\" bucket, \
                   `filter=DIMENSION:(other)`), the goals (`--goal`) and what \"visitors \
                   now\" means (`--now-window`).",
    responses(
        (status = 200, description = "The segments, goals and visitors-now definition.", body = SegmentsInfo),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
    )
)]
pub(crate) async fn segments(State(seg): State<SegmentsState>) -> Json<SegmentsInfo> {
    Json(seg.info())
}
