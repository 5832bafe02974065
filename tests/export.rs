//! Exports (`GET /api/v1/export`) read back with a real CSV parser (the `csv` crate) and
//! as NDJSON, every number checked against the JSON API of the same server: the windows,
//! stepped buckets, a breakdown with visitors per key, a property's values. Called by the
//! broker test of `backbone.rs` on its known event set.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{anyhow, bail, ensure, Context, Result};
use pulseboard_testkit::net::request;
use serde_json::Value;

use crate::util::*;

/// All of time, as the export and the API are asked for it.
const ALL: &str = "from=0&to=4102444800000";

/// The export at `query`: its header, its records (by column name) and the response's
/// `Content-Disposition`.
async fn csv_of(addr: SocketAddr, query: &str) -> Result<(Vec<BTreeMap<String, String>>, String)> {
    let r = request(addr, "GET", &format!("/api/v1/export?{query}"), &[], b"").await?;
    ensure!(r.status == 200, "export?{query}: {} {}", r.status, r.body);
    ensure!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "export?{query}: {}",
        r.head
    );
    let disposition = r
        .header("content-disposition")
        .unwrap_or_default()
        .to_owned();
    let mut reader = csv::Reader::from_reader(r.body.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.with_context(|| format!("export?{query}: not CSV"))?;
        ensure!(
            rec.len() == header.len(),
            "export?{query}: a row of {} fields",
            rec.len()
        );
        rows.push(
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_owned))
                .collect(),
        );
    }
    Ok((rows, disposition))
}

fn num(row: &BTreeMap<String, String>, col: &str) -> Result<u64> {
    row.get(col)
        .ok_or_else(|| anyhow!("no column {col} in {row:?}"))?
        .parse()
        .map_err(|e| anyhow!("{col} of {row:?}: {e}"))
}

fn ms(row: &BTreeMap<String, String>, col: &str) -> Result<i64> {
    let t = row.get(col).ok_or_else(|| anyhow!("no column {col}"))?;
    pulseboard_model::parse_rfc3339_ms(t)
        .ok_or_else(|| anyhow!("{col} {t:?}: not an RFC 3339 time"))
}

/// The windows' figures of the API, by start: events, visitors, sessions, pageviews and
/// each goal's completions and visitors.
fn figures_of(w: &Value) -> Result<BTreeMap<String, u64>> {
    let mut f = BTreeMap::new();
    for k in ["events", "unique_visitors", "unique_sessions"] {
        f.insert(
            k.to_owned(),
            w[k].as_u64().ok_or_else(|| anyhow!("no {k} in {w}"))?,
        );
    }
    let pageviews = w["by_type"]["pageview"].as_u64().unwrap_or(0);
    f.insert("pageviews".into(), pageviews);
    for g in w["goals"].as_array().into_iter().flatten() {
        let name = g["name"].as_str().unwrap_or_default();
        f.insert(
            format!("goal.{name}.completions"),
            g["completions"].as_u64().unwrap_or(0),
        );
        f.insert(
            format!("goal.{name}.visitors"),
            g["converting_visitors"].as_u64().unwrap_or(0),
        );
    }
    Ok(f)
}

/// Each row of the export at `query` equals the API's item at `windows_query`.
async fn rows_match_windows(addr: SocketAddr, query: &str, windows_query: &str) -> Result<usize> {
    let (rows, disposition) = csv_of(addr, query).await?;
    ensure!(
        disposition.starts_with("attachment; filename=\"pulseboard-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let api = get_json(addr, &format!("/api/v1/windows?{windows_query}"))
        .await
        .ok_or_else(|| anyhow!("windows?{windows_query} failed"))?;
    let windows = api["windows"].as_array().cloned().unwrap_or_default();
    ensure!(!rows.is_empty(), "export?{query}: no row");
    ensure!(
        rows.len() == windows.len(),
        "export?{query}: {} rows, the API {} items",
        rows.len(),
        windows.len()
    );
    for (row, w) in rows.iter().zip(&windows) {
        ensure!(
            ms(row, "start")? == w["start"].as_i64().unwrap_or(-1),
            "{row:?} vs {w}"
        );
        ensure!(
            ms(row, "end")? == w["end"].as_i64().unwrap_or(-1),
            "{row:?} vs {w}"
        );
        ensure!(
            row.get("state").map(String::as_str) == w["state"].as_str(),
            "{row:?} vs {w}"
        );
        for (k, v) in figures_of(w)? {
            ensure!(
                num(row, &k)? == v,
                "export?{query}: {k} of {row:?} is not the API's {v}"
            );
        }
    }
    Ok(rows.len())
}

/// The exports of the server at `addr` (which counted a known event set with the property
/// `plan`) equal its API.
pub async fn assert_exports_match(addr: SocketAddr) -> Result<()> {
    let n = rows_match_windows(addr, ALL, &format!("{ALL}&limit=10000&top=10")).await?;
    ensure!(n > 10, "{n} windows");
    rows_match_windows(
        addr,
        &format!("{ALL}&step=hour"),
        &format!("{ALL}&limit=10000&top=10&step=1h"),
    )
    .await?;
    rows_match_windows(
        addr,
        &format!("{ALL}&step=minute&site=shop.example"),
        &format!("{ALL}&limit=10000&top=10&step=1m&site=shop.example"),
    )
    .await?;
    rows_match_windows(
        addr,
        &format!("{ALL}&filter=type:pageview"),
        &format!("{ALL}&limit=10000&top=10&filter=type:pageview"),
    )
    .await?;

    // NDJSON: the same rows as the CSV.
    let (csv_rows, _) = csv_of(addr, ALL).await?;
    let r = request(
        addr,
        "GET",
        &format!("/api/v1/export?{ALL}&format=ndjson"),
        &[],
        b"",
    )
    .await?;
    ensure!(
        r.status == 200 && r.header("content-type") == Some("application/x-ndjson"),
        "{}",
        r.head
    );
    let lines: Vec<Value> = r
        .body
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(
        lines.len() == csv_rows.len(),
        "{} lines, {} CSV rows",
        lines.len(),
        csv_rows.len()
    );
    for (line, row) in lines.iter().zip(&csv_rows) {
        for (k, v) in row {
            let got = match &line[k] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ensure!(&got == v, "{k}: NDJSON {got}, CSV {v}");
        }
    }

    // A breakdown with visitors per key, in one bucket (a day: all of the events), against
    // the summary of each key's segment over the same span.
    for (dimension, filter) in [("countries", "country"), ("prop.plan", "prop.plan")] {
        let (rows, _) = csv_of(
            addr,
            &format!("{ALL}&step=day&dimension={dimension}&top=1000"),
        )
        .await?;
        ensure!(!rows.is_empty(), "{dimension}: no row");
        for row in &rows {
            let (from, to) = (ms(row, "start")?, ms(row, "end")?);
            let key = &row["key"];
            let s = get_json(
                addr,
                &format!("/api/v1/summary?from={from}&to={to}&filter={filter}:{key}"),
            )
            .await
            .ok_or_else(|| anyhow!("summary of {filter}:{key} failed"))?;
            // The value's true count (the segment note's `events_at_least`, exact while a
            // window's list of the dimension is), its own figures' visitors, and whether
            // those hold all its events (a country beyond --segment-top in some window
            // does not).
            let note = &s["segment"];
            ensure!(
                num(row, "events")? == note["events_at_least"].as_u64().unwrap_or(u64::MAX)
                    && note["events_at_least"] == note["events_at_most"],
                "{dimension} {key}: {row:?} vs {s}"
            );
            ensure!(
                num(row, "unique_visitors")? == s["unique_visitors"].as_u64().unwrap_or(u64::MAX),
                "{dimension} {key}: {row:?} vs {s}"
            );
            let complete = if note["complete"] == true {
                "true"
            } else {
                "false"
            };
            ensure!(row["visitors_complete"] == complete, "{row:?} vs {note}");
            if dimension == "prop.plan" {
                ensure!(complete == "true", "4 plans under --segment-top: {row:?}");
            }
        }
    }
    // Pages: counts, and no visitors per page.
    let (pages, _) = csv_of(addr, &format!("{ALL}&step=day&dimension=pages&top=1000")).await?;
    let first_day = ms(&pages[0], "start")?;
    let s = get_json(
        addr,
        &format!(
            "/api/v1/summary?from={first_day}&to={}&top=1000",
            first_day + 86_400_000
        ),
    )
    .await
    .ok_or_else(|| anyhow!("summary failed"))?;
    let want: BTreeMap<String, u64> = s["top_urls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["key"].as_str()?.to_owned(), c["count"].as_u64()?)))
        .collect();
    let got: BTreeMap<String, u64> = pages
        .iter()
        .filter(|r| ms(r, "start").ok() == Some(first_day))
        .map(|r| Ok((r["key"].clone(), num(r, "events")?)))
        .collect::<Result<_>>()?;
    ensure!(got == want, "pages: {got:?} vs {want:?}");
    ensure!(
        pages.iter().all(|r| r["unique_visitors"].is_empty()),
        "no visitors per page"
    );

    // Bad parameters: a 400 naming each, before any byte of a file.
    for (q, param) in [
        ("format=xlsx", "format"),
        ("step=week", "step"),
        ("dimension=cities", "dimension"),
        ("dimension=pages&filter=country:DE", "dimension"),
    ] {
        let r = request(addr, "GET", &format!("/api/v1/export?{q}"), &[], b"").await?;
        let body: Value = serde_json::from_str(&r.body).context("an error body")?;
        if r.status != 400 || body["parameter"] != param {
            bail!("export?{q}: {} {}", r.status, r.body);
        }
    }
    Ok(())
}
