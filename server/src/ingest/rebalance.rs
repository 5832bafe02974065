//! The rebalance callbacks: what the Kafka client threads tell the supervisor, and how a
//! newly assigned partition is positioned before any fetch.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use tokio::sync::mpsc;

use super::start::{start_points, StartPoint};
use super::{Consumer_, Queue, REVOKE_TIMEOUT};
use crate::progress::Progress;
use crate::store::Store;
use crate::telemetry;

/// Messages from the Kafka client threads to the supervisor.
pub(super) enum Control {
    Assigned(Vec<(String, i32, Queue, StartPoint)>),
    Revoke {
        partitions: Vec<(String, i32)>,
        /// The group took them away without a revoke (this member was expelled): a
        /// commit would be refused.
        lost: bool,
        done: std::sync::mpsc::Sender<()>,
    },
}

/// Client context: rebalance handling and client-level telemetry.
pub struct IngestContext {
    pub(super) store: Store,
    pub(super) progress: Arc<Progress>,
    pub(super) control: mpsc::UnboundedSender<Control>,
    pub(super) consumer: OnceLock<Weak<Consumer_>>,
    /// With a state topic the partition task finds its start itself (the group's
    /// committed checkpoint may still be in a transaction, and the store may have to
    /// catch up with it): the callback only assigns at the store's offset, without waiting.
    pub(super) transactional: bool,
}

impl ClientContext for IngestContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = false;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            _ => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn stats(&self, stats: Statistics) {
        // The high watermarks of the partitions we fetch, as the fetch responses carried
        // them: lag costs no extra request. (Broker reachability comes from the cluster
        // probe alone, not from connection states here.)
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 {
                    self.progress.set_high_watermark(topic, *p, part.hi_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(base, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(base, tpl),
            other => {
                tracing::error!(error = ?other, "rebalance failed; releasing these partitions");
                if let Err(e) = base.incremental_unassign(tpl) {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "advisory offset commit failed (sled stays the source of truth)");
        }
    }
}

impl IngestContext {
    fn on_assign(&self, base: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        // What the group committed: where another instance stopped, if one owned these.
        let committed = if self.transactional || parts.is_empty() {
            None
        } else {
            match base.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read committed offsets; using the store's alone");
                    None
                }
            }
        };
        let mut starts: HashMap<(String, i32), StartPoint> = parts
            .iter()
            .cloned()
            .zip(start_points(&self.store, &parts, committed.as_ref()))
            .collect();
        for ((topic, partition), start) in &starts {
            if let Err(e) = tpl.set_partition_offset(topic, *partition, start.offset()) {
                tracing::error!(topic, partition, error = %e, "cannot set start offset");
            }
            telemetry::partition_assigned(topic, *partition, start);
        }
        // Split the partition queues BEFORE assigning: librdkafka then never forwards a
        // fetched message of these partitions to the main queue (the split marks the queue
        // as application-forwarded, which the fetch start respects).
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut queues = Vec::new();
        for (topic, partition) in parts {
            let start = starts
                .remove(&(topic.clone(), partition))
                .unwrap_or(StartPoint::Beginning);
            match consumer.split_partition_queue(&topic, partition) {
                Some(q) => queues.push((topic, partition, q, start)),
                None => tracing::error!(topic, partition, "cannot split partition queue"),
            }
        }
        if let Err(e) = base.incremental_assign(tpl) {
            tracing::error!(error = %e, "assign failed");
            return;
        }
        // The supervisor only stops listening at shutdown, when nothing is consumed any more.
        let _ = self.control.send(Control::Assigned(queues));
    }

    fn on_revoke(&self, base: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let lost = base.assignment_lost();
        telemetry::partitions_revoked(partitions.len(), lost);
        let (done, wait) = std::sync::mpsc::channel();
        if self
            .control
            .send(Control::Revoke {
                partitions,
                lost,
                done,
            })
            .is_ok()
            && wait.recv_timeout(REVOKE_TIMEOUT).is_err()
        {
            tracing::warn!(
                timeout = ?REVOKE_TIMEOUT,
                "revoked partitions did not flush in time; releasing them anyway"
            );
        }
        if let Err(e) = base.incremental_unassign(tpl) {
            tracing::error!(error = %e, "unassign failed");
        }
    }
}
