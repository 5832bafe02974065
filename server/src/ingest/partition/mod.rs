//! One partition's task: restore, read, fold, dead-letter, checkpoint through the
//! committer; restart after an offset reset; flush on stop.
//!
//! Contract:
//! - Before it reads, the task has the partition's state as of the group's last committed
//!   checkpoint. With a state topic: it asks the group for the committed offset (whose
//!   metadata carries the checkpoint's `seq`) and waits, bounded by `--restore-timeout`,
//!   until the state topic's reader has brought the store up to that checkpoint; then it
//!   restores the engine from the store and seeks to the stored offset. Without one, the
//!   store is the truth (or the group's offset, when another instance read further).
//! - Every checkpoint interval it prepares a checkpoint and hands it to the committer, then
//!   goes on reading; it never has two in flight. A checkpoint stays bounded: once
//!   [`MAX_CHECKPOINT_WINDOWS`] windows changed (a backlog spread over much event time), it
//!   hands one over at once, and while that one is in flight it reads no further, so one
//!   transaction never grows past what commits within its budget (a checkpoint that could
//!   never commit would be read, aborted and read again for ever). When the answer is
//!   `Committed` the checkpoint is published (status, hub); when it is `Aborted` the engine
//!   is thrown away and restored from the store, and reading restarts at the stored offset:
//!   what was folded and not committed is read again, never lost, never counted twice.
//! - On stop it waits for the checkpoint in flight and, unless the partition was lost,
//!   commits a last one (synchronously) before it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use pulseboard_model::decode::Decoder;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::commit::{CommitHandle, CommitOutcome};
use super::dead_letter::{on_message, Pending};
use super::start::StartPoint;
use super::IngestError;
use crate::config::OffsetReset;
use crate::hub::Hub;
use crate::ingest::engine::EngineConfig;
use crate::progress::Progress;
use crate::store::{PartitionWrite, Store};

mod io;
mod restore;
mod task;

pub(in crate::ingest) use io::{Feed, Group};
use restore::restore;
use task::Task;

/// What a partition task needs of the state topic.
pub(super) struct RestoreFrom {
    /// How long a new partition may wait for its committed checkpoint.
    pub(super) timeout: Duration,
    /// Bumped by the state topic's reader after every checkpoint it applied.
    pub(super) applied: watch::Receiver<u64>,
}

pub(super) struct TaskShared<G> {
    pub(super) store: Store,
    pub(super) progress: Arc<Progress>,
    pub(super) hub: Arc<Hub>,
    /// The group's consumer, as the task asks it for its partition.
    pub(super) consumer: G,
    pub(super) producer: FutureProducer,
    pub(super) dead_letter_topics: HashMap<String, String>,
    pub(super) checkpoint_interval: Duration,
    pub(super) offset_reset: OffsetReset,
    pub(super) committer: CommitHandle,
    pub(super) engine: EngineConfig,
    pub(super) decoder: Arc<Decoder>,
    /// With a state topic: where restores come from.
    pub(super) restore: Option<RestoreFrom>,
    /// This instance (the owner recorded with each checkpoint).
    pub(super) me: (String, String),
}

/// How a partition task stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// With a last checkpoint, committed before the task returns (the partition is released
    /// to another owner, or the process stops).
    Sync,
    /// Without: the partition was lost (the group took it away without a revoke), a commit
    /// would be refused.
    Skip,
}

/// Messages handled in one go before the partition task looks at its timers again.
pub(super) const MAX_BATCH: usize = 1024;

/// Changed windows at which a partition checkpoints without waiting for its interval (and
/// stops reading while that checkpoint is in flight): each window is a record of the
/// checkpoint's transaction.
pub(super) const MAX_CHECKPOINT_WINDOWS: usize = 1_000;

/// One partition's task: restore, then read, fold, dead-letter and checkpoint; flush on
/// stop.
pub(super) async fn partition_task<F: Feed, G: Group>(
    (topic, partition): (String, i32),
    assigned: StartPoint,
    queue: F,
    (mut stop, cancel): (mpsc::Receiver<Commit>, CancellationToken),
    shared: Arc<TaskShared<G>>,
    fatal: mpsc::UnboundedSender<IngestError>,
) {
    let opened = async {
        let Some(engine) = restore(&topic, partition, Some(assigned), &shared, &cancel).await?
        else {
            return Ok(None);
        };
        // Read from where that checkpoint stopped.
        let target = engine.stored_offset();
        if target != assigned.stored() {
            shared.consumer.seek(&topic, partition, target).await?;
        }
        Ok::<_, IngestError>(Some(engine))
    };
    let engine = match opened.await {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            let _ = fatal.send(e);
            return;
        }
    };
    let dlq = shared
        .dead_letter_topics
        .get(&topic)
        .cloned()
        .unwrap_or_else(|| format!("{topic}-dlq"));
    let mut task = Task {
        engine,
        cancel,
        tainted: false,
        shared: shared.clone(),
        pending: Pending::default(),
        in_flight: None,
        saw_messages: false,
        at_end: false,
        reads: ReadTimes::default(),
        segments: Default::default(),
    };
    // Every partition of this instance checkpoints at the same instants (multiples of the
    // interval on the wall clock): their checkpoints reach the committer together and go
    // in one transaction, not one each. A tick missed while busy is skipped, so the phase
    // stays.
    let mut tick = aligned_interval(shared.checkpoint_interval, crate::now_ms());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Changed open windows go to the hub at once when the last hand-over is older than
    // `live_interval`, else when that much time has passed (coalescing under load).
    let live_gap = shared.hub.config().live_interval;
    let mut last_live = tokio::time::Instant::now() - live_gap;
    let live_due = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(live_due);
    let mut live_pending = false;
    let mut messages = queue.messages();
    let result: Result<(), IngestError> = loop {
        tokio::select! {
            // Stop first so a revoke is served promptly; then the committer's answer (the
            // next checkpoint waits for it), the checkpoint and live ticks, so a busy
            // partition still checkpoints and shows progress on time; messages last.
            biased;
            commit = stop.recv() => {
                break task.finish(commit.unwrap_or(Commit::Sync)).await;
            }
            outcome = answer(&mut task.in_flight) => {
                if let Err(e) = task.settled(outcome).await {
                    break Err(e);
                }
                // Reading waited for this answer: the next checkpoint goes at once.
                if let Err(e) = task.checkpoint_if_full().await {
                    break Err(e);
                }
            }
            _ = tick.tick() => {
                if let Err(e) = task.checkpoint(false).await {
                    break Err(e);
                }
            }
            _ = &mut live_due, if live_pending => {
                live_pending = false;
                last_live = tokio::time::Instant::now();
                if let Some(windows) = task.live_windows() {
                    shared.hub.update(&topic, partition, windows);
                }
            }
            Some(msg) = messages.next(), if !task.full() => {
                // Drain what is already fetched before going back to the select: one round
                // of timer and channel polling per batch, not per message.
                let mut next = Some(msg);
                let mut batch = 0;
                let now_ms = crate::now_ms();
                while let Some(msg) = next.take() {
                    let handled = match msg {
                        Ok(m) => {
                            task.saw_messages = true;
                            task.at_end = false;
                            #[cfg(debug_assertions)]
                            test_hook::panic_if_asked(&topic, partition, rdkafka::Message::offset(&m));
                            on_message(&mut task.engine, &m, now_ms, &dlq, &shared.producer, &mut task.pending).await;
                            Ok(())
                        }
                        Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                            task.offset_out_of_range().await
                        }
                        Err(KafkaError::PartitionEOF(_)) => {
                            task.at_end = true;
                            Ok(())
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
                    if batch < MAX_BATCH && !task.full() {
                        next = messages.next().now_or_never().flatten();
                    }
                }
                task.reads.batch_done();
                if let Err(e) = task.checkpoint_if_full().await {
                    break Err(e);
                }
                if task.engine.has_live_changes() && !live_pending {
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
    if let Err(e) = result {
        let _ = fatal.send(e);
    }
}

/// An interval of `period` whose ticks fall on the multiples of `period` since the epoch
/// (of the wall clock, read as `now_ms`), the first at the next one.
fn aligned_interval(period: Duration, now_ms: i64) -> tokio::time::Interval {
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1);
    let wait = period_ms - now_ms.rem_euclid(period_ms);
    let first = tokio::time::Instant::now() + Duration::from_millis(wait as u64);
    tokio::time::interval_at(first, period.max(Duration::from_millis(1)))
}

/// The answer to the checkpoint in flight (never ready without one).
async fn answer(
    in_flight: &mut Option<(PartitionWrite, oneshot::Receiver<CommitOutcome>)>,
) -> CommitOutcome {
    match in_flight {
        Some((_, rx)) => rx
            .await
            .unwrap_or_else(|_| CommitOutcome::Aborted("the committer has stopped".into())),
        None => std::future::pending().await,
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

#[cfg(test)]
mod tests;
