//! One place per recurring event: each function here logs the event with its fields and
//! counts it, so a log line and its metric never drift apart. `/metrics` renders these
//! counters ([`register`]) with the figures of the status (`api::metrics`).
//!
//! The counters are process-wide (like the log): they count what this process saw since it
//! started. Totals that survive restarts (events, dead letters by reason) come from the
//! store, through the status.

use prometheus_client::registry::Registry;

mod history;
mod pipeline;
mod tls;

pub use history::*;
pub use pipeline::*;
pub use tls::*;

type Labels = Vec<(&'static str, String)>;

/// Registers every counter of this process with `r`.
pub fn register(r: &mut Registry) {
    pipeline::register(r);
    history::register(r);
    tls::register(r);
}

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
