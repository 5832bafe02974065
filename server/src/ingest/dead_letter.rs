//! Dead letters: a message that cannot be counted is produced to the dead-letter topic
//! with its reason, and the checkpoint that moves past it waits for its delivery.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::partition::TaskShared;
use crate::engine::{Outcome, PartitionEngine, Record};
use crate::telemetry;

/// Fold one message; publish it as a dead letter when it cannot be counted.
pub(super) async fn on_message(
    engine: &mut PartitionEngine,
    m: &BorrowedMessage<'_>,
    dlq: &str,
    shared: &TaskShared,
    pending: &mut Vec<DeliveryFuture>,
) {
    let rec = Record {
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        payload: m.payload(),
    };
    let Outcome::Dead { reason, detail } = engine.on_record(rec) else {
        return;
    };
    let (topic, partition) = (engine.topic(), engine.partition());
    telemetry::dead_letter(topic, partition, m.offset(), reason.as_str(), &detail);
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
            value: Some(topic),
        })
        .insert(Header {
            key: "source-partition",
            value: Some(part.as_str()),
        })
        .insert(Header {
            key: "source-offset",
            value: Some(offset.as_str()),
        });
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq).headers(headers);
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    if let Some(p) = m.payload() {
        record = record.payload(p);
    }
    pending.push(send_dead_letter(&shared.producer, record).await);
}

/// Enqueue a dead letter, waiting while the producer queue is full.
pub(super) async fn send_dead_letter(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> DeliveryFuture {
    loop {
        match producer.send_result(record) {
            Ok(f) => return f,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((e, r)) => {
                tracing::warn!(error = %e, "dead letter enqueue failed; retrying");
                record = r;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
