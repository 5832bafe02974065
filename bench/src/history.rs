//! Step 9, history through the real server: a running `pulseboard` (release child, the
//! defaults a user has with a broker: state topic and transactions, 1 s checkpoints,
//! `--retention 24h`, `--minute-history 8d`, `--history 35d`; plus two goals) fed a
//! compressed simulated day of realistic traffic, then live traffic in real time with one
//! kiosk watching ([`crate::kiosk`]).
//!
//! The day: three stretches of traffic at [`RATE`] events/s of event time from a realistic
//! site ([`realistic_site`]: 3,000 pages, 60 countries, 40 referrers, 200,000 visitors),
//! placed at the ages where the server keeps each resolution, and produced as fast as the
//! broker takes them while the child consumes:
//! - one hour (from the start of an hour) 10 days ago: the server's retention pass rolls
//!   its windows into minute buckets and those into one hour bucket per partition;
//! - ten minutes ending 2 days ago: rolled into minute buckets;
//! - ten minutes ending 15 minutes ago: windows.
//!
//! (`--quick`: 3, 1 and 1 minutes, and `--retention-interval 5s` so the pass comes soon.)
//! An event the generator makes late or out of order before its stretch's start is moved
//! to the start, so each stretch fills whole buckets. Once the child consumed the day, the
//! bench waits until the API serves the first stretch as hour buckets and the second as
//! minute buckets (the retention pass ran); then [`crate::kiosk::live`]: live events at the
//! same rate in real time (40 s; `--quick` 20 s), event time now, with no roll-up of the
//! day left to do, then as long at the demo's rate ([`DEMO_RATE`], where a kiosk's budget
//! is set), one kiosk watching throughout; then it stops the child.
//!
//! Measured: the data dir's size on disk (blocks used) sampled every 250 ms (its peak) and
//! after the child stopped; every row's encoded bytes, read through the store
//! (`Store::row_sizes` on the stopped child's data dir); the child's disk writes
//! (`/proc/<pid>/io` `write_bytes`) and its state topic's records during the live traffic;
//! the kiosk's bytes. Derived (the formulas are in docs/performance.md):
//! - `overhead` = (data dir at the end − an empty store's) ÷ the encoded bytes of every
//!   row left: sled's own overhead, the space rewritten checkpoints and rolled-up rows
//!   left behind included;
//! - a resolution's bytes per day = its mean encoded row × its rows per day (8,640
//!   windows, 1,440 minutes or 24 hours, each × the rows a bucket has in the stretch:
//!   one per partition for windows, one per topic for the roll-ups) × `overhead`;
//! - `history_bytes_per_day`, the store at the default ages at this rate: 1 day of
//!   windows + 7 days of minute buckets (8 d − 1 d) + 27 days of hour buckets (35 d − 8 d).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pulseboard::store::{RowSize, Store};
use pulseboard_model::gen::{GenConfig, Generator};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::net::{get_json, poll_until};
use pulseboard_testkit::process;
use serde::Serialize;

use crate::child::{consumed, disk_write_bytes, ingest_timeout, Child, STATUS};
use crate::kiosk::{self, KioskFigures};
use crate::load::produce_all;
use crate::probe::percentile;
use crate::report::Report;
use crate::state_topic::{self, WindowRecords, Written};
use crate::{now_ms, step, Plan, PARTITIONS};

const TOPIC_DAY: &str = "bench_day";
/// Events per second of event time, in the day and in the live traffic.
pub const RATE: u64 = 1_000;

/// The demo's rate, at which a kiosk's socket is also measured (its budget is set there).
pub const DEMO_RATE: u64 = 200;
const WINDOW_MS: i64 = 10_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// The server's default ages, in days: windows, then minute buckets, then hour buckets.
const DAYS_OF_WINDOWS: f64 = 1.0;
const DAYS_OF_MINUTES: f64 = 8.0 - 1.0;
const DAYS_OF_HOURS: f64 = 35.0 - 8.0;
/// The two goals of the child: the demo's.
const GOALS: [&str; 4] = ["--goal", "signup", "--goal", "pricing=url:/pricing"];

/// The realistic site of this step: thousands of URLs, dozens of countries, two goals'
/// worth of pages (`/signup`, `/pricing`).
pub fn realistic_site() -> GenConfig {
    GenConfig {
        pages: 3_000,
        countries: 60,
        referrers: 40,
        visitors: 200_000,
        ..GenConfig::default()
    }
}

/// The sizes of the step, by mode.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DayPlan {
    /// Minutes of traffic of each stretch: hours, minutes, windows.
    pub hour_stretch_min: i64,
    pub minute_stretch_min: i64,
    pub window_stretch_min: i64,
    /// Seconds of live traffic.
    pub live_secs: u64,
    /// `--retention-interval` given to the child (`None`: its default, 1 m).
    pub retention_interval: Option<&'static str>,
}

impl DayPlan {
    pub fn new(quick: bool) -> DayPlan {
        if quick {
            DayPlan {
                hour_stretch_min: 3,
                minute_stretch_min: 1,
                window_stretch_min: 1,
                live_secs: 20,
                retention_interval: Some("5s"),
            }
        } else {
            DayPlan {
                hour_stretch_min: 60,
                minute_stretch_min: 10,
                window_stretch_min: 10,
                live_secs: 40,
                retention_interval: None,
            }
        }
    }
}

/// Bytes of one kind of row.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Rows {
    pub rows: usize,
    /// Encoded key + value, the median and the mean.
    pub bytes_p50: f64,
    pub bytes_mean: f64,
    /// Extrapolated: one day of this resolution on disk (`overhead` included).
    pub bytes_per_day: f64,
}

/// Everything the step measured.
#[derive(Debug, Default, Clone, Serialize)]
pub struct HistoryFigures {
    pub plan: Option<DayPlan>,
    pub rate: u64,
    pub partitions: i32,
    /// Events of the day's stretches, and how long the child took to consume them, s.
    pub day_events: u64,
    pub day_ingest_secs: f64,
    /// Windows of the third stretch, minute buckets of the second, hour buckets of the
    /// first (partial in `--quick`).
    pub windows: Rows,
    pub minutes: Rows,
    pub hours: Rows,
    /// Encoded bytes of every row at the end (other trees included), the data dir's size
    /// on disk then and at its peak, an empty store's, and `overhead`.
    pub live_row_bytes: u64,
    pub data_dir_bytes_end: u64,
    pub data_dir_bytes_peak: u64,
    pub empty_store_bytes: u64,
    pub overhead: f64,
    /// 1 d of windows + 7 d of minute buckets + 27 d of hour buckets, on disk.
    pub history_bytes_per_day: f64,
    /// The window records of the windows of the live traffic (those wholly inside it).
    pub state_topic_live_windows: WindowRecords,
    /// What the child wrote from the start of the live traffic until it had consumed it
    /// (disk, and the state-topic records produced meanwhile), and when that was (epoch ms).
    pub written_live: Written,
    pub written_live_ms: (i64, i64),
    /// One kiosk at the demo's rate ([`DEMO_RATE`]), and during the live traffic at
    /// [`RATE`].
    pub kiosk: KioskFigures,
    pub kiosk_busy: KioskFigures,
    pub rss_peak_mb: f64,
    /// Seconds the whole step took.
    pub seconds: f64,
}

/// The step; fills `report.history` and the keys derived from it.
pub fn measure(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    let began = std::time::Instant::now();
    let day = plan.day;
    step(&format!(
        "history: a compressed day ({} + {} + {} min at {RATE} events/s), then {} s live with a kiosk",
        day.hour_stretch_min, day.minute_stretch_min, day.window_stretch_min, day.live_secs
    ));
    rt.block_on(create_topic(brokers, TOPIC_DAY, PARTITIONS, 1))?;
    let mut args: Vec<&str> = GOALS.to_vec();
    if let Some(every) = day.retention_interval {
        args.extend(["--retention-interval", every]);
    }
    let child = Child::spawn(plan, brokers, TOPIC_DAY, &args)?;
    let sampler = DirSampler::start(child.data_dir());
    let spans = stretches(day, now_ms());
    let measured = feed_and_watch(rt, brokers, &child, day, spans);
    let peak = sampler.stop();
    let (mut f, live_span) = measured.with_context(|| child.log_tail())?;
    f.rss_peak_mb = process::peak_rss_mb(child.pid()).unwrap_or(f64::NAN);
    let state_topic = child.state_topic();
    let dir = child.stop_keeping_dir()?;
    let data = dir.path().join("data");
    f.data_dir_bytes_peak = peak;
    f.data_dir_bytes_end = dir_bytes(&data);
    let sizes = Store::open(&data, WINDOW_MS)
        .context("opening the child's data dir")?
        .row_sizes()?;
    f.empty_store_bytes = empty_store_bytes()?;
    f.live_row_bytes = sizes.total();
    f.overhead = f.data_dir_bytes_end.saturating_sub(f.empty_store_bytes) as f64
        / f.live_row_bytes.max(1) as f64;
    let (hours, minutes, windows) = spans;
    f.windows = rows(&sizes.windows, windows, DAY / WINDOW_MS, f.overhead);
    f.minutes = rows(&sizes.minutes, minutes, DAY / MINUTE, f.overhead);
    f.hours = rows(&sizes.hours, hours, DAY / HOUR, f.overhead);
    f.history_bytes_per_day = DAYS_OF_WINDOWS * f.windows.bytes_per_day
        + DAYS_OF_MINUTES * f.minutes.bytes_per_day
        + DAYS_OF_HOURS * f.hours.bytes_per_day;
    let topic = state_topic::read(brokers, &state_topic)?;
    // The windows wholly inside the live traffic: every checkpoint that rewrote them.
    let whole = (live_span.0 + WINDOW_MS - 1) / WINDOW_MS * WINDOW_MS..live_span.1 - WINDOW_MS;
    f.state_topic_live_windows = topic.windows(whole);
    let written = f.written_live_ms.0..=f.written_live_ms.1;
    f.written_live.state_topic_bytes = topic.bytes(|r| written.contains(&r.ts_ms));
    f.written_live.state_topic_records = topic
        .records
        .iter()
        .filter(|r| written.contains(&r.ts_ms))
        .count() as u64;
    f.rate = RATE;
    f.partitions = PARTITIONS;
    f.plan = Some(day);
    f.seconds = began.elapsed().as_secs_f64();
    step(&format!(
        "history: window row {:.0} B, minute row {:.0} B, hour row {:.0} B (medians, encoded); on disk ×{:.2}; default ages at {RATE}/s: {:.2} GB; kiosk {:.0} B/s",
        f.windows.bytes_p50, f.minutes.bytes_p50, f.hours.bytes_p50, f.overhead,
        f.history_bytes_per_day / 1e9, f.kiosk.bytes_per_s
    ));
    check(&f)?;
    report.set_history(f);
    Ok(())
}

/// Event-time spans `[from, to)` of the three stretches: hours, minutes, windows.
type Stretches = ((i64, i64), (i64, i64), (i64, i64));

/// The [`Stretches`] at `now`.
fn stretches(day: DayPlan, now: i64) -> Stretches {
    // It starts on the hour: its one hour bucket per partition starts within it.
    let hours_start = (now - 10 * DAY) / HOUR * HOUR;
    let minutes_end = (now - 2 * DAY) / MINUTE * MINUTE;
    let windows_end = (now - 15 * MINUTE) / MINUTE * MINUTE;
    (
        (hours_start, hours_start + day.hour_stretch_min * MINUTE),
        (minutes_end - day.minute_stretch_min * MINUTE, minutes_end),
        (windows_end - day.window_stretch_min * MINUTE, windows_end),
    )
}

/// The rows of `sizes` starting in `span`, of buckets of which `buckets_per_day` make a
/// day: a day holds that many × the rows a bucket has in the span (one per partition for
/// windows, one per topic for roll-ups: whatever the store wrote).
fn rows(sizes: &[RowSize], span: (i64, i64), buckets_per_day: i64, overhead: f64) -> Rows {
    let inside: Vec<&RowSize> = sizes
        .iter()
        .filter(|(start, _)| (span.0..span.1).contains(start))
        .collect();
    let buckets: std::collections::BTreeSet<i64> = inside.iter().map(|(s, _)| *s).collect();
    let mut bytes: Vec<f64> = inside.iter().map(|(_, b)| *b as f64).collect();
    bytes.sort_by(f64::total_cmp);
    let mean = bytes.iter().sum::<f64>() / bytes.len().max(1) as f64;
    let rows_per_bucket = bytes.len() as f64 / buckets.len().max(1) as f64;
    Rows {
        rows: bytes.len(),
        bytes_p50: percentile(&bytes, 50.0),
        bytes_mean: mean,
        bytes_per_day: mean * rows_per_bucket * buckets_per_day as f64 * overhead,
    }
}

/// Produce the day, wait for the child to consume it and for the retention pass to roll
/// the old stretches up, then run the live traffic with the kiosk. Returns the figures so
/// far and the live traffic's wall-clock span.
fn feed_and_watch(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    child: &Child,
    day: DayPlan,
    spans: Stretches,
) -> Result<(HistoryFigures, (i64, i64))> {
    let mut f = HistoryFigures::default();
    let mut gen = Generator::new(5, realistic_site());
    let (hours, minutes, windows) = spans;
    let fed = std::time::Instant::now();
    for (from, to) in [hours, minutes, windows] {
        let n = ((to - from) as u64) * RATE / 1000;
        produce_all(brokers, TOPIC_DAY, n, |k, key, payload| {
            let mut ev = gen.next_event(from + (k * 1000 / RATE) as i64);
            ev.ts = ev.ts.max(from);
            key.extend_from_slice(ev.visitor.as_bytes());
            payload.extend_from_slice(ev.to_json().as_bytes());
        })?;
        f.day_events += n;
    }
    let addr = child.addr();
    wait_consumed(rt, addr, f.day_events)?;
    f.day_ingest_secs = fed.elapsed().as_secs_f64();
    step(&format!(
        "history: {} events of the day consumed in {:.1} s",
        f.day_events, f.day_ingest_secs
    ));
    step("history: waiting for the retention pass to roll the old stretches up");
    let wait = Duration::from_secs(120);
    let rolled = rt.block_on(poll_until(
        wait,
        "the first stretch as hour buckets and the second as minute buckets",
        || async {
            let h = resolutions(addr, hours).await?;
            let m = resolutions(addr, minutes).await?;
            (h == ["hour"] && m == ["minute"]).then_some(())
        },
    ));
    if let Err(e) = rolled {
        let served = rt.block_on(async {
            let h = resolutions(addr, hours).await;
            let m = resolutions(addr, minutes).await;
            let metrics = pulseboard_testkit::net::http_get(addr, "/metrics").await;
            let rollups: Vec<String> = metrics
                .map(|(_, text)| text)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("rollup") || l.contains("retention"))
                .map(str::to_owned)
                .collect();
            format!(
                "first stretch: {h:?}, second: {m:?}; {}",
                rollups.join("; ")
            )
        });
        return Err(e.context(served));
    }
    step("history: live traffic with a kiosk");
    let io_before = disk_write_bytes(child.pid()).unwrap_or(0);
    let span = Duration::from_secs(day.live_secs);
    let (kiosk, live_span) = kiosk::live(rt, brokers, TOPIC_DAY, addr, &mut gen, RATE, span)?;
    wait_consumed(rt, addr, f.day_events + kiosk.events)?;
    f.written_live_ms = (live_span.0, now_ms());
    f.written_live = Written {
        events: kiosk.events,
        disk_write_bytes: disk_write_bytes(child.pid())
            .unwrap_or(0)
            .saturating_sub(io_before),
        ..Written::default()
    };
    f.kiosk_busy = kiosk;
    step("history: the demo's rate with a kiosk");
    let (kiosk, _) = kiosk::live(rt, brokers, TOPIC_DAY, addr, &mut gen, DEMO_RATE, span)?;
    wait_consumed(rt, addr, f.day_events + f.kiosk_busy.events + kiosk.events)?;
    f.kiosk = kiosk;
    Ok((f, live_span))
}

/// Until the child's offsets of the day's topic add up to `n`.
fn wait_consumed(rt: &tokio::runtime::Runtime, addr: std::net::SocketAddr, n: u64) -> Result<()> {
    rt.block_on(poll_until(
        ingest_timeout(n),
        "the child to consume the day's topic",
        || async {
            let status = get_json(addr, STATUS).await?;
            (consumed(&status, TOPIC_DAY) >= n as i64).then_some(())
        },
    ))
}

/// The distinct `resolution`s the API serves over `span`, sorted.
async fn resolutions(addr: std::net::SocketAddr, span: (i64, i64)) -> Option<Vec<String>> {
    let path = format!(
        "/api/v1/windows?from={}&to={}&limit=10000&top=1",
        span.0, span.1
    );
    let w = get_json(addr, &path).await?;
    let mut r: Vec<String> = w["windows"]
        .as_array()?
        .iter()
        .filter_map(|i| i["resolution"].as_str().map(str::to_owned))
        .collect();
    r.sort();
    r.dedup();
    Some(r)
}

/// Bytes on disk (blocks used) under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// An empty store's size on disk (created, flushed, closed).
fn empty_store_bytes() -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), WINDOW_MS)?;
    store.flush()?;
    drop(store);
    Ok(dir_bytes(dir.path()))
}

/// The data dir's peak size, sampled every 250 ms on a thread of its own.
struct DirSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl DirSampler {
    fn start(dir: std::path::PathBuf) -> DirSampler {
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(dir_bytes(&dir), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        DirSampler { stop, peak, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Refuse figures that cannot be right (no rows of a kind means the roll-up never ran).
fn check(f: &HistoryFigures) -> Result<()> {
    for (what, rows) in [
        ("windows", &f.windows),
        ("minute buckets", &f.minutes),
        ("hour buckets", &f.hours),
    ] {
        if rows.rows == 0 {
            bail!("the history step found no {what} in the child's store");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stretches_sit_where_the_server_keeps_each_resolution() {
        let now = 1_800_000_123_456;
        let ((h0, h1), (m0, m1), (w0, w1)) = stretches(DayPlan::new(false), now);
        assert_eq!((h1 - h0, h0 % HOUR), (HOUR, 0));
        let ((q0, q1), ..) = stretches(DayPlan::new(true), now);
        assert_eq!((q0, q1 - q0), (h0, 3 * MINUTE));
        assert!(now - h1 > 8 * DAY, "past --minute-history");
        assert!(now - m1 > DAY && now - m0 < 8 * DAY, "between the two ages");
        assert!(
            now - w0 < DAY && w1 < now,
            "within --retention, in the past"
        );
        assert_eq!((m1 % MINUTE, w0 % WINDOW_MS), (0, 0));
    }

    #[test]
    fn a_kind_of_rows_counts_its_stretch_only_and_scales_to_a_day() {
        let sizes = [(0, 100), (10_000, 300), (20_000, 200), (90_000, 9_999)];
        let r = rows(&sizes, (0, 60_000), 10, 2.0);
        assert_eq!(r.rows, 3);
        assert_eq!(r.bytes_p50, 200.0);
        assert_eq!(r.bytes_mean, 200.0);
        assert_eq!(r.bytes_per_day, 4_000.0);
        // Two rows a bucket (two partitions): a day holds twice as many.
        let two = [(0, 100), (0, 300), (10_000, 200), (10_000, 200)];
        let r = rows(&two, (0, 60_000), 10, 1.0);
        assert_eq!((r.rows, r.bytes_per_day), (4, 4_000.0));
    }
}
