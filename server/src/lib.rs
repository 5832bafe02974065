//! Pulseboard: a live clickstream dashboard on Kafka.
//!
//! Kafka ingest → per-partition engine (event-time windows) → sled store, with the
//! published progress, the hub and the HTTP layer reading what the engine publishes;
//! [`run`] wires them. ARCHITECTURE.md at the repository's root is the map.
//!
//! # Layout
//!
//! Folders are layers: a module may use the layers listed before its own, never one after
//! it (a unit test, `layers_point_one_way`, holds the code to this list).
//!
//! 1. [`config`]: the command line, one argument struct per component. `telemetry`: one
//!    function per recurring event (log and count). `input`: bad input, naming the
//!    parameter at fault.
//! 2. [`store`]: the sled layout (one file per tree or family) and the state topic's record
//!    format.
//! 3. `access`: roles, API tokens, share links and browser sessions (stored as hashes).
//!    `progress`: what the partitions published (offsets, lag, watermark, window states,
//!    throughput). `hub`: recent windows merged across partitions, and the sequenced
//!    stream of changes the sockets follow.
//! 4. `ingest`: the Kafka client configuration, the consumer group, partition tasks and
//!    their engine (decode, windows, checkpoints), dead letters, the committer, the state
//!    topic's reader.
//! 5. `query`: ranges across windows and history, segments, retention.
//! 6. `insight`: alert rules, annotations.
//! 7. [`site`]: `POST /collect`, enrichment of browser events, the tracking script.
//! 8. [`api`]: the router, parameters, handlers, errors, OpenAPI, metrics, the WebSocket,
//!    HTTPS.
//! 9. [`demo`]: embedded mode (the in-process Kafka, demo traffic and demo history).
//! 10. `app`: the composition root: opens the store, starts and supervises the tasks.

// The docs are for the people who work on it (`cargo doc --document-private-items`): they
// link the crate-private layers freely.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod access;
/// `pulseboard token …` and `pulseboard link …`.
pub use access::cli as access_cli;
pub mod api;
pub(crate) mod app;
pub mod config;
pub mod demo;
pub(crate) mod hub;
pub(crate) mod ingest;
pub(crate) mod input;
pub(crate) mod insight;
pub(crate) mod progress;
pub(crate) mod query;
pub mod site;
pub mod store;
pub(crate) mod telemetry;

pub use app::{run, RunError};
/// The input consumer's librdkafka configuration (group, fetch and queue sizes): public so
/// the benchmark's raw loop reads with what the pipeline reads with.
pub use ingest::client::consumer_config;

#[cfg(test)]
mod layers;

/// Wall-clock time in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
