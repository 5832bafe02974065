//! Pulseboard: a live clickstream dashboard on Kafka.
//!
//! Kafka ingest → per-partition engine (event-time windows) → sled store, with the live
//! state, the hub and the HTTP layer reading what the engine publishes; [`run`] wires them.
//!
//! # Layout
//! - [`app`]: wiring and supervision of the tasks ([`run`]).
//! - [`config`]: command line and environment, one argument struct per component.
//! - [`kafka`]: Kafka client configuration, `--offset-reset`, commit metadata.
//! - [`ingest`]: the consumer group, partition tasks, dead letters, commits, cluster probe.
//! - [`engine`]: per-partition decode, windowing, counters and checkpoints (no Kafka types).
//! - [`store`]: the sled layout, atomic checkpoints, range reads.
//! - [`state_topic`]: the state topic's record format (the changelog several instances
//!   share, and the output for other systems).
//! - [`retention`]: old windows roll up into history (minute, then hour buckets), bounded by
//!   wall-clock time; history past `--history` leaves the store.
//! - [`history`]: reading a range across windows and roll-up buckets; steps; comparisons.
//! - [`live`]: published progress: offsets, lag, watermark, window states, throughput.
//! - [`hub`]: recent windows merged across partitions; the sequenced stream of changes.
//! - [`ws`]: the WebSocket `/ws`, one client fed from the hub.
//! - [`feed`]: filtered sockets (`/ws?filter=`): the hub's stream as a segment sees it.
//! - [`segments`]: segments, goals and visitors now in the API: the `filter` parameter,
//!   `GET /api/v1/now`, `GET /api/v1/segments`.
//! - [`alerts`]: alert rules (`--alerts`, TOML, reloaded), their evaluation with suppression,
//!   the banner in the status, `GET /api/v1/alerts`, webhooks with retries.
//! - [`annotations`]: `/api/v1/annotations`: markers on the time axis, validated, pushed.
//! - [`api_error`]: the error an API client gets, and its JSON body.
//! - [`http`]: routes: JSON API, health, readiness, metrics, the frontend's files.
//! - [`openapi`]: the OpenAPI 3.1 description of those routes, served at `/api/v1/openapi.json`.
//! - [`telemetry`]: one function per recurring event (log and count); the metrics.
//! - [`collect`]: `POST /collect`, events over HTTP into Kafka; its origins (CORS).
//! - [`enrich`]: what the server adds to browser events: visitor id, country, device; robots.
//! - [`tracker`]: `GET /pb.js`, the tracking script.
//! - [`demo`]: embedded mode: the in-process Kafka and the demo traffic generator.
//! - [`demo_history`]: embedded mode: generated history a day and a week back (to compare
//!   with); the folding the benchmark measures history's disk bytes with.

pub mod alerts;
pub mod annotations;
pub mod api_error;
pub mod app;
pub mod collect;
pub mod config;
pub mod demo;
pub mod demo_history;
pub mod engine;
pub mod enrich;
pub mod feed;
pub mod history;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod kafka;
pub mod live;
pub mod openapi;
pub mod retention;
pub mod segments;
pub mod state_topic;
pub mod store;
pub mod telemetry;
pub mod tracker;
pub mod ws;

pub use app::{run, RunError};

/// Wall-clock time in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
