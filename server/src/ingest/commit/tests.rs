//! The committer's rules, through a sink that needs no broker: batches, the order of
//! answers, superseded and orphaned checkpoints, barriers, aborts, and that the store is
//! written only after the sink committed.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::hub::HubConfig;
use crate::ingest::fakes::{Call, FakeSink};
use crate::store::PartitionCheckpoint;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    calls: Arc<Mutex<Vec<Call>>>,
    stored_before: Arc<Mutex<Vec<bool>>>,
    committer: Committer<FakeSink>,
    handle: CommitHandle,
}

fn rig(partitions: Option<i32>, script: Vec<Result<(), String>>) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("store");
    let progress = Arc::new(Progress::new(
        "embedded".into(),
        true,
        10_000,
        Duration::from_secs(30),
    ));
    let hub = Hub::new(
        HubConfig::new(10_000),
        progress.clone(),
        Some(store.clone()),
    );
    let calls = Arc::new(Mutex::new(Vec::new()));
    let stored_before = Arc::new(Mutex::new(Vec::new()));
    let sink = FakeSink {
        partitions,
        script: Arc::new(Mutex::new(script.into())),
        calls: calls.clone(),
        store: store.clone(),
        stored_before: stored_before.clone(),
    };
    let (committer, handle) = Committer::new((store.clone(), progress, hub), sink);
    Rig {
        _dir: dir,
        store,
        calls,
        stored_before,
        committer,
        handle,
    }
}

fn write(partition: i32, seq: u64, next_offset: i64) -> PartitionWrite {
    PartitionWrite {
        topic: "clicks".into(),
        partition,
        checkpoint: PartitionCheckpoint {
            next_offset,
            seq,
            events: next_offset as u64,
            ..Default::default()
        },
        ..Default::default()
    }
}

impl Rig {
    /// Serve everything handed over so far, then stop.
    async fn serve(self) -> (Store, Vec<Call>, Vec<bool>) {
        let done = CancellationToken::new();
        done.cancel();
        self.committer.run(done).await.expect("committer");
        let calls = self.calls.lock().expect("lock").clone();
        let before = self.stored_before.lock().expect("lock").clone();
        (self.store, calls, before)
    }

    fn next_offset(store: &Store, partition: i32) -> Option<i64> {
        store
            .partition("clicks", partition)
            .expect("read")
            .map(|cp| cp.next_offset)
    }
}

#[tokio::test]
async fn checkpoints_handed_over_together_commit_in_one_transaction_then_reach_the_store() {
    let r = rig(Some(4), vec![]);
    let a = r.handle.submit(write(0, 1, 10), false).await;
    let b = r.handle.submit(write(1, 1, 20), false).await;
    let (store, calls, before) = r.serve().await;
    assert_eq!(a.await.expect("answer"), CommitOutcome::Committed);
    assert_eq!(b.await.expect("answer"), CommitOutcome::Committed);
    assert_eq!(
        calls,
        vec![
            Call::Transact(vec!["clicks/0@1".into(), "clicks/1@1".into()], 0),
            Call::Stored(vec!["clicks/0@1".into(), "clicks/1@1".into()], false),
            Call::Close,
        ]
    );
    assert_eq!(before, vec![false], "the store is written after the commit");
    assert_eq!(Rig::next_offset(&store, 0), Some(10));
    assert_eq!(Rig::next_offset(&store, 1), Some(20));
}

#[tokio::test]
async fn an_aborted_transaction_answers_every_checkpoint_in_it_and_stores_none() {
    let r = rig(Some(4), vec![Err("fenced".into())]);
    let a = r.handle.submit(write(0, 1, 10), false).await;
    let b = r.handle.submit(write(1, 1, 20), true).await;
    let (store, calls, _) = r.serve().await;
    assert_eq!(
        a.await.expect("answer"),
        CommitOutcome::Aborted("fenced".into())
    );
    assert_eq!(
        b.await.expect("answer"),
        CommitOutcome::Aborted("fenced".into())
    );
    assert!(
        !calls.iter().any(|c| matches!(c, Call::Stored(..))),
        "{calls:?}"
    );
    assert_eq!(Rig::next_offset(&store, 0), None);
    assert_eq!(Rig::next_offset(&store, 1), None);
}

#[tokio::test]
async fn a_second_checkpoint_of_a_partition_in_one_batch_supersedes_the_first() {
    let r = rig(Some(4), vec![]);
    let old = r.handle.submit(write(2, 1, 5), false).await;
    let new = r.handle.submit(write(2, 2, 9), false).await;
    let (store, calls, _) = r.serve().await;
    assert_eq!(
        old.await.expect("answer"),
        CommitOutcome::Aborted("superseded".into())
    );
    assert_eq!(new.await.expect("answer"), CommitOutcome::Committed);
    assert_eq!(calls[0], Call::Transact(vec!["clicks/2@2".into()], 0));
    assert_eq!(Rig::next_offset(&store, 2), Some(9));
}

#[tokio::test]
async fn a_checkpoint_whose_task_is_gone_is_never_committed() {
    let r = rig(Some(4), vec![]);
    drop(r.handle.submit(write(0, 1, 10), false).await);
    let kept = r.handle.submit(write(1, 1, 3), false).await;
    let (store, calls, _) = r.serve().await;
    assert_eq!(kept.await.expect("answer"), CommitOutcome::Committed);
    assert_eq!(calls[0], Call::Transact(vec!["clicks/1@1".into()], 0));
    assert_eq!(Rig::next_offset(&store, 0), None);
}

#[tokio::test]
async fn a_barrier_is_answered_once_what_came_before_it_is_settled() {
    let r = rig(None, vec![]);
    let handle = r.handle.clone();
    let answer = handle.submit(write(0, 1, 10), true).await;
    let store = r.store.clone();
    let barrier = tokio::spawn(async move {
        handle.barrier().await;
        // Settled before the barrier's answer: committed and stored.
        store
            .partition("clicks", 0)
            .expect("read")
            .map(|cp| cp.next_offset)
    });
    let done = CancellationToken::new();
    let serving = tokio::spawn({
        let done = done.clone();
        r.committer.run(done)
    });
    assert_eq!(barrier.await.expect("barrier"), Some(10));
    assert_eq!(answer.await.expect("answer"), CommitOutcome::Committed);
    done.cancel();
    serving.await.expect("join").expect("committer");
    let calls = r.calls.lock().expect("lock").clone();
    assert_eq!(
        calls[..2],
        [
            Call::Transact(vec!["clicks/0@1".into()], 0),
            Call::Stored(vec!["clicks/0@1".into()], true),
        ],
        "a releasing checkpoint's group commit is synchronous"
    );
}

#[tokio::test]
async fn records_ride_in_the_next_transaction_and_need_a_state_topic() {
    let r = rig(Some(4), vec![]);
    let handle = r.handle.clone();
    let tombstoned = tokio::spawn(async move {
        handle
            .tombstone(&[("clicks".into(), 0, 0), ("clicks".into(), 1, 10_000)])
            .await
    });
    // The committer serves what arrives before it is told to stop: wait for the request.
    while r.committer.rx.is_empty() {
        tokio::task::yield_now().await;
    }
    let (_, calls, _) = r.serve().await;
    assert_eq!(tombstoned.await.expect("join"), CommitOutcome::Committed);
    assert_eq!(calls[0], Call::Transact(vec![], 2));

    let without = rig(None, vec![]);
    assert_eq!(
        without.handle.tombstone(&[("clicks".into(), 0, 0)]).await,
        CommitOutcome::Committed,
        "nothing to tombstone without a state topic"
    );
    assert!(without.committer.rx.is_empty(), "and nothing is sent");
}

#[tokio::test]
async fn a_committer_whose_handles_are_gone_closes_its_sink_and_ends() {
    let r = rig(Some(4), vec![]);
    let Rig {
        committer,
        handle,
        calls,
        _dir,
        ..
    } = r;
    drop(handle);
    committer
        .run(CancellationToken::new())
        .await
        .expect("committer");
    assert_eq!(calls.lock().expect("lock").clone(), vec![Call::Close]);
}
