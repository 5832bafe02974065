//! Where a partition task starts: the partition's state as of the group's last committed
//! checkpoint (see the contract in `partition`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Group, TaskShared};
use crate::ingest::engine::PartitionEngine;
use crate::ingest::start::StartPoint;
use crate::ingest::IngestError;
use crate::store::StoreError;
use crate::telemetry;

/// The partition's state as of the group's last committed checkpoint (see the module
/// docs): with a state topic, the group's committed offset is asked for (a transaction
/// still open on it is waited for) and the store brought up to that checkpoint by the
/// state topic's reader; without one, the store, or the group's offset when another
/// instance read further (`assigned`, from the rebalance callback). `None` when `cancel`
/// fired meanwhile.
pub(super) async fn restore<G: Group>(
    topic: &str,
    partition: i32,
    assigned: Option<StartPoint>,
    shared: &TaskShared<G>,
    cancel: &CancellationToken,
) -> Result<Option<PartitionEngine>, IngestError> {
    let store_err = |source: StoreError| IngestError::Store {
        topic: topic.to_owned(),
        partition,
        source,
    };
    let from_store = |shared: &TaskShared<G>| {
        PartitionEngine::restore(
            &shared.store,
            topic,
            partition,
            shared.engine.clone(),
            shared.decoder.clone(),
        )
        .map_err(store_err)
    };
    let Some(from) = &shared.restore else {
        // No state topic: the store (once what an earlier task of this partition handed to
        // the committer is written), or the group's offset when another instance read
        // further.
        shared.committer.barrier().await;
        let mut engine = from_store(shared)?;
        if let Some(StartPoint::HandedOver {
            offset,
            max_event_ts,
        }) = assigned
        {
            tracing::info!(
                topic,
                partition,
                offset,
                "taking over where the group's last owner stopped"
            );
            engine.adopt_handover(offset, max_event_ts);
        }
        return Ok(Some(engine));
    };
    let started = tokio::time::Instant::now();
    // Whatever an earlier task of this partition handed to the committer is settled first:
    // committed (and then in the group's offset) or never.
    tokio::select! {
        biased;
        _ = cancel.cancelled() => return Ok(None),
        _ = shared.committer.barrier() => {}
    }
    let deadline = started + from.timeout;
    let timed_out = |why: String| IngestError::Restore {
        topic: topic.to_owned(),
        partition,
        timeout: from.timeout,
        why,
    };
    // 1. What the group committed (a transaction still open on it is waited for).
    let committed = loop {
        let asked = shared.consumer.committed(topic, partition);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(None),
            r = asked => match r {
                Ok(c) => break c,
                Err(why) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(timed_out(format!("cannot read the group's committed offset: {why}")));
                    }
                    tracing::debug!(topic, partition, error = why, "committed offset not available yet; asking again");
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            },
        }
    };
    // 2. The store must hold that checkpoint: the state topic's reader brings it.
    if let Some(seq) = committed.and_then(|c| c.seq) {
        let mut applied = from.applied.clone();
        loop {
            let stored = shared
                .store
                .partition(topic, partition)
                .map_err(store_err)?
                .map_or(0, |cp| cp.seq);
            if stored >= seq {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(None),
                changed = tokio::time::timeout_at(deadline, applied.changed()) => match changed {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(timed_out("the state topic's reader has stopped".into())),
                    Err(_) => return Err(timed_out(format!(
                        "the group committed checkpoint {seq} (offset {}), but the state topic brought this store only to checkpoint {stored}; is the state topic readable, or was it deleted? (to start the group over, give a new --group)",
                        committed.map_or(0, |c| c.offset)
                    ))),
                },
            }
        }
    }
    let mut engine = from_store(shared)?;
    if committed.is_some_and(|c| c.seq.is_none()) {
        // A commit made without a state topic: as without one, the further of the two.
        let group = committed.map(|c| (c.offset, c.max_event_ts));
        if let StartPoint::HandedOver {
            offset,
            max_event_ts,
        } = StartPoint::choose(engine.stored_offset(), group)
        {
            engine.adopt_handover(offset, max_event_ts);
        }
    }
    // The hub loaded the store when this instance started; the state topic's reader may
    // have brought checkpoints since (one of them is this restore's).
    shared.hub.reload_partition(topic, partition);
    telemetry::partition_restored(topic, partition, engine.stored_offset(), started.elapsed());
    Ok(Some(engine))
}
