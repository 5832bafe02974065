//! The partition tasks' bookkeeping, without a broker: assignment starts a task per
//! partition, a revocation stops its tasks with a last checkpoint (none when the partition
//! was lost), shutdown stops them all, and a task that panics is reported at once.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::*;
use crate::config::OffsetReset;
use crate::ingest::fakes::{event, FakeFeed, FakeGroup, TestIngest, PATIENCE, TOPIC};

fn tasks(
    ingest: &TestIngest,
) -> (
    PartitionTasks<Arc<FakeGroup>>,
    mpsc::UnboundedReceiver<IngestError>,
) {
    let shared = ingest.shared(Arc::new(FakeGroup::default()), OffsetReset::Earliest, None);
    let (fatal, errors) = mpsc::unbounded_channel();
    (PartitionTasks::new(shared, fatal), errors)
}

#[tokio::test]
async fn revoked_partitions_stop_with_a_last_checkpoint_and_the_others_read_on() {
    let ingest = TestIngest::new(false);
    let (mut tasks, mut errors) = tasks(&ingest);
    let (feed0, tx0) = FakeFeed::new(TOPIC, 0);
    let (feed1, tx1) = FakeFeed::new(TOPIC, 1);
    tasks.assigned(vec![
        (TOPIC.into(), 0, feed0, StartPoint::Beginning),
        (TOPIC.into(), 1, feed1, StartPoint::Beginning),
    ]);
    assert_eq!(tasks.running(), vec![(TOPIC.into(), 0), (TOPIC.into(), 1)]);
    assert!(ingest.progress.is_local(TOPIC, 0));
    for i in 0..5 {
        tx0.send(i, &event(i));
        tx1.send(i, &event(i));
    }
    ingest
        .until_stored(0, "partition 0", |cp| cp.next_offset == 5)
        .await;
    let seq = ingest.stored(0).expect("stored").seq;
    tasks.revoke(&[(TOPIC.into(), 0)], false).await;
    assert_eq!(tasks.running(), vec![(TOPIC.into(), 1)]);
    assert!(!ingest.progress.is_local(TOPIC, 0));
    assert!(
        ingest.stored(0).expect("stored").seq > seq,
        "a last checkpoint before the release"
    );
    // The other partition reads on.
    tx1.send(5, &event(5));
    ingest
        .until_stored(1, "partition 1", |cp| cp.next_offset == 6)
        .await;
    tasks.stop_all().await;
    assert!(tasks.running().is_empty());
    assert!(errors.try_recv().is_err());
    ingest.stop().await;
}

#[tokio::test]
async fn a_lost_partition_stops_without_committing_what_it_read_since() {
    let ingest = TestIngest::new(false);
    let (mut tasks, _errors) = tasks(&ingest);
    let (feed, tx) = FakeFeed::new(TOPIC, 0);
    tasks.assigned(vec![(TOPIC.into(), 0, feed, StartPoint::Beginning)]);
    for i in 0..3 {
        tx.send(i, &event(i));
    }
    ingest
        .until_stored(0, "three events", |cp| cp.next_offset == 3)
        .await;
    // A release writes a last checkpoint (a new seq) even with nothing new; a loss none.
    let before = ingest.stored(0).expect("stored");
    tasks.revoke(&[(TOPIC.into(), 0)], true).await;
    let after = ingest.stored(0).expect("stored");
    assert_eq!(
        (after.next_offset, after.seq),
        (before.next_offset, before.seq),
        "nothing committed on loss"
    );
    ingest.stop().await;
}

#[tokio::test]
async fn a_task_that_panics_is_reported_at_once_and_its_partition_marked_failed() {
    let ingest = TestIngest::new(false);
    let (fatal, mut errors) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervised(
        (TOPIC.into(), 7),
        async { panic!("boom") },
        ingest.progress.clone(),
        fatal,
    ));
    let err = tokio::time::timeout(PATIENCE, errors.recv())
        .await
        .expect("in time")
        .expect("reported");
    assert!(
        matches!(&err, IngestError::PartitionPanicked { partition: 7, message, .. } if message.contains("boom")),
        "{err}"
    );
    assert!(ingest
        .progress
        .failure()
        .is_some_and(|f| f.contains("clicks/7") && f.contains("boom")));
    task.await.expect("the panic is caught");
    ingest.stop().await;
}
