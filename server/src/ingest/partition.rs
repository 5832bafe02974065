//! One partition's task: read, fold, dead-letter, checkpoint, commit; restart after an
//! offset reset; flush on stop.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::dead_letter::{on_message, Pending};
use super::{Consumer_, IngestError, Queue, COMMIT_TIMEOUT};
use crate::engine::PartitionEngine;
use crate::hub::Hub;
use crate::kafka::{commit_metadata, OffsetReset};
use crate::live::{Live, Progress};
use crate::store::{Store, StoreError};
use crate::telemetry;

pub(super) struct TaskShared {
    pub(super) store: Store,
    pub(super) live: Arc<Live>,
    pub(super) hub: Arc<Hub>,
    pub(super) consumer: Weak<Consumer_>,
    pub(super) producer: FutureProducer,
    pub(super) dead_letter_topics: HashMap<String, String>,
    pub(super) checkpoint_interval: Duration,
    pub(super) offset_reset: OffsetReset,
}

/// One partition: read, fold, dead-letter, checkpoint; flush on stop.
pub(super) async fn partition_task(
    mut engine: PartitionEngine,
    queue: Queue,
    mut stop: mpsc::Receiver<Commit>,
    shared: Arc<TaskShared>,
    fatal: mpsc::UnboundedSender<IngestError>,
) {
    let topic = engine.topic().to_owned();
    let partition = engine.partition();
    let dlq = shared
        .dead_letter_topics
        .get(&topic)
        .cloned()
        .unwrap_or_else(|| format!("{topic}-dlq"));
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(shared.checkpoint_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Changed open windows go to the hub at once when the last hand-over is older than
    // `live_interval`, else when that much time has passed (coalescing under load).
    let live_gap = shared.hub.config().live_interval;
    let mut last_live = tokio::time::Instant::now() - live_gap;
    let live_due = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(live_due);
    let mut live_pending = false;
    let mut saw_messages = false;
    let mut reads = ReadTimes::default();
    let result: Result<(), StoreError> = loop {
        tokio::select! {
            // Stop first so a revoke is served promptly; then the checkpoint and live ticks,
            // so a busy partition still checkpoints and shows progress on time; messages last.
            biased;
            commit = stop.recv() => {
                let commit = commit.unwrap_or(Commit::Sync);
                break checkpoint(&mut engine, &shared, &mut pending, saw_messages, reads, commit).await
            }
            _ = tick.tick() => {
                if let Err(e) = checkpoint(&mut engine, &shared, &mut pending, saw_messages, reads, Commit::Async).await {
                    break Err(e);
                }
                saw_messages = false;
            }
            _ = &mut live_due, if live_pending => {
                live_pending = false;
                last_live = tokio::time::Instant::now();
                if let Some(windows) = engine.take_live_windows() {
                    shared.hub.update(&topic, partition, windows);
                }
            }
            msg = queue.recv() => {
                saw_messages = true;
                // Drain what is already fetched before going back to the select: one round
                // of timer and channel polling per batch, not per message.
                let mut next = Some(msg);
                let mut batch = 0;
                let now_ms = crate::now_ms();
                while let Some(msg) = next.take() {
                    let handled = match msg {
                        Ok(m) => {
                            #[cfg(debug_assertions)]
                            test_hook::panic_if_asked(&topic, partition, rdkafka::Message::offset(&m));
                            on_message(&mut engine, &m, now_ms, &dlq, &shared.producer, &mut pending).await;
                            Ok(())
                        }
                        Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                            offset_out_of_range(&mut engine, &shared, &mut pending).await
                        }
                        Err(e) => {
                            tracing::warn!(topic, partition, error = %e, "consume error");
                            Ok(())
                        }
                    };
                    if let Err(e) = handled {
                        let _ = fatal.send(e);
                        return;
                    }
                    batch += 1;
                    if batch < MAX_BATCH {
                        next = queue.recv().now_or_never();
                    }
                }
                reads.batch_done();
                if engine.has_live_changes() && !live_pending {
                    live_pending = true;
                    live_due.as_mut().reset(last_live + live_gap);
                }
                // The partition queue is not a tokio resource and is always ready while a
                // backlog lasts: without this the loop would never yield, and the worker
                // would never run its timers (checkpoints) or serve HTTP.
                tokio::task::consume_budget().await;
            }
        }
    };
    if let Err(source) = result {
        telemetry::checkpoint_failed(&topic, partition, &source);
        let _ = fatal.send(IngestError::Store {
            topic,
            partition,
            source,
        });
    }
}

/// A deliberate panic for the tests of panic handling, in debug builds only:
/// `PULSEBOARD_TEST_PANIC_AT=topic/partition@offset` panics the partition task when it reads
/// that offset. Release builds do not contain it.
#[cfg(debug_assertions)]
mod test_hook {
    use std::sync::OnceLock;

    pub(super) const VAR: &str = "PULSEBOARD_TEST_PANIC_AT";

    fn target() -> &'static Option<(String, i32, i64)> {
        static T: OnceLock<Option<(String, i32, i64)>> = OnceLock::new();
        T.get_or_init(|| std::env::var(VAR).ok().as_deref().and_then(parse))
    }

    pub(super) fn parse(s: &str) -> Option<(String, i32, i64)> {
        let (tp, offset) = s.rsplit_once('@')?;
        let (topic, partition) = tp.rsplit_once('/')?;
        Some((
            topic.to_owned(),
            partition.parse().ok()?,
            offset.parse().ok()?,
        ))
    }

    pub(super) fn panic_if_asked(topic: &str, partition: i32, offset: i64) {
        if let Some((t, p, o)) = target() {
            if t == topic && *p == partition && *o == offset {
                panic!("{VAR}: deliberate panic at {topic}/{partition}@{offset}");
            }
        }
    }

    #[test]
    fn the_hook_names_one_offset_of_one_partition() {
        assert_eq!(parse("clicks/3@120"), Some(("clicks".into(), 3, 120)));
        assert_eq!(parse("a/b/0@7"), Some(("a/b".into(), 0, 7)));
        assert_eq!(parse("clicks@1"), None);
    }
}

/// Messages handled in one go before the partition task looks at its timers again.
pub(super) const MAX_BATCH: usize = 1024;

/// The stored offset is outside the log: apply `--offset-reset`. The target offset is
/// looked up and checkpointed before reading restarts there, so a crash right after the
/// reset restarts at the same place and skips nothing.
pub(super) async fn offset_out_of_range(
    engine: &mut PartitionEngine,
    shared: &TaskShared,
    pending: &mut Pending,
) -> Result<(), IngestError> {
    let topic = engine.topic().to_owned();
    let partition = engine.partition();
    let stored = engine.stored_offset().unwrap_or(0);
    let earliest = match shared.offset_reset {
        OffsetReset::Fail => {
            return Err(IngestError::OffsetOutOfRange {
                topic,
                partition,
                stored,
            });
        }
        OffsetReset::Earliest => true,
        OffsetReset::Latest => false,
    };
    let Some(consumer) = shared.consumer.upgrade() else {
        return Ok(());
    };
    telemetry::offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
    shared
        .live
        .note_offset_reset(&topic, partition, stored, shared.offset_reset.as_str());
    let bounds = {
        let (c, t) = (consumer.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            c.fetch_watermarks(&t, partition, Duration::from_secs(10))
        })
        .await
    };
    let target = match bounds {
        Ok(Ok((low, high))) => {
            let target = if earliest { low } else { high };
            engine.reset_offset(Some(target));
            pending.settle(engine).await;
            engine
                .checkpoint(&shared.store)
                .await
                .map_err(|source| IngestError::Store {
                    topic: topic.clone(),
                    partition,
                    source,
                })?;
            Offset::Offset(target)
        }
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
                Ok(Ok(_)) => String::new(),
            };
            tracing::error!(topic, partition, error = why, "cannot look up the log's bounds; restarting at the logical offset, not checkpointed");
            engine.reset_offset(None);
            if earliest {
                Offset::Beginning
            } else {
                Offset::End
            }
        }
    };
    // librdkafka has stopped fetching this partition (auto.offset.reset=error leaves it
    // in its "none" state, where a seek is refused): restart it alone, at the target.
    let restart = tokio::task::spawn_blocking(move || {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, partition);
        consumer.incremental_unassign(&tpl)?;
        tpl.set_partition_offset(&topic, partition, target)?;
        consumer.incremental_assign(&tpl)
    })
    .await;
    match restart {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(IngestError::Restart {
            topic: engine.topic().to_owned(),
            partition,
            source: e,
        }),
        Err(e) => {
            tracing::error!(error = %e, "restarting the partition failed");
            Ok(())
        }
    }
}

pub(super) fn progress(
    engine: &PartitionEngine,
    saw_messages: bool,
    reads: ReadTimes,
) -> Progress<'_> {
    Progress {
        topic: engine.topic(),
        partition: engine.partition(),
        counts: engine.checkpoint_state().into(),
        watermark: engine.watermark(),
        saw_messages,
        read_since_start: engine.read_since_start(),
        first_read_ms: reads.first,
        last_read_ms: reads.last,
    }
}

/// When this process read the first and the last message of a partition (wall clock, one
/// reading per batch).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReadTimes {
    first: Option<i64>,
    last: Option<i64>,
}

impl ReadTimes {
    fn batch_done(&mut self) {
        let now = crate::now_ms();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }
}

/// How the advisory commit after a checkpoint is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Fire and forget (regular checkpoints).
    Async,
    /// Wait for the broker, at most [`COMMIT_TIMEOUT`] (before releasing a partition, so the
    /// next owner sees it).
    Sync,
    /// None: the partition was lost, the group would refuse it.
    Skip,
}

pub(super) async fn checkpoint(
    engine: &mut PartitionEngine,
    shared: &TaskShared,
    pending: &mut Pending,
    saw_messages: bool,
    reads: ReadTimes,
    commit: Commit,
) -> Result<(), StoreError> {
    if engine.needs_checkpoint() {
        pending.settle(engine).await;
        let report = engine.checkpoint(&shared.store).await?;
        telemetry::checkpoint_written(
            engine.topic(),
            engine.partition(),
            report.next_offset,
            report.windows.len(),
        );
        let written: Vec<i64> = report.windows.iter().map(|(s, _)| *s).collect();
        // Windows that took late events were marked revised in the checkpoint itself.
        shared.live.mark_revised(report.revised.iter().copied());
        let revised = shared
            .live
            .publish_partition(progress(engine, saw_messages, reads), &written);
        if !revised.is_empty() {
            // Windows written on time for this partition after the global watermark had
            // passed them (a slow partition): shown final, now changed. The marks let a
            // restart show them revised still; a crash before this line loses only the mark.
            shared.store.mark_revised(&revised)?;
        }
        shared
            .hub
            .update(engine.topic(), engine.partition(), report.windows);
    } else {
        shared
            .live
            .publish_partition(progress(engine, saw_messages, reads), &[]);
        // Nothing new to store; an async commit would repeat the last one. A partition
        // being released still commits: the last async commit may have been refused by
        // the rebalance now under way, and the next owner starts from what is committed.
        if commit == Commit::Async {
            return Ok(());
        }
    }
    if commit == Commit::Skip {
        return Ok(());
    }
    if let Some(next_offset) = engine.stored_offset() {
        commit_offset(engine, shared, next_offset, commit).await;
    }
    Ok(())
}

/// Commit `next_offset` (with the max event time as metadata) to the group.
pub(super) async fn commit_offset(
    engine: &PartitionEngine,
    shared: &TaskShared,
    next_offset: i64,
    commit: Commit,
) {
    let Some(consumer) = shared.consumer.upgrade() else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition_offset(
            engine.topic(),
            engine.partition(),
            Offset::Offset(next_offset),
        )
        .is_err()
    {
        return;
    }
    if let Some(mut elem) = tpl.find_partition(engine.topic(), engine.partition()) {
        elem.set_metadata(commit_metadata(engine.checkpoint_state().max_event_ts));
    }
    let (topic, partition) = (engine.topic(), engine.partition());
    match commit {
        Commit::Async => {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                telemetry::commit_failed(topic, partition, "async", &e);
            }
        }
        Commit::Sync => {
            let blocking =
                tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
            match tokio::time::timeout(COMMIT_TIMEOUT, blocking).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => telemetry::commit_failed(topic, partition, "sync", &e),
                Ok(Err(e)) => telemetry::commit_failed(topic, partition, "sync", &e),
                Err(_) => telemetry::commit_failed(
                    topic,
                    partition,
                    "sync",
                    &format!("not answered within {COMMIT_TIMEOUT:?} (is the group coordinator failing over?)"),
                ),
            }
        }
        Commit::Skip => {}
    }
}
