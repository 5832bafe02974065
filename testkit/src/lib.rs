//! Pulseboard's dev-only kit, shared by the integration tests (`tests/`) and the benchmark
//! (`bench/`): one copy of the broker harness and the helpers both need.
//!
//! # Layout
//! - [`kafka`]: Apache Kafka in KRaft mode on free loopback ports (one node or a cluster),
//!   topic creation and deletion, an idempotent producer.
//! - [`pulseboard`]: the `pulseboard` binary as a child process (output inherited, or to a log).
//! - [`process`]: children that die with this process; signals, RSS and CPU time, log
//!   tails, the open-file limit.
//! - [`net`]: free ports, a minimal HTTP client, polling.

pub mod kafka;
pub mod net;
pub mod process;
pub mod pulseboard;

pub use kafka::{
    create_topic, create_topic_with, delete_topic, produce, producer, Kafka, KafkaConfig,
};
pub use net::{free_port, get_json, http_get, http_post, poll_until};
pub use pulseboard::PulseboardProcess;
