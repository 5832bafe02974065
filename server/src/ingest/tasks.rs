//! The partition tasks of this instance, as the supervisor keeps them: one task per
//! assigned partition, started on assignment, stopped (with a last checkpoint, or without
//! one when the partition was lost) on revocation, all stopped at shutdown. A task that
//! panics is noticed at once.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::partition::{partition_task, Commit, Feed, Group, TaskShared};
use super::start::StartPoint;
use super::{IngestError, STOP_TIMEOUT};
use crate::progress::Progress;

/// The running partition tasks, by partition.
pub(super) struct PartitionTasks<G> {
    shared: Arc<TaskShared<G>>,
    fatal: mpsc::UnboundedSender<IngestError>,
    tasks: HashMap<(String, i32), PartitionHandle>,
}

impl<G: Group> PartitionTasks<G> {
    /// Tasks sharing `shared`; an error that must stop ingest goes to `fatal`.
    pub(super) fn new(
        shared: Arc<TaskShared<G>>,
        fatal: mpsc::UnboundedSender<IngestError>,
    ) -> Self {
        PartitionTasks {
            shared,
            fatal,
            tasks: HashMap::new(),
        }
    }

    /// Partitions were assigned: a task for each, reading `feed` from `start`.
    pub(super) fn assigned<F: Feed>(&mut self, queues: Vec<(String, i32, F, StartPoint)>) {
        let progress = &self.shared.progress;
        progress.mark_joined();
        for (topic, partition, feed, start) in queues {
            progress.set_assigned(&topic, partition, true);
            let (stop_tx, stop_rx) = mpsc::channel(1);
            let cancel = CancellationToken::new();
            let task = tokio::spawn(supervised(
                (topic.clone(), partition),
                partition_task(
                    (topic.clone(), partition),
                    start,
                    feed,
                    (stop_rx, cancel.clone()),
                    self.shared.clone(),
                    self.fatal.clone(),
                ),
                progress.clone(),
                self.fatal.clone(),
            ));
            self.tasks.insert(
                (topic, partition),
                PartitionHandle {
                    stop: stop_tx,
                    cancel,
                    task,
                },
            );
        }
    }

    /// Partitions are taken away: their tasks stop, all at once (their last checkpoints go
    /// in one transaction), with a last checkpoint unless `lost`; returns when they have.
    pub(super) async fn revoke(&mut self, partitions: &[(String, i32)], lost: bool) {
        let commit = if lost { Commit::Skip } else { Commit::Sync };
        let stopping = partitions.iter().filter_map(|key| self.tasks.remove(key));
        futures::future::join_all(stopping.map(|h| h.stop_and_wait(commit))).await;
        for (topic, partition) in partitions {
            self.shared.progress.set_assigned(topic, *partition, false);
            // What the hub showed of it may not have been committed.
            self.shared.hub.reload_partition(topic, *partition);
        }
    }

    /// Every task stops with a last checkpoint (shutdown).
    pub(super) async fn stop_all(&mut self) {
        futures::future::join_all(
            self.tasks
                .drain()
                .map(|(_, h)| h.stop_and_wait(Commit::Sync)),
        )
        .await;
    }

    /// The partitions with a task.
    #[cfg(test)]
    pub(super) fn running(&self) -> Vec<(String, i32)> {
        let mut v: Vec<_> = self.tasks.keys().cloned().collect();
        v.sort();
        v
    }
}

/// Run a partition task; a panic in it is caught here, at once: the partition is marked
/// failed in status and `/readyz`, counted, and reported to the supervisor, which stops
/// ingest with an error (the process exits non-zero). The partition's state since its last
/// checkpoint is dropped and read again from Kafka on the next start, so nothing is lost or
/// counted twice.
async fn supervised(
    (topic, partition): (String, i32),
    task: impl std::future::Future<Output = ()> + Send,
    progress: Arc<Progress>,
    fatal: mpsc::UnboundedSender<IngestError>,
) {
    use futures::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
        let message = crate::telemetry::panic_message(panic.as_ref());
        crate::telemetry::partition_task_panicked(&topic, partition, &message);
        progress.mark_failed(&topic, partition, &message);
        let _ = fatal.send(IngestError::PartitionPanicked {
            topic,
            partition,
            message,
        });
    }
}

struct PartitionHandle {
    stop: mpsc::Sender<Commit>,
    /// Cancelled with the stop: ends a task still restoring.
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl PartitionHandle {
    /// Ask the task to checkpoint (and commit as `commit` says) and wait for it.
    /// A task that does not stop within [`STOP_TIMEOUT`] is aborted, and reaped before
    /// this returns: its partition queue is gone before the partition can be assigned
    /// again (a late drop of an old queue would silence the new one).
    async fn stop_and_wait(mut self, commit: Commit) {
        let _ = self.stop.send(commit).await;
        self.cancel.cancel();
        let joined = match tokio::time::timeout(STOP_TIMEOUT, &mut self.task).await {
            Ok(r) => r,
            Err(_) => {
                crate::telemetry::partition_task_aborted(STOP_TIMEOUT);
                self.task.abort();
                (&mut self.task).await
            }
        };
        match joined {
            Err(e) if e.is_panic() => tracing::error!(error = %e, "partition task panicked"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
