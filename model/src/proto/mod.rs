//! JSON wire types shared by the server and the frontend: the body of every JSON response
//! of the HTTP API and the WebSocket messages.
//!
//! Contract:
//! - These structs are the bodies as sent; field names are the JSON names. Changing their
//!   meaning requires bumping [`PROTOCOL_VERSION`].
//! - Times are epoch milliseconds; windows are `[start, end)`.
//! - A window ([`WindowView`]) and a range ([`Summary`]) carry the same [`Figures`],
//!   flattened into their own JSON object: one definition of what a count, a unique or a
//!   top list means.
//! - Top lists are ordered by count descending, then key ascending, and `approximate` is
//!   true when any of the underlying counters left exact mode.
//! - When a window is live, final or revised is decided by [`crate::window::window_state`].
//! - Goals ([`GoalFigures`]) list the server's configured goals in their order, with zeros
//!   where a window or range has no completion; conversion rate = converting visitors ÷
//!   unique visitors, both HyperLogLog estimates of the same window or range.
//! - A view filtered by a segment (`filter=country:DE`) carries the segment's figures and a
//!   [`SegmentNote`] saying whether they hold every event of that value (`complete`) or are
//!   a lower bound because some windows kept the value in their "other" bucket.
//!
//! Protocol versions: 1, the first; 2 adds goals to the figures, the segment note and the
//! filter echoed in the snapshot of a filtered socket (`/ws?filter=`). Both additions are
//! fields a version-1 client ignores. 3: after the snapshot the socket sends only what
//! changed (`changes`, replacing `windows` and `status`; see `patch`).
//!
//! The types live in child modules by subject; every one is re-exported here, so its path
//! is `proto::Name`:
//! - `windows`: a window's lifecycle ([`WindowState`]), what an item is made of
//!   ([`Resolution`]), [`WindowView`] and the body of `GET /api/v1/windows`.
//! - `figures`: the [`Figures`] a window and a summary share, [`GoalFigures`], the
//!   [`SegmentNote`] of a filtered view, top-list entries ([`Count`]).
//! - `summary`: [`Summary`] (`GET /api/v1/summary`) and the comparison with an earlier
//!   period ([`Compare`], [`Change`], [`SummaryComparison`], [`WindowsComparison`]).
//! - `status`: [`Status`] (`GET /api/v1/status`): partitions, instances, the cluster.
//! - `alerts`: alert rules, notices, history, webhook statistics and payload.
//! - `api`: the other HTTP bodies (`/readyz`, `POST /collect`, `/now`, `/segments`, dead
//!   letters, annotations) and the error body [`ApiError`].
//! - `socket`: the WebSocket messages ([`ServerMsg`], [`ClientMsg`]).
//! - `patch`: what changed, as the socket sends it (a window or the status as the fields
//!   that differ from what the client holds), and how a client applies and composes it.

mod alerts;
mod api;
mod figures;
pub mod patch;
mod socket;
mod status;
mod summary;
mod windows;

pub use alerts::{
    AlertHistoryEntry, AlertNotice, AlertRuleView, AlertsResponse, WebhookPayload, WebhookStats,
};
pub use api::{
    Accepted, Annotation, AnnotationsResponse, ApiError, DeadLettersResponse, GoalInfo, Readiness,
    RecordedDeadLetter, SegmentsInfo, VisitorsNow,
};
pub use figures::{Count, Figures, GoalFigures, SegmentNote, SiteFigures, SiteNote};
pub use socket::{ClientMsg, ServerMsg, MAX_CLIENT_FRAME};
pub use status::{
    BrokerInfo, ClusterHealth, InstanceRef, InstanceStatus, OffsetResetNote, PartitionStatus,
    Status,
};
pub use summary::{
    Change, Compare, PropertyFigures, PropertyValue, Summary, SummaryComparison, WindowsComparison,
};
pub use windows::{Resolution, WindowState, WindowView, WindowsResponse};

/// Version of the JSON protocol described here (see the module docs for the changes).
pub const PROTOCOL_VERSION: u32 = 3;

/// Fixtures shared by the tests of the child modules.
#[cfg(test)]
mod tests {
    use crate::event::Event;

    pub(super) fn ev(kind: &str, url: &str, referrer: Option<&str>) -> Event {
        Event {
            props: Vec::new(),
            site: None,
            ts: 1_795_515_330_123,
            kind: kind.into(),
            visitor: format!("v-{url}"),
            session: Some("s-1".into()),
            url: url.into(),
            referrer: referrer.map(Into::into),
            country: Some("DE".into()),
            device: Some("mobile".into()),
        }
    }
}
