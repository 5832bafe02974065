//! Configuration: the command line of DESIGN.md, every flag also read from `PULSEBOARD_*`.
//!
//! Contract: [`Config::parse`] (clap) gives raw values; [`Config::validate`] checks rules
//! across fields and turns durations and mappings into the typed [`Settings`] that the rest
//! of the server uses. Errors say which flag is wrong and what it accepts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use pulseboard_model::event::{FieldMapping, MapRule, Schema};
use pulseboard_model::time::parse_duration_ms;
use pulseboard_model::window::WindowConfig;

use crate::kafka::OffsetReset;

/// Live clickstream dashboard on Kafka.
#[derive(Debug, Clone, Parser)]
#[command(name = "pulseboard", version, about)]
pub struct Config {
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
    /// Address of the HTTP server.
    #[arg(long, env = "PULSEBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the sled store.
    #[arg(long, env = "PULSEBOARD_DATA_DIR", default_value = "./pulseboard-data")]
    pub data_dir: PathBuf,
    /// Tumbling window size (e.g. 10s, 1m).
    #[arg(long, env = "PULSEBOARD_WINDOW", default_value = "10s")]
    pub window: String,
    /// How far behind the max event time a partition's watermark trails.
    #[arg(long, env = "PULSEBOARD_ALLOWED_LATENESS", default_value = "5s")]
    pub allowed_lateness: String,
    /// A partition without messages for this long does not hold the global watermark back.
    #[arg(long, env = "PULSEBOARD_IDLE_TIMEOUT", default_value = "30s")]
    pub idle_timeout: String,
    /// How often window state and offsets are written to the store.
    #[arg(long, env = "PULSEBOARD_CHECKPOINT_INTERVAL", default_value = "1s")]
    pub checkpoint_interval: String,
    /// Finalized windows older than this (behind the watermark) are deleted.
    #[arg(long, env = "PULSEBOARD_RETENTION", default_value = "24h")]
    pub retention: String,
    /// Dead-letter topic for messages that cannot be counted. Default: `<topic>-dlq`.
    #[arg(long, env = "PULSEBOARD_DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// Events per second of the built-in generator (embedded mode only; 0 = none).
    #[arg(long, env = "PULSEBOARD_DEMO_RATE", default_value_t = 200)]
    pub demo_rate: u32,
    /// Partitions of each topic created by the embedded Kafka.
    #[arg(long, env = "PULSEBOARD_EMBEDDED_PARTITIONS", default_value_t = 4)]
    pub embedded_partitions: i32,
    /// Input schema preset: `canonical` or `segment` (Segment page/track events).
    #[arg(long, env = "PULSEBOARD_SCHEMA", default_value = "canonical")]
    pub schema: Schema,
    /// Take a field from a JSON pointer, e.g. `url=/properties/path` (repeatable).
    #[arg(long = "map", env = "PULSEBOARD_MAP", value_delimiter = ',')]
    pub map: Vec<MapRule>,
    /// What to do when a stored offset is outside the log: earliest, latest or fail.
    #[arg(
        long,
        env = "PULSEBOARD_OFFSET_RESET",
        value_enum,
        default_value = "earliest"
    )]
    pub offset_reset: OffsetReset,
    /// Require this bearer token (or `?token=`) for the API, the socket and the metrics.
    #[arg(long, env = "PULSEBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Who may embed the pages in a frame (CSP `frame-ancestors`), e.g. `'self' https://intranet.example`.
    #[arg(long, env = "PULSEBOARD_FRAME_ANCESTORS", default_value = "'self'")]
    pub frame_ancestors: String,
    /// Directory of the built frontend (Trunk's output).
    #[arg(long, env = "PULSEBOARD_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,
    /// Extra librdkafka consumer properties, `key=value` (repeatable).
    #[arg(
        long = "kafka-option",
        env = "PULSEBOARD_KAFKA_OPTIONS",
        value_delimiter = ','
    )]
    pub kafka_options: Vec<String>,
}

/// Errors in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag} {value:?}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub brokers: Option<String>,
    pub topics: Vec<String>,
    pub group: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub windows: WindowConfig,
    pub idle_timeout: Duration,
    pub checkpoint_interval: Duration,
    pub retention_ms: i64,
    pub dead_letter_topic: Option<String>,
    pub demo_rate: u32,
    pub embedded_partitions: i32,
    pub mapping: FieldMapping,
    pub kafka_options: Vec<(String, String)>,
    /// The frontend's files, when the directory exists.
    pub static_dir: Option<PathBuf>,
    pub offset_reset: OffsetReset,
    pub token: Option<String>,
    pub frame_ancestors: String,
}

impl Settings {
    /// The dead-letter topic of an input topic.
    pub fn dead_letter_topic_for(&self, topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}-dlq"))
    }
}

fn duration(flag: &'static str, value: &str) -> Result<i64, ConfigError> {
    parse_duration_ms(value).map_err(|reason| ConfigError::Invalid {
        flag,
        value: value.to_owned(),
        reason,
    })
}

impl Config {
    /// Check rules across fields and produce [`Settings`].
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let width_ms = duration("window", &self.window)?;
        if width_ms <= 0 {
            return Err(ConfigError::Invalid {
                flag: "window",
                value: self.window.clone(),
                reason: "must be longer than zero".into(),
            });
        }
        let lateness_ms = duration("allowed-lateness", &self.allowed_lateness)?;
        let idle_ms = duration("idle-timeout", &self.idle_timeout)?;
        let cp_ms = duration("checkpoint-interval", &self.checkpoint_interval)?;
        if cp_ms <= 0 {
            return Err(ConfigError::Invalid {
                flag: "checkpoint-interval",
                value: self.checkpoint_interval.clone(),
                reason: "must be longer than zero".into(),
            });
        }
        let retention_ms = duration("retention", &self.retention)?;
        if retention_ms < width_ms {
            return Err(ConfigError::Invalid {
                flag: "retention",
                value: self.retention.clone(),
                reason: format!("must be at least one window ({})", self.window),
            });
        }
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if topics.is_empty() {
            return Err(ConfigError::Invalid {
                flag: "topics",
                value: self.topics.join(","),
                reason: "name at least one topic".into(),
            });
        }
        if let Some(dlq) = &self.dead_letter_topic {
            if topics.contains(dlq) {
                return Err(ConfigError::Invalid {
                    flag: "dead-letter-topic",
                    value: dlq.clone(),
                    reason: "must differ from the input topics".into(),
                });
            }
        }
        if self.frame_ancestors.contains([';', '\n', '\r']) {
            return Err(ConfigError::Invalid {
                flag: "frame-ancestors",
                value: self.frame_ancestors.clone(),
                reason: "a list of sources separated by spaces, without ';' or line breaks".into(),
            });
        }
        if !(1..=1024).contains(&self.embedded_partitions) {
            return Err(ConfigError::Invalid {
                flag: "embedded-partitions",
                value: self.embedded_partitions.to_string(),
                reason: "must be between 1 and 1024".into(),
            });
        }
        let mut kafka_options = Vec::new();
        for opt in &self.kafka_options {
            let Some((k, v)) = opt.split_once('=') else {
                return Err(ConfigError::Invalid {
                    flag: "kafka-option",
                    value: opt.clone(),
                    reason: "expected key=value, e.g. fetch.max.bytes=1048576".into(),
                });
            };
            let (k, v) = (k.trim(), v.trim());
            if k == "partition.assignment.strategy" && v != "cooperative-sticky" {
                return Err(ConfigError::Invalid {
                    flag: "kafka-option",
                    value: opt.clone(),
                    reason: "Pulseboard needs cooperative-sticky: it restarts a single partition after an offset reset, which the eager strategies cannot".into(),
                });
            }
            kafka_options.push((k.to_owned(), v.to_owned()));
        }
        Ok(Settings {
            brokers: self.brokers.clone().filter(|b| !b.trim().is_empty()),
            topics,
            group: self.group.clone(),
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            windows: WindowConfig {
                width_ms,
                lateness_ms,
            },
            idle_timeout: Duration::from_millis(idle_ms as u64),
            checkpoint_interval: Duration::from_millis(cp_ms as u64),
            retention_ms,
            dead_letter_topic: self.dead_letter_topic.clone(),
            demo_rate: self.demo_rate,
            embedded_partitions: self.embedded_partitions,
            mapping: FieldMapping::new(self.schema, &self.map),
            kafka_options,
            static_dir: Some(self.static_dir.clone()).filter(|d| d.is_dir()),
            offset_reset: self.offset_reset,
            token: self.token.clone().filter(|t| !t.is_empty()),
            frame_ancestors: self.frame_ancestors.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_design() {
        let c = Config::try_parse_from(["pulseboard"]).expect("parse");
        let s = c.validate().expect("valid");
        assert_eq!(s.windows.width_ms, 10_000);
        assert_eq!(s.windows.lateness_ms, 5_000);
        assert_eq!(s.idle_timeout, Duration::from_secs(30));
        assert_eq!(s.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(s.retention_ms, 24 * 3600 * 1000);
        assert_eq!(s.topics, vec!["clicks".to_owned()]);
        assert_eq!(s.dead_letter_topic_for("clicks"), "clicks-dlq");
        assert!(s.brokers.is_none());
    }

    #[test]
    fn bad_duration_names_the_flag() {
        let c = Config::try_parse_from(["pulseboard", "--window", "ten"]).expect("parse");
        let err = c.validate().expect_err("must fail").to_string();
        assert!(err.contains("--window"), "{err}");
    }

    #[test]
    fn map_rules_and_schema_parse() {
        let c = Config::try_parse_from([
            "pulseboard",
            "--schema",
            "segment",
            "--map",
            "url=/properties/path",
            "--map",
            "visitor=/anonymousId",
        ])
        .expect("parse");
        assert_eq!(c.map.len(), 2);
        assert!(Config::try_parse_from(["pulseboard", "--map", "nope=/x"]).is_err());
    }
}
