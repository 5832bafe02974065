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
//! - [`event`] — [`Event`], dead-letter reasons, field mapping (canonical and
//!   Segment schemas, JSON-pointer rules) and the payload [`Decoder`].
//! - [`agg`] — [`Hll`] distinct counting, bounded [`TopCounts`] and the
//!   per-window [`Aggregate`] with its storage encoding.
//! - [`window`] — epoch-aligned tumbling windows and the per-partition
//!   watermark state machine [`PartitionWindows`].
//! - [`proto`] — JSON response types of the HTTP API.
//! - [`gen`] — deterministic, realistic demo traffic.

pub mod agg;
pub mod event;
pub mod gen;
pub mod proto;
pub mod time;
pub mod window;

pub use agg::{AggError, Aggregate, Hll, TopCounts, TOP_CAP};
pub use event::{
    DeadReason, DecodeError, Decoder, Event, Field, FieldMapping, MapRule, MappingError, Schema,
    MAX_FIELD_BYTES, MAX_VALUE_BYTES,
};
pub use gen::{GenConfig, Generated, Generator};
pub use proto::{
    ApiError, Count, PartitionStatus, Status, Summary, WindowState, WindowView, PROTOCOL_VERSION,
};
pub use time::{format_rfc3339_ms, parse_duration_ms, parse_rfc3339_ms, parse_time_param};
pub use window::{window_start, Late, PartitionWindows, WindowConfig};
