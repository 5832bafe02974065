//! `GET /api/v1/export`: the figures of a range as a file, CSV or NDJSON, one row per time
//! bucket (or per bucket and key of a breakdown), streamed.
//!
//! Contract:
//! - `from`/`to`/`range` as everywhere (default the last 24 hours), `step=window|minute|
//!   hour|day` (default `window`: the items as `GET /api/v1/windows` gives them, history's
//!   buckets included), `format=csv|ndjson` (default `csv`), and the view's `site` and
//!   `filter` as every other view.
//! - Without `dimension`, a row per bucket: `start`, `end` (RFC 3339, UTC), `state`,
//!   `events`, `unique_visitors`, `unique_sessions`, `pageviews`, and per goal
//!   `goal.NAME.completions` and `goal.NAME.visitors`: the figures the dashboard shows.
//! - With `dimension=pages|referrers|countries|devices|types|prop.KEY`, a row per bucket and
//!   key, the bucket's `top` keys (default 100, at most 1,000) with most events: `start`,
//!   `end`, `key`, `events`, `unique_visitors` (of a segmented dimension or a property: its
//!   value's own figures, `visitors_complete` false when some window kept it in "(other)";
//!   empty for pages and referrer URLs, which keep no visitors per key). Not with `filter`.
//! - Streamed: the range is read a slice of buckets at a time and each slice's rows are
//!   written before the next is read, so memory stays flat over a 35-day range.
//!   `Content-Disposition: attachment` names the file (`pulseboard-<from>-<to>.csv`).
//! - CSV: RFC 4180 (a header row, fields quoted when they hold `,`, `"` or a line break); a
//!   key a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//!   carriage return) is written after a `'`.
//! - A bad parameter is a `400` naming it, before any byte of the file; a store failure
//!   met mid-stream ends the stream with an error (the file is then cut short), and is logged.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pulseboard_model::agg::{Dimension, Goal};
use pulseboard_model::format_rfc3339_ms;
use pulseboard_model::proto;
use serde_json::{json, Map, Value};

use crate::api::error::ApiError;
use crate::api::params::{int_param, resolve_range, RangeParams};
use crate::api::windows::{range_items, RangeReader};
use crate::api::AppState;
use crate::query::history::Item;
use crate::store::Store;
use pulseboard_model::rollup::Level;

/// Buckets read and written at a time.
const SLICE: usize = 288;

/// A bucket step of an export.
fn step_of(raw: Option<&str>, window_ms: i64) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") | Some("window") => Ok(None),
        Some("minute") => Ok(Some(60_000.max(window_ms))),
        Some("hour") => Ok(Some(3_600_000)),
        Some("day") => Ok(Some(86_400_000)),
        Some(s) => Err(bad(
            "step",
            format!("step={s:?}: use window, minute, hour or day"),
        )),
    }
}

fn bad(parameter: &'static str, message: String) -> ApiError {
    ApiError::BadParam { parameter, message }
}

/// What a breakdown lists.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Breakdown {
    Pages,
    Referrers,
    /// A segmented dimension or a property: with visitors per key.
    Table(Dimension),
    /// Countries, devices or types of a server that does not segment them: counts only.
    List(Dimension),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Ndjson,
}

/// The figures of one row: a column name and a value (`None`: an empty field).
type Row = Vec<(String, Option<Value>)>;

fn time(ms: i64) -> Value {
    Value::String(format_rfc3339_ms(ms))
}

/// The rows of one bucket.
fn rows_of(item: &Item, breakdown: Option<Breakdown>, goals: &[Goal], top: usize) -> Vec<Row> {
    let head = || -> Row {
        vec![
            ("start".into(), Some(time(item.start))),
            ("end".into(), Some(time(item.end))),
        ]
    };
    let agg = &item.part.agg;
    let Some(b) = breakdown else {
        let f = proto::Figures::with_goals(agg, 0, goals);
        let mut r = head();
        r.push(("state".into(), Some(json!(item.state))));
        r.push(("events".into(), Some(json!(agg.events))));
        r.push(("unique_visitors".into(), Some(json!(f.unique_visitors))));
        r.push(("unique_sessions".into(), Some(json!(f.unique_sessions))));
        r.push(("pageviews".into(), Some(json!(agg.by_type.get("pageview")))));
        for g in &f.goals {
            r.push((
                format!("goal.{}.completions", g.name),
                Some(json!(g.completions)),
            ));
            r.push((
                format!("goal.{}.visitors", g.name),
                Some(json!(g.converting_visitors)),
            ));
        }
        return vec![r];
    };
    let keyed = |key: String, events: u64, visitors: Option<(u64, bool)>| {
        let mut r = head();
        r.push(("key".into(), Some(Value::String(key))));
        r.push(("events".into(), Some(json!(events))));
        r.push(("unique_visitors".into(), visitors.map(|v| json!(v.0))));
        r.push(("visitors_complete".into(), visitors.map(|v| json!(v.1))));
        r
    };
    let counts = |list: &pulseboard_model::agg::TopCounts| -> Vec<Row> {
        list.top(top)
            .into_iter()
            .map(|(k, n)| keyed(k, n, None))
            .collect()
    };
    match b {
        Breakdown::Pages => counts(&agg.urls),
        Breakdown::Referrers => counts(&agg.referrers),
        Breakdown::List(d) => agg.counts_by(d).map(counts).unwrap_or_default(),
        Breakdown::Table(d) => {
            let part = item.part.table.clone().unwrap_or_default();
            part.figures(d.name(), top)
                .values
                .into_iter()
                .map(|v| keyed(v.value, v.events, Some((v.unique_visitors, v.complete))))
                .collect()
        }
    }
}

/// A CSV field: quoted when it must be, a formula defused.
fn csv_field(out: &mut String, v: Option<&Value>) {
    let text = match v {
        None | Some(Value::Null) => return,
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_number(&text) {
        format!("'{text}")
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// One CSV line of `fields`.
fn csv_line<'a>(out: &mut String, fields: impl Iterator<Item = Option<&'a Value>>) {
    for (i, v) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, v);
    }
    out.push_str("\r\n");
}

/// A CSV header of `names`.
fn csv_header<'a>(out: &mut String, names: impl Iterator<Item = &'a str>) {
    let names: Vec<Value> = names.map(|n| Value::String(n.to_owned())).collect();
    csv_line(out, names.iter().map(Some));
}

/// Writes `rows` as `format` (the CSV header first, unless `header_written`).
fn write_rows(out: &mut String, rows: &[Row], format: Format, header_written: &mut bool) {
    for r in rows {
        match format {
            Format::Ndjson => {
                let obj: Map<String, Value> = r
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or(Value::Null)))
                    .collect();
                out.push_str(&Value::Object(obj).to_string());
                out.push('\n');
            }
            Format::Csv => {
                if !*header_written {
                    csv_header(out, r.iter().map(|(k, _)| k.as_str()));
                    *header_written = true;
                }
                csv_line(out, r.iter().map(|(_, v)| v.as_ref()));
            }
        }
    }
}

/// The header of a CSV file with no row (so that an empty range is still a CSV file).
fn empty_header(breakdown: Option<Breakdown>, goals: &[Goal]) -> Vec<String> {
    let mut h: Vec<String> = vec!["start".into(), "end".into()];
    match breakdown {
        None => {
            h.extend(
                [
                    "state",
                    "events",
                    "unique_visitors",
                    "unique_sessions",
                    "pageviews",
                ]
                .map(String::from),
            );
            for g in goals {
                h.push(format!("goal.{}.completions", g.name));
                h.push(format!("goal.{}.visitors", g.name));
            }
        }
        Some(_) => {
            h.extend(["key", "events", "unique_visitors", "visitors_complete"].map(String::from))
        }
    }
    h
}

/// The figures of a range as a file.
#[utoipa::path(
    get,
    path = "/api/v1/export",
    tag = "data",
    description = "The figures of `[from, to)` (default: the last 24 hours) as a file to open in a \
                   spreadsheet: one row per time bucket (`step`: `window`, `minute`, `hour` or \
                   `day`) with `start`, `end`, `state`, `events`, `unique_visitors`, \
                   `unique_sessions`, `pageviews` and each goal's completions and visitors; or, \
                   with `dimension`, one row per bucket and key (its `top` keys) with `events` \
                   and, for a segmented dimension or a property, `unique_visitors`. Scoped like \
                   every view (`site`, `filter`). Streamed; `Content-Disposition` names the file.",
    params(crate::api::openapi::ExportQuery),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ), headers(("content-disposition" = String, description = "`attachment; filename=...`"))),
        (status = 400, description = "A bad parameter, named in `parameter`.", body = proto::ApiError),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Reading the store failed (the cause is logged).", body = proto::ApiError),
    )
)]
pub(crate) async fn export(
    State(st): State<AppState>,
    p: RangeParams,
) -> Result<Response, ApiError> {
    let asked = resolve_range(&p, 86_400_000)?;
    let (from, to) = asked;
    let top = int_param("top", &p.top, 100, 1000)?;
    let mut view = st.segments.view(p.site.as_deref(), p.filter.as_deref())?;
    let step = step_of(p.step.as_deref(), st.window_ms)?;
    let format = match p.format.as_deref() {
        None | Some("") | Some("csv") => Format::Csv,
        Some("ndjson") => Format::Ndjson,
        Some(f) => return Err(bad("format", format!("format={f:?}: use csv or ndjson"))),
    };
    let breakdown = match p.dimension.as_deref() {
        None | Some("") => None,
        Some(_) if view.filter.is_some() => {
            return Err(bad(
                "dimension",
                "a breakdown is of all traffic (or a site's): give no filter with it".into(),
            ))
        }
        Some("pages") => Some(Breakdown::Pages),
        Some("referrers") => Some(Breakdown::Referrers),
        Some(name) => {
            let dim = match name {
                "countries" => Some(Dimension::Country),
                "devices" => Some(Dimension::Device),
                "types" => Some(Dimension::Type),
                n => Dimension::from_name(n).filter(|d| d.prop().is_some()),
            };
            let segmented = |d: &Dimension| st.segments.spec.segments.dimensions.contains(d);
            match dim {
                Some(d) if segmented(&d) => Some(Breakdown::Table(d)),
                Some(d) if d.prop().is_none() => Some(Breakdown::List(d)),
                _ => {
                    return Err(bad(
                        "dimension",
                        format!(
                            "dimension={name:?}: use pages, referrers, countries, devices, types \
                             or prop.KEY for a key of --property"
                        ),
                    ))
                }
            }
        }
    };
    if let Some(Breakdown::Table(d)) = breakdown {
        view.table = Some(d);
    }
    let (from, to) = held_span(&st.store, (from, to))?;
    let goals = st.segments.goals().to_vec();
    let reader = RangeReader::of(&st);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let unit = step.unwrap_or(st.window_ms).max(1);
    let slice_ms = unit.saturating_mul(SLICE as i64);
    tokio::task::spawn_blocking(move || {
        let mut header_written = false;
        let mut at = from;
        while at < to {
            // Slices end on a bucket's edge, so no bucket is cut in two rows.
            let edge = at.saturating_add(slice_ms);
            let end = (edge - edge.rem_euclid(unit))
                .max(at.saturating_add(1))
                .min(to);
            let items = match range_items(&reader, (at, end), step, &view) {
                Ok(items) => items,
                Err(e) => {
                    tracing::error!(error = ?e, "an export could not read the store");
                    let _ =
                        tx.blocking_send(Err(std::io::Error::other("reading the store failed")));
                    return;
                }
            };
            let mut out = String::new();
            for item in &items {
                write_rows(
                    &mut out,
                    &rows_of(item, breakdown, &goals, top),
                    format,
                    &mut header_written,
                );
            }
            if !out.is_empty() && tx.blocking_send(Ok(Bytes::from(out))).is_err() {
                return; // the client went away
            }
            at = end;
        }
        if format == Format::Csv && !header_written {
            let mut out = String::new();
            let names = empty_header(breakdown, &goals);
            csv_header(&mut out, names.iter().map(String::as_str));
            let _ = tx.blocking_send(Ok(Bytes::from(out)));
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let (mime, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let name = format!(
        "attachment; filename=\"pulseboard-{}-{}.{ext}\"",
        file_time(asked.0),
        file_time(asked.1)
    );
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The part of `[from, to)` where rows may be: from the oldest stored row (a day before now
/// when there is none: the hub's windows are of now) to a day past the newest window or
/// now, whichever is later; aligned to days, so no bucket is cut. An export of "all of
/// time" reads what there is, not a slice per window since 1970.
fn held_span(store: &Store, (from, to): (i64, i64)) -> Result<(i64, i64), ApiError> {
    const DAY: i64 = 86_400_000;
    let now = crate::now_ms();
    let oldest = [
        store.oldest_window()?,
        store.oldest_bucket(Level::Minute)?,
        store.oldest_bucket(Level::Hour)?,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(now)
    .min(now - DAY);
    let newest = store
        .newest_window()?
        .unwrap_or(now)
        .max(now)
        .saturating_add(DAY);
    let lo = oldest - oldest.rem_euclid(DAY);
    let hi = newest - newest.rem_euclid(DAY) + DAY;
    let from = from.max(lo);
    Ok((from, to.min(hi).max(from)))
}

/// `20261208T0105Z`: a time for a file name.
fn file_time(ms: i64) -> String {
    let t = format_rfc3339_ms(ms);
    // 2026-12-08T01:05:00.000Z
    let digits: String = t
        .chars()
        .take(16)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{digits}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be_and_formulas_defused() {
        let field = |v: Value| {
            let mut s = String::new();
            csv_field(&mut s, Some(&v));
            s
        };
        assert_eq!(field(json!("/pricing")), "/pricing");
        assert_eq!(field(json!("a,b")), "\"a,b\"");
        assert_eq!(field(json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(field(json!("line\nbreak")), "\"line\nbreak\"");
        assert_eq!(
            field(json!("=HYPERLINK(\"x\")")),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(field(json!("@cmd")), "'@cmd");
        assert_eq!(field(json!(-3)), "-3", "a number stays one");
        assert_eq!(field(json!(12)), "12");
        assert_eq!(file_time(1_795_515_330_123), "20261124T1015Z");
    }
}
