//! Tests of the checkpoint transaction, owners and state-topic positions
//! (`store::checkpoint`).

use std::collections::BTreeMap;

use pulseboard_model::agg::Aggregate;

use super::{reopen, write_of};
use crate::store::{OwnerRecord, PartitionCheckpoint, PartitionWrite, Store};

#[tokio::test]
async fn checkpoint_round_trips_windows_and_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut agg = Aggregate::new();
    agg.events = 3;
    let cp = PartitionCheckpoint {
        next_offset: 42,
        max_event_ts: Some(25_000),
        events: 3,
        seq: 1,
        ..Default::default()
    };
    let owner = OwnerRecord {
        id: "a1".into(),
        url: "http://127.0.0.1:1".into(),
        high_watermark: Some(50),
        last_read_ms: Some(7),
        at_ms: 8,
    };
    let w = PartitionWrite {
        rows: crate::store::row::rows_of(vec![(-10_000, agg.clone()), (20_000, agg.clone())]),
        owner: Some(owner.clone()),
        ..write_of("clicks", 1, cp.clone())
    };
    assert_eq!(store.write(&[w]).await.expect("write"), vec![true]);
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.partition("clicks", 1).expect("read"), Some(cp));
    assert_eq!(store.partition("clicks", 2).expect("read"), None);
    assert_eq!(
        store.owners().expect("owners"),
        vec![("clicks".to_owned(), 1, owner)]
    );
    let rows = store.windows_in(-10_000, 20_001).expect("range");
    assert_eq!(
        rows.iter().map(|w| w.start).collect::<Vec<_>>(),
        vec![-10_000, 20_000]
    );
    assert_eq!(
        store
            .partition_windows_from("clicks", 1, 0)
            .expect("scan")
            .len(),
        1
    );
    assert_eq!(store.delete_windows_before(0).expect("delete"), 1);
}

#[tokio::test]
async fn a_checkpoint_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let row = |events| {
        let mut a = Aggregate::new();
        a.events = events;
        vec![(0, a)]
    };
    let cp = |seq, next_offset| PartitionCheckpoint {
        seq,
        next_offset,
        ..Default::default()
    };
    // Another instance's checkpoint 5, read from the state topic.
    let remote = PartitionWrite {
        rows: crate::store::row::rows_of(row(50)),
        ..write_of("t", 0, cp(5, 500))
    };
    assert!(store.apply_remote(&remote, (2, 11)).expect("apply"));
    // The same record read again, and an older one: nothing changes but the position.
    assert!(!store.apply_remote(&remote, (2, 12)).expect("again"));
    let older = PartitionWrite {
        rows: crate::store::row::rows_of(row(40)),
        ..write_of("t", 0, cp(4, 400))
    };
    assert!(!store.apply_remote(&older, (2, 13)).expect("older"));
    // A zombie's own write of checkpoint 4 does not overwrite it either.
    assert_eq!(store.write(&[older]).await.expect("write"), vec![false]);
    assert_eq!(
        store.partition("t", 0).expect("read").map(|c| c.seq),
        Some(5)
    );
    assert_eq!(store.windows_in(0, 1).expect("rows")[0].agg.events, 50);
    assert_eq!(
        store.state_topic_positions().expect("positions"),
        BTreeMap::from([(2, 13)])
    );
}
