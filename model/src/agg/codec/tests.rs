//! The row format: aggregates of generated traffic (segments, goals, sparse and dense
//! sketches, top lists past their capacity) round-trip exactly and canonically; parts can
//! be left unread; no corruption panics; and what it costs against format 5.

use super::*;
use crate::agg::tests::{aggregate_with, spec, wide_events};
use crate::agg::{AggSpec, Goal, SegmentSpec};
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
fn a_demo_window_costs_under_six_bytes_an_event_before_compression() {
    // One partition's 10 s window of the demo's traffic, every segment and two goals:
    // format 3 took 121,679 bytes for the fixture window of 2,000 events
    // (model/tests/fixtures/v3-window.bin), 55,638 for this one; format 6 10,793.
    let (name, a) = &samples()[1];
    let row = encode(a);
    assert!(row.len() < 6 * 2_000, "{name}: {} bytes", row.len());
}

/// One partition's window of a realistic site: 2,500 events of the generator over 3,000
/// pages, 60 countries, 40 referrers, those of one partition of four keyed by visitor (575
/// URLs, 552 visitors), every dimension segmented (top 10), goals `signup` and `pricing`:
/// the window of `model/tests/fixtures/v5-window.bin`.
fn realistic_window() -> Aggregate {
    let cfg = GenConfig {
        pages: 3_000,
        countries: 60,
        referrers: 40,
        visitors: 200_000,
        ..GenConfig::default()
    };
    let spec = AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: Dimension::ALL.to_vec(),
            top_n: 10,
        },
        goals: vec![
            Goal::parse("signup").expect("goal"),
            Goal::parse("pricing=url:/pricing").expect("goal"),
        ],
    };
    let mut g = Generator::new(1, cfg);
    let mut a = Aggregate::new();
    for e in (0..)
        .map(|i| g.next_event(1_800_000_000_000 + i))
        .filter(|e| crate::agg::key_hash(&e.visitor) % 4 == 0)
        .take(2_500)
    {
        a.add_with(&e, &spec);
    }
    a
}

/// Format 5 wrote the realistic window in this many bytes (the fixture).
const REALISTIC_V5_BYTES: usize = 32_316;

/// What format 6 takes of the realistic window at most: 15,411 bytes today.
const REALISTIC_BOUND: usize = 17_000;

#[test]
fn a_realistic_window_takes_about_half_the_bytes_of_format_5() {
    let a = realistic_window();
    assert_eq!(
        (a.events, a.urls.len(), a.visitors.estimate()),
        (2_500, 575, 552)
    );
    let row = encode(&a);
    eprintln!(
        "realistic window: format 5 {REALISTIC_V5_BYTES} bytes, format 6 {} bytes",
        row.len()
    );
    // Compressed (zstd -1): 10,274 bytes, from 14,840 (the server uses level 3).
    assert!(row.len() < REALISTIC_BOUND, "{} bytes", row.len());
    const { assert!(REALISTIC_V5_BYTES >= REALISTIC_BOUND) };
    assert_eq!(decode(&row, Keep::All).as_ref(), Ok(&a));
}

#[test]
fn equal_aggregates_encode_to_equal_bytes_whatever_their_history() {
    let (a, b) = (window(7, 1_500), window(8, 1_500));
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    assert_eq!(encode(&ab), encode(&ba));
    // A top list read back is ranked as it was counted, so it encodes the same again.
    let back = decode(&encode(&ab), Keep::All).expect("decodes");
    assert_eq!(back.urls.ranked(), ab.urls.ranked());
    assert_eq!(encode(&back), encode(&ab));
}

/// A row of no tables whose window's lists are `tops` (bytes each), sketches empty.
fn row_of(dict: &[&str], tops: [&[u8]; 6]) -> Vec<u8> {
    let mut row = vec![ROW_FORMAT_VERSION];
    dict::Dict::of(dict.iter().copied()).write(&mut row);
    row.push(9); // events
    for t in tops {
        row.extend_from_slice(t);
    }
    row.extend_from_slice(&[14, 14, 0, 0]); // two empty sketches, no goal, no table
    row
}

#[test]
fn a_bad_top_list_is_an_error() {
    let keys = ["a", "b", "c"];
    let empty: &[u8] = &[0, 0, 0];
    let with = |t: &'static [u8]| row_of(&keys, [empty, t, empty, empty, empty, empty]);
    // total 9, error 0, 3 entries: ids 0, 1, 2 (steps 0, 1, 1), counts 1, 5, 3.
    let good = decode(&with(&[9, 0, 3, 0, 1, 1, 5, 1, 3]), Keep::All).expect("decodes");
    assert_eq!(good.urls.ranked(), [("b", 5), ("c", 3), ("a", 1)]);
    for (what, t) in [
        ("a step of 0", &[9, 0, 2, 0, 1, 0, 5][..]),
        ("an id past the dictionary", &[9, 0, 2, 0, 1, 3, 5]),
        ("a zero count", &[9, 0, 1, 1, 0]),
        ("counts above the total", &[4, 0, 2, 0, 3, 1, 5]),
        ("more entries than the row holds", &[9, 0, 100, 0, 1]),
        ("truncated", &[9, 0, 2, 0, 1, 1]),
    ] {
        let got = decode(&with(t), Keep::All);
        assert!(got.is_err(), "{what}: {got:?}");
    }
    // A bad dictionary: "b", "b", "c" (`3, 0, 1, "b", 0, 1, "b", …`).
    let mut row = with(&[9, 0, 1, 0, 1]);
    assert_eq!(row[2..5], [0, 1, b'a']);
    row[4] = b'b';
    assert!(decode(&row, Keep::All).is_err());
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
        let keys = dict::read(&mut r).map_or(0, |k| k.all().map_or(0, |k| k.len()));
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
