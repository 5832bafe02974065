//! Dead letters: a message that cannot be counted is produced to the dead-letter topic with
//! its reason; the checkpoint that moves past it makes sure it was delivered, or records it
//! in the store instead.
//!
//! Contract:
//! - A produce the client refuses for good (the value is larger than the producer or the
//!   topic takes, the topic is missing and cannot be created, not authorized, ...) is
//!   recorded in the store's `dead_letters` tree at once: it never stalls the partition.
//! - A produce refused because the producer's queue is full is retried with a doubling
//!   backoff for at most [`ENQUEUE_BUDGET`], then recorded.
//! - A checkpoint waits at most [`DELIVERY_WAIT`] for the deliveries it moves past; one that
//!   failed or did not come in time is recorded with the checkpoint (it may still arrive
//!   later: dead letters are at-least-once). So no offset passes a dead letter that was
//!   neither delivered nor recorded, and no wait is unbounded.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::ingest::engine::{Outcome, PartitionEngine, Record};
use crate::store::{DeadLetterRecord, DEAD_LETTER_HEAD};
use crate::telemetry;

/// How long an enqueue refused for a full queue is retried before the dead letter is
/// recorded in the store instead.
pub(super) const ENQUEUE_BUDGET: Duration = Duration::from_secs(5);

/// How long a checkpoint waits for the deliveries it moves past.
pub(super) const DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// Dead letters handed to the producer and not yet confirmed, with what recording one
/// needs if its delivery fails.
#[derive(Default)]
pub(super) struct Pending {
    deliveries: Vec<(DeliveryFuture, DeadLetterRecord)>,
}

impl Pending {
    /// Wait (all together, at most [`DELIVERY_WAIT`]) for the pending deliveries; record the
    /// failed and the late ones with the engine's next checkpoint.
    pub(super) async fn settle(&mut self, engine: &mut PartitionEngine) {
        let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
        for (delivery, mut record) in self.deliveries.drain(..) {
            let error = match tokio::time::timeout_at(deadline, delivery).await {
                Ok(Ok(Ok(_))) => continue,
                Ok(Ok(Err((e, _)))) => e.to_string(),
                Ok(Err(_)) => "delivery cancelled".to_owned(),
                Err(_) => format!("not delivered within {DELIVERY_WAIT:?}"),
            };
            telemetry::dead_letter_undelivered(&record.topic, record.partition, &error);
            record.error = error;
            record.at_ms = crate::now_ms();
            engine.record_undelivered(record);
        }
    }
}

/// Whether the client refuses a produce for good (no retry can succeed).
pub(super) fn is_permanent(e: &KafkaError) -> bool {
    !matches!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
    )
}

/// Fold one message; publish it as a dead letter when it cannot be counted.
pub(super) async fn on_message(
    engine: &mut PartitionEngine,
    m: &impl Message,
    now_ms: i64,
    dlq: &str,
    producer: &FutureProducer,
    pending: &mut Pending,
) -> Outcome {
    let rec = Record {
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        payload: m.payload(),
        now_ms,
    };
    let outcome = engine.on_record(rec);
    let Outcome::Dead { reason, detail } = &outcome else {
        return outcome;
    };
    let (topic, partition) = (engine.topic().to_owned(), engine.partition());
    telemetry::dead_letter(&topic, partition, m.offset(), reason.as_str(), detail);
    let value = m.payload().unwrap_or_default();
    let record = DeadLetterRecord {
        topic: topic.clone(),
        partition,
        offset: m.offset(),
        reason: reason.as_str().to_owned(),
        error: String::new(),
        at_ms: now_ms,
        value_bytes: value.len() as u64,
        value_head: value[..value.len().min(DEAD_LETTER_HEAD)].to_vec(),
    };
    let offset = m.offset().to_string();
    let part = partition.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "reason",
            value: Some(reason.as_str()),
        })
        .insert(Header {
            key: "error",
            value: Some(detail.as_str()),
        })
        .insert(Header {
            key: "source-topic",
            value: Some(topic.as_str()),
        })
        .insert(Header {
            key: "source-partition",
            value: Some(part.as_str()),
        })
        .insert(Header {
            key: "source-offset",
            value: Some(offset.as_str()),
        });
    let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq).headers(headers);
    if let Some(k) = m.key() {
        out = out.key(k);
    }
    if let Some(p) = m.payload() {
        out = out.payload(p);
    }
    match enqueue(producer, out).await {
        Ok(delivery) => pending.deliveries.push((delivery, record)),
        Err(e) => {
            let mut record = record;
            telemetry::dead_letter_undelivered(&topic, partition, &e);
            record.error = e.to_string();
            engine.record_undelivered(record);
        }
    }
    outcome
}

/// Hand a dead letter to the producer: retried with a doubling backoff while its queue is
/// full, for at most [`ENQUEUE_BUDGET`]; any other refusal is final.
async fn enqueue(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> Result<DeliveryFuture, KafkaError> {
    let deadline = tokio::time::Instant::now() + ENQUEUE_BUDGET;
    let mut backoff = Duration::from_millis(5);
    loop {
        match producer.send_result(record) {
            Ok(f) => return Ok(f),
            Err((e, r)) if !is_permanent(&e) && tokio::time::Instant::now() < deadline => {
                record = r;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_queue_is_worth_retrying() {
        assert!(!is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::QueueFull
        )));
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidTopic,
        ] {
            assert!(
                is_permanent(&KafkaError::MessageProduction(code)),
                "{code:?}"
            );
        }
    }
}
