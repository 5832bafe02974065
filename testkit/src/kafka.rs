//! Apache Kafka for the tests, the soak and the benchmark.
//!
//! Contract:
//! - The broker is the real one: `kafka.Kafka` from the jars that `cargo xtask setup`
//!   resolves from Maven Central (`testkit/kafka/pom.xml`, one pinned version) into
//!   `~/.cache/pulseboard/kafka-<version>/libs` (or `$PULSEBOARD_KAFKA_LIBS`).
//! - [`Kafka::start`] runs one node in KRaft combined mode (broker + controller), storage
//!   formatted in a temporary directory, on free loopback ports; [`Kafka::start_cluster`]
//!   runs N such nodes, each also a controller voter, with replication factor `min(N, 3)`
//!   and `min.insync.replicas = 2` from three nodes on. Both return once every node answers
//!   a metadata request listing all of them (polled, never slept on).
//! - Nodes can be killed (SIGKILL), stopped (SIGTERM), paused (SIGSTOP) and restarted on
//!   the same ports and log directories. Dropping [`Kafka`] kills every node and deletes
//!   the directories; if this process dies first, its nodes die with it (see
//!   [`crate::process`]).
//!
//! # Layout
//! - `jars`: the pinned version, the cache of its jars, `java`.
//! - `node`: one node's processes: JVM flags, storage formatting, the broker's command line.
//! - `cluster`: [`Kafka`], one or more nodes, and [`KafkaConfig`].
//! - `clients`: topic creation and deletion, the producer.

mod clients;
mod cluster;
mod jars;
mod node;

pub use clients::{
    create_topic, create_topic_assigned, create_topic_with, delete_topic, produce, producer,
};
pub use cluster::{Kafka, KafkaConfig};
pub use jars::{cache_dir, java, kafka_version, libs_dir, KAFKA_POM};
pub use node::Jvm;
