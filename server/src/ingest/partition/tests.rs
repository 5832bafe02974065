//! The partition task's rules, run without a broker: messages come from a [`FakeFeed`],
//! the group's consumer is a [`FakeGroup`], checkpoints go through a real committer to a
//! real store over a [`FakeSink`] that commits or aborts as scripted.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::Offset;

use super::*;
use crate::ingest::client::Committed;
use crate::ingest::fakes::{event, FakeFeed, FakeGroup, FeedTx, TestIngest, PATIENCE, TOPIC};
use crate::store::PartitionCheckpoint;

struct Rig {
    ingest: TestIngest,
    store: Store,
    group: Arc<FakeGroup>,
    feed: FeedTx,
    script: Arc<Mutex<VecDeque<Result<(), String>>>>,
    stop: mpsc::Sender<Commit>,
    fatal: mpsc::UnboundedReceiver<IngestError>,
    task: tokio::task::JoinHandle<()>,
    applied: Option<watch::Sender<u64>>,
}

struct Setup {
    group: Arc<FakeGroup>,
    offset_reset: OffsetReset,
    /// With a state topic: restores wait for the store to hold the group's checkpoint.
    state_topic: Option<Duration>,
    /// Checkpoints written before the task starts.
    stored: Option<PartitionWrite>,
    assigned: StartPoint,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            group: Arc::new(FakeGroup::default()),
            offset_reset: OffsetReset::Earliest,
            state_topic: None,
            stored: None,
            assigned: StartPoint::Beginning,
        }
    }
}

async fn start(setup: Setup) -> Rig {
    let ingest = TestIngest::new(setup.state_topic.is_some());
    if let Some(w) = &setup.stored {
        ingest
            .store
            .write(std::slice::from_ref(w))
            .await
            .expect("write");
    }
    let (applied_tx, applied_rx) = watch::channel(0u64);
    let restore = setup.state_topic.map(|timeout| RestoreFrom {
        timeout,
        applied: applied_rx,
    });
    let shared = ingest.shared(setup.group.clone(), setup.offset_reset, restore);
    let (feed, feed_tx) = FakeFeed::new(TOPIC, 0);
    let (stop, stop_rx) = mpsc::channel(1);
    let (fatal_tx, fatal) = mpsc::unbounded_channel();
    let task = tokio::spawn(partition_task(
        (TOPIC.into(), 0),
        setup.assigned,
        feed,
        (stop_rx, CancellationToken::new()),
        shared,
        fatal_tx,
    ));
    Rig {
        store: ingest.store.clone(),
        script: ingest.script.clone(),
        ingest,
        group: setup.group,
        feed: feed_tx,
        stop,
        fatal,
        task,
        applied: setup.state_topic.map(|_| applied_tx),
    }
}

impl Rig {
    fn stored(&self) -> Option<PartitionCheckpoint> {
        self.ingest.stored(0)
    }

    async fn until_stored(&self, what: &str, ok: impl Fn(&PartitionCheckpoint) -> bool) {
        self.ingest.until_stored(0, what, ok).await
    }

    /// Stops the task as a revoke (`Sync`) or a lost partition (`Skip`) does, and the
    /// committer after it.
    async fn stop(self, how: Commit) -> Store {
        self.stop.send(how).await.expect("stop");
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the task stops")
            .expect("join");
        self.ingest.stop().await
    }
}

#[tokio::test]
async fn messages_are_folded_and_checkpointed_with_the_offset_after_them() {
    let r = start(Setup::default()).await;
    for i in 0..50 {
        r.feed.send(i, &event(i));
    }
    r.until_stored("50 events", |cp| cp.next_offset == 50 && cp.events == 50)
        .await;
    let store = r.stop(Commit::Sync).await;
    let rows = store.windows_in(i64::MIN, i64::MAX).expect("windows");
    let events: u64 = rows.iter().map(|w| w.agg.events).sum();
    assert_eq!(events, 50, "every event in a stored window, once");
}

#[tokio::test]
async fn a_message_delivered_again_below_the_stored_offset_is_not_counted_twice() {
    let r = start(Setup::default()).await;
    for i in 0..20 {
        r.feed.send(i, &event(i));
    }
    r.until_stored("20 events", |cp| cp.next_offset == 20).await;
    // A rebalance or a seek can deliver what was read already.
    for i in 10..30 {
        r.feed.send(i, &event(i));
    }
    r.until_stored("30 events", |cp| cp.next_offset == 30).await;
    assert_eq!(r.stored().expect("stored").events, 30);
    r.stop(Commit::Sync).await;
}

#[tokio::test]
async fn an_aborted_checkpoint_restores_from_the_store_and_reads_again_from_its_offset() {
    let r = start(Setup::default()).await;
    for i in 0..10 {
        r.feed.send(i, &event(i));
    }
    r.until_stored("first checkpoint", |cp| cp.next_offset == 10)
        .await;
    let seq = r.stored().expect("stored").seq;
    r.script
        .lock()
        .expect("lock")
        .push_back(Err("fenced".into()));
    for i in 10..15 {
        r.feed.send(i, &event(i));
    }
    // The task restores and asks the consumer to read again from the stored offset.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !r.group.seeks().contains(&Some(10)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no seek back: {:?}",
            r.group.seeks()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        r.stored().expect("stored").next_offset,
        10,
        "nothing of it stored"
    );
    // The consumer delivers them again: counted once, under a seq above the burned one.
    for i in 10..15 {
        r.feed.send(i, &event(i));
    }
    r.until_stored("after the abort", |cp| cp.next_offset == 15)
        .await;
    let cp = r.stored().expect("stored");
    assert_eq!(cp.events, 15);
    assert!(
        cp.seq > seq + 1,
        "the aborted seq {} is not reused: {}",
        seq + 1,
        cp.seq
    );
    r.stop(Commit::Sync).await;
}

#[tokio::test]
async fn a_released_partition_commits_a_last_checkpoint_and_a_lost_one_commits_nothing() {
    let r = start(Setup::default()).await;
    for i in 0..5 {
        r.feed.send(i, &event(i));
    }
    r.until_stored("5 events", |cp| cp.next_offset == 5).await;
    let before = r.stored().expect("stored").seq;
    let store = r.stop(Commit::Sync).await;
    let cp = store.partition(TOPIC, 0).expect("read").expect("stored");
    assert!(cp.seq > before, "a last checkpoint on release");

    let stored = PartitionWrite {
        topic: TOPIC.into(),
        partition: 0,
        checkpoint: PartitionCheckpoint {
            next_offset: 5,
            seq: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = start(Setup {
        stored: Some(stored),
        assigned: StartPoint::Stored(5),
        ..Default::default()
    })
    .await;
    // Lost: what was read since the last checkpoint is not this owner's to commit.
    r.feed.send(5, &event(5));
    let store = r.stop(Commit::Skip).await;
    let cp = store.partition(TOPIC, 0).expect("read").expect("stored");
    assert_eq!((cp.next_offset, cp.seq), (5, 1));
}

#[tokio::test]
async fn an_offset_outside_the_log_restarts_at_its_start_checkpointed_first() {
    let group = FakeGroup::with(|g| g.bounds = (100, 200));
    let stored = PartitionWrite {
        topic: TOPIC.into(),
        partition: 0,
        checkpoint: PartitionCheckpoint {
            next_offset: 40,
            seq: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = start(Setup {
        group,
        stored: Some(stored),
        assigned: StartPoint::Stored(40),
        ..Default::default()
    })
    .await;
    r.feed.fail(KafkaError::MessageConsumption(
        RDKafkaErrorCode::AutoOffsetReset,
    ));
    r.until_stored("the reset", |cp| cp.next_offset == 100)
        .await;
    assert_eq!(r.stored().expect("stored").offset_resets, 1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while r.group.restarts().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(r.group.restarts(), vec![Offset::Offset(100)]);
    r.stop(Commit::Sync).await;
}

#[tokio::test]
async fn an_offset_outside_the_log_stops_ingest_with_offset_reset_fail() {
    let mut r = start(Setup {
        offset_reset: OffsetReset::Fail,
        ..Default::default()
    })
    .await;
    r.feed.fail(KafkaError::MessageConsumption(
        RDKafkaErrorCode::AutoOffsetReset,
    ));
    let err = tokio::time::timeout(PATIENCE, r.fatal.recv())
        .await
        .expect("an error in time")
        .expect("an error");
    assert!(
        matches!(err, IngestError::OffsetOutOfRange { partition: 0, .. }),
        "{err}"
    );
    assert!(r.group.restarts().is_empty());
}

#[tokio::test]
async fn with_a_state_topic_a_new_partition_waits_for_the_groups_checkpoint_then_reads_after_it() {
    let group = FakeGroup::with(|g| {
        g.committed = Some(Committed {
            offset: 70,
            max_event_ts: None,
            seq: Some(3),
        });
        g.committed_failures = 2;
    });
    let mut r = start(Setup {
        group,
        state_topic: Some(PATIENCE),
        ..Default::default()
    })
    .await;
    // The store is behind the group's checkpoint 3: no seek yet.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(r.group.seeks().is_empty(), "{:?}", r.group.seeks());
    // The state topic's reader brings it, and says so.
    let brought = PartitionWrite {
        topic: TOPIC.into(),
        partition: 0,
        checkpoint: PartitionCheckpoint {
            next_offset: 70,
            seq: 3,
            events: 70,
            ..Default::default()
        },
        ..Default::default()
    };
    r.store
        .write(std::slice::from_ref(&brought))
        .await
        .expect("write");
    r.applied
        .as_ref()
        .expect("state topic")
        .send_modify(|n| *n += 1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while r.group.seeks() != vec![Some(70)] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "seeks: {:?}",
            r.group.seeks()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.feed.send(70, &event(70));
    r.until_stored("after the restore", |cp| {
        cp.next_offset == 71 && cp.events == 71 && cp.seq > 3
    })
    .await;
    assert!(r.fatal.try_recv().is_err());
    r.stop(Commit::Sync).await;
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_the_state_topic_never_brings_stops_ingest_after_the_restore_timeout() {
    let group = FakeGroup::with(|g| {
        g.committed = Some(Committed {
            offset: 70,
            max_event_ts: None,
            seq: Some(3),
        });
    });
    let mut r = start(Setup {
        group,
        state_topic: Some(Duration::from_secs(120)),
        ..Default::default()
    })
    .await;
    let err = r.fatal.recv().await.expect("an error");
    assert!(
        matches!(&err, IngestError::Restore { why, .. } if why.contains("checkpoint 3")),
        "{err}"
    );
    assert!(r.group.seeks().is_empty());
}

#[test]
fn the_fake_feed_waits_for_ever_once_its_sender_is_gone() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (feed, tx) = FakeFeed::new(TOPIC, 0);
        tx.send(0, "x");
        drop(tx);
        assert!(feed.recv().await.is_ok());
        let next = tokio::time::timeout(Duration::from_secs(3600), feed.recv()).await;
        assert!(next.is_err(), "no message, no error: a caught-up partition");
    });
}

#[tokio::test(start_paused = true)]
async fn partitions_checkpoint_at_the_same_instants_of_the_wall_clock() {
    let period = Duration::from_secs(1);
    // Two partitions started 300 ms apart tick together, on the second.
    let t0 = tokio::time::Instant::now();
    let mut a = aligned_interval(period, 1_800_000_000_700);
    tokio::time::advance(Duration::from_millis(300)).await;
    let mut b = aligned_interval(period, 1_800_000_001_000);
    let (ta, tb) = (a.tick().await, b.tick().await);
    assert_eq!(ta - t0, Duration::from_millis(300));
    assert_eq!(tb, ta + period, "b's first tick is the next second");
    assert_eq!(a.tick().await, tb, "then together");
}
