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
