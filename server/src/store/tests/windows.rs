//! Tests of window rows and revised marks (`store::windows`).

use pulseboard_model::agg::Aggregate;

use super::{reopen, write_of};
use crate::store::{DeadLetterRecord, PartitionCheckpoint, PartitionWrite, Store};

#[tokio::test]
async fn late_events_merge_into_the_stored_row_and_the_mark_comes_in_the_same_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut on_time = Aggregate::new();
    on_time.events = 3;
    let first = PartitionWrite {
        rows: crate::store::row::rows_of(vec![(0, on_time)]),
        ..write_of("t", 0, PartitionCheckpoint::default())
    };
    store.write(&[first]).await.expect("write");
    assert!(store.revised_from(i64::MIN).expect("marks").is_empty());
    let mut late = Aggregate::new();
    late.events = 2;
    let merged = store.merged_rows("t", 0, &[(0, late)]).expect("merge");
    assert_eq!(merged[0].1.events, 5, "merged with the stored row");
    let dead = DeadLetterRecord {
        topic: "t".into(),
        partition: 0,
        offset: 7,
        reason: "not_json".into(),
        error: "Message size too large".into(),
        at_ms: 1,
        value_bytes: 2_000_000,
        value_head: b"{".to_vec(),
    };
    let second = PartitionWrite {
        rows: crate::store::row::rows_of(merged),
        revised: vec![0],
        undelivered: vec![dead.clone()],
        ..write_of("t", 0, PartitionCheckpoint::default())
    };
    store.write(&[second]).await.expect("write");
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.windows_in(0, 1).expect("rows")[0].agg.events, 5);
    assert_eq!(store.revised_from(i64::MIN).expect("marks"), vec![0]);
    assert_eq!(store.recorded_dead_letters(10).expect("dead"), vec![dead]);
}
