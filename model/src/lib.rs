//! Pulseboard's shared model: events and their decoding, event-time windows,
//! mergeable aggregates, the JSON wire protocol and a traffic generator.
//!
//! This crate is pure: no I/O, no clocks, no threads, no async runtime. It
//! compiles for `wasm32` so the frontend can share the wire types and logic.
//! Every function is deterministic given its inputs (the generator takes an
//! explicit seed and explicit times).
//!
//! # Layout
//!
//! - [`time`] — RFC 3339 and duration parsing/formatting (epoch milliseconds).
//! - [`event`] — the [`Event`] type, dead-letter reasons ([`DeadReason`]) and the
//!   limits every accepted event respects.
//! - [`mapping`] — where fields live in a payload: [`Field`], [`MapRule`], the
//!   canonical and Segment [`Schema`] presets, the resulting [`FieldMapping`].
//! - [`decode`] — the payload [`Decoder`]: a borrowed fast path for the canonical
//!   schema (`decode/fast.rs`), a `serde_json::Value` + JSON-pointer path for every other
//!   mapping (`decode/mapped.rs`), and the checks both share (`decode/validate.rs`).
//! - [`agg`] — the per-window [`Aggregate`] (counting an event in `agg/add.rs`, its merge
//!   in `agg/merge.rs`, its storage encoding in `agg/storage.rs`); its
//!   sketches in [`agg::hll`] ([`Hll`], distinct counts) and [`agg::top`]
//!   ([`TopCounts`], bounded counts by key); goals ([`agg::goal`]: [`Goal`], conversions)
//!   and segments ([`agg::segment`]: sub-aggregates by country, device, type, referrer
//!   domain; the [`Filter`] that picks one).
//! - [`window`] — epoch-aligned tumbling windows, the per-partition watermark state
//!   machine [`PartitionWindows`], and the rules across partitions: the
//!   [`global_watermark`], how far windows are final ([`final_up_to`]) and a window's
//!   state ([`window_state`]).
//! - [`proto`] — the wire: JSON bodies of the HTTP API and WebSocket messages,
//!   with the [`Figures`] a window and a summary share. One file per subject under `proto/`,
//!   every type re-exported as `proto::Name`: `windows.rs` (window views, [`WindowState`]),
//!   `figures.rs`, `summary.rs` (ranges and `compare=`), `status.rs`, `alerts.rs`, `api.rs`
//!   (the other HTTP bodies and [`ApiError`]), `socket.rs` (WebSocket messages).
//! - [`stream`] — the client's [`StreamState`] (windows and status) built from WebSocket
//!   messages, with the resume rules.
//! - [`now`] — "visitors now": the windows of the last minutes up to a wall-clock instant,
//!   their merge and its definition.
//! - [`rollup`] — history: windows rolled up into minute and hour buckets, the
//!   cut-offs of a roll-up pass, percent change for comparisons.
//! - [`gen`] — deterministic, realistic demo traffic: the generator and its config, the
//!   simulated site (`gen/site.rs`), traffic spikes (`gen/spike.rs`) and malformed
//!   payloads (`gen/malformed.rs`).

pub mod agg;
pub mod decode;
pub mod event;
pub mod gen;
pub mod mapping;
pub mod now;
pub mod proto;
pub mod rollup;
pub mod stream;
pub mod time;
pub mod window;

pub use agg::{
    AggError, AggSpec, Aggregate, Dimension, Filter, Goal, Hll, SegmentSpec, TopCounts, TOP_CAP,
};
pub use decode::{DecodeError, Decoder};
pub use event::{DeadReason, Event, MAX_FIELD_BYTES, MAX_VALUE_BYTES};
pub use gen::{GenConfig, Generated, Generator};
pub use mapping::{Field, FieldMapping, MapRule, MappingError, Schema};
pub use proto::{
    Accepted, ApiError, Count, Figures, PartitionStatus, Readiness, Status, Summary, WindowState,
    WindowView, WindowsResponse, PROTOCOL_VERSION,
};
pub use stream::{Apply, StreamState};
pub use time::{format_rfc3339_ms, parse_duration_ms, parse_rfc3339_ms, parse_time_param};
pub use window::{
    final_up_to, global_watermark, is_closed, window_start, window_state, Late, PartitionWindows,
    WindowConfig,
};
