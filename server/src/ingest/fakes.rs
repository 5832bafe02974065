//! Test doubles for ingest's seams, so its state machines run without a broker: a
//! committer sink ([`FakeSink`]), a partition's messages ([`FakeFeed`]) and the group's
//! consumer as a partition task sees it ([`FakeGroup`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{OwnedMessage, Timestamp};
use rdkafka::Offset;
use tokio::sync::mpsc;

use super::client::Committed;
use super::commit::Sink;
use super::partition::{Feed, Group};
use super::IngestError;
use crate::store::record::OutRecord;
use crate::store::{PartitionWrite, Store};

/// What the committer asked of the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// A transaction of these checkpoints (`topic/partition@seq`) and this many records.
    Transact(Vec<String>, usize),
    /// The store holds these checkpoints; `sync` when a partition was being released.
    Stored(Vec<String>, bool),
    Close,
}

/// A sink that answers transactions as scripted (committed when the script is empty) and
/// logs every call, with what the store held of each checkpoint at that moment.
pub(crate) struct FakeSink {
    pub(crate) partitions: Option<i32>,
    /// Shared so a test can script more while the committer runs.
    pub(crate) script: Arc<Mutex<VecDeque<Result<(), String>>>>,
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) store: Store,
    /// For each transaction: whether the store already held its checkpoints.
    pub(crate) stored_before: Arc<Mutex<Vec<bool>>>,
}

pub(crate) fn names(writes: &[PartitionWrite]) -> Vec<String> {
    writes
        .iter()
        .map(|w| format!("{}/{}@{}", w.topic, w.partition, w.checkpoint.seq))
        .collect()
}

impl Sink for FakeSink {
    fn state_partitions(&self) -> Option<i32> {
        self.partitions
    }

    async fn transact(
        &mut self,
        writes: &[PartitionWrite],
        records: Vec<OutRecord>,
    ) -> Result<Result<(), String>, IngestError> {
        let held = writes.iter().any(|w| {
            self.store
                .partition(&w.topic, w.partition)
                .ok()
                .flatten()
                .is_some_and(|cp| cp.seq >= w.checkpoint.seq)
        });
        self.stored_before.lock().expect("lock").push(held);
        self.calls
            .lock()
            .expect("lock")
            .push(Call::Transact(names(writes), records.len()));
        let next = self.script.lock().expect("lock").pop_front();
        Ok(next.unwrap_or(Ok(())))
    }

    async fn stored(&mut self, writes: &[PartitionWrite], sync: bool) {
        self.calls
            .lock()
            .expect("lock")
            .push(Call::Stored(names(writes), sync));
    }

    async fn close(&mut self) -> Result<(), IngestError> {
        self.calls.lock().expect("lock").push(Call::Close);
        Ok(())
    }
}

/// A partition's messages, sent by the test.
pub(crate) struct FakeFeed {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<KafkaResult<OwnedMessage>>>,
}

/// The test's end of a [`FakeFeed`].
#[derive(Clone)]
pub(crate) struct FeedTx {
    tx: mpsc::UnboundedSender<KafkaResult<OwnedMessage>>,
    topic: String,
    partition: i32,
}

impl FakeFeed {
    pub(crate) fn new(topic: &str, partition: i32) -> (Self, FeedTx) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            FakeFeed {
                rx: tokio::sync::Mutex::new(rx),
            },
            FeedTx {
                tx,
                topic: topic.to_owned(),
                partition,
            },
        )
    }
}

impl FeedTx {
    /// The message at `offset` with `payload`.
    pub(crate) fn send(&self, offset: i64, payload: &str) {
        let m = OwnedMessage::new(
            Some(payload.as_bytes().to_vec()),
            None,
            self.topic.clone(),
            Timestamp::CreateTime(crate::now_ms()),
            self.partition,
            offset,
            None,
        );
        let _ = self.tx.send(Ok(m));
    }

    /// An error in place of a message.
    pub(crate) fn fail(&self, e: KafkaError) {
        let _ = self.tx.send(Err(e));
    }
}

impl FakeFeed {
    pub(crate) async fn recv(&self) -> KafkaResult<OwnedMessage> {
        let next = self.rx.lock().await.recv().await;
        match next {
            Some(m) => m,
            // Nothing more will come: like a caught-up partition, wait for ever.
            None => std::future::pending().await,
        }
    }
}

impl Feed for FakeFeed {
    type Message<'a> = OwnedMessage;
    type Messages<'a> =
        std::pin::Pin<Box<dyn futures::Stream<Item = KafkaResult<OwnedMessage>> + Send + 'a>>;

    fn messages(&self) -> Self::Messages<'_> {
        Box::pin(futures::stream::unfold(self, |feed| async move {
            Some((feed.recv().await, feed))
        }))
    }
}

/// What a [`FakeGroup`] answers and what it was asked.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    pub(crate) committed: Option<Committed>,
    /// Refuse this many committed-offset requests first.
    pub(crate) committed_failures: usize,
    pub(crate) bounds: (i64, i64),
    pub(crate) seeks: Vec<Option<i64>>,
    pub(crate) restarts: Vec<Offset>,
    pub(crate) closed: bool,
}

/// The group's consumer as a partition task sees it.
#[derive(Default)]
pub(crate) struct FakeGroup {
    pub(crate) state: Mutex<GroupState>,
}

impl FakeGroup {
    pub(crate) fn with(f: impl FnOnce(&mut GroupState)) -> Arc<Self> {
        let g = FakeGroup::default();
        f(&mut g.state.lock().expect("lock"));
        Arc::new(g)
    }

    pub(crate) fn seeks(&self) -> Vec<Option<i64>> {
        self.state.lock().expect("lock").seeks.clone()
    }

    pub(crate) fn restarts(&self) -> Vec<Offset> {
        self.state.lock().expect("lock").restarts.clone()
    }
}

impl Group for Arc<FakeGroup> {
    fn is_open(&self) -> bool {
        !self.state.lock().expect("lock").closed
    }

    async fn committed(&self, _topic: &str, _partition: i32) -> Result<Option<Committed>, String> {
        let mut s = self.state.lock().expect("lock");
        if s.committed_failures > 0 {
            s.committed_failures -= 1;
            return Err("the coordinator is moving".into());
        }
        Ok(s.committed)
    }

    async fn seek(
        &self,
        _topic: &str,
        _partition: i32,
        offset: Option<i64>,
    ) -> Result<(), IngestError> {
        self.state.lock().expect("lock").seeks.push(offset);
        Ok(())
    }

    async fn log_bounds(&self, _topic: &str, _partition: i32) -> Result<(i64, i64), String> {
        Ok(self.state.lock().expect("lock").bounds)
    }

    async fn restart_at(
        &self,
        _topic: &str,
        _partition: i32,
        at: Offset,
    ) -> Result<(), IngestError> {
        self.state.lock().expect("lock").restarts.push(at);
        Ok(())
    }
}

/// The topic of the tests' partitions.
pub(crate) const TOPIC: &str = "clicks";
/// How long a test waits for what it expects before it fails.
pub(crate) const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// A valid event (visitor `v{i}`), stamped ten seconds ago: on time, never late, never in
/// the future.
pub(crate) fn event(i: i64) -> String {
    let ts = crate::now_ms() - 10_000;
    format!(
        r#"{{"ts":{ts},"type":"pageview","visitor":"v{i}","session":"s{i}","url":"/p{}"}}"#,
        i % 3
    )
}

/// What partition tasks share, over a store in a temporary directory, a hub, a status and
/// a running committer whose sink commits (or aborts, as `script` says).
pub(crate) struct TestIngest {
    _dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) progress: Arc<crate::progress::Progress>,
    pub(crate) hub: Arc<crate::hub::Hub>,
    pub(crate) script: Arc<Mutex<VecDeque<Result<(), String>>>>,
    handle: super::CommitHandle,
    done: tokio_util::sync::CancellationToken,
    committer: tokio::task::JoinHandle<Result<(), IngestError>>,
}

impl TestIngest {
    /// Windows of 10 s; `state_topic`: checkpoints go through (fake) transactions.
    pub(crate) fn new(state_topic: bool) -> Self {
        use std::time::Duration;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("store");
        let progress = Arc::new(crate::progress::Progress::new(
            "test".into(),
            false,
            10_000,
            Duration::from_secs(30),
        ));
        let hub = crate::hub::Hub::new(
            crate::hub::HubConfig::new(10_000),
            progress.clone(),
            Some(store.clone()),
        );
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let sink = FakeSink {
            partitions: state_topic.then_some(4),
            script: script.clone(),
            calls: Arc::default(),
            store: store.clone(),
            stored_before: Arc::default(),
        };
        let (committer, handle) =
            super::commit::Committer::new((store.clone(), progress.clone(), hub.clone()), sink);
        let done = tokio_util::sync::CancellationToken::new();
        let committer = tokio::spawn(committer.run(done.clone()));
        TestIngest {
            _dir: dir,
            store,
            progress,
            hub,
            script,
            handle,
            done,
            committer,
        }
    }

    /// What a partition task of this rig shares, asking `group` for its partition.
    pub(crate) fn shared<G>(
        &self,
        group: G,
        offset_reset: crate::config::OffsetReset,
        restore: Option<super::partition::RestoreFrom>,
    ) -> Arc<super::partition::TaskShared<G>> {
        use pulseboard_model::mapping::FieldMapping;
        use pulseboard_model::window::WindowConfig;
        use std::time::Duration;
        Arc::new(super::partition::TaskShared {
            store: self.store.clone(),
            progress: self.progress.clone(),
            hub: self.hub.clone(),
            consumer: group,
            // Never used by the tests' events (all valid): no dead letter is produced.
            producer: super::client::dead_letter_producer_config("127.0.0.1:9")
                .create()
                .expect("producer"),
            dead_letter_topics: Default::default(),
            checkpoint_interval: Duration::from_millis(20),
            offset_reset,
            committer: self.handle.clone(),
            engine: super::engine::EngineConfig {
                windows: WindowConfig {
                    width_ms: 10_000,
                    lateness_ms: 5_000,
                },
                max_clock_skew_ms: 300_000,
                revision_horizon_ms: 86_400_000,
                spec: Arc::default(),
            },
            decoder: Arc::new(pulseboard_model::decode::Decoder::new(FieldMapping::new(
                Default::default(),
                &[],
            ))),
            restore,
            me: ("me".into(), "http://me".into()),
        })
    }

    /// The store's checkpoint of `TOPIC`/`partition`.
    pub(crate) fn stored(&self, partition: i32) -> Option<crate::store::PartitionCheckpoint> {
        self.store.partition(TOPIC, partition).expect("read")
    }

    /// Waits (bounded by [`PATIENCE`]) until the stored checkpoint of `partition`
    /// satisfies `ok`.
    pub(crate) async fn until_stored(
        &self,
        partition: i32,
        what: &str,
        ok: impl Fn(&crate::store::PartitionCheckpoint) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.stored(partition).as_ref().is_some_and(&ok) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: the store holds {:?}",
                self.stored(partition)
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Stops the committer (once every task has handed its last checkpoint over).
    pub(crate) async fn stop(self) -> Store {
        self.done.cancel();
        drop(self.handle);
        self.committer.await.expect("join").expect("committer");
        self.store
    }
}
