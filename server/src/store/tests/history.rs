//! Tests of roll-ups and history (`store::history`).

use std::collections::BTreeMap;

use pulseboard_model::agg::Aggregate;
use pulseboard_model::rollup::{self, Level};

use super::reopen;
use crate::store::{PartitionWrite, Store};

/// Windows of `parts` partitions, `per` events each, every 10 s over `[from, to)`;
/// returns the truth per (hour, partition): events and visitors.
async fn fill(store: &Store, parts: i32, from: i64, to: i64) -> BTreeMap<(i64, i32), Aggregate> {
    let mut truth: BTreeMap<(i64, i32), Aggregate> = BTreeMap::new();
    for p in 0..parts {
        let mut windows = Vec::new();
        let mut start = from;
        while start < to {
            let mut a = Aggregate::new();
            for i in 0..((start / 10_000) % 7 + 1) {
                let e = pulseboard_model::event::Event {
                    ts: start,
                    kind: "pageview".into(),
                    visitor: format!("v{}", (start / 10_000 + i) % 900),
                    session: None,
                    url: format!("/{}", i % 3),
                    referrer: None,
                    country: None,
                    device: None,
                };
                a.add(&e);
                truth
                    .entry((rollup::bucket_start(start, 3_600_000), p))
                    .or_default()
                    .add(&e);
            }
            windows.push((start, a));
            start += 10_000;
        }
        let write = PartitionWrite {
            topic: "t".into(),
            partition: p,
            rows: crate::store::row::rows_of(windows),
            ..Default::default()
        };
        store.write(&[write]).await.expect("checkpoint");
    }
    truth
}

/// Everything stored in `[from, to)`, merged per (hour, partition).
fn by_hour(store: &Store, from: i64, to: i64) -> BTreeMap<(i64, i32), Aggregate> {
    let _gate = store.history_read();
    let mut out: BTreeMap<(i64, i32), Aggregate> = BTreeMap::new();
    let mut add = |start: i64, p: i32, a: &Aggregate| {
        out.entry((rollup::bucket_start(start, 3_600_000), p))
            .or_default()
            .merge(a)
    };
    for w in store.windows_in(from, to).expect("windows") {
        add(w.start, w.partition, &w.agg);
    }
    for level in Level::ALL {
        for b in store.buckets_in(level, from, to).expect("buckets") {
            add(b.start, b.partition, &b.agg);
        }
    }
    out
}

fn assert_same_counts(
    got: &BTreeMap<(i64, i32), Aggregate>,
    want: &BTreeMap<(i64, i32), Aggregate>,
) {
    assert_eq!(got.len(), want.len());
    for (k, w) in want {
        let g = &got[k];
        assert_eq!((g.events, &g.visitors), (w.events, &w.visitors), "{k:?}");
    }
}

#[tokio::test]
async fn rolling_up_in_interrupted_passes_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let h = 3_600_000;
    let truth = fill(&store, 3, 0, 3 * h).await;
    store.mark_revised(&[20_000, 2 * h]).expect("marks");
    // Windows before 2 h go to minutes, three buckets per call (a pass cut short, as a
    // crash between two bucket transactions leaves it), then again until done.
    let mut calls = 0;
    loop {
        let st = store
            .roll_up_windows(2 * h, |_, _| 2 * h, 3)
            .expect("roll up");
        assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
        calls += 1;
        if !st.more {
            break;
        }
    }
    assert!(calls > 10, "{calls}");
    assert!(store.windows_in(0, 2 * h).expect("w").is_empty());
    assert_eq!(
        store.buckets_in(Level::Minute, 0, 3 * h).expect("m").len(),
        120 * 3
    );
    assert_eq!(store.revised_from(0).expect("marks"), vec![2 * h]);
    // Nothing left to do: a second pass changes nothing.
    let again = store
        .roll_up_windows(2 * h, |_, _| 2 * h, 1000)
        .expect("again");
    assert_eq!((again.buckets, again.rows), (0, 0));
    // Minutes before 1 h go to hours, one bucket per call.
    while store.roll_up_minutes(h, 1).expect("hours").more {
        assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
    }
    assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
    assert_eq!(store.buckets_in(Level::Hour, 0, 3 * h).expect("h").len(), 3);
    assert_eq!(store.oldest_bucket(Level::Minute).expect("m"), Some(h));
    // Reopened, the same.
    drop(store);
    let store = reopen(dir.path());
    assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
    // History before 1 h goes: the three hour buckets of [0, 1 h).
    let gone = store.delete_history_before(h).expect("delete");
    assert_eq!(gone, 3);
    assert!(store
        .buckets_in(Level::Hour, 0, 3 * h)
        .expect("h")
        .is_empty());
}

/// Ten minutes of windows of partitions 0 and 1, rolled up before 10 min with partition
/// 0's cut-off at 10 min and partition 1's at `cutoff_1`: the windows left, (start,
/// partition).
async fn left_after_roll_up(cutoff_1: i64) -> Vec<(i64, i32)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    fill(&store, 2, 0, 600_000).await;
    store
        .roll_up_windows(600_000, |_, p| if p == 0 { 600_000 } else { cutoff_1 }, 100)
        .expect("roll up");
    store
        .windows_in(0, 600_000)
        .expect("w")
        .iter()
        .map(|w| (w.start, w.partition))
        .collect()
}

#[tokio::test]
async fn a_partition_rolls_up_only_before_its_own_cutoff() {
    let left = left_after_roll_up(120_000).await;
    assert!(
        left.iter().all(|(s, p)| *p == 1 && *s >= 120_000),
        "{left:?}"
    );
    assert_eq!(left.len(), 48);
}

#[tokio::test]
async fn a_partition_without_a_cutoff_keeps_every_window() {
    // Retention's cut-off for a partition it knew nothing of when its pass began.
    let left = left_after_roll_up(i64::MIN).await;
    assert!(left.iter().all(|(_, p)| *p == 1), "{left:?}");
    assert_eq!(left.len(), 60);
}
