//! The row format: aggregates of generated traffic (segments, goals, sparse and dense
//! sketches, top lists past their capacity) round-trip exactly and canonically; parts can
//! be left unread; no corruption panics; and what it costs against format 4.

use super::*;
use crate::agg::tests::{aggregate_with, spec, wide_events};
use crate::agg::AggSpec;
use crate::gen::{GenConfig, Generator};

/// One window of generated demo traffic (`n` events), counted with every segment and two
/// goals.
fn window(seed: u64, n: usize) -> Aggregate {
    let mut g = Generator::new(seed, GenConfig::default());
    let events: Vec<_> = (0..n)
        .map(|i| g.next_event(1_800_000_000_000 + i as i64 * 5))
        .collect();
    aggregate_with(&events, &spec(10))
}

fn samples() -> Vec<(&'static str, Aggregate)> {
    vec![
        ("empty", Aggregate::new()),
        ("demo window", window(1, 2_000)),
        ("busy window", window(2, 20_000)),
        (
            "no segments",
            aggregate_with(&wide_events(3, 5_000), &AggSpec::NONE),
        ),
        (
            "past the caps",
            aggregate_with(&wide_events(4, 30_000), &spec(3)),
        ),
    ]
}

#[test]
fn rows_round_trip_exactly_and_canonically() {
    for (name, a) in samples() {
        let row = encode(&a);
        assert_eq!(row[0], ROW_FORMAT_VERSION, "{name}");
        let back = decode(&row, Keep::All).expect(name);
        assert_eq!(back, a, "{name}");
        assert_eq!(encode(&back), row, "{name}: canonical");
        // Through the public entry points too.
        assert_eq!(
            Aggregate::from_bytes(&a.to_bytes()).as_ref(),
            Ok(&a),
            "{name}"
        );
    }
}

#[test]
fn tables_are_read_only_when_asked_for() {
    let a = window(5, 3_000);
    let row = encode(&a);
    let figures = decode(&row, Keep::Figures).expect("figures");
    assert!(figures.segments.is_empty());
    let mut whole = a.clone();
    whole.segments = Default::default();
    assert_eq!(figures, whole);
    for d in Dimension::ALL {
        let one = decode(&row, Keep::Dimension(d)).expect("one table");
        assert_eq!(one.segments.table(d), a.segments.table(d), "{d}");
        assert_eq!(one.segments.tables().count(), 1, "{d}");
    }
}

#[test]
fn no_corruption_panics_or_passes_for_a_row() {
    let row = encode(&window(6, 1_500));
    let mut rng = fastrand::Rng::with_seed(6);
    for cut in (0..row.len()).step_by(97) {
        assert!(decode(&row[..cut], Keep::All).is_err(), "cut at {cut}");
    }
    for _ in 0..2_000 {
        let mut bad = row.clone();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(0..bad.len());
            bad[i] = rng.u8(..);
        }
        // Either an error or an aggregate: never a panic.
        let _ = decode(&bad, Keep::All);
        let _ = decode(&bad, Keep::Figures);
    }
    assert!(decode(&[ROW_FORMAT_VERSION, 0xff, 0xff, 0xff, 0x0f], Keep::All).is_err());
}

#[test]
fn a_demo_window_costs_under_ten_bytes_an_event_before_compression() {
    // One partition's 10 s window of the demo's traffic, every segment and two goals:
    // format 3 took 121,679 bytes for the fixture window of 2,000 events
    // (model/tests/fixtures/v3-window.bin); 55,638 for this one.
    let (name, a) = &samples()[1];
    let row = encode(a);
    assert!(row.len() < 10 * 2_000, "{name}: {} bytes", row.len());
}

#[test]
#[ignore = "a measurement: prints what a row is made of"]
fn what_a_row_is_made_of() {
    for (name, a) in samples().into_iter().skip(1) {
        // The sketches as the row writes them: a segment's against the window's.
        let (mut top, mut subs, mut n) = (0usize, 0usize, 0usize);
        let size = |h: &Hll, reference: Option<&Hll>| {
            let mut b = Vec::new();
            put_sketch(&mut b, h, reference);
            b.len()
        };
        top += size(&a.visitors, None) + size(&a.sessions, None);
        top += a
            .goals
            .values()
            .map(|g| size(&g.visitors, Some(&a.visitors)))
            .sum::<usize>();
        for (_, t) in a.segments.tables() {
            for s in t.values().map(|(_, s)| s).chain([t.other()]) {
                n += 1;
                subs += size(&s.visitors, Some(&a.visitors)) + size(&s.sessions, Some(&a.sessions));
                subs += s
                    .goals
                    .values()
                    .map(|g| size(&g.visitors, Some(&a.visitors)))
                    .sum::<usize>();
            }
        }
        let row = encode(&a);
        let mut r = Reader::new(&row[1..]);
        let keys = r.count(1).unwrap_or(0);
        for _ in 0..keys {
            let _ = r.bytes();
        }
        let dict = row.len() - 1 - r.rest().len();
        eprintln!(
            "{name}: row {} bytes: dictionary {dict} ({keys} keys), window sketches {top}, {n} segments' sketches {subs}, the rest {}",
            row.len(),
            row.len() - dict - top - subs
        );
    }
}

#[test]
#[ignore = "writes sample rows to $ROW_DUMP for trying compressors"]
fn dump_rows() {
    let Some(dir) = std::env::var_os("ROW_DUMP") else {
        return;
    };
    for (name, a) in samples() {
        let path = std::path::Path::new(&dir).join(name.replace(' ', "-"));
        std::fs::write(path, encode(&a)).expect("write");
    }
}
