//! Unit tests of the store, one file per file of the store (this one: opening, and the
//! helpers the others share).

mod annotations;
mod checkpoint;
mod history;
mod keys;
mod migrate;
mod sizes;
mod windows;

use std::path::Path;

use super::{open_when_released, PartitionCheckpoint, PartitionWrite, Store};

fn reopen(dir: &Path) -> Store {
    open_when_released(dir, 10_000).expect("reopen")
}

fn write_of(topic: &str, partition: i32, cp: PartitionCheckpoint) -> PartitionWrite {
    PartitionWrite {
        topic: topic.into(),
        partition,
        checkpoint: cp,
        ..Default::default()
    }
}

#[test]
fn store_with_other_window_size_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path(), 10_000).expect("open"));
    let err = open_when_released(dir.path(), 60_000)
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("10000 ms") && msg.contains("60000 ms"),
        "{msg}"
    );
}

#[tokio::test]
async fn the_store_counts_since_the_earliest_window_a_checkpoint_wrote() {
    use pulseboard_model::agg::Aggregate;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    assert_eq!(
        store.counting_since(),
        None,
        "a new store counts nothing yet"
    );
    let write = |starts: &[i64], seq: u64| PartitionWrite {
        rows: crate::store::row::rows_of(starts.iter().map(|s| (*s, Aggregate::new())).collect()),
        ..write_of(
            "t",
            0,
            PartitionCheckpoint {
                seq,
                ..Default::default()
            },
        )
    };
    store
        .write(&[write(&[50_000, 40_000], 1)])
        .await
        .expect("write");
    assert_eq!(store.counting_since(), Some(40_000));
    // A later window changes nothing; an earlier one (a late event's) moves it back.
    store.write(&[write(&[60_000], 2)]).await.expect("write");
    assert_eq!(store.counting_since(), Some(40_000));
    store.write(&[write(&[30_000], 3)]).await.expect("write");
    assert_eq!(store.counting_since(), Some(30_000));
    drop(store);
    assert_eq!(reopen(dir.path()).counting_since(), Some(30_000), "kept");
}
