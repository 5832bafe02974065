//! Tests of the migrations of older stores (`store::migrate`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::reopen;
use crate::store::keys::{enc_i64, partition_key};
use crate::store::migrate::{PartitionCheckpointV2, PartitionCheckpointV3};
use crate::store::open_when_released;

/// A store of format `version` holding one partition checkpoint `old`.
fn old_store(dir: &Path, version: u32, old: &impl Serialize) {
    let db = sled::open(dir).expect("sled");
    let meta = db.open_tree("meta").expect("meta");
    meta.insert("format_version", &version.to_be_bytes())
        .expect("v");
    meta.insert("window_ms", &enc_i64(10_000)).expect("w");
    db.open_tree("offsets")
        .expect("offsets")
        .insert(
            partition_key("t", 0),
            postcard::to_allocvec(old).expect("encode"),
        )
        .expect("insert");
    db.flush().expect("flush");
}

#[test]
fn version_2_and_3_stores_are_migrated_in_place() {
    let v2 = PartitionCheckpointV2 {
        next_offset: 9,
        max_event_ts: Some(5),
        events: 8,
        late: 1,
        dead_letters: BTreeMap::from([("not_json".to_owned(), 1)]),
        offset_resets: 0,
    };
    let v3 = PartitionCheckpointV3 {
        next_offset: 9,
        max_event_ts: Some(5),
        events: 8,
        late: 1,
        dead_letters: BTreeMap::new(),
        offset_resets: 0,
        revised_events: 2,
        dead_letters_recorded: 3,
    };
    for (version, dir) in [(2, tempfile::tempdir()), (3, tempfile::tempdir())] {
        let dir = dir.expect("tempdir");
        if version == 2 {
            old_store(dir.path(), 2, &v2);
        } else {
            old_store(dir.path(), 3, &v3);
        }
        let store = open_when_released(dir.path(), 10_000).expect("migrates");
        let cp = store.partition("t", 0).expect("read").expect("kept");
        assert_eq!((cp.next_offset, cp.events, cp.late, cp.seq), (9, 8, 1, 0));
        let counters = (cp.revised_events, cp.dead_letters_recorded);
        assert_eq!(counters, if version == 2 { (0, 0) } else { (2, 3) });
        drop(store);
        drop(reopen(dir.path()));
    }
}

/// The store of a release of format 4 (windows and a minute bucket of the embedded demo's
/// traffic, written by that release's binary: `server/tests/fixtures/store-format-4.tar.gz`)
/// opens, keeps every event, and takes new checkpoints in today's row format beside its
/// old rows.
#[tokio::test]
async fn a_real_store_of_format_4_opens_and_keeps_every_event() {
    use pulseboard_model::rollup::Level;
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-format-4.tar.gz");
    let untar = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar runs");
    assert!(untar.success());
    let path = dir.path().join("v4store");
    let store = open_when_released(&path, 10_000).expect("migrates");
    let parts = store.partitions().expect("partitions");
    assert_eq!(parts.len(), 4, "the demo's four partitions");
    let windows = store
        .windows_in(i64::MIN, i64::MAX)
        .expect("windows decode");
    let minutes = store
        .buckets_in(Level::Minute, i64::MIN, i64::MAX)
        .expect("buckets decode");
    assert!(!windows.is_empty() && !minutes.is_empty());
    for (topic, p, cp) in &parts {
        let held: u64 = windows
            .iter()
            .filter(|w| (&w.topic, w.partition) == (topic, *p))
            .map(|w| w.agg.events)
            .chain(
                minutes
                    .iter()
                    .filter(|b| (&b.topic, b.partition) == (topic, *p))
                    .map(|b| b.agg.events),
            )
            .sum();
        assert_eq!(
            held, cp.events,
            "{topic}/{p}: every event folded is in a row"
        );
        assert!(cp.seq > 0);
    }
    // A new checkpoint beside the old rows, in today's format; both read back.
    let (topic, p, cp) = parts[0].clone();
    let newest = windows.iter().map(|w| w.start).max().unwrap_or(0) + 10_000;
    let mut agg = pulseboard_model::agg::Aggregate::new();
    agg.events = 5;
    let write = crate::store::PartitionWrite {
        topic: topic.clone(),
        partition: p,
        checkpoint: crate::store::PartitionCheckpoint {
            seq: cp.seq + 1,
            events: cp.events + 5,
            ..cp.clone()
        },
        rows: crate::store::row::rows_of(vec![(newest, agg)]),
        ..Default::default()
    };
    store.write(&[write]).await.expect("write");
    let all = store.windows_in(i64::MIN, i64::MAX).expect("windows");
    assert_eq!(all.len(), windows.len() + 1);
    drop(store);
    let again = reopen(&path);
    assert_eq!(
        again.partition(&topic, p).expect("read").map(|c| c.events),
        Some(cp.events + 5)
    );
}
