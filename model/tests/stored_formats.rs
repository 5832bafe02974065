//! Aggregates stored by earlier releases still decode to the figures they held.
//!
//! `fixtures/v3-*.bin` are [`Aggregate::to_bytes`] output of format version 3, each with a
//! `fixtures/v3-*.json` of the figures that code read from it: totals, top lists, distinct
//! counts and which sketches were sparse, for the whole traffic, every goal and every
//! segment's sub-aggregate. They were written by the code before HyperLogLog sketches got
//! their own codec (commit e33ac2f, by its ignored test `write_fixtures`, from the same
//! `fixtures()` and `figures()` as here). The events are made again here from their seeds,
//! for exact distinct counts and for this code's own aggregate of them.
//!
//! - `v3-small`: 80 events of 30 visitors, every dimension segmented (top 10), two goals:
//!   every sketch sparse (the exact 32-bit hash lists).
//! - `v3-window`: 2,000 events of 1,000 visitors in three partitions merged, two
//!   dimensions segmented (country and referrer, top 3), two goals: dense sketches (16,384
//!   eight-bit registers) for the whole traffic, the US and the `docs` goal, sparse ones
//!   elsewhere.
//!
//! `fixtures/v5-window.bin` is a row of format version 5 (the dictionary in first-written
//! order, top lists by count, sketches by index and relative by varint positions), written
//! by the ignored test `write_v5_fixture` of commit 09807ec (gone since: this code writes
//! format 6) from [`realistic_window`]: one partition's window of a realistic site
//! ([`realistic_events`]: 2,500 events of the generator over 3,000 pages, 60 countries, 40
//! referrers, those of one partition of four keyed by visitor: 575 URLs, 552 visitors),
//! every dimension segmented (top 10), goals `signup` and `pricing=url:/pricing`.
//! `fixtures/v5-window.json` holds its figures.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use pulseboard_model::agg::{
    key_hash, AggSpec, Aggregate, Dimension, Goal, Hll, Keep, SegmentSpec, TopCounts,
};
use pulseboard_model::event::Event;
use pulseboard_model::gen::{GenConfig, Generator};
use serde_json::{json, Value};

/// Events of visitors `v{seed}-0..visitors` and sessions `s{seed}-0..sessions`: half in the
/// US, mostly page views, some on `/pricing` and `/docs`.
fn events(seed: u64, n: usize, visitors: u32, sessions: u32) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let visitor = format!("v{seed}-{}", rng.u32(0..visitors));
            let kind = match rng.u8(0..20) {
                0 => "signup",
                1..=3 => "click",
                _ => "pageview",
            };
            let url = match rng.u8(0..10) {
                0 => format!("/pricing/{}", rng.u8(0..3)),
                1..=3 => "/".to_owned(),
                _ => format!("/docs/{}", rng.u32(0..150)),
            };
            let country = match rng.u8(0..10) {
                0..=4 => "US",
                5 | 6 => "DE",
                7 => "FR",
                8 => "JP",
                _ => "BR",
            };
            let device = ["mobile", "mobile", "desktop", "tablet"][rng.usize(0..4)];
            let referrer = match rng.u8(0..4) {
                0 => None,
                1 => Some("https://www.google.com/search?q=x".to_owned()),
                2 => Some(format!("https://news.example/{}", rng.u8(0..20))),
                _ => Some(format!("https://r{}.example/", rng.u8(0..12))),
            };
            let session = (rng.u8(0..10) != 0).then(|| format!("s{seed}-{}", rng.u32(0..sessions)));
            Event {
                props: Vec::new(),
                site: None,
                ts: 1_800_000_000_000 + i as i64,
                kind: kind.to_owned(),
                visitor,
                session,
                url,
                referrer,
                country: Some(country.to_owned()),
                device: Some(device.to_owned()),
            }
        })
        .collect()
}

fn spec(dimensions: &[Dimension], top_n: usize) -> AggSpec {
    AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: dimensions.to_vec(),
            top_n,
        },
        goals: vec![
            Goal::parse("signup").expect("goal"),
            Goal::parse("docs=url:/docs*").expect("goal"),
        ],
    }
}

/// A fixture: its name, its events and how they were aggregated.
struct Fixture {
    name: &'static str,
    events: Vec<Event>,
    spec: AggSpec,
    partitions: usize,
}

fn fixtures() -> Vec<Fixture> {
    vec![
        Fixture {
            name: "v3-small",
            events: events(1, 80, 30, 50),
            spec: spec(&Dimension::ALL, 10),
            partitions: 1,
        },
        Fixture {
            name: "v3-window",
            events: events(2, 2_000, 1_000, 1_500),
            spec: spec(&[Dimension::Country, Dimension::Referrer], 3),
            partitions: 3,
        },
    ]
}

/// The aggregate of `f`'s events, partition by partition, merged.
fn aggregate(f: &Fixture) -> Aggregate {
    let mut parts: Vec<Aggregate> = (0..f.partitions).map(|_| Aggregate::new()).collect();
    for (i, e) in f.events.iter().enumerate() {
        parts[i % f.partitions].add_with(e, &f.spec);
    }
    let mut all = Aggregate::new();
    for p in &parts {
        all.merge(p);
    }
    all
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn sketch(h: &Hll) -> Value {
    json!({ "estimate": h.estimate(), "sparse": h.is_sparse() })
}

/// The figures of `a` as the fixtures' JSON holds them: with its segments' (their top 5
/// of each list) when `deep`, its top lists whole.
fn figures(a: &Aggregate, deep: bool) -> Value {
    let n = if deep { 1_000 } else { 5 };
    let top = |t: &TopCounts| t.top(n).into_iter().collect::<BTreeMap<String, u64>>();
    let goals: BTreeMap<&str, Value> = a
        .goals
        .iter()
        .map(|(k, g)| {
            let v = json!({ "completions": g.completions, "visitors": sketch(&g.visitors) });
            (k.as_str(), v)
        })
        .collect();
    let mut v = json!({
        "events": a.events,
        "visitors": sketch(&a.visitors),
        "sessions": sketch(&a.sessions),
        "by_type": top(&a.by_type),
        "urls": top(&a.urls),
        "referrers": top(&a.referrers),
        "countries": top(&a.countries),
        "devices": top(&a.devices),
        "sources": top(&a.sources),
        "goals": goals,
    });
    if deep {
        let mut segments = BTreeMap::new();
        for d in Dimension::ALL {
            let Some(t) = a.segments.table(d) else {
                continue;
            };
            let values: BTreeMap<&str, Value> =
                t.values().map(|(k, s)| (k, figures(s, false))).collect();
            segments.insert(
                d.name(),
                json!({ "values": values, "other": figures(t.other(), false) }),
            );
        }
        v["segments"] = json!(segments);
    }
    v
}

fn read(name: &str) -> (Vec<u8>, Value) {
    let bytes = std::fs::read(dir().join(format!("{name}.bin"))).expect("fixture");
    let json = std::fs::read_to_string(dir().join(format!("{name}.json"))).expect("figures");
    (bytes, serde_json::from_str(&json).expect("figures json"))
}

/// Relative standard error of the sketches at precision `p` (see `agg::hll`).
fn sigma(p: u8) -> f64 {
    1.04 / f64::from(1u32 << p).sqrt()
}

/// Compares figures `got` with `want` (as [`figures`] makes them): everything exactly but
/// the distinct counts, which may differ by `tolerance(path, want)`. Differences go to
/// `errs`.
fn compare(
    path: &str,
    got: &Value,
    want: &Value,
    tolerance: &dyn Fn(&str, &Value) -> f64,
    errs: &mut Vec<String>,
) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) if w.contains_key("estimate") => {
            let (e, o) = (g["estimate"].as_f64(), w["estimate"].as_f64());
            let (Some(e), Some(o)) = (e, o) else {
                return errs.push(format!("{path}: {got} for {want}"));
            };
            if (e - o).abs() > tolerance(path, want) {
                errs.push(format!("{path}: estimate {e}, was {o} ({want})"));
            }
        }
        (Value::Object(g), Value::Object(w)) => {
            let keys: BTreeMap<&String, ()> = g.keys().chain(w.keys()).map(|k| (k, ())).collect();
            for k in keys.keys() {
                let (g, w) = (g.get(*k), w.get(*k));
                match (g, w) {
                    (Some(g), Some(w)) => compare(&format!("{path}/{k}"), g, w, tolerance, errs),
                    _ => errs.push(format!("{path}/{k}: {g:?} for {w:?}")),
                }
            }
        }
        _ if got != want => errs.push(format!("{path}: {got} for {want}")),
        _ => {}
    }
}

/// How far a version-4 estimate may be from the version-3 one (`was`): an old sparse
/// sketch (exact hashes) counts the same; the window's old dense registers map one to one
/// (the same estimate, up to rounding); the dense sketches of goals and segments, folded to
/// p = 12, move within 4σ of that precision.
fn migrated(path: &str, was: &Value) -> f64 {
    let old = was["estimate"].as_f64().unwrap_or(0.0);
    let top_level = path == "/visitors" || path == "/sessions";
    match was["sparse"].as_bool() {
        Some(true) => 0.0,
        _ if top_level => 1.0,
        _ => 4.0 * sigma(12) * old,
    }
}

/// How far the estimates of two aggregates of the same events may be apart: 4σ of the
/// precision (14 for the window, 12 for goals and segments), at least 1.
fn same_events(path: &str, was: &Value) -> f64 {
    let old = was["estimate"].as_f64().unwrap_or(0.0);
    let p = if path == "/visitors" || path == "/sessions" {
        14
    } else {
        12
    };
    (4.0 * sigma(p) * old).max(1.0)
}

fn check(got: &Value, want: &Value, tolerance: &dyn Fn(&str, &Value) -> f64, ctx: &str) {
    let mut errs = Vec::new();
    compare("", got, want, tolerance, &mut errs);
    assert!(errs.is_empty(), "{ctx}:\n{}", errs.join("\n"));
}

#[test]
fn version_3_aggregates_decode_to_their_figures() {
    for f in fixtures() {
        let (bytes, want) = read(f.name);
        assert_eq!(bytes[0], 3, "{}: a version-3 fixture", f.name);
        let a = Aggregate::from_bytes(&bytes).expect("decodes");
        check(&figures(&a, true), &want, &migrated, f.name);
        // The same events aggregated by this code give the same figures.
        let again = aggregate(&f);
        // The same events aggregated by this code give the same figures; which values keep
        // a segment's sub-aggregate follows this code's replacement rule (members and
        // challengers judged alike by their window counts since version 3 was written), so
        // the tables are compared by what every rule keeps: their events, whole.
        let without_segments = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("segments");
            }
            v
        };
        check(
            &without_segments(&figures(&again, true)),
            &without_segments(&want),
            &same_events,
            f.name,
        );
        for d in Dimension::ALL {
            let (Some(t), Some(old)) = (again.segments.table(d), a.segments.table(d)) else {
                assert_eq!(
                    again.segments.table(d).is_some(),
                    a.segments.table(d).is_some(),
                    "{}: {d}",
                    f.name
                );
                continue;
            };
            let held = |t: &pulseboard_model::agg::SegmentTable| {
                t.values().map(|(_, s)| s.events).sum::<u64>() + t.other().events
            };
            assert_eq!(held(t), held(old), "{}: {d} holds every event", f.name);
        }
        // Against the exact count of a set.
        let exact = f
            .events
            .iter()
            .map(|e| &e.visitor)
            .collect::<HashSet<_>>()
            .len() as f64;
        let est = a.visitors.estimate() as f64;
        assert!(
            (est - exact).abs() <= 4.0 * sigma(14) * exact,
            "{}: {est} for {exact}",
            f.name
        );
        // Goals and segments: the new precision.
        let sub = |h: &Hll| assert_eq!(h.precision(), 12, "{}", f.name);
        a.goals.values().for_each(|g| sub(&g.visitors));
        for t in Dimension::ALL.iter().filter_map(|&d| a.segments.table(d)) {
            for (_, s) in t.values().chain([("", t.other())]) {
                sub(&s.visitors);
                sub(&s.sessions);
            }
        }
        // Written again in today's row format, smaller, and read back the same.
        let row = a.to_bytes();
        assert_eq!(row[0], pulseboard_model::agg::AGG_FORMAT_VERSION);
        assert!(
            row.len() < bytes.len(),
            "{}: {} → {}",
            f.name,
            bytes.len(),
            row.len()
        );
        assert_eq!(Aggregate::from_bytes(&row).as_ref(), Ok(&a));
        // Merged with new events, nothing is lost.
        let mut more = aggregate(&Fixture {
            events: events(9, 50, 20, 20),
            ..f
        });
        more.merge(&a);
        assert_eq!(more.events, a.events + 50);
        assert!(
            more.visitors
                .estimate()
                .abs_diff(a.visitors.estimate() + 20)
                <= 20 / 10 + 8
        );
    }
}

#[test]
fn version_3_and_current_rows_decode_figures_or_one_table() {
    for f in fixtures() {
        let (v3, _) = read(f.name);
        let a = Aggregate::from_bytes(&v3).expect("decodes");
        for bytes in [v3.clone(), a.to_bytes()] {
            let figures_only = Aggregate::decode(&bytes, Keep::Figures).expect("figures");
            assert!(figures_only.segments.is_empty());
            assert_eq!(figures(&figures_only, false), figures(&a, false));
            let one = Aggregate::decode(&bytes, Keep::Dimension(Dimension::Country)).expect("one");
            assert!(one.segments.table(Dimension::Country).is_some());
            assert_eq!(
                one.segments.table(Dimension::Country),
                a.segments.table(Dimension::Country)
            );
            assert!(one.segments.table(Dimension::Device).is_none());
            let none = Aggregate::decode(&bytes, Keep::Dimension(Dimension::Type)).expect("none");
            assert_eq!(
                none.segments.table(Dimension::Type).is_some(),
                f.name == "v3-small"
            );
        }
        let mut trailing = v3.clone();
        trailing.push(0);
        assert!(Aggregate::from_bytes(&trailing).is_err());
        // Damaged version-3 bytes never panic.
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..300 {
            let mut b = v3.clone();
            for _ in 0..rng.usize(1..6) {
                let i = rng.usize(1..b.len());
                b[i] = rng.u8(..);
            }
            b.truncate(rng.usize(1..=b.len()));
            let _ = Aggregate::from_bytes(&b);
            let _ = Aggregate::decode(&b, Keep::Dimension(Dimension::Referrer));
        }
    }
}

/// One partition's window of a realistic site: 2,500 events of the generator over 3,000
/// pages, 60 countries, 40 referrers and 200,000 visitors, those of one partition of four
/// keyed by visitor (as the bench produces them).
fn realistic_events() -> Vec<Event> {
    let cfg = GenConfig {
        pages: 3_000,
        countries: 60,
        referrers: 40,
        visitors: 200_000,
        ..GenConfig::default()
    };
    let mut g = Generator::new(1, cfg);
    (0..)
        .map(|i| g.next_event(1_800_000_000_000 + i))
        .filter(|e| key_hash(&e.visitor) % 4 == 0)
        .take(2_500)
        .collect()
}

/// Every dimension segmented (top 10), goals `signup` and `pricing=url:/pricing`.
fn realistic_spec() -> AggSpec {
    AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: Dimension::ALL.to_vec(),
            top_n: 10,
        },
        goals: vec![
            Goal::parse("signup").expect("goal"),
            Goal::parse("pricing=url:/pricing").expect("goal"),
        ],
    }
}

fn realistic_window() -> Aggregate {
    let spec = realistic_spec();
    let mut a = Aggregate::new();
    realistic_events().iter().for_each(|e| a.add_with(e, &spec));
    a
}

#[test]
fn version_5_rows_decode_exactly() {
    let (bytes, want) = read("v5-window");
    assert_eq!(bytes[0], 5, "a version-5 fixture");
    let a = Aggregate::from_bytes(&bytes).expect("decodes");
    check(&figures(&a, true), &want, &|_, _| 0.0, "v5-window");
    // Exactly the aggregate of the same events, sketches and tables included.
    assert_eq!(a, realistic_window());
    for d in Dimension::ALL {
        let one = Aggregate::decode(&bytes, Keep::Dimension(d)).expect("one table");
        assert_eq!(one.segments.table(d), a.segments.table(d), "{d}");
        for other in Dimension::ALL.into_iter().filter(|&o| o != d) {
            assert!(one.segments.table(other).is_none(), "{d}: {other}");
        }
    }
    let figures_only = Aggregate::decode(&bytes, Keep::Figures).expect("figures");
    assert!(figures_only.segments.is_empty());
    assert_eq!(figures(&figures_only, false), figures(&a, false));
    // Written again in today's format, it reads back the same, in under half the bytes
    // (compressed with zstd -1: 14,840 → 10,274; the server uses level 3).
    let row = a.to_bytes();
    assert_eq!(row[0], pulseboard_model::agg::AGG_FORMAT_VERSION);
    assert_eq!(Aggregate::from_bytes(&row).as_ref(), Ok(&a));
    eprintln!(
        "v5-window: format 5 {} bytes, format {} {} bytes",
        bytes.len(),
        row[0],
        row.len()
    );
    assert!(row.len() < 17_000 && bytes.len() >= 17_000);
    // Damaged version-5 bytes never panic.
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(1..b.len());
            b[i] = rng.u8(..);
        }
        b.truncate(rng.usize(1..=b.len()));
        let _ = Aggregate::from_bytes(&b);
        let _ = Aggregate::decode(&b, Keep::Dimension(Dimension::Country));
    }
}
