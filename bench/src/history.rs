//! Disk bytes per day of history at a given event rate (1,000 events/s by default).
//!
//! Real events from the demo generator over a measured span of event time are folded into
//! real 10 s windows of 4 partitions (`pulseboard::demo::history::fold_period`), counted as a
//! broker's default counts them (segment tables of the four default dimensions; and again
//! without segments, `history_no_segments`), written into
//! a real sled store on disk, rolled up into minute buckets and those into hour buckets by
//! the store's own roll-up (`Store::roll_up_windows`, `Store::roll_up_minutes`). Each
//! resolution is then written alone into a fresh store (so that no deleted rows or another
//! tree weigh in) and the store's size on disk, less an empty store's, is measured; a day
//! is that size × (a day ÷ the measured span). The steady state of the default ages
//! (`--retention` 24 h of windows, minutes up to `--minute-history` 8 d, hours up to
//! `--history` 35 d) follows.

use std::path::Path;

use anyhow::{Context, Result};
use pulseboard::store::{Store, StoredBucket};
use pulseboard_model::agg::{AggSpec, Aggregate};
use pulseboard_model::rollup::Level;
use serde::Serialize;

use crate::{now_ms, step};

const WINDOW_MS: i64 = 10_000;
const PARTITIONS: i32 = 4;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The figures of `measure`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct HistoryFigures {
    /// Events per second of event time.
    pub rate: u32,
    /// Event time measured, minutes, and the events folded.
    pub span_minutes: i64,
    pub events: u64,
    /// Bytes on disk of one day at each resolution (extrapolated from the span).
    pub windows_bytes_per_day: u64,
    pub minute_bytes_per_day: u64,
    pub hour_bytes_per_day: u64,
    /// The same, counted as encoded keys and values (no store overhead).
    pub windows_logical_bytes_per_day: u64,
    pub minute_logical_bytes_per_day: u64,
    pub hour_logical_bytes_per_day: u64,
    /// Everything kept with the default ages: 1 day of windows, 7 of minutes, 27 of hours.
    pub steady_state_bytes: u64,
    /// Rows per resolution over the span.
    pub windows: usize,
    pub minute_buckets: usize,
    pub hour_buckets: usize,
}

fn dir_bytes(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        match std::fs::read_dir(p) {
            Ok(entries) => entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&path),
                        // Blocks really used (sled's files may be sparse).
                        Ok(m) => {
                            use std::os::unix::fs::MetadataExt;
                            (m.blocks() * 512).min(m.len().max(m.blocks() * 512))
                        }
                        Err(_) => 0,
                    }
                })
                .sum(),
            Err(_) => 0,
        }
    }
    walk(dir)
}

/// Bytes on disk of a fresh store holding `buckets` only, less an empty store's.
fn on_disk(buckets: &[StoredBucket], empty: u64) -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), WINDOW_MS)?;
    for chunk in buckets.chunks(256) {
        store.put_buckets(chunk)?;
    }
    store.flush()?;
    drop(store);
    Ok(dir_bytes(dir.path()).saturating_sub(empty))
}

fn logical(rows: &[StoredBucket]) -> u64 {
    rows.iter()
        .map(|b| (b.agg.to_bytes().len() + 1 + 8 + 2 + b.topic.len() + 4) as u64)
        .sum()
}

/// What a window counts by default with a broker (the server's own defaults of
/// `--segment-dimensions`, `--segment-top` and `--goal`, as its command line parses them).
pub fn default_spec() -> Result<AggSpec> {
    use clap::Parser;
    let config =
        pulseboard::config::Config::try_parse_from(["pulseboard", "--brokers", "kafka:9092"])
            .context("the server's default configuration")?;
    Ok(config.aggregate.spec())
}

/// Measure `span_minutes` of event time at `rate` events/s, windows counted as `spec` says
/// (`label` names it in the output).
pub fn measure(
    span_minutes: i64,
    rate: u32,
    spec: &AggSpec,
    label: &str,
) -> Result<HistoryFigures> {
    step(&format!(
        "history ({label}): {span_minutes} min of generated traffic at {rate} events/s, 4 partitions, 10 s windows"
    ));
    let from = (now_ms() - 3 * DAY) / HOUR * HOUR;
    let to = from + span_minutes * 60_000;
    let (parts, events) =
        pulseboard::demo::history::fold_period(42, rate, (from, to), WINDOW_MS, PARTITIONS, spec);

    let empty = {
        let dir = tempfile::tempdir()?;
        drop(Store::open(dir.path(), WINDOW_MS)?);
        dir_bytes(dir.path())
    };
    // Windows, written as the checkpoints write them.
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), WINDOW_MS).context("opening the store")?;
    let mut windows = 0;
    let mut windows_logical = 0u64;
    for (p, ws) in &parts {
        let rows: Vec<(i64, Aggregate)> = ws
            .iter()
            .filter(|(s, _)| (from..to).contains(*s))
            .map(|(s, a)| (*s, a.clone()))
            .collect();
        windows += rows.len();
        windows_logical += rows
            .iter()
            .map(|(_, a)| (a.to_bytes().len() + 8 + 2 + "clicks".len() + 4) as u64)
            .sum::<u64>();
        for chunk in rows.chunks(60) {
            store.merge_windows("clicks", *p, chunk)?;
        }
    }
    store.flush()?;
    let windows_disk = dir_bytes(dir.path()).saturating_sub(empty);
    // Rolled up by the store itself.
    store.roll_up_windows(to, |_, _| to, usize::MAX)?;
    let minutes = store.buckets_in(Level::Minute, from, to)?;
    store.roll_up_minutes(to, usize::MAX)?;
    let hours = store.buckets_in(Level::Hour, from, to)?;
    let minutes_disk = on_disk(&minutes, empty)?;
    let hours_disk = on_disk(&hours, empty)?;
    let per_day = |bytes: u64| (bytes as f64 * DAY as f64 / (to - from) as f64).round() as u64;
    let f = HistoryFigures {
        rate,
        span_minutes,
        events,
        windows_bytes_per_day: per_day(windows_disk),
        minute_bytes_per_day: per_day(minutes_disk),
        hour_bytes_per_day: per_day(hours_disk),
        windows_logical_bytes_per_day: per_day(windows_logical),
        minute_logical_bytes_per_day: per_day(logical(&minutes)),
        hour_logical_bytes_per_day: per_day(logical(&hours)),
        steady_state_bytes: 0,
        windows,
        minute_buckets: minutes.len(),
        hour_buckets: hours.len(),
    };
    let steady = f.windows_bytes_per_day + 7 * f.minute_bytes_per_day + 27 * f.hour_bytes_per_day;
    let f = HistoryFigures {
        steady_state_bytes: steady,
        ..f
    };
    step(&format!(
        "history ({label}) per day at {rate}/s: windows {:.1} MB, minute buckets {:.1} MB, hour buckets {:.2} MB (on disk); default ages in all: {:.2} GB",
        f.windows_bytes_per_day as f64 / 1e6,
        f.minute_bytes_per_day as f64 / 1e6,
        f.hour_bytes_per_day as f64 / 1e6,
        f.steady_state_bytes as f64 / 1e9
    ));
    Ok(f)
}
