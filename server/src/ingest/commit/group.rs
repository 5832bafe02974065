//! Without a state topic: the store is the truth, and the group's offset commit after it is
//! advisory (for lag tools and the next owner): synchronous and bounded when a partition is
//! being released, fire-and-forget otherwise.

use std::sync::Weak;

use rdkafka::consumer::{CommitMode, Consumer};

use super::{offsets_of, Sink};
use crate::ingest::{Consumer_, IngestError, COMMIT_TIMEOUT};
use crate::store::record::OutRecord;
use crate::store::PartitionWrite;
use crate::telemetry;

/// The committer's sink without a state topic.
pub(in crate::ingest) struct GroupCommit {
    pub(in crate::ingest) consumer: Weak<Consumer_>,
}

impl Sink for GroupCommit {
    fn state_partitions(&self) -> Option<i32> {
        None
    }

    async fn transact(
        &mut self,
        _writes: &[PartitionWrite],
        _records: Vec<OutRecord>,
    ) -> Result<Result<(), String>, IngestError> {
        Ok(Ok(()))
    }

    async fn stored(&mut self, writes: &[PartitionWrite], sync: bool) {
        commit_offsets(&self.consumer, writes, sync).await;
    }

    async fn close(&mut self) -> Result<(), IngestError> {
        Ok(())
    }
}

/// The advisory commit after a sled checkpoint (no state topic).
async fn commit_offsets(consumer: &Weak<Consumer_>, writes: &[PartitionWrite], sync: bool) {
    let Some(consumer) = consumer.upgrade() else {
        return;
    };
    let tpl = offsets_of(writes, false);
    if tpl.count() == 0 {
        return;
    }
    let failed = |e: &dyn std::fmt::Display, mode: &'static str| {
        for w in writes {
            telemetry::commit_failed(&w.topic, w.partition, mode, e);
        }
    };
    if !sync {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            failed(&e, "async");
        }
        return;
    }
    let blocking = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
    match tokio::time::timeout(COMMIT_TIMEOUT, blocking).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => failed(&e, "sync"),
        Ok(Err(e)) => failed(&e, "sync"),
        Err(_) => failed(
            &format!(
                "not answered within {COMMIT_TIMEOUT:?} (is the group coordinator failing over?)"
            ),
            "sync",
        ),
    }
}
