//! Aggregates stored by earlier releases still decode to the figures they held.
//!
//! `fixtures/v3-*.bin` are [`Aggregate::to_bytes`] output of format version 3 (written by
//! the code before HyperLogLog sketches got their own codec), each with a
//! `fixtures/v3-*.json` of the figures that code read from it: totals, top lists, distinct
//! counts and which sketches were sparse, for the whole traffic, every goal and every
//! segment's sub-aggregate. The events are made again here from their seeds, for exact
//! distinct counts to compare with.
//!
//! - `v3-small`: 80 events of 30 visitors, every dimension segmented (top 10), two goals:
//!   every sketch sparse (the exact 32-bit hash lists).
//! - `v3-window`: 2,000 events of 1,000 visitors in three partitions merged, two
//!   dimensions segmented (country and referrer, top 3), two goals: dense sketches (16,384
//!   eight-bit registers) for the whole traffic, the US and the `docs` goal, sparse ones
//!   elsewhere.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use pulseboard_model::agg::{
    AggSpec, Aggregate, Dimension, Goal, Hll, Keep, SegmentSpec, TopCounts,
};
use pulseboard_model::event::Event;
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

/// Writes the fixtures (run once, by the code of format version 3:
/// `cargo test -p pulseboard-model --test stored_formats -- --ignored`).
#[test]
#[ignore = "writes the fixtures"]
fn write_fixtures() {
    std::fs::create_dir_all(dir()).expect("fixtures dir");
    for f in fixtures() {
        let a = aggregate(&f);
        let bytes = a.to_bytes();
        assert_eq!(bytes[0], 3, "format version 3");
        std::fs::write(dir().join(format!("{}.bin", f.name)), &bytes).expect("write");
        let json = serde_json::to_string_pretty(&figures(&a, true)).expect("json");
        std::fs::write(dir().join(format!("{}.json", f.name)), json + "\n").expect("write");
    }
}

fn read(name: &str) -> (Vec<u8>, Value) {
    let bytes = std::fs::read(dir().join(format!("{name}.bin"))).expect("fixture");
    let json = std::fs::read_to_string(dir().join(format!("{name}.json"))).expect("figures");
    (bytes, serde_json::from_str(&json).expect("figures json"))
}

#[test]
fn stored_aggregates_decode_to_their_figures() {
    for f in fixtures() {
        let (bytes, want) = read(f.name);
        let a = Aggregate::from_bytes(&bytes).expect("decodes");
        assert_eq!(figures(&a, true), want, "{}", f.name);
        assert_eq!(
            a,
            aggregate(&f),
            "{}: the same events aggregate the same",
            f.name
        );
        let exact: HashSet<&String> = f.events.iter().map(|e| &e.visitor).collect();
        let est = a.visitors.estimate() as f64;
        assert!((est - exact.len() as f64).abs() <= 0.02 * exact.len() as f64);
        let figures_only = Aggregate::decode(&bytes, Keep::Figures).expect("figures");
        assert!(figures_only.segments.is_empty());
        assert_eq!(figures(&figures_only, false), figures(&a, false));
        let one = Aggregate::decode(&bytes, Keep::Dimension(Dimension::Country)).expect("one");
        assert_eq!(
            one.segments.table(Dimension::Country),
            a.segments.table(Dimension::Country)
        );
        assert!(one.segments.table(Dimension::Type).is_none());
    }
}
