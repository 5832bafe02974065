//! Tests of roll-ups and history (`store::history`).

use std::collections::BTreeMap;

use pulseboard_model::agg::Aggregate;
use pulseboard_model::rollup::{self, Level};

use super::reopen;
use crate::store::history::ALL_PARTITIONS;
use crate::store::{PartitionWrite, Store, StoredBucket};

/// Windows of `parts` partitions, `per` events each, every 10 s over `[from, to)`;
/// returns the truth per hour (every partition): events and visitors.
async fn fill(store: &Store, parts: i32, from: i64, to: i64) -> BTreeMap<i64, Aggregate> {
    let mut truth: BTreeMap<i64, Aggregate> = BTreeMap::new();
    for p in 0..parts {
        let mut windows = Vec::new();
        let mut start = from;
        while start < to {
            let mut a = Aggregate::new();
            for i in 0..((start / 10_000) % 7 + 1) {
                let e = pulseboard_model::event::Event {
                    props: Vec::new(),
                    site: None,
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
                    .entry(rollup::bucket_start(start, 3_600_000))
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

/// Everything stored in `[from, to)`, merged per hour.
fn by_hour(store: &Store, from: i64, to: i64) -> BTreeMap<i64, Aggregate> {
    let _gate = store.history_read();
    let mut out: BTreeMap<i64, Aggregate> = BTreeMap::new();
    let mut add = |start: i64, a: &Aggregate| {
        out.entry(rollup::bucket_start(start, 3_600_000))
            .or_default()
            .merge(a)
    };
    for w in store.windows_in(from, to).expect("windows") {
        add(w.start, &w.agg);
    }
    for level in Level::ALL {
        for b in store.buckets_in(level, from, to).expect("buckets") {
            add(b.start, &b.agg);
        }
    }
    out
}

fn assert_same_counts(got: &BTreeMap<i64, Aggregate>, want: &BTreeMap<i64, Aggregate>) {
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
    // One bucket a minute holds the three partitions.
    let minutes = store.buckets_in(Level::Minute, 0, 3 * h).expect("m");
    assert_eq!(minutes.len(), 120);
    assert!(minutes.iter().all(|b| b.partition == ALL_PARTITIONS));
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
    assert_eq!(store.buckets_in(Level::Hour, 0, 3 * h).expect("h").len(), 1);
    assert_eq!(store.oldest_bucket(Level::Minute).expect("m"), Some(h));
    // Reopened, the same.
    drop(store);
    let store = reopen(dir.path());
    assert_same_counts(&by_hour(&store, 0, 3 * h), &truth);
    // History before 1 h goes: the hour bucket of [0, 1 h).
    let gone = store.delete_history_before(h).expect("delete");
    assert_eq!(gone, 1);
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

#[tokio::test]
async fn buckets_of_one_partition_each_from_earlier_releases_roll_up_with_the_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let h = 3_600_000;
    let truth = fill(&store, 2, 0, h).await;
    // The first half hour as an earlier release left it: a minute bucket per partition.
    let half = h / 2;
    let old: Vec<StoredBucket> = store
        .windows_in(0, half)
        .expect("windows")
        .into_iter()
        .map(|w| StoredBucket {
            level: Level::Minute,
            start: rollup::bucket_start(w.start, 60_000),
            topic: w.topic,
            partition: w.partition,
            agg: w.agg,
        })
        .fold(BTreeMap::new(), |mut m: BTreeMap<_, StoredBucket>, b| {
            let k = (b.start, b.partition);
            match m.get_mut(&k) {
                Some(have) => rollup::fold_into(&mut have.agg, &b.agg),
                None => {
                    m.insert(k, b);
                }
            }
            m
        })
        .into_values()
        .collect();
    assert_eq!(old.len(), 2 * 30);
    store.put_buckets(&old).expect("old buckets");
    store.delete_windows_before(half).expect("moved");
    assert_same_counts(&by_hour(&store, 0, h), &truth);
    // The second half hour rolls up as this release does; then the hour holds both.
    store.roll_up_windows(h, |_, _| h, 1000).expect("minutes");
    let minutes = store.buckets_in(Level::Minute, 0, h).expect("m");
    assert_eq!(minutes.len(), 2 * 30 + 30);
    assert_same_counts(&by_hour(&store, 0, h), &truth);
    store.roll_up_minutes(h, 10).expect("hours");
    let hours = store.buckets_in(Level::Hour, 0, h).expect("h");
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].partition, ALL_PARTITIONS);
    assert_same_counts(&by_hour(&store, 0, h), &truth);
}
