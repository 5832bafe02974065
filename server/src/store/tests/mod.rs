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
