//! The Kafka side: brokers, topics, group, dead letters, field mapping, client options,
//! the state topic and its transactions, `--offset-reset`.

use std::time::Duration;

use clap::Args;
use pulseboard_model::mapping::{FieldMapping, MapRule, Schema};

use super::{duration, invalid, ConfigError};

/// What to do when a stored offset is outside the log (the topic was recreated, or
/// retention deleted what was not read yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OffsetReset {
    /// Read from the log start (logged, and listed in the status).
    Earliest,
    /// Skip to the log end (logged, and listed in the status).
    Latest,
    /// Stop with an error.
    Fail,
}

impl OffsetReset {
    /// The flag value, as shown in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::Fail => "fail",
        }
    }
}

/// The Kafka side: where events come from, and how they are read.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers. Without it, an embedded Kafka with demo traffic is started.
    #[arg(long, env = "PULSEBOARD_BROKERS")]
    pub brokers: Option<String>,
    /// Topics to consume, comma-separated.
    #[arg(
        long,
        env = "PULSEBOARD_TOPICS",
        default_value = "clicks",
        value_delimiter = ','
    )]
    pub topics: Vec<String>,
    /// Kafka consumer group.
    #[arg(long, env = "PULSEBOARD_GROUP", default_value = "pulseboard")]
    pub group: String,
    /// Dead-letter topic for messages that cannot be counted. Default: `<topic>-dlq`.
    #[arg(long, env = "PULSEBOARD_DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// What to do when a stored offset is outside the log: earliest, latest or fail.
    #[arg(
        long,
        env = "PULSEBOARD_OFFSET_RESET",
        value_enum,
        default_value = "earliest"
    )]
    pub offset_reset: OffsetReset,
    /// Input schema preset: `canonical` or `segment` (Segment page/track events).
    #[arg(long, env = "PULSEBOARD_SCHEMA", default_value = "canonical")]
    pub schema: Schema,
    /// Take a field from a JSON pointer, e.g. `url=/properties/path` (repeatable).
    #[arg(long = "map", env = "PULSEBOARD_MAP", value_delimiter = ',')]
    pub map: Vec<MapRule>,
    /// Extra librdkafka consumer properties, `key=value` (repeatable).
    #[arg(
        long = "kafka-option",
        env = "PULSEBOARD_KAFKA_OPTIONS",
        value_delimiter = ',',
        value_parser = kafka_option
    )]
    pub kafka_options: Vec<(String, String)>,
    /// Compacted topic holding every partition's windows and progress, written in Kafka
    /// transactions: the state several instances share, and Pulseboard's output for
    /// other systems. Default: `<group>-windows`. Created (compacted) when missing.
    #[arg(long, env = "PULSEBOARD_STATE_TOPIC")]
    pub state_topic: Option<String>,
    /// Run without a state topic: one instance, sled alone holds the state and the offset
    /// commit is advisory. Several instances in one group then each show only their own
    /// partitions. (Embedded mode always runs so: its in-process broker has no
    /// transactions.)
    #[arg(long, env = "PULSEBOARD_NO_STATE_TOPIC")]
    pub no_state_topic: bool,
    /// A transaction left open by a process that died is aborted by the broker after this
    /// (readers of the state topic wait behind it until then).
    #[arg(long, env = "PULSEBOARD_TRANSACTION_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub transaction_timeout: Duration,
    /// How long a newly assigned partition may wait for its committed offset and for the
    /// state topic to bring this store up to that checkpoint, before Pulseboard stops with
    /// an error.
    #[arg(long, env = "PULSEBOARD_RESTORE_TIMEOUT", default_value = "2m", value_parser = duration)]
    pub restore_timeout: Duration,
    /// Partitions of the state topic when Pulseboard creates it (default: the input topics'
    /// partitions, at most 64). Never change it afterwards.
    #[arg(long, env = "PULSEBOARD_STATE_PARTITIONS")]
    pub state_partitions: Option<i32>,
}

/// A `--kafka-option`: `key=value`.
fn kafka_option(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected key=value, e.g. fetch.max.bytes=1048576"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

impl KafkaArgs {
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.brokers = self.brokers.take().filter(|b| !b.trim().is_empty());
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if topics.is_empty() {
            return Err(invalid(
                "topics",
                self.topics.join(","),
                "name at least one topic",
            ));
        }
        self.topics = topics;
        if let Some(dlq) = &self.dead_letter_topic {
            if self.topics.contains(dlq) {
                return Err(invalid(
                    "dead-letter-topic",
                    dlq,
                    "must differ from the input topics",
                ));
            }
        }
        if let Some(t) = &self.state_topic {
            if t.trim().is_empty() || self.topics.contains(t) {
                return Err(invalid(
                    "state-topic",
                    t,
                    "name a topic of its own (not an input topic), or give --no-state-topic",
                ));
            }
        }
        if self.transaction_timeout < Duration::from_secs(1)
            || self.transaction_timeout > Duration::from_secs(900)
        {
            return Err(invalid(
                "transaction-timeout",
                format!("{:?}", self.transaction_timeout),
                "must be between 1s and 15m (the broker's transaction.max.timeout.ms)",
            ));
        }
        if self.restore_timeout < self.transaction_timeout {
            return Err(invalid(
                "restore-timeout",
                format!("{:?}", self.restore_timeout),
                format!(
                    "must be at least --transaction-timeout ({:?}): a partition may wait that long for a dead owner's transaction",
                    self.transaction_timeout
                ),
            ));
        }
        if let Some(n) = self.state_partitions {
            if !(1..=1024).contains(&n) {
                return Err(invalid("state-partitions", n, "must be between 1 and 1024"));
            }
        }
        for (k, v) in &self.kafka_options {
            if k == "partition.assignment.strategy" && v != "cooperative-sticky" {
                return Err(invalid(
                    "kafka-option",
                    format!("{k}={v}"),
                    "Pulseboard needs cooperative-sticky: it restarts a single partition after an offset reset, which the eager strategies cannot",
                ));
            }
        }
        Ok(())
    }

    /// The dead-letter topic of an input topic.
    pub fn dead_letter_topic_for(&self, topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}-dlq"))
    }

    /// The state topic to use: `None` in embedded mode and with `--no-state-topic`.
    pub fn state_topic(&self) -> Option<String> {
        if self.brokers.is_none() || self.no_state_topic {
            return None;
        }
        Some(
            self.state_topic
                .clone()
                .unwrap_or_else(|| format!("{}-windows", self.group)),
        )
    }

    /// The decoder's field mapping.
    pub fn mapping(&self) -> FieldMapping {
        FieldMapping::new(self.schema, &self.map)
    }
}
