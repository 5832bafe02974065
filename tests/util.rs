//! Shared test harness: Apache Kafka (through the dev-only test kit), Pulseboard in-process
//! or as a child process on port 0 with a temp store, and an independent recomputation of
//! the expected numbers.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pulseboard::config::Config;
use pulseboard_model::agg::{SEGMENT_TOP_CAP, TOP_CAP};
use pulseboard_model::event::Event;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use pulseboard_testkit::kafka::{delete_topic, produce, producer, Kafka};
pub use pulseboard_testkit::net::{get_json, http_get, http_post, poll_until};
pub use pulseboard_testkit::process::cpu_time;
use rdkafka::producer::FutureProducer;

/// Librdkafka settings for the Pulseboard under test.
/// A member killed with SIGKILL stays in the group until its session times out, and the
/// next member's join waits for that; a short session (with frequent heartbeats) makes a
/// restart after a SIGKILL rejoin in a few seconds instead of tens. (The test brokers
/// accept sessions from 1 s on: `group.min.session.timeout.ms`.)
pub const FAST_GROUP_OPTIONS: &[(&str, &str)] = &[
    ("session.timeout.ms", "3000"),
    ("heartbeat.interval.ms", "300"),
];

/// Create a topic with replication factor 1 (the single-node test broker).
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    pulseboard_testkit::kafka::create_topic(brokers, name, partitions, 1).await
}

/// Pulseboard running inside the test process.
pub struct App {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), pulseboard::RunError>>,
}

impl App {
    /// Start with `args` (as on the command line, without the program name).
    pub async fn start(args: &[&str]) -> Result<Self> {
        let mut argv = vec!["pulseboard", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let settings = <Config as clap::Parser>::try_parse_from(argv)?.validate()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(pulseboard::run(settings, listener, shutdown.clone()));
        Ok(App {
            addr,
            shutdown,
            handle,
        })
    }

    /// Graceful stop: the last checkpoint is flushed before this returns.
    pub async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        self.handle.await??;
        Ok(())
    }
}

/// Pulseboard as a child process: the binary built for these tests.
pub type ChildApp = pulseboard_testkit::PulseboardProcess;

/// Start the binary under test with `args`.
pub fn spawn_child(args: &[&str]) -> Result<ChildApp> {
    ChildApp::spawn(Path::new(env!("CARGO_BIN_EXE_pulseboard")), args)
}

/// Start the binary under test with `args` and the environment `env`.
pub fn spawn_child_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<ChildApp> {
    ChildApp::spawn_with_env(Path::new(env!("CARGO_BIN_EXE_pulseboard")), args, env)
}

/// Documented standard error of the top-level HyperLogLog sketches (the unique visitors
/// and sessions of a window or range): p = 14, 1.04 / √16,384 ≈ 0.81 %.
pub const TOP_HLL_SIGMA: f64 = 0.0081;

/// Documented standard error of the sub-sketches of segments and goals (a filtered view's
/// uniques, a goal's converting visitors): p = 12, 1.04 / √4,096 ≈ 1.63 %. Every segment
/// and goal comparison uses this constant.
pub const SEGMENT_HLL_SIGMA: f64 = 0.0163;

/// The largest |estimate − exact| accepted for a distinct count of `exact` items from a
/// sketch of standard error `sigma`: four standard errors, at least 1. A correct sketch is
/// further off with a probability below 1e-4 per comparison (≈ 6·10⁻⁵ for a normal error),
/// so a failure points at the product, not at bad luck; and the sketch being exact for
/// small sets today is nothing these tests rely on.
pub fn distinct_tolerance(exact: u64, sigma: f64) -> u64 {
    ((4.0 * sigma * exact as f64).ceil() as u64).max(1)
}

/// Whether `got` estimates a distinct count of `exact` within [`distinct_tolerance`].
pub fn distinct_ok(exact: u64, got: u64, sigma: f64) -> bool {
    got.abs_diff(exact) <= distinct_tolerance(exact, sigma)
}

/// `got` (the API's figure `what`) estimates the exact distinct count `exact` within
/// [`distinct_tolerance`].
pub fn assert_distinct(what: &str, exact: usize, got: Option<u64>, sigma: f64) -> Result<()> {
    let exact = exact as u64;
    let got = got.ok_or_else(|| anyhow!("{what}: no figure (expected about {exact})"))?;
    if !distinct_ok(exact, got, sigma) {
        bail!(
            "{what}: {got} is not within ±{} of the exact {exact} (4σ, σ = {sigma})",
            distinct_tolerance(exact, sigma)
        );
    }
    Ok(())
}

/// The sketches a view's figures come from: how far its distinct counts may be off, and
/// how many keys its top lists hold exactly.
#[derive(Debug, Clone, Copy)]
pub struct Sketches {
    /// Standard error of its distinct counts.
    pub sigma: f64,
    /// Keys a top list holds before it becomes a Misra–Gries summary.
    pub top_cap: usize,
}

/// The figures of the whole traffic (windows, ranges, visitors now).
pub const WHOLE: Sketches = Sketches {
    sigma: TOP_HLL_SIGMA,
    top_cap: TOP_CAP,
};

/// The figures of a segment (a filtered view): its sub-aggregates' sketches. (A view merges
/// sub-aggregates of each partition into a larger list, so a list of up to this many keys
/// is exact, and beyond the Misra–Gries bounds of this capacity hold.)
pub const SEGMENT: Sketches = Sketches {
    sigma: SEGMENT_HLL_SIGMA,
    top_cap: SEGMENT_TOP_CAP,
};

/// The largest `top=` the API takes: asked for, a window's top lists come whole.
pub const ALL_TOP: usize = 1000;

/// Every window, top lists whole.
pub const ALL_WINDOWS: &str = "/api/v1/windows?from=0&limit=10000&top=1000";

/// The expected numbers of one window (or range), recomputed independently of Pulseboard's
/// code: counts in plain maps, distinct visitors and sessions in plain sets.
#[derive(Debug, Default, Clone)]
pub struct Truth {
    pub events: u64,
    pub by_type: BTreeMap<String, u64>,
    pub visitors: HashSet<String>,
    pub sessions: HashSet<String>,
    pub urls: BTreeMap<String, u64>,
    pub referrers: BTreeMap<String, u64>,
    pub countries: BTreeMap<String, u64>,
    pub devices: BTreeMap<String, u64>,
}

impl Truth {
    /// The numbers of `events`, all in one window or range.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Truth {
        let mut t = Truth::default();
        for e in events {
            t.add(e);
        }
        t
    }

    fn add(&mut self, e: &Event) {
        self.events += 1;
        *self.by_type.entry(e.kind.clone()).or_default() += 1;
        self.visitors.insert(e.visitor.clone());
        if let Some(s) = &e.session {
            self.sessions.insert(s.clone());
        }
        if e.kind == "pageview" {
            *self.urls.entry(e.url.clone()).or_default() += 1;
        }
        for (map, v) in [
            (&mut self.referrers, &e.referrer),
            (&mut self.countries, &e.country),
            (&mut self.devices, &e.device),
        ] {
            if let Some(v) = v {
                *map.entry(v.clone()).or_default() += 1;
            }
        }
    }
}

/// Group events by `ts - ts mod width` with plain maps.
pub fn recompute(events: &[Event], width: i64) -> BTreeMap<i64, Truth> {
    let mut out: BTreeMap<i64, Truth> = BTreeMap::new();
    for e in events {
        let start = e.ts - e.ts.rem_euclid(width);
        out.entry(start).or_default().add(e);
    }
    out
}

/// The API's windows (all of them, top lists whole) equal the recomputation of `events`.
pub async fn assert_api_matches(addr: SocketAddr, events: &[Event], width: i64) -> Result<()> {
    let windows = get_json(addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow!("windows endpoint failed"))?;
    assert_windows_match(&windows, &recompute(events, width))
}

/// The property `plan` equals an independent recomputation from `events`: each value's
/// windows (`filter=prop.plan:VALUE`, whole: the values are few) and the summary's
/// `properties` (each value's events exactly, its visitors within the sub-sketches' error),
/// of every site and of each one.
pub async fn assert_props_match(addr: SocketAddr, events: &[Event], width: i64) -> Result<()> {
    // The truth, from the events' own property list with plain maps and sets.
    let plan_of = |e: &Event| {
        e.props
            .iter()
            .find(|(k, _)| k == "plan")
            .map(|(_, v)| v.clone())
    };
    let mut by_value: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in events {
        if let Some(v) = plan_of(e) {
            by_value.entry(v).or_default().push(e.clone());
        }
    }
    if by_value.len() < 2 {
        bail!(
            "the events carry {} values of plan: nothing to tell apart",
            by_value.len()
        );
    }
    for (value, evs) in &by_value {
        let api = get_json(addr, &format!("{ALL_WINDOWS}&filter=prop.plan:{value}"))
            .await
            .ok_or_else(|| anyhow!("windows of plan {value} failed"))?;
        if let Some(w) = api["windows"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["segment"]["complete"] != true))
        {
            bail!("plan {value}: a window is incomplete with 4 values under --segment-top: {w}");
        }
        let mut api = api;
        if let Some(ws) = api["windows"].as_array_mut() {
            ws.retain(|w| w["events"].as_u64() != Some(0));
        }
        assert_windows_match_of(&api, &recompute(evs, width), SEGMENT)
            .map_err(|e| anyhow!("plan {value}: {e}"))?;
    }
    let mut sites: Vec<Option<&str>> = vec![None];
    let mut names: Vec<&str> = events.iter().filter_map(|e| e.site.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    sites.extend(names.into_iter().map(Some));
    for site in sites {
        let q = site.map_or(String::new(), |s| format!("&site={s}"));
        let summary = get_json(addr, &format!("/api/v1/summary?from=0&to=4102444800000{q}"))
            .await
            .ok_or_else(|| anyhow!("summary{q} failed"))?;
        let plan = summary["properties"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["key"] == "plan"))
            .ok_or_else(|| anyhow!("summary{q} lists no property plan: {summary}"))?;
        let of_site = |e: &&Event| site.is_none() || e.site.as_deref() == site;
        let mut want: BTreeMap<String, (u64, HashSet<String>)> = BTreeMap::new();
        for e in events.iter().filter(of_site) {
            if let Some(v) = plan_of(e) {
                let w = want.entry(v).or_default();
                w.0 += 1;
                w.1.insert(e.visitor.clone());
            }
        }
        let total: u64 = want.values().map(|w| w.0).sum();
        if plan["events"].as_u64() != Some(total) || plan["other_events"].as_u64() != Some(0) {
            bail!("summary{q}: plan has {plan}, expected {total} events, none other");
        }
        let values = plan["values"].as_array().cloned().unwrap_or_default();
        if values.len() != want.len() || plan["complete"] != true {
            bail!(
                "summary{q}: plan lists {plan}, expected {} values, complete",
                want.len()
            );
        }
        for v in values {
            let name = v["value"].as_str().unwrap_or_default();
            let (n, visitors) = want
                .get(name)
                .ok_or_else(|| anyhow!("summary{q}: plan value {name:?} never sent"))?;
            if v["events"].as_u64() != Some(*n) {
                bail!("summary{q}: plan {name} has {v}, expected {n} events");
            }
            assert_distinct(
                &format!("summary{q}: plan {name}'s visitors"),
                visitors.len(),
                v["unique_visitors"].as_u64(),
                SEGMENT_HLL_SIGMA,
            )?;
        }
    }
    Ok(())
}

/// Each site's view equals a recomputation of that site's events alone (they carry a
/// `site`; the recomputation does not use Pulseboard's types): the windows of
/// `/api/v1/windows?site=` where the site has events are exactly those of the recomputation,
/// each equal to it ([`assert_figures_match`]), and so are those of its page views
/// (`&filter=type:pageview`, a segment of the site); and the summary over every window lists
/// each site with its events.
pub async fn assert_sites_match(addr: SocketAddr, events: &[Event], width: i64) -> Result<()> {
    let mut by_site: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for e in events {
        if let Some(s) = &e.site {
            by_site.entry(s).or_default().push(e.clone());
        }
    }
    if by_site.len() < 2 {
        bail!(
            "the events carry {} sites: nothing to tell apart",
            by_site.len()
        );
    }
    for (site, evs) in &by_site {
        let mut api = get_json(addr, &format!("{ALL_WINDOWS}&site={site}"))
            .await
            .ok_or_else(|| anyhow!("windows of site {site} failed"))?;
        // A window where the site had no event shows it with zeros.
        if let Some(ws) = api["windows"].as_array_mut() {
            ws.retain(|w| w["events"].as_u64() != Some(0));
        }
        assert_windows_match(&api, &recompute(evs, width))
            .map_err(|e| anyhow!("site {site}: {e}"))?;
        // A segment of the site (event types are few: every window holds each whole).
        let mut api = get_json(
            addr,
            &format!("{ALL_WINDOWS}&site={site}&filter=type:pageview"),
        )
        .await
        .ok_or_else(|| anyhow!("pageviews of site {site} failed"))?;
        if let Some(ws) = api["windows"].as_array_mut() {
            ws.retain(|w| w["events"].as_u64() != Some(0));
            if let Some(w) = ws.iter().find(|w| w["segment"]["complete"] != true) {
                bail!("site {site}: a window's pageviews are incomplete: {w}");
            }
        }
        let views: Vec<Event> = evs
            .iter()
            .filter(|e| e.kind == "pageview")
            .cloned()
            .collect();
        assert_windows_match_of(&api, &recompute(&views, width), SEGMENT)
            .map_err(|e| anyhow!("site {site}, type:pageview: {e}"))?;
    }
    let summary = get_json(addr, "/api/v1/summary?from=0&to=4102444800000")
        .await
        .ok_or_else(|| anyhow!("summary failed"))?;
    let listed: BTreeMap<String, u64> = summary["sites"]
        .as_array()
        .ok_or_else(|| anyhow!("no sites in the summary: {summary}"))?
        .iter()
        .filter_map(|s| Some((s["site"].as_str()?.to_owned(), s["events"].as_u64()?)))
        .collect();
    let want: BTreeMap<String, u64> = by_site
        .iter()
        .map(|(s, evs)| ((*s).to_owned(), evs.len() as u64))
        .collect();
    if listed != want {
        bail!("the summary lists sites {listed:?}, expected {want:?}");
    }
    Ok(())
}

/// The API's windows of the whole traffic (`/api/v1/windows` JSON, asked with
/// `top=`[`ALL_TOP`]) are exactly the windows of `truth`, each equal to its recomputation
/// ([`assert_figures_match`]).
pub fn assert_windows_match(api: &Value, truth: &BTreeMap<i64, Truth>) -> Result<()> {
    assert_windows_match_of(api, truth, WHOLE)
}

/// [`assert_windows_match`] for figures from `sketches` (a segment's, for a filtered view).
pub fn assert_windows_match_of(
    api: &Value,
    truth: &BTreeMap<i64, Truth>,
    sketches: Sketches,
) -> Result<()> {
    let windows = api["windows"]
        .as_array()
        .ok_or_else(|| anyhow!("no windows in {api}"))?;
    let got: BTreeMap<i64, &Value> = windows
        .iter()
        .filter_map(|w| Some((w["start"].as_i64()?, w)))
        .collect();
    let want: Vec<i64> = truth.keys().copied().collect();
    let have: Vec<i64> = got.keys().copied().collect();
    if want != have {
        bail!("window starts differ: expected {want:?}, API has {have:?}");
    }
    for (start, t) in truth {
        assert_figures_match(&format!("window {start}"), got[start], t, ALL_TOP, sketches)?;
    }
    Ok(())
}

/// The figures `api` (a window, a summary: events, by_type, uniques, top lists asked with
/// `top=asked`) equal the recomputation `t`: events and by_type exactly, unique visitors
/// and sessions within the sketches' error of the exact counts, every top list whole
/// ([`assert_top_list`]), and `approximate` false while every list is exact.
pub fn assert_figures_match(
    what: &str,
    api: &Value,
    t: &Truth,
    asked: usize,
    sketches: Sketches,
) -> Result<()> {
    if api["events"].as_u64() != Some(t.events) {
        bail!("{what}: events {} != expected {}", api["events"], t.events);
    }
    let by_type: BTreeMap<String, u64> = serde_json::from_value(api["by_type"].clone())
        .map_err(|e| anyhow!("{what}: by_type {}: {e}", api["by_type"]))?;
    let mut by_type: Vec<(String, u64)> = by_type.into_iter().collect();
    by_type.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    check_top(
        &format!("{what}: by_type"),
        &by_type,
        &t.by_type,
        usize::MAX,
        sketches.top_cap,
    )?;
    let ctx = |field: &str| format!("{what}: {field}");
    for (field, exact) in [
        ("unique_visitors", &t.visitors),
        ("unique_sessions", &t.sessions),
    ] {
        assert_distinct(
            &ctx(field),
            exact.len(),
            api[field].as_u64(),
            sketches.sigma,
        )?;
    }
    let lists = [
        ("top_urls", &t.urls),
        ("top_referrers", &t.referrers),
        ("countries", &t.countries),
        ("devices", &t.devices),
    ];
    for (field, exact) in lists {
        assert_top_list(&ctx(field), &api[field], exact, asked, sketches.top_cap)?;
    }
    let all_exact = lists
        .iter()
        .chain([("by_type", &t.by_type)].iter())
        .all(|(_, m)| m.len() <= sketches.top_cap);
    if all_exact && api["approximate"] != false {
        bail!(
            "{what}: every list is under {} keys, yet approximate is {}",
            sketches.top_cap,
            api["approximate"]
        );
    }
    Ok(())
}

/// A top list of the API (`[{"key", "count"}]`, asked with `top=asked`, from a summary
/// holding `cap` keys) against the exact counts, compared whole: nothing missing, nothing
/// extra. It is ordered by count descending, then key ascending, and holds no key twice.
/// - While `exact` has at most `cap` keys the summary is exact (model/src/agg/top.rs): the
///   list is the first `asked` entries of `exact` in that order, key for key, count for
///   count (all of them when fewer).
/// - Above, it is a mergeable Misra–Gries summary: a listed count `c` of a key with exact
///   count `t` lies in `[t − e, t]`, with `e = total / (cap + 1)` (total: the sum of the
///   exact counts); every key with `t > e` is listed, or, when the list is full (`asked`
///   entries), every key with `t − e` above the last listed count.
pub fn assert_top_list(
    what: &str,
    api: &Value,
    exact: &BTreeMap<String, u64>,
    asked: usize,
    cap: usize,
) -> Result<()> {
    let list = api
        .as_array()
        .ok_or_else(|| anyhow!("{what}: not a list: {api}"))?
        .iter()
        .map(|c| match (c["key"].as_str(), c["count"].as_u64()) {
            (Some(k), Some(n)) => Ok((k.to_owned(), n)),
            _ => Err(anyhow!("{what}: not a count: {c}")),
        })
        .collect::<Result<Vec<_>>>()?;
    check_top(what, &list, exact, asked, cap)
}

fn check_top(
    what: &str,
    list: &[(String, u64)],
    exact: &BTreeMap<String, u64>,
    asked: usize,
    cap: usize,
) -> Result<()> {
    let order = |a: &(String, u64), b: &(String, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if let Some(p) = list.windows(2).find(|p| order(&p[0], &p[1]).is_ge()) {
        bail!(
            "{what}: {:?} before {:?}: not in order, or twice",
            p[0],
            p[1]
        );
    }
    if list.len() > asked {
        bail!("{what}: {} entries, {asked} asked", list.len());
    }
    if exact.len() <= cap {
        let mut want: Vec<(String, u64)> = exact.iter().map(|(k, n)| (k.clone(), *n)).collect();
        want.sort_by(order);
        want.truncate(asked);
        if list != want.as_slice() {
            let listed: BTreeMap<&str, u64> = list.iter().map(|(k, n)| (k.as_str(), *n)).collect();
            let wrong: Vec<String> = want
                .iter()
                .filter(|(k, n)| listed.get(k.as_str()) != Some(n))
                .map(|(k, n)| format!("{k}: {:?} instead of {n}", listed.get(k.as_str())))
                .collect();
            let wanted: HashSet<&str> = want.iter().map(|(k, _)| k.as_str()).collect();
            let extra: Vec<&(String, u64)> = list
                .iter()
                .filter(|(k, _)| !wanted.contains(k.as_str()))
                .collect();
            bail!(
                "{what}: not the exact counts ({} keys, {asked} asked): wrong or missing {wrong:?}, extra {extra:?}",
                exact.len()
            );
        }
        return Ok(());
    }
    let total: u64 = exact.values().sum();
    let e = total / (cap as u64 + 1);
    for (k, c) in list {
        let t = exact.get(k).copied().unwrap_or(0);
        if *c > t || *c + e < t {
            bail!("{what}: {k} = {c}, not within [{t} − {e}, {t}]");
        }
    }
    let floor = if list.len() >= asked {
        list.last().map_or(0, |(_, c)| *c)
    } else {
        0
    };
    let listed: HashSet<&str> = list.iter().map(|(k, _)| k.as_str()).collect();
    if let Some((k, t)) = exact
        .iter()
        .find(|(k, t)| t.saturating_sub(e) > floor && !listed.contains(k.as_str()))
    {
        bail!("{what}: {k} (exact {t}, error bound {e}) is missing");
    }
    Ok(())
}

/// A fresh temporary data directory.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Which events a correct Pulseboard folds, given messages in per-partition order, and how
/// many of them are late: an event is late when its window ended at or before its
/// partition's watermark (max event time seen before it minus `lateness`). Late events within
/// the revision horizon (24 h by default, far wider than any test's spread) are folded too,
/// into windows that become `revised`; so every event is folded, and the late count is also
/// the expected `revised_events_total`.
pub fn expected_folded(msgs: &[(i32, Event)], width: i64, lateness: i64) -> (Vec<Event>, u64) {
    let mut max_ts: HashMap<i32, i64> = HashMap::new();
    let mut late = 0;
    for (p, e) in msgs {
        let start = e.ts - e.ts.rem_euclid(width);
        let m = max_ts.entry(*p).or_insert(e.ts);
        if start + width <= *m - lateness {
            late += 1;
        }
        *m = (*m).max(e.ts);
    }
    (msgs.iter().map(|(_, e)| e.clone()).collect(), late)
}

pub use pulseboard::now_ms;

/// Sum of `partitions[].next_offset` in a status document (0 without partitions).
pub fn sum_next_offsets(status: &Value) -> i64 {
    status["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["next_offset"].as_i64()).sum())
        .unwrap_or(0)
}

/// Produce `payloads` to `topic` in chunks of 100, one chunk every `every`, in the background.
pub fn paced_writer(
    p: FutureProducer,
    topic: &'static str,
    payloads: Vec<(i32, Vec<u8>)>,
    every: Duration,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for chunk in payloads.chunks(100) {
            tick.tick().await;
            produce(&p, topic, chunk).await?;
        }
        Ok(())
    })
}

/// A known stream written in slices, one at a time as the test asks, each paced like
/// [`paced_writer`]: a test that kills or scales Pulseboard at each step holds the slices
/// after it back, so every step lands before the stream ends whatever the machine's speed,
/// and the test waits on what the product reports (its offsets passing into the slice
/// being written), never on the writer's progress.
pub struct SlicedWriter {
    producer: FutureProducer,
    topic: &'static str,
    slices: std::collections::VecDeque<Vec<(i32, Vec<u8>)>>,
    every: Duration,
    /// Messages in the topic before the slice being written (offsets sum to this there).
    written: i64,
    writing: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl SlicedWriter {
    /// `payloads` in `slices` slices of about equal size, for a topic that already holds
    /// `before` messages; nothing is written yet.
    pub fn new(
        producer: FutureProducer,
        topic: &'static str,
        payloads: &[(i32, Vec<u8>)],
        slices: usize,
        every: Duration,
        before: i64,
    ) -> Self {
        let size = payloads.len().div_ceil(slices.max(1)).max(1);
        SlicedWriter {
            producer,
            topic,
            slices: payloads.chunks(size).map(<[_]>::to_vec).collect(),
            every,
            written: before,
            writing: None,
        }
    }

    /// Waits for the slice being written to be written whole, then starts writing the next
    /// one; returns the range of offset sums it covers (the product's offsets pass into it
    /// only while or after it is written). Fails when no slice is left.
    pub async fn next_slice(&mut self) -> Result<std::ops::Range<i64>> {
        self.finish_slice().await?;
        let slice = self
            .slices
            .pop_front()
            .ok_or_else(|| anyhow!("no slice left to write"))?;
        let range = self.written..self.written + slice.len() as i64;
        self.written = range.end;
        self.writing = Some(paced_writer(
            self.producer.clone(),
            self.topic,
            slice,
            self.every,
        ));
        Ok(range)
    }

    /// Slices not yet started.
    pub fn slices_left(&self) -> usize {
        self.slices.len()
    }

    /// Writes every slice left, one after the other, and waits for the last.
    pub async fn finish(mut self) -> Result<()> {
        while !self.slices.is_empty() {
            self.next_slice().await?;
        }
        self.finish_slice().await
    }

    async fn finish_slice(&mut self) -> Result<()> {
        if let Some(w) = self.writing.take() {
            w.await??;
        }
        Ok(())
    }
}

/// Pulseboard arguments for a broker, with the fast group settings.
pub fn broker_args(brokers: &str, topic: &str, group: &str, dir: &Path) -> Vec<String> {
    broker_args_with(brokers, topic, group, dir, FAST_GROUP_OPTIONS)
}

/// Pulseboard arguments for a broker with the given librdkafka options.
pub fn broker_args_with(
    brokers: &str,
    topic: &str,
    group: &str,
    dir: &Path,
    options: &[(&str, &str)],
) -> Vec<String> {
    // These tests read the API without a credential (tests/access.rs holds the access).
    let mut v: Vec<String> = [
        "--public-dashboard",
        "--property",
        "plan",
        "--brokers",
        brokers,
        "--topics",
        topic,
        "--group",
        group,
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(path_str(dir));
    for (k, val) in options {
        v.push("--kafka-option".into());
        v.push(format!("{k}={val}"));
    }
    v
}

/// Status JSON once `events_total` and `dead_letters_total` reach the given numbers.
pub async fn wait_for_totals(
    addr: SocketAddr,
    events: u64,
    dead: u64,
    timeout: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut last = Value::Null;
    loop {
        if let Some(s) = get_json(addr, "/api/v1/status").await {
            if s["events_total"].as_u64() == Some(events)
                && s["dead_letters_total"].as_u64() == Some(dead)
            {
                return Ok(s);
            }
            last = s;
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}: wanted events_total={events} dead_letters_total={dead}; last status: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delete `topic` and create it again (empty, offsets from 0).
pub async fn recreate_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    delete_topic(brokers, topic).await?;
    // The deletion is asynchronous inside the cluster: retry the creation while the old
    // topic is still being removed.
    poll_until(
        Duration::from_secs(60),
        "the topic to be created again",
        || async { create_topic(brokers, topic, partitions).await.ok() },
    )
    .await
}
