//! The client's stream state: what a dashboard knows of the server's windows and status,
//! built from the server's [`ServerMsg`]s and the history API, with the resume rules of the
//! WebSocket.
//!
//! Contract:
//! - A snapshot is always applied: it replaces the windows it carries and the status, and
//!   sets the last sequence; older windows (loaded from the API) stay.
//! - A `changes` message is applied when the client holds the message it follows (`after`)
//!   or a later one, and not the message itself: an older or equal one is [`Apply::Stale`]
//!   (ignored); one that follows a message the client never got, or any before the first
//!   snapshot, is an [`Apply::Gap`]: the client reconnects with `since`. A change of a
//!   window the client does not hold makes one only when it is whole (the server sends a
//!   window whole when the client may not hold it; a change of a window dropped as older
//!   than `keep` is ignored).
//! - History from the API never overwrites a window the socket delivered. A coarse item of
//!   history (a step of a long range) replaces the windows inside it, and no window inside
//!   one is added later: its events are in the item.
//! - At most `keep` windows are held (0 = unbounded); the oldest go first.
//! - Pure: no I/O, no clock, so the rules are tested on the host.

use std::collections::BTreeMap;

use crate::proto::{patch, ServerMsg, Status, WindowView};

/// What a client does when a message arrives out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Applied.
    Applied,
    /// Already seen (a replay overlapping what the client had): ignored.
    Stale,
    /// Messages are missing between the last seen and this one: reconnect with
    /// `since = last_seq` to be resumed or resynced.
    Gap {
        /// The last sequence applied.
        last_seq: u64,
    },
}

/// Client-side state built from [`ServerMsg`]s: windows by start, the status, and the
/// last sequence applied. Pure, so the resume rules are tested on the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamState {
    /// Window width, ms (0 before the first snapshot).
    pub window_ms: i64,
    /// Windows by start.
    pub windows: BTreeMap<i64, WindowView>,
    /// Latest status.
    pub status: Option<Status>,
    /// Last sequence applied (`None` before the first snapshot).
    pub last_seq: Option<u64>,
    /// How many windows to keep (oldest dropped first); 0 = unbounded.
    pub keep: usize,
}

impl StreamState {
    /// An empty state keeping at most `keep` windows.
    pub fn new(keep: usize) -> Self {
        StreamState {
            keep,
            ..StreamState::default()
        }
    }

    /// Apply one message.
    pub fn apply(&mut self, msg: ServerMsg) -> Apply {
        let seq = msg.seq();
        if let ServerMsg::Snapshot {
            window_ms,
            windows,
            status,
            ..
        } = msg
        {
            self.window_ms = window_ms;
            // A snapshot replaces what it covers; older history (loaded from the API) stays.
            for w in windows {
                self.put(w);
            }
            self.status = Some(status);
            self.last_seq = Some(seq);
            self.trim();
            return Apply::Applied;
        }
        let ServerMsg::Changes {
            after,
            windows,
            status,
            ..
        } = msg
        else {
            return Apply::Stale;
        };
        match self.last_seq {
            None => return Apply::Gap { last_seq: 0 },
            Some(last) if seq <= last => return Apply::Stale,
            // What changed after `after` brings any state from `after` on to `seq`.
            Some(last) if after > last => return Apply::Gap { last_seq: last },
            Some(_) => {}
        }
        for change in &windows {
            let Some(start) = patch::window_start(change) else {
                continue;
            };
            // A window the client does not hold comes whole; a change of one it dropped
            // (older than it keeps) does not make one.
            if let Ok(w) = patch::apply_window(self.windows.get(&start), change) {
                self.put(w);
            }
        }
        self.trim();
        if let Some(change) = status {
            if let Ok(s) = patch::apply_status(self.status.as_ref(), &change) {
                self.status = Some(s);
            }
        }
        self.last_seq = Some(seq);
        Apply::Applied
    }

    /// Merge windows loaded from the JSON API (history) under the live ones. A coarse item
    /// (a history step of a long range) replaces the windows inside it, and a window inside
    /// a coarse item is not added: its events are counted in the item already.
    pub fn load_history(&mut self, windows: Vec<WindowView>) {
        for w in windows {
            if self.is_coarse(&w) {
                let inside: Vec<i64> = self
                    .windows
                    .range(w.start..w.end)
                    .filter(|(_, x)| !self.is_coarse(x))
                    .map(|(s, _)| *s)
                    .collect();
                for s in inside {
                    self.windows.remove(&s);
                }
                self.windows.entry(w.start).or_insert(w);
            } else if !self.covered(w.start) {
                self.windows.entry(w.start).or_insert(w);
            }
        }
        self.trim();
    }

    /// A window from the socket: replaces the window it updates, unless a coarse item of
    /// history covers its start (the item counts it already).
    fn put(&mut self, w: WindowView) {
        if !self.covered(w.start) {
            self.windows.insert(w.start, w);
        }
    }

    /// An item wider than a window: a step or a roll-up bucket of history.
    fn is_coarse(&self, w: &WindowView) -> bool {
        w.resolution != crate::proto::Resolution::Window
            || (self.window_ms > 0 && w.end - w.start > self.window_ms)
    }

    /// Whether a coarse item holds the time `start`.
    fn covered(&self, start: i64) -> bool {
        self.windows
            .range(..=start)
            .next_back()
            .is_some_and(|(_, w)| w.end > start && self.is_coarse(w))
    }

    /// Drop the items that are not windows at full resolution (history steps and roll-up
    /// buckets of a long range), so a shorter range shows no coarse item over its windows.
    pub fn drop_coarse(&mut self) {
        let width = self.window_ms;
        self.windows.retain(|_, w| {
            w.resolution == crate::proto::Resolution::Window
                && (width <= 0 || w.end - w.start == width)
        });
    }

    fn trim(&mut self) {
        if self.keep == 0 {
            return;
        }
        while self.windows.len() > self.keep {
            self.windows.pop_first();
        }
    }

    /// Windows whose start lies in `[from, to)`, oldest first.
    pub fn range(&self, from: i64, to: i64) -> impl Iterator<Item = &WindowView> {
        self.windows.range(from..to).map(|(_, w)| w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Figures, WindowState, PROTOCOL_VERSION};

    fn view(start: i64, events: u64) -> WindowView {
        WindowView {
            site: None,
            start,
            end: start + 10_000,
            state: WindowState::Live,
            resolution: Default::default(),
            figures: Figures {
                events,
                ..Figures::default()
            },
            segment: None,
        }
    }

    fn changes(seq: u64, windows: Vec<WindowView>) -> ServerMsg {
        ServerMsg::Changes {
            seq,
            after: seq - 1,
            windows: windows.iter().map(patch::fields).collect(),
            status: None,
        }
    }

    fn status() -> Status {
        Status {
            broker: "embedded".into(),
            window_ms: 10_000,
            ..Status::default()
        }
    }

    #[test]
    fn stream_state_applies_in_order_and_detects_gaps() {
        let mut st = StreamState::new(3);
        assert_eq!(
            st.apply(changes(1, vec![])),
            Apply::Gap { last_seq: 0 },
            "deltas before a snapshot are a gap"
        );
        let snap = ServerMsg::Snapshot {
            site: None,
            protocol: PROTOCOL_VERSION,
            seq: 10,
            window_ms: 10_000,
            windows: vec![view(0, 1), view(10_000, 1)],
            status: status(),
            filter: None,
        };
        assert_eq!(st.apply(snap), Apply::Applied);
        assert_eq!(st.apply(changes(10, vec![])), Apply::Stale);
        assert_eq!(
            st.apply(changes(11, vec![view(10_000, 5), view(20_000, 1)])),
            Apply::Applied
        );
        assert_eq!(st.windows[&10_000].figures.events, 5);
        assert_eq!(
            st.apply(changes(13, vec![view(30_000, 1)])),
            Apply::Gap { last_seq: 11 }
        );
        assert!(
            !st.windows.contains_key(&30_000),
            "a message after a gap is not applied"
        );
        assert_eq!(
            st.apply(ServerMsg::Changes {
                seq: 12,
                after: 12 - 1,
                windows: Vec::new(),
                status: Some(patch::fields(&status()))
            }),
            Apply::Applied
        );
        assert_eq!(st.apply(changes(13, vec![view(30_000, 1)])), Apply::Applied);
        assert_eq!(st.windows.len(), 3, "keeps at most 3 windows");
        assert_eq!(st.windows.keys().next(), Some(&10_000));
        st.load_history(vec![view(20_000, 99)]);
        assert_eq!(
            st.windows[&20_000].figures.events, 1,
            "history never overwrites live windows"
        );
    }

    #[test]
    fn windows_inside_a_history_step_are_not_counted_twice() {
        let mut st = StreamState::new(0);
        let step = |start: i64, events: u64| {
            let mut v = view(start, events);
            v.end = start + 1_800_000;
            v.resolution = crate::proto::Resolution::Minute;
            v
        };
        // An old window arrives on the socket first (a hub seeded with old windows), then
        // the step of history that holds it, then the window again.
        let snap = ServerMsg::Snapshot {
            site: None,
            protocol: PROTOCOL_VERSION,
            seq: 1,
            window_ms: 10_000,
            windows: vec![view(20_000, 7), view(1_800_000, 3)],
            status: status(),
            filter: None,
        };
        assert_eq!(st.apply(snap), Apply::Applied);
        st.load_history(vec![step(0, 100), view(1_810_000, 4), view(10_000, 9)]);
        assert_eq!(
            st.range(0, 2_000_000)
                .map(|w| w.figures.events)
                .sum::<u64>(),
            100 + 3 + 4,
            "the windows inside the step are its events"
        );
        let update = changes(2, vec![view(20_000, 8), view(1_800_000, 5)]);
        assert_eq!(st.apply(update), Apply::Applied);
        assert_eq!(
            st.range(0, 2_000_000)
                .map(|w| w.figures.events)
                .sum::<u64>(),
            109
        );
    }

    #[test]
    fn coarse_items_of_a_long_range_are_dropped_for_a_shorter_one() {
        let mut st = StreamState::new(0);
        st.window_ms = 10_000;
        let mut step = view(0, 100);
        step.end = 1_800_000;
        step.resolution = crate::proto::Resolution::Minute;
        st.load_history(vec![step, view(1_800_000, 3), view(1_810_000, 4)]);
        assert_eq!(
            st.range(0, 2_000_000)
                .map(|w| w.figures.events)
                .sum::<u64>(),
            107
        );
        st.drop_coarse();
        assert_eq!(
            st.windows.keys().copied().collect::<Vec<_>>(),
            vec![1_800_000, 1_810_000]
        );
    }

    #[test]
    fn changes_patch_what_the_client_holds_and_a_paced_message_covers_several() {
        let mut st = StreamState::new(0);
        st.apply(ServerMsg::Snapshot {
            site: None,
            protocol: PROTOCOL_VERSION,
            seq: 5,
            window_ms: 10_000,
            windows: vec![view(0, 1)],
            status: status(),
            filter: None,
        });
        // Only the count changed: the change is the count and the start.
        let change = patch::window_change(
            Some(&patch::fields(&view(0, 1))),
            &patch::fields(&view(0, 4)),
        )
        .expect("changed");
        assert_eq!(change.len(), 2);
        let status_change = patch::diff(
            &patch::fields(&status()),
            &patch::fields(&Status {
                events_total: 9,
                ..status()
            }),
            &[],
        );
        // A paced socket: one message for 6..=8, after 5.
        let paced = ServerMsg::Changes {
            seq: 8,
            after: 5,
            windows: vec![change.clone()],
            status: status_change,
        };
        assert_eq!(st.apply(paced.clone()), Apply::Applied);
        assert_eq!(st.windows[&0].figures.events, 4);
        assert_eq!(st.status.as_ref().map(|s| s.events_total), Some(9));
        assert_eq!(st.apply(paced), Apply::Stale);
        // A change of a window the client does not hold (dropped as too old) makes none.
        let mut other = change.clone();
        other.insert("start".into(), serde_json::json!(-10_000));
        assert_eq!(
            st.apply(ServerMsg::Changes {
                seq: 9,
                after: 8,
                windows: vec![other],
                status: None
            }),
            Apply::Applied
        );
        assert!(!st.windows.contains_key(&-10_000));
        // After a message the client never got: a gap.
        assert_eq!(
            st.apply(ServerMsg::Changes {
                seq: 12,
                after: 10,
                windows: vec![],
                status: None
            }),
            Apply::Gap { last_seq: 9 }
        );
    }
}
