//! The live hub: recent windows merged across partitions, and the sequenced stream of
//! changes that WebSocket clients follow.
//!
//! Contract:
//! - Partition tasks [`Hub::update`] the windows they changed (whole per-partition
//!   aggregates). The hub keeps the windows of the last [`HubConfig::horizon_ms`] in memory,
//!   seeded from the store at start, so it can merge any recent window across partitions.
//!   A window the hub does not hold yet is completed from the store when a partition first
//!   updates it, so a merged window never lacks a partition that has data for it.
//! - Readers of a range ([`Hub::merged_range`]) get the store's rows with each partition's
//!   row replaced by the hub's fresher copy where it holds one: per partition, never one
//!   source instead of the other.
//! - The publisher ([`Hub::run_publisher`]) turns changes into [`ServerMsg`]s: the windows
//!   whose figures or state changed, and a status message every second. A change is pushed
//!   at once when the hub is idle; under load changes are coalesced, so window messages
//!   are at least `publish_interval` apart (at most 20 a second by default). Every message
//!   gets the next sequence number, is serialised once, kept in a bounded backlog for
//!   resumes, and broadcast.
//! - A client subscribes with the last sequence it saw: it gets the missed messages from the
//!   backlog, or a snapshot when they are gone. Broadcast is a bounded ring: a client that
//!   falls more than its capacity behind is resynced with a snapshot, and nobody waits for it.
//! - A snapshot is built and serialised at most once per sequence number, and never under
//!   the lock the partitions publish through: under it the hub only takes shared handles
//!   (`Arc`s) of the windows a snapshot shows; merging, rendering and encoding happen after
//!   it is released. Every client that asks at the same sequence, at once or later, gets the
//!   same encoded text; one that asks while it is being built waits for that build. A
//!   window published since its last change (same figures, same state) is not merged
//!   again: the snapshot reuses the view the publisher rendered, so under a steady stream a
//!   snapshot merges only the few windows still changing.
//! - The windows held in memory are those of the last `horizon_ms` before the newest window,
//!   but never before `now - horizon_ms`: a window stamped in the future cannot push the real
//!   recent windows out.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pulseboard_model::agg::{Aggregate, Goal, Keep};
use pulseboard_model::proto::{Figures, ServerMsg, WindowState, WindowView, PROTOCOL_VERSION};
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::progress::Progress;
use crate::store::{Store, StoreError};

/// Tuning of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub window_ms: i64,
    /// How far back (from the newest window, or from now when that is in the future)
    /// windows stay in memory.
    pub horizon_ms: i64,
    /// How many windows a snapshot carries (the newest ones).
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
            snapshot_windows: 90,
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

/// One window's aggregates by partition. Both levels are shared (`Arc`) so a snapshot can
/// take the windows it shows under the lock for the price of a reference count; an update
/// that meets a window a snapshot still holds copies the map of handles, not the aggregates.
pub(crate) type Parts = Arc<HashMap<PartKey, Arc<Aggregate>>>;

/// The encoded snapshot of one sequence number, filled once by whoever asks first.
/// An encoded server message as the sockets send it: cloning it shares the bytes, so a
/// message goes to 1,000 clients without 1,000 copies.
pub type Frame = axum::extract::ws::Utf8Bytes;

type SnapshotCell = Arc<OnceLock<Frame>>;

#[derive(Default)]
struct Inner {
    seq: u64,
    backlog: VecDeque<(u64, Frame)>,
    windows: BTreeMap<i64, Parts>,
    dirty: BTreeSet<i64>,
    states: BTreeMap<i64, WindowState>,
    /// Each window's view as last published: a snapshot reuses it while the window is not
    /// dirty and its state has not moved, instead of merging its partitions again.
    views: BTreeMap<i64, Arc<WindowView>>,
    /// The snapshot of `seq`, from the first time someone asked for it until `seq` moves on.
    snapshot: Option<(u64, SnapshotCell)>,
    /// The window starts each window message of the backlog carried, by sequence (what a
    /// filtered socket renders for its segment instead).
    published: VecDeque<(u64, Arc<[i64]>)>,
}

/// What a published message was, as a filtered socket needs to know it.
pub(crate) enum Published {
    /// A window message: the windows it carried, as they are now (start, state, parts).
    Windows(Vec<(i64, WindowState, Parts)>),
    /// Not a window message (status): the same for every client.
    Other,
    /// No longer in the backlog.
    Gone,
}

/// What a snapshot of one sequence needs, taken under the lock; built outside it.
enum SnapshotTicket {
    /// Already encoded.
    Ready(u64, Frame),
    /// To be built into `cell` (or taken from it if someone else builds it first) from the
    /// newest windows, oldest first, with their state at the time they were taken.
    Build {
        seq: u64,
        cell: SnapshotCell,
        windows: Vec<SnapshotWindow>,
    },
}

/// One window of a snapshot to build.
enum SnapshotWindow {
    /// As last published, still current.
    Published(Arc<WindowView>),
    /// To be merged from its partitions, in this state.
    Merge(i64, WindowState, Parts),
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
    tx: broadcast::Sender<(u64, Frame)>,
    live: Arc<Progress>,
    /// Where windows the hub does not hold come from.
    store: Option<Store>,
    /// Wakes the publisher when a partition hands over a change.
    changed: Notify,
    pub stats: HubStats,
    /// Runs inside every snapshot build (tests use it to hold a build open).
    #[cfg(test)]
    build_hook: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// What a new subscriber gets first.
pub enum Start {
    /// Messages after the client's `since`, in order.
    Replay(Vec<Frame>),
    /// A snapshot (serialised), with its sequence.
    Snapshot(u64, Frame),
}

/// A subscription: the catch-up messages, then the live feed.
pub struct Subscription {
    pub start: Start,
    /// Sequence of the last message included in `start`.
    pub last_seq: u64,
    pub rx: broadcast::Receiver<(u64, Frame)>,
}

impl Hub {
    pub fn new(cfg: HubConfig, live: Arc<Progress>, store: Option<Store>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(cfg.client_queue.max(1));
        Arc::new(Hub {
            cfg,
            inner: Mutex::new(Inner::default()),
            tx,
            live,
            store,
            changed: Notify::new(),
            stats: HubStats::default(),
            #[cfg(test)]
            build_hook: OnceLock::new(),
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

    /// Seed the recent windows from the store: the horizon before now, or before the
    /// newest stored window when the data is older than that.
    pub fn seed(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        let newest = store.newest_window()?.unwrap_or(now_ms).min(now_ms);
        let rows = store.windows_in(newest - self.cfg.horizon_ms, i64::MAX)?;
        let mut g = self.lock();
        for row in rows {
            Arc::make_mut(g.windows.entry(row.start).or_default())
                .insert((row.topic, row.partition), Arc::new(row.agg));
        }
        Ok(())
    }

    /// A partition's current aggregates of the windows it changed.
    pub fn update(&self, topic: &str, partition: i32, windows: Vec<(i64, Aggregate)>) {
        self.update_at(topic, partition, windows, crate::now_ms());
    }

    /// [`Hub::update`] at wall-clock time `now_ms`: the horizon is counted back from the
    /// newest window, or from `now_ms` when the newest window lies in the future.
    pub fn update_at(
        &self,
        topic: &str,
        partition: i32,
        windows: Vec<(i64, Aggregate)>,
        now_ms: i64,
    ) {
        if windows.is_empty() {
            return;
        }
        let mut g = self.lock();
        let held = g.windows.keys().next_back().copied().unwrap_or(i64::MIN);
        let newest = held.max(windows.iter().map(|w| w.0).max().unwrap_or(i64::MIN));
        let floor = newest.min(now_ms).saturating_sub(self.cfg.horizon_ms);
        for (start, agg) in windows {
            if start < floor {
                continue;
            }
            let parts = g
                .windows
                .entry(start)
                .or_insert_with(|| Arc::new(self.stored_parts(start)));
            // Copies the map of handles only when a snapshot being built still holds it.
            Arc::make_mut(parts).insert((topic.to_owned(), partition), Arc::new(agg));
            g.dirty.insert(start);
        }
        // Keep memory bounded: drop what fell out of the horizon.
        let keep = g.windows.split_off(&floor);
        g.windows = keep;
        let keep = g.states.split_off(&floor);
        g.states = keep;
        let keep = g.views.split_off(&floor);
        g.views = keep;
        drop(g);
        self.changed.notify_one();
    }

    /// Replace what the hub holds of one partition by the store's rows: after this instance
    /// stopped reading it (its last figures may not have been committed; the store holds
    /// what was, by this instance or the next owner).
    pub fn reload_partition(&self, topic: &str, partition: i32) {
        let Some(store) = &self.store else {
            return;
        };
        let key: PartKey = (topic.to_owned(), partition);
        let mut g = self.lock();
        let Some(from) = g.windows.keys().next().copied() else {
            return;
        };
        let rows = match store.partition_windows_from(topic, partition, from) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(topic, partition, error = %e, "cannot reload a partition's windows from the store");
                return;
            }
        };
        let mut stored: HashMap<i64, Aggregate> = rows.into_iter().collect();
        let starts: Vec<i64> = g.windows.keys().copied().collect();
        for start in starts {
            let row = stored.remove(&start);
            let Some(parts) = g.windows.get_mut(&start) else {
                continue;
            };
            let held = parts.get(&key).cloned();
            let changed = match (&held, &row) {
                (Some(h), Some(r)) => **h != *r,
                (None, None) => false,
                _ => true,
            };
            if !changed {
                continue;
            }
            let parts = Arc::make_mut(parts);
            match row {
                Some(r) => {
                    parts.insert(key.clone(), Arc::new(r));
                }
                None => {
                    parts.remove(&key);
                }
            }
            g.dirty.insert(start);
        }
        // Windows the hub did not hold yet (written by an earlier run, or another instance).
        for (start, row) in stored {
            let parts = g
                .windows
                .entry(start)
                .or_insert_with(|| Arc::new(self.stored_parts(start)));
            Arc::make_mut(parts).insert(key.clone(), Arc::new(row));
            g.dirty.insert(start);
        }
        drop(g);
        self.changed.notify_one();
    }

    /// The stored rows of one window, by partition (empty without a store or on error: the
    /// partitions then fill it in as they update it).
    fn stored_parts(&self, start: i64) -> HashMap<PartKey, Arc<Aggregate>> {
        let Some(store) = &self.store else {
            return HashMap::new();
        };
        match store.windows_in(start, start + 1) {
            Ok(rows) => rows
                .into_iter()
                .map(|r| ((r.topic, r.partition), Arc::new(r.agg)))
                .collect(),
            Err(e) => {
                tracing::error!(start, error = %e, "cannot read a window from the store");
                HashMap::new()
            }
        }
    }

    /// Windows with start in `[from, to)`, merged across partitions: the store's rows, with
    /// each partition's row replaced by the hub's fresher copy where the hub holds one.
    /// Their figures only: the segment tables are not merged.
    pub fn merged_range(
        &self,
        store: &Store,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<i64, Aggregate>, StoreError> {
        self.merged_range_with(store, from, to, Keep::Figures, |t: &mut Aggregate, a| {
            t.merge_figures(a)
        })
    }

    /// [`Hub::merged_range`] folding each partition's row of a window into a `T` with
    /// `fold`, in partition order; rows read from the store are decoded with the segment
    /// tables `keep` says.
    pub fn merged_range_with<T: Default>(
        &self,
        store: &Store,
        from: i64,
        to: i64,
        keep: Keep,
        mut fold: impl FnMut(&mut T, &Aggregate),
    ) -> Result<BTreeMap<i64, T>, StoreError> {
        let mut parts: BTreeMap<i64, HashMap<PartKey, Aggregate>> = BTreeMap::new();
        for row in store.windows_in_with(from, to, keep)? {
            parts
                .entry(row.start)
                .or_default()
                .insert((row.topic, row.partition), row.agg);
        }
        let g = self.lock();
        let mut out = BTreeMap::new();
        let starts: BTreeSet<i64> = parts
            .keys()
            .chain(g.windows.range(from..to).map(|(s, _)| s))
            .copied()
            .collect();
        for start in starts {
            let stored = parts.remove(&start).unwrap_or_default();
            let held = g.windows.get(&start).map(|h| &**h);
            let mut keys: Vec<&PartKey> = stored
                .keys()
                .filter(|k| held.is_none_or(|h| !h.contains_key(*k)))
                .chain(held.into_iter().flat_map(|h| h.keys()))
                .collect();
            keys.sort();
            let mut total = T::default();
            for k in keys {
                match held.and_then(|h| h.get(k)) {
                    Some(a) => fold(&mut total, a),
                    None => fold(&mut total, &stored[k]),
                }
            }
            out.insert(start, total);
        }
        Ok(out)
    }

    fn view(
        &self,
        start: i64,
        parts: &HashMap<PartKey, Arc<Aggregate>>,
        state: WindowState,
    ) -> WindowView {
        WindowView {
            start,
            end: start + self.cfg.window_ms,
            state,
            resolution: Default::default(),
            figures: Figures::with_goals(&merge_parts(parts), self.cfg.top_n, &self.cfg.goals),
            segment: None,
        }
    }

    /// The live state the hub reads window states and the status from.
    pub(crate) fn live(&self) -> &Progress {
        &self.live
    }

    /// The current sequence and the newest windows a snapshot shows (start, state, parts),
    /// oldest first, taken together under the lock.
    pub(crate) fn newest_windows(&self) -> (u64, Vec<(i64, WindowState, Parts)>) {
        let state_of = self.live.window_states();
        let g = self.lock();
        let mut windows: Vec<(i64, WindowState, Parts)> = g
            .windows
            .iter()
            .rev()
            .take(self.cfg.snapshot_windows)
            .map(|(s, p)| (*s, state_of(*s), p.clone()))
            .collect();
        windows.reverse();
        (g.seq, windows)
    }

    /// What message `seq` was (see [`Published`]), with the windows it carried as they are
    /// now.
    pub(crate) fn published(&self, seq: u64) -> Published {
        let state_of = self.live.window_states();
        let g = self.lock();
        if g.backlog.front().is_none_or(|(first, _)| seq < *first) {
            return Published::Gone;
        }
        let Ok(i) = g.published.binary_search_by_key(&seq, |(s, _)| *s) else {
            return Published::Other;
        };
        let windows = g.published[i]
            .1
            .iter()
            .filter_map(|s| g.windows.get(s).map(|p| (*s, state_of(*s), p.clone())))
            .collect();
        Published::Windows(windows)
    }

    /// The live feed alone, from the current sequence on (a filtered socket builds its own
    /// first message).
    pub(crate) fn subscribe_feed(&self) -> (u64, broadcast::Receiver<(u64, Frame)>) {
        let g = self.lock();
        (g.seq, self.tx.subscribe())
    }

    /// The snapshot of the current sequence as far as it can be had under the lock: the
    /// encoded text when someone already built it, else what building it takes (cheap
    /// handles of the newest windows and their states).
    fn snapshot_ticket(&self, g: &mut Inner) -> SnapshotTicket {
        let seq = g.seq;
        let cell = match &g.snapshot {
            Some((s, cell)) if *s == seq => cell.clone(),
            _ => {
                let cell = SnapshotCell::default();
                g.snapshot = Some((seq, cell.clone()));
                cell
            }
        };
        if let Some(text) = cell.get() {
            return SnapshotTicket::Ready(seq, text.clone());
        }
        let state_of = self.live.window_states();
        let mut windows: Vec<SnapshotWindow> = g
            .windows
            .iter()
            .rev()
            .take(self.cfg.snapshot_windows)
            .map(|(s, parts)| {
                let state = state_of(*s);
                match g.views.get(s) {
                    Some(v) if v.state == state && !g.dirty.contains(s) => {
                        SnapshotWindow::Published(v.clone())
                    }
                    _ => SnapshotWindow::Merge(*s, state, parts.clone()),
                }
            })
            .collect();
        windows.reverse();
        SnapshotTicket::Build { seq, cell, windows }
    }

    /// The encoded snapshot of a ticket. Call it without the lock: this is where the windows
    /// are merged and the message serialised, once per sequence; a caller that finds the
    /// build under way waits for it instead of doing it again.
    fn redeem(&self, ticket: SnapshotTicket) -> (u64, Frame) {
        match ticket {
            SnapshotTicket::Ready(seq, text) => (seq, text),
            SnapshotTicket::Build { seq, cell, windows } => {
                let text = cell.get_or_init(|| {
                    #[cfg(test)]
                    if let Some(hook) = self.build_hook.get() {
                        hook();
                    }
                    self.stats.snapshots_encoded.fetch_add(1, Ordering::Relaxed);
                    let windows = windows
                        .iter()
                        .map(|w| match w {
                            SnapshotWindow::Published(v) => WindowView::clone(v),
                            SnapshotWindow::Merge(s, state, parts) => {
                                self.stats
                                    .snapshot_windows_merged
                                    .fetch_add(1, Ordering::Relaxed);
                                self.view(*s, parts, *state)
                            }
                        })
                        .collect();
                    encode(&ServerMsg::Snapshot {
                        protocol: PROTOCOL_VERSION,
                        seq,
                        window_ms: self.cfg.window_ms,
                        windows,
                        status: self.live.status(),
                        filter: None,
                    })
                });
                (seq, text.clone())
            }
        }
    }

    /// The serialised snapshot of the current sequence, and that sequence.
    pub fn snapshot(&self) -> (u64, Frame) {
        let ticket = self.snapshot_ticket(&mut self.lock());
        self.redeem(ticket)
    }

    /// Subscribe, resuming after `since` when the backlog still holds what followed it.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        let mut g = self.lock();
        // Subscribe under the lock: nothing can be published between catch-up and feed.
        let rx = self.tx.subscribe();
        let resumable = since.and_then(|s| {
            if s > g.seq {
                return None;
            }
            if s == g.seq {
                return Some(Vec::new());
            }
            let first = g.backlog.front()?.0;
            (first <= s + 1).then(|| {
                g.backlog
                    .iter()
                    .filter(|(q, _)| *q > s)
                    .map(|(_, m)| m.clone())
                    .collect()
            })
        });
        let last_seq = g.seq;
        let start = match resumable {
            Some(msgs) => Start::Replay(msgs),
            None => {
                let ticket = self.snapshot_ticket(&mut g);
                drop(g);
                let (seq, text) = self.redeem(ticket);
                Start::Snapshot(seq, text)
            }
        };
        Subscription {
            start,
            last_seq,
            rx,
        }
    }

    fn publish_locked(&self, g: &mut Inner, make: impl FnOnce(u64) -> ServerMsg) {
        g.seq += 1;
        let seq = g.seq;
        // The cached snapshot is of the previous sequence; clients building it keep theirs.
        g.snapshot = None;
        let text = encode(&make(seq));
        g.backlog.push_back((seq, text.clone()));
        while g.backlog.len() > self.cfg.backlog {
            g.backlog.pop_front();
        }
        self.stats.messages_total.fetch_add(1, Ordering::Relaxed);
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send((seq, text));
    }

    /// Publish the windows that changed (figures or state) since the last call.
    pub fn publish_windows(&self) {
        let state_of = self.live.window_states();
        let mut guard = self.lock();
        let g = &mut *guard;
        let mut changed: BTreeSet<i64> = std::mem::take(&mut g.dirty);
        for &s in g.windows.keys() {
            let st = state_of(s);
            if g.states.insert(s, st) != Some(st) {
                changed.insert(s);
            }
        }
        if changed.is_empty() {
            return;
        }
        let windows: Vec<WindowView> = changed
            .iter()
            .filter_map(|s| {
                g.windows
                    .get(s)
                    .map(|parts| self.view(*s, parts, state_of(*s)))
            })
            .collect();
        if windows.is_empty() {
            return;
        }
        for w in &windows {
            g.views.insert(w.start, Arc::new(w.clone()));
        }
        let starts: Arc<[i64]> = windows.iter().map(|w| w.start).collect();
        self.publish_locked(g, |seq| ServerMsg::Windows { seq, windows });
        g.published.push_back((g.seq, starts));
        let first = g.backlog.front().map_or(u64::MAX, |(s, _)| *s);
        while g.published.front().is_some_and(|(s, _)| *s < first) {
            g.published.pop_front();
        }
    }

    /// Publish the status.
    pub fn publish_status(&self) {
        let status = self.live.status();
        let mut g = self.lock();
        self.publish_locked(&mut g, |seq| ServerMsg::Status { seq, status });
    }

    /// Publish changes as they come (coalesced to one window message per
    /// `publish_interval`) and the status every second, until shutdown. The status tick
    /// also publishes window state changes that no partition reported (a window turning
    /// final as an idle partition stops holding the watermark back).
    pub async fn run_publisher(self: Arc<Self>, shutdown: CancellationToken) {
        let mut status = tokio::time::interval(Duration::from_secs(1));
        status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_windows = tokio::time::Instant::now() - self.cfg.publish_interval;
        loop {
            tokio::select! {
                // Shutdown first; then changes before status so a burst of changes is not
                // delayed behind the slower status tick.
                biased;
                _ = shutdown.cancelled() => break,
                _ = self.changed.notified() => {
                    let due = last_windows + self.cfg.publish_interval;
                    if tokio::time::Instant::now() < due {
                        // Under load: let more changes gather until our turn.
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep_until(due) => {}
                        }
                    }
                    self.publish_windows();
                    last_windows = tokio::time::Instant::now();
                }
                _ = status.tick() => {
                    self.publish_windows();
                    self.publish_status();
                }
            }
        }
    }
}

fn merge_parts(parts: &HashMap<PartKey, Arc<Aggregate>>) -> Aggregate {
    let mut keys: Vec<&PartKey> = parts.keys().collect();
    // Merge in a fixed order so the result does not depend on hash order.
    keys.sort();
    let mut total = Aggregate::new();
    for k in keys {
        total.merge_figures(&parts[k]);
    }
    total
}

fn encode(msg: &ServerMsg) -> Frame {
    // Serialising plain structs of strings and numbers cannot fail.
    Frame::from(serde_json::to_string(msg).unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pulseboard_model::event::Event;

    /// The same encoded bytes (not only equal ones).
    fn same(a: &Frame, b: &Frame) -> bool {
        a.as_str().as_ptr() == b.as_str().as_ptr()
    }

    fn agg(n: u64) -> Aggregate {
        let mut a = Aggregate::new();
        for i in 0..n {
            a.add(&Event {
                ts: 0,
                kind: "pageview".into(),
                visitor: format!("v{i}"),
                session: None,
                url: "/".into(),
                referrer: None,
                country: None,
                device: None,
            });
        }
        a
    }

    /// A hub over a fresh embedded-mode `Progress`, with 10 s windows, tuned by `tune`.
    pub(crate) fn test_hub(tune: impl FnOnce(&mut HubConfig)) -> Arc<Hub> {
        let live = Arc::new(Progress::new(
            "embedded".into(),
            true,
            10_000,
            Duration::from_secs(30),
        ));
        let mut cfg = HubConfig::new(10_000);
        tune(&mut cfg);
        Hub::new(cfg, live, None)
    }

    /// A hub with 10 s windows over `store`.
    fn store_hub(store: &Store) -> Arc<Hub> {
        let live = Arc::new(Progress::new(
            "embedded".into(),
            true,
            10_000,
            Duration::from_secs(30),
        ));
        Hub::new(HubConfig::new(10_000), live, Some(store.clone()))
    }

    fn hub(backlog: usize) -> Arc<Hub> {
        test_hub(|c| c.backlog = backlog)
    }

    fn decode(s: &str) -> ServerMsg {
        serde_json::from_str(s).expect("server message")
    }

    #[test]
    fn windows_merge_across_partitions_and_publish_once_per_change() {
        let h = hub(16);
        h.update("t", 0, vec![(0, agg(2))]);
        h.update("t", 1, vec![(0, agg(3)), (10_000, agg(1))]);
        h.publish_windows();
        let sub = h.subscribe(Some(0));
        let Start::Replay(msgs) = sub.start else {
            panic!("resume from 0 must replay")
        };
        assert_eq!(msgs.len(), 1);
        match decode(&msgs[0]) {
            ServerMsg::Windows { seq, windows } => {
                assert_eq!(seq, 1);
                assert_eq!(
                    windows
                        .iter()
                        .map(|w| (w.start, w.figures.events))
                        .collect::<Vec<_>>(),
                    vec![(0, 5), (10_000, 1)]
                );
            }
            m => panic!("unexpected {m:?}"),
        }
        // Nothing changed: nothing published.
        h.publish_windows();
        assert_eq!(h.subscribe(None).last_seq, 1);
    }

    #[test]
    fn resume_replays_missed_messages_or_falls_back_to_snapshot() {
        let h = hub(3);
        for i in 0..5 {
            h.update("t", 0, vec![(0, agg(i + 1))]);
            h.publish_windows();
        }
        // Backlog holds 3..=5: resuming after 2 replays 3, 4, 5.
        let Start::Replay(m) = h.subscribe(Some(2)).start else {
            panic!("replay expected")
        };
        assert_eq!(
            m.iter().map(|s| decode(s).seq()).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        // After 1, message 2 is gone: snapshot.
        let Start::Snapshot(seq, snap) = h.subscribe(Some(1)).start else {
            panic!("snapshot expected")
        };
        assert_eq!(seq, 5);
        match decode(&snap) {
            ServerMsg::Snapshot { windows, seq, .. } => {
                assert_eq!(seq, 5);
                assert_eq!(windows[0].figures.events, 5);
            }
            m => panic!("unexpected {m:?}"),
        }
        // Up to date: nothing to replay. From the future (another server run): snapshot.
        assert!(matches!(h.subscribe(Some(5)).start, Start::Replay(ref v) if v.is_empty()));
        assert!(matches!(h.subscribe(Some(99)).start, Start::Snapshot(..)));
    }

    #[tokio::test]
    async fn a_window_is_never_shown_with_partitions_missing_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        // Four partitions stored window 0 before the restart: 1 + 2 + 3 + 4 events.
        for p in 0..4 {
            let write = crate::store::PartitionWrite {
                topic: "t".into(),
                partition: p,
                rows: vec![(0, agg(p as u64 + 1))],
                ..Default::default()
            };
            store.write(&[write]).await.expect("checkpoint");
        }
        // After the restart the hub was not seeded (say the window was older than its
        // range); partition 0 alone hands over a fresher copy of window 0: 5 events.
        let h = store_hub(&store);
        h.update("t", 0, vec![(0, agg(5))]);
        let merged = h.merged_range(&store, 0, 10_000).expect("range");
        assert_eq!(
            merged[&0].events,
            5 + 2 + 3 + 4,
            "partition 0 fresher, the others stored"
        );
        match decode(&h.snapshot().1) {
            ServerMsg::Snapshot { windows, .. } => assert_eq!(windows[0].figures.events, 14),
            m => panic!("unexpected {m:?}"),
        }
        // Without the hub's copy a window is the store's alone.
        let fresh = test_hub(|_| {});
        assert_eq!(
            fresh.merged_range(&store, 0, 10_000).expect("range")[&0].events,
            1 + 2 + 3 + 4
        );
    }

    #[tokio::test]
    async fn reloading_a_partition_shows_what_the_store_got_after_the_hub_loaded_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let write = |p: i32, rows: Vec<(i64, Aggregate)>| crate::store::PartitionWrite {
            topic: "t".into(),
            partition: p,
            rows,
            ..Default::default()
        };
        store
            .write(&[write(0, vec![(0, agg(1))]), write(1, vec![(0, agg(2))])])
            .await
            .expect("checkpoint");
        let h = store_hub(&store);
        h.update("t", 1, vec![(0, agg(2))]);
        // A checkpoint of partition 0 reaches the store behind the hub's back (an earlier
        // run's, brought by the state topic): window 0 grew, window 10 s is new.
        store
            .write(&[write(0, vec![(0, agg(4)), (10_000, agg(3))])])
            .await
            .expect("checkpoint");
        h.reload_partition("t", 0);
        h.publish_windows();
        match decode(&h.snapshot().1) {
            ServerMsg::Snapshot { windows, .. } => assert_eq!(
                windows
                    .iter()
                    .map(|w| (w.start, w.figures.events))
                    .collect::<Vec<_>>(),
                vec![(0, 4 + 2), (10_000, 3)]
            ),
            m => panic!("unexpected {m:?}"),
        }
    }

    #[test]
    fn memory_is_bounded_by_the_horizon() {
        let h = hub(16);
        let horizon = h.config().horizon_ms;
        for i in 0..1_000 {
            h.update("t", 0, vec![(i * 10_000, agg(1))]);
        }
        let g = h.lock();
        assert!(
            g.windows.len() as i64 <= horizon / 10_000 + 1,
            "{}",
            g.windows.len()
        );
    }

    #[test]
    fn a_window_stamped_in_the_future_does_not_evict_the_recent_windows() {
        let h = hub(16);
        let horizon = h.config().horizon_ms;
        let now = 1_800_000_000_000;
        let recent = now - now % 10_000 - 50_000;
        h.update_at("t", 0, vec![(recent, agg(3))], now);
        // A window far ahead of the wall clock: the horizon still counts back from now.
        let future = now + 10 * horizon;
        h.update_at("t", 1, vec![(future, agg(1))], now);
        h.update_at("t", 0, vec![(recent + 10_000, agg(2))], now);
        let g = h.lock();
        let held: Vec<i64> = g.windows.keys().copied().collect();
        assert_eq!(held, vec![recent, recent + 10_000, future]);
        drop(g);
        // Once the wall clock has moved on, the horizon still bounds memory.
        h.update_at("t", 0, vec![(future, agg(1))], future);
        let g = h.lock();
        assert_eq!(g.windows.keys().copied().collect::<Vec<_>>(), vec![future]);
    }

    #[test]
    fn a_snapshot_is_encoded_once_per_sequence_however_many_clients_ask() {
        let h = hub(1);
        h.update("t", 0, vec![(0, agg(2)), (10_000, agg(1))]);
        h.publish_windows();
        h.publish_status();
        // Clients connecting at once, resuming from a message the backlog no longer holds,
        // or fresh.
        let snaps: Vec<(u64, Frame)> = std::thread::scope(|s| {
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let h = &h;
                    s.spawn(move || match h.subscribe((i % 2 == 0).then_some(0)).start {
                        Start::Snapshot(seq, text) => (seq, text),
                        Start::Replay(_) => panic!("the backlog no longer holds message 1"),
                    })
                })
                .collect();
            tasks
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .collect()
        });
        let (seq, first) = h.snapshot();
        assert_eq!(seq, 2);
        for (s, text) in &snaps {
            assert_eq!(*s, 2);
            assert!(same(text, &first), "one shared encoding");
        }
        assert_eq!(h.stats.snapshots_encoded.load(Ordering::Relaxed), 1);
        match decode(&first) {
            ServerMsg::Snapshot { seq, windows, .. } => {
                assert_eq!(seq, 2);
                assert_eq!(
                    windows
                        .iter()
                        .map(|w| (w.start, w.figures.events))
                        .collect::<Vec<_>>(),
                    vec![(0, 2), (10_000, 1)]
                );
            }
            m => panic!("unexpected {m:?}"),
        }
        // The next sequence gets its own snapshot, once.
        h.publish_status();
        let (seq, next) = h.snapshot();
        assert_eq!(seq, 3);
        assert!(!same(&next, &first));
        assert!(same(&h.snapshot().1, &next));
        assert_eq!(h.stats.snapshots_encoded.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_snapshot_reuses_published_windows_and_merges_only_those_changed_since() {
        let h = hub(16);
        let merged = |h: &Hub| h.stats.snapshot_windows_merged.load(Ordering::Relaxed);
        h.update(
            "t",
            0,
            vec![(0, agg(2)), (10_000, agg(1)), (20_000, agg(4))],
        );
        h.update("t", 1, vec![(0, agg(3))]);
        // Nothing published yet: every window is merged.
        h.snapshot();
        assert_eq!(merged(&h), 3);
        h.publish_windows();
        h.snapshot();
        assert_eq!(merged(&h), 3, "all three reused as published");
        // One window changes (not yet published, but the sequence moves on): only it is
        // merged, and the snapshot shows its new figures.
        h.update("t", 1, vec![(20_000, agg(5))]);
        h.publish_status();
        let (_, text) = h.snapshot();
        assert_eq!(merged(&h), 4);
        let ServerMsg::Snapshot { windows, .. } = decode(&text) else {
            panic!("a snapshot")
        };
        assert_eq!(
            windows
                .iter()
                .map(|w| (w.start, w.figures.events))
                .collect::<Vec<_>>(),
            vec![(0, 5), (10_000, 1), (20_000, 9)]
        );
        // The same figures as a hub that merges everything.
        let fresh = hub(16);
        fresh.update(
            "t",
            0,
            vec![(0, agg(2)), (10_000, agg(1)), (20_000, agg(4))],
        );
        fresh.update("t", 1, vec![(0, agg(3)), (20_000, agg(5))]);
        let ServerMsg::Snapshot { windows: all, .. } = decode(&fresh.snapshot().1) else {
            panic!("a snapshot")
        };
        assert_eq!(windows, all);
    }

    #[test]
    fn publishing_is_not_blocked_while_a_snapshot_is_built() {
        use std::sync::mpsc;
        let h = hub(16);
        h.update("t", 0, vec![(0, agg(1))]);
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let hook: Box<dyn Fn() + Send + Sync> = Box::new(move || {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().map(|rx| rx.recv());
        });
        assert!(h.build_hook.set(hook).is_ok());
        let client = {
            let h = h.clone();
            std::thread::spawn(move || h.subscribe(None))
        };
        let wait = Duration::from_secs(30);
        entered_rx.recv_timeout(wait).expect("the build started");
        // The build is held open: partitions and the publisher go on regardless.
        let (done_tx, done_rx) = mpsc::channel();
        let publisher = {
            let h = h.clone();
            std::thread::spawn(move || {
                h.update("t", 0, vec![(0, agg(4))]);
                h.publish_windows();
                h.publish_status();
                let _ = done_tx.send(());
            })
        };
        let published = done_rx.recv_timeout(wait);
        release_tx.send(()).expect("the build is waiting");
        published.expect("update and publish finished while the snapshot was being built");
        publisher.join().expect("no panic");
        let mut sub = client.join().expect("no panic");
        // The client got the snapshot of the sequence it subscribed at, then what followed.
        let Start::Snapshot(seq, snap) = sub.start else {
            panic!("a new client gets a snapshot")
        };
        assert_eq!((seq, sub.last_seq), (0, 0));
        assert_eq!(decode(&snap).seq(), 0);
        let next: Vec<u64> = std::iter::from_fn(|| sub.rx.try_recv().ok().map(|m| m.0)).collect();
        assert_eq!(next, vec![1, 2]);
    }
}
