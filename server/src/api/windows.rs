//! `GET /api/v1/windows` and `GET /api/v1/summary`: windows of a range, and one aggregate
//! over it.
//!
//! Contract:
//! - `GET /api/v1/windows?from=&to=&limit=&top=`: windows whose start lies in `[from, to)`
//!   (epoch ms or RFC 3339; default the last hour), merged across partitions, oldest first;
//!   at most `limit` (default 1000, max 10000), with `next` giving the `from` of the next page.
//! - `GET /api/v1/summary?range=15m` (or `from`/`to`): one aggregate merged over the range;
//!   uniques are an HLL merge, never a sum.
//! - Both take `filter=DIMENSION:VALUE` (a segment: see [`crate::query::segments`], which also
//!   serves `GET /api/v1/now` and `GET /api/v1/segments`).
//! - A store failure gets `500` with a message, and the cause is logged.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use pulseboard_model::proto::{
    self, Change, Figures, Summary, SummaryComparison, WindowsComparison, WindowsResponse,
};

use crate::api::error::ApiError;
use crate::api::params::{compare_param, int_param, resolve_range, step_param, RangeParams};
use crate::api::AppState;
use crate::hub::Hub;
use crate::progress::Progress;
use crate::query::history;
use crate::query::segments::{site_figures, View};
use crate::store::Store;

/// The items of `[from, to)`, stepped when asked.
pub(crate) fn range_items(
    st: &RangeReader,
    range: (i64, i64),
    step: Option<i64>,
    view: &View,
) -> Result<Vec<history::Item>, ApiError> {
    let state_of = st.progress.window_states();
    let items = history::read((&st.store, &st.hub), st.window_ms, range, view, state_of)?;
    Ok(match step {
        Some(ms) => history::step(items, ms),
        None => items,
    })
}

/// What reading a range takes (moved into a blocking task).
pub(crate) struct RangeReader {
    store: Store,
    hub: Arc<Hub>,
    progress: Arc<Progress>,
    window_ms: i64,
}

impl RangeReader {
    pub(crate) fn of(st: &AppState) -> Self {
        RangeReader {
            store: st.store.clone(),
            hub: st.hub.clone(),
            progress: st.progress.clone(),
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
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
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
    let view = st.segments.view(p.site.as_deref(), p.filter.as_deref())?;
    let compare = compare_param(&p.compare)?;
    let width = st.window_ms;
    let step = step_param(&p.step, width)?;
    let reader = RangeReader::of(&st);
    let v = view.clone();
    let cut = compared_span(
        (from, to),
        st.store.counting_since(),
        (crate::now_ms(), width),
    );
    let (cut_from, cut_to) = cut;
    let (items, before) = blocking(move || {
        let items = range_items(&reader, (from, to), step, &v)?;
        let before = match compare {
            Some(c) => {
                // The chart's line: the earlier range up to the elapsed point (what came
                // before the counted part too); the change: the counted part alone.
                let off = c.offset_ms();
                let range = (from.saturating_sub(off), cut_to.saturating_sub(off));
                Some((c, range_items(&reader, range, step, &v)?))
            }
            None => None,
        };
        Ok((items, before))
    })
    .await?;
    let goals = st.segments.goals();
    let f = &view;
    let next = items.get(limit).map(|i| i.start);
    let compare = before.map(|(c, earlier)| {
        let off = c.offset_ms();
        let now = total_in(&items, cut);
        let then = total_in(
            &earlier,
            (cut_from.saturating_sub(off), cut_to.saturating_sub(off)),
        );
        WindowsComparison {
            offset_ms: off,
            from: cut_from.saturating_sub(off),
            to: cut_to.saturating_sub(off),
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

/// The part of `[from, to)` a comparison compares, the same on both sides: what the store
/// counted of it (from [`Store::counting_since`](crate::store::Store::counting_since), the
/// first counted window left out as it may be partial: a store that began counting a
/// minute ago compares that minute, not the whole range, with the earlier period) and what
/// has elapsed (whole windows of `width` up to `now`: the window in progress is left out on
/// both sides). Empty (`from == to`) when none of it was counted or has elapsed.
pub(crate) fn compared_span(
    (from, to): (i64, i64),
    since: Option<i64>,
    (now, width): (i64, i64),
) -> (i64, i64) {
    let counted = since.map_or(from, |s| {
        if s > from {
            s.saturating_add(width)
        } else {
            from
        }
    });
    let start = counted.min(to);
    // `to` of "the last 15 minutes" is the moment the range was resolved, a few ms before
    // `now`: still inside the window in progress, which is left out as for any later `to`.
    let elapsed = now - now.rem_euclid(width.max(1));
    (start, to.min(elapsed).max(start))
}

/// The figures of the `items` starting in `[span.0, span.1)`.
fn total_in(items: &[history::Item], span: (i64, i64)) -> crate::query::segments::Part {
    let mut t = crate::query::segments::Part::default();
    for i in items.iter().filter(|i| (span.0..span.1).contains(&i.start)) {
        t.merge(&i.part);
    }
    t
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
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
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
    let view = st.segments.view(p.site.as_deref(), p.filter.as_deref())?;
    let filter = view.filter.clone();
    let compare = compare_param(&p.compare)?;
    // A segment's figures keep no property tables: a filtered summary lists none.
    let properties = match filter {
        None => st.segments.property(p.property.as_deref())?,
        Some(_) => Vec::new(),
    };
    let reader = RangeReader::of(&st);
    let v = view.clone();
    let cut = compared_span(
        (from, to),
        st.store.counting_since(),
        (crate::now_ms(), st.window_ms),
    );
    let (cut_from, cut_to) = cut;
    let totals = blocking(move || {
        let listing = View {
            list_sites: true,
            ..v.clone()
        };
        let items = range_items(&reader, (from, to), None, &listing)?;
        let now = (
            items.len() as u64,
            history::total(&items),
            total_in(&items, cut),
        );
        let mut props = Vec::with_capacity(properties.len());
        for k in properties {
            let of_key = View {
                table: Some(pulseboard_model::agg::Dimension::Prop(k)),
                ..v.clone()
            };
            let items = range_items(&reader, (from, to), None, &of_key)?;
            let part = history::total(&items).table.unwrap_or_default();
            props.push(part.figures(k.as_str(), top));
        }
        let before = match compare {
            Some(c) => {
                let off = c.offset_ms();
                let range = (cut_from.saturating_sub(off), cut_to.saturating_sub(off));
                let items = range_items(&reader, range, None, &v)?;
                Some((off, items.len() as u64, history::total(&items)))
            }
            None => None,
        };
        Ok((now, before, props))
    })
    .await?;
    let ((n, mut total, counted), before, properties) = totals;
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
        site: total.site_note(&view),
        sites: site_figures(&total),
        properties,
        compare: None,
    };
    summary.compare = before.map(|(off, n, then)| {
        let figures = Figures::with_goals(&then.agg, top, goals);
        SummaryComparison {
            offset_ms: off,
            from: cut_from.saturating_sub(off),
            to: cut_to.saturating_sub(off),
            windows: n,
            change: Change::between(&Figures::from_aggregate(&counted.agg, 0), &figures),
            figures,
        }
    });
    Ok(Json(summary))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::api::tests::{app, get};

    #[test]
    fn a_comparison_compares_what_was_counted_and_has_elapsed() {
        use super::compared_span;
        let w = 10;
        // Counted long before, a range that is over: all of it.
        assert_eq!(compared_span((100, 200), Some(0), (500, w)), (100, 200));
        // A store that began counting in the window at 150 compares from the next one.
        assert_eq!(compared_span((100, 200), Some(150), (500, w)), (160, 200));
        // A range that runs into the future compares the whole windows that have elapsed.
        assert_eq!(compared_span((100, 200), Some(0), (157, w)), (100, 150));
        // "The last minutes": `to` a moment before `now`, inside the window in progress.
        assert_eq!(compared_span((100, 156), Some(0), (157, w)), (100, 150));
        assert_eq!(compared_span((100, 150), Some(0), (157, w)), (100, 150));
        // Not known (a store that counted nothing yet): the range.
        assert_eq!(compared_span((100, 200), None, (500, w)), (100, 200));
        // Counted only after the range, or a range not begun: nothing compared.
        assert_eq!(compared_span((100, 200), Some(300), (500, w)), (200, 200));
        assert_eq!(compared_span((100, 200), Some(0), (50, w)), (100, 100));
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
            serde_json::json!(["country", "device", "type", "referrer", "prop.plan"])
        );
        assert_eq!(body["properties"], serde_json::json!(["plan"]));
        assert_eq!(body["top_n"], 10);
        assert_eq!(body["goals"][1]["rule"], "type:pageview,url:/pricing");
    }
}
