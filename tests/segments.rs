//! Segments, goals and visitors now against a real broker: the API's filtered figures,
//! goal counts and visitors-now, and a filtered socket, checked against an independent
//! recomputation of the produced events (plain maps and sets; distinct counts compared
//! within the documented HyperLogLog error).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};
use pulseboard_model::event::Event;
use pulseboard_model::proto::ServerMsg;
use serde_json::Value;

use crate::backbone::{event_set, EventSet};
use crate::live::{connect, next_msg};
use crate::util::*;

const WIDTH: i64 = 10_000;
const SPAN: i64 = 300_000;

/// The host of a referrer URL, lower case, without `www.`: written here again, apart from
/// the server's, for the generator's referrers (`https://www.google.com/`).
fn domain(referrer: &str) -> String {
    let rest = referrer.split_once("://").map_or(referrer, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default().to_lowercase();
    host.strip_prefix("www.").map(str::to_owned).unwrap_or(host)
}

/// Whether `e` is in the segment `dim:value`.
fn in_segment(e: &Event, dim: &str, value: &str) -> bool {
    match dim {
        "country" => e.country.as_deref() == Some(value),
        "device" => e.device.as_deref() == Some(value),
        "type" => e.kind == value,
        "referrer" => e.referrer.as_deref().map(domain).as_deref() == Some(value),
        _ => false,
    }
}

/// The goals of these tests, recomputed: `signup` (type) and `pricing` (page views of
/// `/pricing` and below).
fn completes(goal: &str, e: &Event) -> bool {
    match goal {
        "signup" => e.kind == "signup",
        "pricing" => e.kind == "pageview" && e.url.starts_with("/pricing"),
        _ => false,
    }
}

/// Each goal's completions and converting visitors in `events`, and the conversion rate
/// against all their visitors, as the API must show them; `sigma` is that of the figures'
/// unique visitors (the whole traffic's or a segment's).
fn check_goals(api: &Value, events: &[&Event], ctx: &str, sigma: f64) -> Result<()> {
    let all: HashSet<&String> = events.iter().map(|e| &e.visitor).collect();
    let uniques = api["unique_visitors"].as_u64();
    assert_distinct(
        &format!("{ctx}: unique_visitors"),
        all.len(),
        uniques,
        sigma,
    )?;
    let goals = api["goals"]
        .as_array()
        .ok_or_else(|| anyhow!("{ctx}: no goals in {api}"))?;
    let names: Vec<&str> = goals.iter().filter_map(|g| g["name"].as_str()).collect();
    ensure!(names == ["signup", "pricing"], "{ctx}: goals {names:?}");
    for g in goals {
        let name = g["name"].as_str().unwrap_or_default();
        let done: Vec<&&Event> = events.iter().filter(|e| completes(name, e)).collect();
        let converting: HashSet<&String> = done.iter().map(|e| &e.visitor).collect();
        ensure!(
            g["completions"].as_u64() == Some(done.len() as u64),
            "{ctx}: {name} completions {} != {}",
            g["completions"],
            done.len()
        );
        let conv = g["converting_visitors"].as_u64();
        assert_distinct(
            &format!("{ctx}: {name} converting_visitors"),
            converting.len(),
            conv,
            SEGMENT_HLL_SIGMA,
        )?;
        // The rate is that of the two estimates, each checked against its exact count.
        let (conv, uniques) = (conv.unwrap_or(0), uniques.unwrap_or(0));
        let rate = if uniques == 0 {
            0.0
        } else {
            (conv as f64 / uniques as f64).min(1.0)
        };
        let got = g["conversion_rate"].as_f64().unwrap_or(-1.0);
        ensure!(
            (got - rate).abs() < 1e-9,
            "{ctx}: {name} rate {got} != {conv} / {uniques}"
        );
    }
    Ok(())
}

/// The API's windows filtered by `dim:value` against the recomputation of that segment: a
/// window whose note says complete equals it; an incomplete one holds fewer events than
/// the segment has, and says how many it has. Returns (complete, incomplete) windows with
/// events of the value.
fn check_filtered(api: &Value, events: &[Event], dim: &str, value: &str) -> Result<(u32, u32)> {
    let seg: Vec<Event> = events
        .iter()
        .filter(|e| in_segment(e, dim, value))
        .cloned()
        .collect();
    let truth = recompute(&seg, WIDTH);
    let windows = api["windows"]
        .as_array()
        .ok_or_else(|| anyhow!("no windows in {api}"))?;
    let (mut complete, mut incomplete) = (0, 0);
    let mut complete_windows = Vec::new();
    let mut complete_truth = BTreeMap::new();
    for w in windows {
        let start = w["start"].as_i64().unwrap_or_default();
        let note = &w["segment"];
        ensure!(
            note["filter"] == format!("{dim}:{value}").as_str(),
            "window {start}: note {note}"
        );
        let want = truth.get(&start).map_or(0, |t| t.events);
        let got = w["events"].as_u64().unwrap_or(u64::MAX);
        ensure!(
            note["events"].as_u64() == Some(got),
            "window {start}: note {note} for {got} events"
        );
        ensure!(
            note["events_at_least"].as_u64() == Some(want)
                && note["events_at_most"].as_u64() == Some(want),
            "window {start}: the value has {want} events, the note says {note}"
        );
        if note["complete"] == true {
            ensure!(got == want, "window {start}: complete but {got} != {want}");
            if want > 0 {
                complete += 1;
                // `approximate` is checked against the lists' sizes by
                // assert_figures_match: a list of more keys than a segment keeps is a
                // Misra–Gries summary, and says so.
                complete_windows.push(w.clone());
                complete_truth.insert(start, truth[&start].clone());
            }
            let evs: Vec<&Event> = seg
                .iter()
                .filter(|e| e.ts - e.ts.rem_euclid(WIDTH) == start)
                .collect();
            check_goals(
                w,
                &evs,
                &format!("{dim}:{value} window {start}"),
                SEGMENT_HLL_SIGMA,
            )?;
        } else {
            incomplete += 1;
            ensure!(got < want, "window {start}: incomplete but {got} >= {want}");
        }
    }
    // Every window the segment has events in is in the answer.
    let starts: HashSet<i64> = windows.iter().filter_map(|w| w["start"].as_i64()).collect();
    for s in truth.keys() {
        ensure!(starts.contains(s), "window {s} of {dim}:{value} missing");
    }
    assert_windows_match_of(
        &serde_json::json!({ "windows": complete_windows }),
        &complete_truth,
        SEGMENT,
    )
    .map_err(|e| anyhow!("{dim}:{value}: {e:#}"))?;
    Ok((complete, incomplete))
}

/// Visitors now at `at` from the API against the recomputation: the events of the windows
/// overlapping `[at - 5 min, at]`.
async fn check_now(
    addr: std::net::SocketAddr,
    events: &[Event],
    at: i64,
    filter: Option<(&str, &str)>,
) -> Result<Value> {
    let q = filter.map_or(String::new(), |(d, v)| format!("&filter={d}:{v}"));
    let now = get_json(addr, &format!("/api/v1/now?at={at}&top=1000{q}"))
        .await
        .ok_or_else(|| anyhow!("now failed"))?;
    let from = (at - SPAN) - (at - SPAN).rem_euclid(WIDTH);
    let evs: Vec<&Event> = events
        .iter()
        .filter(|e| {
            let s = e.ts - e.ts.rem_euclid(WIDTH);
            s >= from && s <= at && filter.is_none_or(|(d, v)| in_segment(e, d, v))
        })
        .collect();
    let visitors: HashSet<&String> = evs.iter().map(|e| &e.visitor).collect();
    ensure!(now["from"].as_i64() == Some(from), "{now}");
    if filter.is_some() {
        let note = &now["segment"];
        ensure!(
            note["events_at_most"].as_u64() == Some(evs.len() as u64),
            "at {at}: the value has {} events, the note says {note}",
            evs.len()
        );
        if note["complete"] != true {
            // Some window kept the value in "other": a lower bound, and said so.
            ensure!(now["events"].as_u64() < Some(evs.len() as u64), "{note}");
            return Ok(now);
        }
    }
    ensure!(
        now["events"].as_u64() == Some(evs.len() as u64),
        "at {at}: events {} != {}",
        now["events"],
        evs.len()
    );
    let sketches = if filter.is_some() { SEGMENT } else { WHOLE };
    let what = |field: &str| format!("now at {at} ({q}): {field}");
    assert_distinct(
        &what("visitors"),
        visitors.len(),
        now["visitors"].as_u64(),
        sketches.sigma,
    )?;
    let mut pages: BTreeMap<String, u64> = BTreeMap::new();
    let mut sources: BTreeMap<String, u64> = BTreeMap::new();
    for e in &evs {
        if e.kind == "pageview" {
            *pages.entry(e.url.clone()).or_default() += 1;
        }
        if let Some(r) = &e.referrer {
            *sources.entry(domain(r)).or_default() += 1;
        }
    }
    for (field, exact) in [("pages", &pages), ("sources", &sources)] {
        assert_top_list(&what(field), &now[field], exact, ALL_TOP, sketches.top_cap)?;
    }
    Ok(now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_figures_goals_and_visitors_now_equal_an_independent_recomputation() -> Result<()>
{
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let start = now_ms() - 30 * 60_000;
    let EventSet {
        mut payloads,
        mut events,
        malformed,
    } = event_set(11, 6_000, 4, start, 90_000);
    // A few page views under /pricing besides the generator's own, for the URL goal
    // (`/pricing*` is a glob: `/pricingx` matches it too).
    for (i, url) in [
        "/pricing",
        "/pricing?plan=pro",
        "/pricing/enterprise",
        "/pricingx",
    ]
    .iter()
    .enumerate()
    {
        let mut e = events[i * 100].1.clone();
        e.kind = "pageview".into();
        e.url = (*url).into();
        payloads.push((i as i32 % 4, e.to_json().into_bytes()));
        events.push((i as i32 % 4, e));
    }
    let (folded, _) = expected_folded(&events, WIDTH, 5_000);
    produce(&producer(&brokers)?, "clicks", &payloads).await?;

    let dir = data_dir();
    let mut args = broker_args(&brokers, "clicks", "segments-test", dir.path());
    args.extend(
        [
            "--goal",
            "signup",
            "--goal",
            "pricing=url:/pricing*",
            "--segment-top",
            "4",
        ]
        .map(String::from),
    );
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    wait_for_totals(
        app.addr,
        folded.len() as u64,
        malformed,
        Duration::from_secs(90),
    )
    .await?;
    let to = start + 10 * 60_000;
    let range = format!("from={}&to={to}&limit=10000&top=1000", start - 5 * 60_000);

    // Unfiltered windows still equal the recomputation, and carry the goals.
    let all = get_json(app.addr, &format!("/api/v1/windows?{range}"))
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&all, &recompute(&folded, WIDTH))?;
    for w in all["windows"].as_array().into_iter().flatten() {
        let s = w["start"].as_i64().unwrap_or_default();
        let evs: Vec<&Event> = folded
            .iter()
            .filter(|e| e.ts - e.ts.rem_euclid(WIDTH) == s)
            .collect();
        check_goals(w, &evs, &format!("window {s}"), TOP_HLL_SIGMA)?;
    }
    let summary = get_json(app.addr, &format!("/api/v1/summary?{range}"))
        .await
        .ok_or_else(|| anyhow!("summary failed"))?;
    assert_figures_match("summary", &summary, &Truth::of(&folded), ALL_TOP, WHOLE)?;
    check_goals(
        &summary,
        &folded.iter().collect::<Vec<_>>(),
        "summary",
        TOP_HLL_SIGMA,
    )?;

    // Filtered windows: the country most traffic has is complete everywhere; smaller ones
    // fall into "other" in some windows, and the API says so.
    let mut incomplete_seen = 0;
    for (dim, value) in [
        ("country", "US"),
        ("country", "DE"),
        ("country", "SE"),
        ("country", "KR"),
        ("device", "mobile"),
        ("device", "tablet"),
        ("type", "signup"),
        ("type", "click"),
        ("referrer", "google.com"),
        ("referrer", "t.co"),
    ] {
        let api = get_json(
            app.addr,
            &format!("/api/v1/windows?{range}&filter={dim}:{value}"),
        )
        .await
        .ok_or_else(|| anyhow!("filtered windows failed"))?;
        let (complete, incomplete) = check_filtered(&api, &folded, dim, value)?;

        if dim == "device" || dim == "type" {
            assert_eq!(incomplete, 0, "{dim}:{value} (at most 4 values: all fit)");
            assert!(complete > 0, "{dim}:{value}");
        }
        incomplete_seen += incomplete;
        // The summary of the segment adds its windows up, and says whether it is whole.
        let s = get_json(
            app.addr,
            &format!("/api/v1/summary?{range}&filter={dim}:{value}"),
        )
        .await
        .ok_or_else(|| anyhow!("filtered summary failed"))?;
        let seg: Vec<&Event> = folded
            .iter()
            .filter(|e| in_segment(e, dim, value))
            .collect();
        assert_eq!(
            s["segment"]["events_at_most"].as_u64(),
            Some(seg.len() as u64),
            "{s}"
        );
        assert_eq!(
            s["segment"]["complete"] == true,
            incomplete == 0,
            "{dim}:{value}: {}",
            s["segment"]
        );

        if (dim, value) == ("country", "US") {
            // A third of the traffic: it gets a sub-aggregate early in (nearly) every window.
            let got = s["events"].as_u64().unwrap_or(0) as f64;
            assert!(got >= 0.95 * seg.len() as f64, "US: {got} of {}", seg.len());
        }
        if incomplete == 0 {
            let what = format!("summary {dim}:{value}");
            let t = Truth::of(seg.iter().copied());
            assert_figures_match(&what, &s, &t, ALL_TOP, SEGMENT)?;
            check_goals(&s, &seg, &what, SEGMENT_HLL_SIGMA)?;
        } else {
            assert!(s["events"].as_u64() < Some(seg.len() as u64), "{s}");
        }
    }
    assert!(
        incomplete_seen > 0,
        "with N = 4 and 16 countries, small ones fall into \"other\" somewhere"
    );

    // Visitors now, at instants of the data's time: during it, and once everyone has left.
    let last = folded.iter().map(|e| e.ts).max().unwrap_or(start);
    for at in [start + 30_000, start + 60_000, last, last + 4 * 60_000] {
        let now = check_now(app.addr, &folded, at, None).await?;
        assert!(now["visitors"].as_u64() > Some(0), "{now}");
        check_now(app.addr, &folded, at, Some(("country", "US"))).await?;
        check_now(app.addr, &folded, at, Some(("referrer", "google.com"))).await?;
    }
    let gone = check_now(app.addr, &folded, last + SPAN + WIDTH, None).await?;
    assert_eq!(gone["visitors"], 0, "nobody for 5 min + a window: {gone}");
    assert_eq!(gone["pages"], serde_json::json!([]));
    assert_eq!(gone["sources"], serde_json::json!([]));

    // A filtered socket starts with the segment's newest windows: those of the API.
    let mut ws = connect(app.addr, "?filter=country:US").await?;
    let ServerMsg::Snapshot {
        windows, filter, ..
    } = next_msg(&mut ws).await?
    else {
        bail!("the first message must be a snapshot");
    };
    assert_eq!(filter.as_deref(), Some("country:US"));
    ensure!(!windows.is_empty(), "the snapshot has windows");
    let api = get_json(
        app.addr,
        &format!("/api/v1/windows?{range}&filter=country:US"),
    )
    .await
    .ok_or_else(|| anyhow!("windows failed"))?;
    let by_start: BTreeMap<i64, &Value> = api["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| Some((w["start"].as_i64()?, w)))
        .collect();
    for w in &windows {
        let a = by_start
            .get(&w.start)
            .ok_or_else(|| anyhow!("window {} not in the API", w.start))?;
        let mine = serde_json::to_value(w)?;
        for field in [
            "events",
            "unique_visitors",
            "by_type",
            "countries",
            "goals",
            "segment",
        ] {
            assert_eq!(mine[field], a[field], "window {} {field}", w.start);
        }
    }
    // A bad filter is refused before the upgrade, naming the parameter.
    let err = tokio_tungstenite::connect_async(format!("ws://{}/ws?filter=city:x", app.addr))
        .await
        .expect_err("a bad filter is refused");
    assert!(err.to_string().contains("400"), "{err}");
    for path in ["windows", "summary", "now"] {
        let (code, body) = http_get(app.addr, &format!("/api/v1/{path}?filter=city:x")).await?;
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains("\"parameter\":\"filter\""), "{body}");
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_demo_shows_conversions_segments_and_visitors_now_on_first_run() -> Result<()>
{
    let dir = data_dir();
    let data = path_str(dir.path());
    let child = spawn_child(&["--data-dir", &data, "--demo-rate", "400"])?;
    let info = poll_until(Duration::from_secs(15), "the segments endpoint", || async {
        get_json(child.addr, "/api/v1/segments").await
    })
    .await?;
    assert_eq!(info["goals"][0]["name"], "signup", "{info}");
    assert_eq!(info["goals"][1]["rule"], "type:pageview,url:/pricing");
    let summary = poll_until(
        Duration::from_secs(30),
        "signups counted as conversions",
        || async {
            let s = get_json(child.addr, "/api/v1/summary?range=5m").await?;
            (s["goals"][0]["completions"].as_u64()? > 0).then_some(s)
        },
    )
    .await?;
    let rate = summary["goals"][0]["conversion_rate"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        rate > 0.0 && rate < 0.5,
        "a plausible conversion rate: {summary}"
    );
    let now = get_json(child.addr, "/api/v1/now")
        .await
        .ok_or_else(|| anyhow!("now failed"))?;
    assert!(now["visitors"].as_u64() > Some(0), "{now}");
    assert!(
        now["pages"].as_array().is_some_and(|p| !p.is_empty()),
        "{now}"
    );
    assert!(
        now["sources"].as_array().is_some_and(|p| !p.is_empty()),
        "{now}"
    );
    // An open window's segment tables come with its checkpoints (every second): the first
    // window's come with its first one.
    let us = poll_until(Duration::from_secs(10), "US's figures", || async {
        let us = get_json(child.addr, "/api/v1/summary?range=5m&filter=country:US").await?;
        (us["events"].as_u64() > Some(0)).then_some(us)
    })
    .await?;
    assert_eq!(us["countries"][0]["key"], "US", "{us}");
    // Counts only grow: the unfiltered summary read after the filtered one holds more.
    let all = get_json(child.addr, "/api/v1/summary?range=5m")
        .await
        .ok_or_else(|| anyhow!("summary failed"))?;
    assert!(
        us["events"].as_u64() < all["events"].as_u64(),
        "US is a part of all: {us} vs {all}"
    );
    // The demo's two sites, each a part of all.
    let mut sites: Vec<(String, u64)> = all["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["site"].as_str()?.to_owned(), s["events"].as_u64()?)))
        .collect();
    sites.sort();
    let names: Vec<&str> = sites.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["blog.example", "shop.example"], "{all}");
    // The sites as of each window's last checkpoint (the open window's figures are live):
    // every site's events are a part of all.
    let in_sites: u64 = sites.iter().map(|(_, n)| n).sum();
    let events = all["events"].as_u64().unwrap_or_default();
    assert!(
        in_sites > 0 && in_sites <= events,
        "{in_sites} of {events}: {all}"
    );
    // The demo's property: its plans, each a part of all, and a filter on one.
    let plan = all["properties"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["key"] == "plan"))
        .ok_or_else(|| anyhow!("the demo lists no property plan: {all}"))?;
    let values: Vec<&str> = plan["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["value"].as_str())
        .collect();
    assert!(
        values.contains(&"free")
            && values
                .iter()
                .all(|v| pulseboard_model::gen::DEMO_PLANS.contains(v)),
        "{plan}"
    );
    assert!(plan["events"].as_u64() <= Some(events), "{plan}");
    let free = get_json(child.addr, "/api/v1/summary?range=5m&filter=prop.plan:free")
        .await
        .ok_or_else(|| anyhow!("filtered summary failed"))?;
    assert_eq!(free["segment"]["filter"], "prop.plan:free", "{free}");
    let status = child.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
    Ok(())
}
