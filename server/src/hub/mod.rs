//! The live hub: recent windows merged across partitions, and the sequenced stream of
//! changes that WebSocket clients follow.
//!
//! Contract (each part's in full in its file):
//! - `update.rs`: partition tasks [`Hub::update`] the windows they changed; the hub keeps
//!   the windows of the last [`HubConfig::horizon_ms`] in memory, completed from the store.
//! - `range.rs`: readers of a range ([`Hub::merged_range`]) get the store's rows with the
//!   hub's fresher copies, per partition.
//! - `publisher.rs`: the publisher ([`Hub::run_publisher`]) turns changes into sequenced,
//!   coalesced [`ServerMsg`]s of what changed, each serialised once, kept in a bounded
//!   backlog and broadcast with its [`Changed`] (`changes.rs`).
//! - `subscribe.rs`: a client subscribes with the last sequence it saw and gets what it
//!   missed from the backlog, or a snapshot.
//! - `snapshot.rs`: a snapshot is built and serialised at most once per sequence number,
//!   never under the lock the partitions publish through.

mod changes;
mod held;
mod publisher;
mod range;
mod snapshot;
mod subscribe;
mod update;

pub use changes::Changed;
pub(crate) use held::Held;
pub(crate) use subscribe::Published;
pub use subscribe::{Start, Subscription};

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulseboard_model::agg::{Aggregate, Goal};
use pulseboard_model::proto::patch::Fields;
use pulseboard_model::proto::{Figures, ServerMsg, Status, WindowState, WindowView};
use tokio::sync::{broadcast, Notify};

use crate::progress::Progress;
use crate::store::Store;

/// Tuning of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub window_ms: i64,
    /// How far back (from the newest window, or from now when that is in the future)
    /// windows stay in memory.
    pub horizon_ms: i64,
    /// How many windows a snapshot carries (the newest ones): by default every window the
    /// hub holds, so every window a later change names was in the snapshot or comes whole.
    pub snapshot_windows: usize,
    /// Entries of top lists in pushed windows.
    pub top_n: usize,
    /// Minimum time between two window messages (changes in between are coalesced).
    pub publish_interval: Duration,
    /// Minimum time between two hand-overs of a partition's changed open windows (an idle
    /// partition hands a change over at once).
    pub live_interval: Duration,
    /// Messages kept for resumes.
    pub backlog: usize,
    /// Messages a client may fall behind before it is resynced.
    pub client_queue: usize,
    /// The goals a window view lists (`--goal`).
    pub goals: Arc<[Goal]>,
}

impl HubConfig {
    /// The defaults with the intervals and queue sizes of `--publish-interval`,
    /// `--live-interval`, `--ws-backlog` and `--ws-client-queue`.
    pub fn from_args(window_ms: i64, args: &crate::config::HubArgs) -> Self {
        HubConfig {
            publish_interval: args.publish_interval,
            live_interval: args.live_interval,
            backlog: args.ws_backlog,
            client_queue: args.ws_client_queue,
            ..HubConfig::new(window_ms)
        }
    }

    pub fn new(window_ms: i64) -> Self {
        HubConfig {
            window_ms,
            // What a snapshot shows (90 windows) plus a margin; older windows come from the
            // store. Memory is bounded by this, not by how long the run is.
            horizon_ms: 100 * window_ms,
            snapshot_windows: 101,
            top_n: 10,
            // An event reaches idle clients at once; under a steady stream at most 20 window
            // messages a second go out, and an event waits at most 20 + 50 ms for its turn.
            publish_interval: Duration::from_millis(50),
            live_interval: Duration::from_millis(20),
            backlog: 1024,
            client_queue: 256,
            goals: Arc::new([]),
        }
    }
}

type PartKey = (String, i32);

/// One window's aggregates by partition ([`Held`]: a closed row's stored
/// bytes, an open window whole). Both levels are shared so a snapshot can take the windows
/// it shows under the lock for the price of a reference count; an update that meets a
/// window a snapshot still holds copies the map of handles, not the aggregates.
pub(crate) type Parts = Arc<HashMap<PartKey, Held>>;

/// An encoded server message as the sockets send it: cloning it shares the bytes, so a
/// message goes to 1,000 clients without 1,000 copies.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// A published message as the feed carries it: its sequence number, its text, and what it
/// changed (for a socket that folds messages into one).
pub type Sent = (u64, Frame, Arc<Changed>);

#[derive(Default)]
struct Inner {
    seq: u64,
    backlog: VecDeque<(u64, Frame)>,
    windows: BTreeMap<i64, Parts>,
    dirty: BTreeSet<i64>,
    states: BTreeMap<i64, WindowState>,
    /// Each window's view as last published: what the next message's change of it is taken
    /// from, and what a snapshot shows of it (a snapshot is of its sequence number).
    views: BTreeMap<i64, Arc<WindowView>>,
    /// The status as last published (its fields, for the next change).
    status: Option<(Arc<Status>, Fields)>,
    /// The snapshot of `seq`, from the first time someone asked for it until `seq` moves on.
    snapshot: Option<(u64, snapshot::SnapshotCell)>,
    /// The window starts each window message of the backlog carried, by sequence (what a
    /// filtered socket renders for its segment instead).
    published: VecDeque<(u64, Arc<[i64]>)>,
}

/// Counters about socket clients, for `/metrics`.
#[derive(Debug, Default)]
pub struct HubStats {
    pub clients: AtomicU64,
    pub connects_total: AtomicU64,
    pub resyncs_total: AtomicU64,
    pub messages_total: AtomicU64,
    /// Snapshots built and serialised (at most one per sequence number).
    pub snapshots_encoded: AtomicU64,
    /// Windows merged from their partitions for a snapshot (the others were reused as
    /// published).
    pub snapshot_windows_merged: AtomicU64,
}

/// The hub. Shared as `Arc<Hub>`.
pub struct Hub {
    cfg: HubConfig,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Sent>,
    progress: Arc<Progress>,
    /// Where windows the hub does not hold come from.
    store: Option<Store>,
    /// Wakes the publisher when a partition hands over a change.
    changed: Notify,
    pub stats: HubStats,
    /// Runs inside every snapshot build (tests use it to hold a build open).
    #[cfg(test)]
    build_hook: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Hub {
    pub fn new(cfg: HubConfig, progress: Arc<Progress>, store: Option<Store>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(cfg.client_queue.max(1));
        Arc::new(Hub {
            cfg,
            inner: Mutex::new(Inner::default()),
            tx,
            progress,
            store,
            changed: Notify::new(),
            stats: HubStats::default(),
            #[cfg(test)]
            build_hook: std::sync::OnceLock::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Only plain maps live behind this lock; a panic cannot leave them half-updated in a
        // way that matters more than losing one publish.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    fn view(&self, start: i64, parts: &HashMap<PartKey, Held>, state: WindowState) -> WindowView {
        WindowView {
            start,
            end: start + self.cfg.window_ms,
            state,
            resolution: Default::default(),
            figures: Figures::with_goals(&merge_parts(parts), self.cfg.top_n, &self.cfg.goals),
            segment: None,
            site: None,
        }
    }
}

fn merge_parts(parts: &HashMap<PartKey, Held>) -> Aggregate {
    let mut keys: Vec<&PartKey> = parts.keys().collect();
    // Merge in a fixed order so the result does not depend on hash order.
    keys.sort();
    let mut total = Aggregate::new();
    for k in keys {
        total.merge_figures(&parts[k].figures());
    }
    total
}

fn encode(msg: &ServerMsg) -> Frame {
    // Serialising plain structs of strings and numbers cannot fail.
    Frame::from(serde_json::to_string(msg).unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests;
