//! Applying the state topic, without a broker: records encoded as the committer writes
//! them ([`record::records_of`]) are handed to the [`Applier`] one by one, as the reader's
//! loop does, and the store, the hub and the status are read back.

use std::time::Duration;

use pulseboard_model::agg::Keep;

use super::*;
use crate::hub::tests::agg;
use crate::hub::HubConfig;
use crate::store::row::Row;
use crate::store::{OwnerRecord, PartitionCheckpoint};

const PARTITIONS: i32 = 2;
const WIDTH: i64 = 10_000;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    progress: Arc<Progress>,
    hub: Arc<Hub>,
    applied: watch::Receiver<u64>,
    applier: Applier,
    /// The next offset of each state partition.
    offsets: HashMap<i32, i64>,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), WIDTH).expect("store");
    let progress = Arc::new(Progress::new(
        "k:9092".into(),
        false,
        WIDTH,
        Duration::from_secs(30),
    ));
    let hub = Hub::new(HubConfig::new(WIDTH), progress.clone(), Some(store.clone()));
    let (tx, applied) = watch::channel(0);
    let applier = Applier::new(
        ApplyTo {
            partitions: PARTITIONS,
            instance_id: "me".into(),
            lateness_ms: 5_000,
            store: store.clone(),
            progress: progress.clone(),
            hub: hub.clone(),
        },
        tx,
    );
    Rig {
        _dir: dir,
        store,
        progress,
        hub,
        applied,
        applier,
        offsets: HashMap::new(),
    }
}

/// Partition 0 of `clicks`'s checkpoint `seq`, by `owner`, with windows of `events` each.
fn checkpoint(seq: u64, owner: &str, windows: &[(i64, u64)]) -> PartitionWrite {
    PartitionWrite {
        topic: "clicks".into(),
        partition: 0,
        checkpoint: PartitionCheckpoint {
            next_offset: 100 * seq as i64,
            seq,
            events: windows.iter().map(|(_, n)| n).sum(),
            max_event_ts: Some(100_000),
            ..Default::default()
        },
        rows: windows.iter().map(|(s, n)| Row::new(*s, agg(*n))).collect(),
        owner: Some(OwnerRecord {
            id: owner.into(),
            url: format!("http://{owner}"),
            high_watermark: Some(1_000),
            last_read_ms: None,
            at_ms: 1,
        }),
        ..Default::default()
    }
}

impl Rig {
    /// Hands `records` to the applier at the next offsets of their state partitions;
    /// returns the offset of the last.
    fn feed(&mut self, records: &[record::OutRecord]) -> i64 {
        let mut last = -1;
        for (sp, key, value) in records {
            let offset = self.offsets.entry(*sp).or_insert(0);
            self.applier
                .on_record(*sp, *offset, Some(key), value.as_deref())
                .expect("apply");
            last = *offset;
            *offset += 1;
        }
        last
    }

    fn events_stored(&self) -> u64 {
        self.store
            .windows_in(i64::MIN, i64::MAX)
            .expect("windows")
            .iter()
            .map(|w| w.agg.events)
            .sum()
    }

    fn stored_seq(&self) -> Option<u64> {
        self.store
            .partition("clicks", 0)
            .expect("read")
            .map(|cp| cp.seq)
    }
}

#[test]
fn a_checkpoint_is_applied_whole_once_its_progress_record_arrives() {
    let mut r = rig();
    let records = record::records_of(
        &checkpoint(1, "other", &[(0, 3), (WIDTH, 4)]),
        WIDTH,
        PARTITIONS,
    );
    let (windows, progress) = records.split_at(records.len() - 1);
    r.feed(windows);
    assert_eq!(
        r.events_stored(),
        0,
        "windows wait for their progress record"
    );
    assert_eq!(r.stored_seq(), None);
    assert_eq!(*r.applied.borrow(), 0);
    r.feed(progress);
    assert_eq!(r.events_stored(), 7);
    assert_eq!(r.stored_seq(), Some(1));
    assert_eq!(
        *r.applied.borrow(),
        1,
        "a waiting partition task looks again"
    );
    // Another instance's partition: shown in the status and in the hub.
    let status = r.progress.status();
    let p = status
        .partitions
        .iter()
        .find(|p| p.topic == "clicks" && p.partition == 0)
        .expect("in the status");
    assert_eq!(p.next_offset, 100);
    let merged = r
        .hub
        .merged_range_with(&r.store, 0, 2 * WIDTH, Keep::Figures, |n: &mut u64, a| {
            *n += a.events
        })
        .expect("hub");
    assert_eq!(merged.values().sum::<u64>(), 7);
}

#[test]
fn a_checkpoint_no_newer_than_the_stored_one_changes_no_window() {
    let mut r = rig();
    r.feed(&record::records_of(
        &checkpoint(5, "other", &[(0, 9)]),
        WIDTH,
        PARTITIONS,
    ));
    assert_eq!(r.events_stored(), 9);
    // An older checkpoint of the same partition (a zombie's, or read again after a restart).
    r.feed(&record::records_of(
        &checkpoint(3, "zombie", &[(0, 1)]),
        WIDTH,
        PARTITIONS,
    ));
    assert_eq!(r.events_stored(), 9);
    assert_eq!(r.stored_seq(), Some(5));
    assert_eq!(*r.applied.borrow(), 1);
}

#[test]
fn the_recorded_position_never_passes_a_record_still_held() {
    let mut r = rig();
    let records = record::records_of(&checkpoint(1, "other", &[(0, 2)]), WIDTH, PARTITIONS);
    let sp = records[0].0;
    r.feed(&records[..1]); // a window, held, at offset 0
    let instance = (
        sp,
        record::Key::Instance { id: "x".into() }.encode(),
        Some(record::instance_value(&record::InstanceValue {
            url: "http://x".into(),
            started_ms: 1,
        })),
    );
    r.feed(&[instance]); // offset 1
    let at = |r: &Rig| {
        r.store
            .state_topic_positions()
            .expect("positions")
            .get(&sp)
            .copied()
    };
    assert_eq!(at(&r), Some(0), "a restart must read the held window again");
    let last = r.feed(&records[1..]);
    assert_eq!(at(&r), Some(last + 1));
}

#[test]
fn unreadable_records_are_skipped_and_reading_goes_on() {
    let mut r = rig();
    r.applier.on_record(1, 0, None, Some(b"x")).expect("no key");
    r.applier
        .on_record(1, 1, Some(b"not a key"), Some(b"x"))
        .expect("bad key");
    let bad_value = (
        1,
        record::Key::Instance { id: "x".into() }.encode(),
        Some(b"{".to_vec()),
    );
    r.applier
        .on_record(bad_value.0, 2, Some(&bad_value.1), bad_value.2.as_deref())
        .expect("bad value");
    assert_eq!(
        r.store.state_topic_positions().expect("positions").get(&1),
        Some(&3)
    );
    // An unreadable window is skipped when its checkpoint is applied; the rest is applied.
    let mut records = record::records_of(
        &checkpoint(1, "other", &[(0, 2), (WIDTH, 5)]),
        WIDTH,
        PARTITIONS,
    );
    records[0].2 = Some(b"garbage".to_vec());
    r.feed(&records);
    assert_eq!(r.events_stored(), 5);
    assert_eq!(r.stored_seq(), Some(1));
}

#[test]
fn a_tombstone_drops_a_held_window_but_not_a_stored_row() {
    let mut r = rig();
    r.feed(&record::records_of(
        &checkpoint(1, "other", &[(0, 2)]),
        WIDTH,
        PARTITIONS,
    ));
    let next = record::records_of(&checkpoint(2, "other", &[(WIDTH, 3)]), WIDTH, PARTITIONS);
    r.feed(&next[..1]);
    r.feed(&[
        record::window_tombstone("clicks", 0, WIDTH, PARTITIONS),
        record::window_tombstone("clicks", 0, 0, PARTITIONS),
    ]);
    r.feed(&next[1..]);
    // The held window was dropped; the stored one stays until this store's retention.
    assert_eq!(r.events_stored(), 2);
    assert_eq!(r.stored_seq(), Some(2));
}

#[test]
fn caught_up_once_every_state_partition_reported_its_end() {
    let mut r = rig();
    assert!(!r.progress.state_caught_up());
    r.applier.at_end(0);
    r.applier.at_end(0);
    assert!(!r.progress.state_caught_up(), "one of two");
    r.applier.at_end(1);
    assert!(r.progress.state_caught_up());
}
