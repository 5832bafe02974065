//! The partition task's seam to Kafka: its messages ([`Feed`]) and what it asks of the
//! group's consumer for its partition ([`Group`]). A run uses the client's partition queue
//! and the consumer; the unit tests bring their own, so the task's rules are tested without
//! a broker.

use std::future::Future;
use std::sync::Weak;
use std::time::Duration;

use futures::Stream;
use rdkafka::consumer::stream_consumer::MessageStream;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::ingest::client::{committed_position, Committed};
use crate::ingest::rebalance::IngestContext;
use crate::ingest::{Consumer_, IngestError, Queue};

/// How long one request for a committed offset may take.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition's messages, in offset order (a seek starts them again elsewhere).
pub(in crate::ingest) trait Feed: Send + Sync + 'static {
    type Message<'a>: Message + Send + Sync
    where
        Self: 'a;

    /// The messages, each or the error the client reports in its place; it never ends.
    type Messages<'a>: Stream<Item = KafkaResult<Self::Message<'a>>> + Send + Unpin
    where
        Self: 'a;

    /// The stream of messages, made once per task: one waker registered for the task's
    /// life, not one per message as `recv` registers.
    fn messages(&self) -> Self::Messages<'_>;
}

impl Feed for Queue {
    type Message<'a> = BorrowedMessage<'a>;
    type Messages<'a> = MessageStream<'a, IngestContext>;

    fn messages(&self) -> MessageStream<'_, IngestContext> {
        self.stream()
    }
}

/// What a partition task asks of the group's consumer for its partition.
pub(in crate::ingest) trait Group: Send + Sync + 'static {
    /// Whether the consumer is still there (it closes when ingest stops).
    fn is_open(&self) -> bool;

    /// The group's committed position of the partition (`Ok(None)`: none committed).
    fn committed(
        &self,
        topic: &str,
        partition: i32,
    ) -> impl Future<Output = Result<Option<Committed>, String>> + Send;

    /// Move the fetch position to `offset` (`None`: the log start). Messages fetched before
    /// are dropped (the seek starts a new fetch version).
    fn seek(
        &self,
        topic: &str,
        partition: i32,
        offset: Option<i64>,
    ) -> impl Future<Output = Result<(), IngestError>> + Send;

    /// The partition's log start and end.
    fn log_bounds(
        &self,
        topic: &str,
        partition: i32,
    ) -> impl Future<Output = Result<(i64, i64), String>> + Send;

    /// Fetching has stopped (an offset outside the log): restart it alone at `at`.
    fn restart_at(
        &self,
        topic: &str,
        partition: i32,
        at: Offset,
    ) -> impl Future<Output = Result<(), IngestError>> + Send;
}

impl Group for Weak<Consumer_> {
    fn is_open(&self) -> bool {
        self.strong_count() > 0
    }

    async fn committed(&self, topic: &str, partition: i32) -> Result<Option<Committed>, String> {
        let Some(c) = self.upgrade() else {
            return Err("the consumer has closed".into());
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let (t, p) = (topic.to_owned(), partition);
        let answer =
            tokio::task::spawn_blocking(move || c.committed_offsets(tpl, COMMITTED_TIMEOUT))
                .await
                .map_err(|e| e.to_string())?;
        answer
            .map(|tpl| committed_position(&tpl, &t, p))
            .map_err(|e| e.to_string())
    }

    async fn seek(
        &self,
        topic: &str,
        partition: i32,
        offset: Option<i64>,
    ) -> Result<(), IngestError> {
        let Some(c) = self.upgrade() else {
            return Ok(());
        };
        let target = offset.map_or(Offset::Beginning, Offset::Offset);
        let t = topic.to_owned();
        let done = tokio::task::spawn_blocking(move || {
            c.seek(&t, partition, target, Duration::from_secs(10))
        })
        .await;
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(IngestError::Restart {
                topic: topic.to_owned(),
                partition,
                source,
            }),
            Err(e) => {
                tracing::error!(topic, partition, error = %e, "seeking the partition failed");
                Ok(())
            }
        }
    }

    async fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), String> {
        let Some(c) = self.upgrade() else {
            return Err("the consumer has closed".into());
        };
        let t = topic.to_owned();
        match tokio::task::spawn_blocking(move || {
            c.fetch_watermarks(&t, partition, Duration::from_secs(10))
        })
        .await
        {
            Ok(Ok(bounds)) => Ok(bounds),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn restart_at(&self, topic: &str, partition: i32, at: Offset) -> Result<(), IngestError> {
        let Some(consumer) = self.upgrade() else {
            return Ok(());
        };
        // librdkafka has stopped fetching this partition (auto.offset.reset=error leaves it
        // in its "none" state, where a seek is refused): restart it alone, at the target.
        let t = topic.to_owned();
        let restart = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&t, partition);
            consumer.incremental_unassign(&tpl)?;
            tpl.set_partition_offset(&t, partition, at)?;
            consumer.incremental_assign(&tpl)
        })
        .await;
        match restart {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(IngestError::Restart {
                topic: topic.to_owned(),
                partition,
                source: e,
            }),
            Err(e) => {
                tracing::error!(error = %e, "restarting the partition failed");
                Ok(())
            }
        }
    }
}
