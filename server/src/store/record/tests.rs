//! The state topic's record format: keys, values, checkpoints as records, commit metadata, partitions.

use super::*;
use crate::store::row::Row;
use pulseboard_model::agg::Aggregate;

#[test]
fn records_round_trip_and_other_versions_are_refused() {
    let k = Key::Window {
        topic: "clicks".into(),
        partition: 3,
        start: -10_000,
    };
    let text = String::from_utf8(k.encode()).expect("utf8");
    assert_eq!(
        text,
        r#"{"v":1,"kind":"window","topic":"clicks","partition":3,"start":-10000}"#
    );
    assert_eq!(Key::decode(text.as_bytes()).expect("decode"), k);
    let mut agg = Aggregate::new();
    agg.events = 7;
    let row = Row::new(0, agg);
    let w = Window::decode(&window_value(&row, -5, 9, true)).expect("window");
    assert_eq!(
        (
            w.value.end,
            w.value.seq,
            w.value.revised,
            w.value.events,
            w.agg.events
        ),
        (-5, 9, true, 7, 7)
    );
    assert_eq!(&w.stored[..], &row.stored[..], "the stored row, as it was");
    let p = ProgressValue {
        checkpoint: PartitionCheckpoint {
            seq: 4,
            next_offset: 12,
            ..Default::default()
        },
        high_watermark: Some(20),
        owner: Owner {
            id: "a".into(),
            url: "http://x".into(),
        },
        last_read_ms: Some(3),
        at_ms: 1,
    };
    assert_eq!(decode_progress(&progress_value(&p)).expect("progress"), p);
    let err = Key::decode(br#"{"v":2,"kind":"instance","id":"a"}"#).expect_err("v2");
    assert!(err.to_string().contains("version 2"), "{err}");
    assert!(Key::decode(b"not json").is_err());
}

#[test]
fn a_checkpoint_is_windows_and_dead_letters_then_progress_in_one_state_partition() {
    let mut agg = Aggregate::new();
    agg.events = 2;
    let write = PartitionWrite {
        topic: "clicks".into(),
        partition: 2,
        checkpoint: PartitionCheckpoint {
            seq: 3,
            next_offset: 99,
            max_event_ts: Some(25_000),
            ..Default::default()
        },
        rows: vec![Row::new(0, agg.clone()), Row::new(10_000, agg)],
        revised: vec![0],
        undelivered: vec![DeadLetterRecord {
            topic: "clicks".into(),
            partition: 2,
            offset: 5,
            reason: "not_json".into(),
            error: "too large".into(),
            at_ms: 1,
            value_bytes: 9,
            value_head: b"x".to_vec(),
        }],
        owner: Some(OwnerRecord {
            id: "i1".into(),
            url: "http://127.0.0.1:8080".into(),
            high_watermark: Some(120),
            last_read_ms: Some(10),
            at_ms: 11,
        }),
    };
    let records = records_of(&write, 10_000, 6);
    let sp = partition_for("clicks", 2, 6);
    assert!(records.iter().all(|(p, _, _)| *p == sp));
    let decoded: Vec<StateRecord> = records
        .iter()
        .map(|(_, k, v)| decode_record(k, v.as_deref()).expect("decode"))
        .collect();
    let [StateRecord::Window {
        start: 0,
        value: Some(w0),
        ..
    }, StateRecord::Window {
        start: 10_000,
        value: Some(w1),
        ..
    }, StateRecord::DeadLetter(Some(d)), StateRecord::Progress { value: Some(p), .. }] =
        &decoded[..]
    else {
        panic!("unexpected records: {decoded:?}");
    };
    assert!(w0.value.revised && !w1.value.revised);
    assert_eq!(
        (w1.value.end, w1.value.seq, w1.value.events, w1.agg.events),
        (20_000, 3, 2, 2)
    );
    assert_eq!(d.offset, 5);
    assert_eq!(p.checkpoint, write.checkpoint);
    assert_eq!(Some(p.owner_record()), write.owner);
    let (_, k, v) = window_tombstone("clicks", 2, 0, 6);
    assert!(matches!(
        decode_record(&k, v.as_deref()).expect("decode"),
        StateRecord::Window { value: None, .. }
    ));
}

#[test]
fn commit_metadata_carries_the_checkpoint_sequence() {
    assert_eq!(parse_commit_seq(&commit_metadata(7, Some(-3))), Some(7));
    assert_eq!(parse_commit_seq(&commit_metadata(8, None)), Some(8));
    assert_eq!(parse_commit_seq("max_event_ts=5"), None);
    assert_eq!(
        crate::ingest::client::parse_commit_metadata(&commit_metadata(7, Some(-3))),
        Some(-3)
    );
}

#[test]
fn an_input_partition_always_maps_to_the_same_state_partition() {
    let p = partition_for("clicks", 5, 4);
    assert!((0..4).contains(&p));
    assert_eq!(p, partition_for("clicks", 5, 4));
    assert_eq!(partition_for("clicks", 5, 1), 0);
    let spread: std::collections::HashSet<i32> =
        (0..8).map(|i| partition_for("clicks", i, 4)).collect();
    assert_eq!(spread.len(), 4);
}

/// A window of generated traffic, with every segment and three goals (one that nearly every
/// visitor converts to: its sketch lists the window's visitors it lacks).
fn generated_window() -> Aggregate {
    use pulseboard_model::agg::{AggSpec, Dimension, Goal, SegmentSpec};
    use pulseboard_model::gen::{GenConfig, Generator};
    let spec = AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: Dimension::ALL.to_vec(),
            top_n: 10,
        },
        goals: vec![
            Goal::parse("signup").expect("goal"),
            Goal::parse("pricing=url:/pricing").expect("goal"),
            Goal::parse("pageview").expect("goal"),
        ],
    };
    let mut g = Generator::new(11, GenConfig::default());
    let mut a = Aggregate::new();
    for i in 0..3_000 {
        a.add_with(&g.next_event(1_800_000_000_000 + i * 3), &spec);
    }
    a
}

#[test]
fn the_reference_decoder_reads_a_window_value_as_pulseboard_wrote_it() {
    let agg = generated_window();
    let compressed = Row::new(20_000, agg.clone());
    assert_eq!(compressed.stored[0], crate::store::row::ZSTD);
    let raw = Row::from_stored(20_000, agg.clone(), agg.to_bytes());
    // A row of format 5, as earlier releases wrote it (the model's fixture).
    let v5_bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../model/tests/fixtures/v5-window.bin"),
    )
    .expect("the model's fixture");
    assert_eq!(v5_bytes[0], 5);
    let v5_agg = Aggregate::from_bytes(&v5_bytes).expect("a format-5 row");
    let v5 = Row::from_stored(20_000, v5_agg.clone(), v5_bytes);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let cases = [
        ("raw", &raw, &agg),
        ("zstd", &compressed, &agg),
        ("v5", &v5, &v5_agg),
    ];
    for (name, row, _) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, window_value(row, 30_000, 7, true)).expect("write");
        files.push(path);
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/state_topic_window.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(&files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let decoded: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(decoded.len(), cases.len());
    for (d, (name, row, agg)) in decoded.iter().zip(cases) {
        let header = Window::decode(&window_value(row, 30_000, 7, true))
            .expect("window")
            .value;
        let want_header = serde_json::to_value(&header).expect("json");
        for field in [
            "end",
            "seq",
            "revised",
            "events",
            "unique_visitors",
            "unique_sessions",
            "by_type",
        ] {
            assert_eq!(d[field], want_header[field], "{name}: {field}");
        }
        let row = &d["row"];
        if name == "zstd" && row == "zstd" {
            // No zstd decompressor on this machine: the header is what another system needs.
            continue;
        }
        assert_eq!(row["events"], agg.events, "{name}");
        for (list_name, list) in [
            ("by_type", &agg.by_type),
            ("urls", &agg.urls),
            ("referrers", &agg.referrers),
            ("countries", &agg.countries),
            ("devices", &agg.devices),
            ("sources", &agg.sources),
        ] {
            let want: Vec<serde_json::Value> = list
                .ranked()
                .into_iter()
                .map(|(k, c)| serde_json::json!([k, c]))
                .collect();
            assert_eq!(
                row[list_name]["top"],
                serde_json::Value::from(want),
                "{name}: {list_name}"
            );
            assert_eq!(row[list_name]["total"], list.total(), "{name}: {list_name}");
        }
        assert_eq!(
            row["goal_completions"].as_object().map(|g| g.len()),
            Some(agg.goals.len()),
            "{name}"
        );
        for (goal, g) in &agg.goals {
            assert_eq!(
                row["goal_completions"][goal], g.completions,
                "{name}: {goal}"
            );
        }
    }
}
