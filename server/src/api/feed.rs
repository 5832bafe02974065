//! Filtered sockets: `/ws?filter=DIMENSION:VALUE` (and `/ws?site=NAME`, alone or with a
//! filter) follows the hub's stream as a segment (of a site) sees it, so a kiosk or an embed
//! pinned to a segment or a site stays live.
//!
//! Contract:
//! - A filtered socket gets the same sequence numbers as every socket (so the client's resume
//!   and gap rules are the same): each window message carries the windows it named, rendered
//!   for the segment (the value's sub-aggregates merged across partitions, with their
//!   `segment` note) whole, and a status change is passed on as it is. It starts with a snapshot
//!   of the segment (the newest windows, the status, and the filter echoed), and gets a
//!   fresh one when it falls behind or asks to resume (`since` is not replayed).
//! - Nothing is added to the pipeline's path: the hub publishes exactly what it did, and a
//!   filtered frame is rendered from the hub's shared window handles in the sockets' own
//!   tasks, outside the lock partitions publish through. Each frame is rendered at most
//!   once per (filter, sequence), however many sockets show that segment; the cache holds
//!   only the filters some socket shows, and a few frames each.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use pulseboard_model::proto::{patch, ServerMsg, WindowState, WindowView, PROTOCOL_VERSION};

use crate::hub::{Changed, Frame, Hub, Parts, Published, Start, Subscription};
use crate::query::segments::{self, Part, SegmentsState, View};

/// Filtered frames kept per filter (sockets of one filter are seldom further apart; one
/// that is gets its frame rendered again).
const FRAMES_KEPT: usize = 4;

type Cell = Arc<OnceLock<Frame>>;
type FrameCell = Arc<OnceLock<(Frame, Arc<Changed>)>>;

#[derive(Default)]
struct Cached {
    /// Sockets showing this filter.
    sockets: usize,
    snapshot: Option<(u64, Cell)>,
    frames: VecDeque<(u64, FrameCell)>,
}

/// The filtered frames of the sockets pinned to a segment.
pub struct Feeds {
    segments: SegmentsState,
    cache: Mutex<HashMap<View, Cached>>,
}

impl Feeds {
    pub fn new(segments: SegmentsState) -> Self {
        Feeds {
            segments,
            cache: Mutex::default(),
        }
    }

    /// What a filter may name (the `filter` parameter of the socket is read like the API's).
    pub fn segments(&self) -> &SegmentsState {
        &self.segments
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<View, Cached>> {
        // Plain maps of shared cells: a panic elsewhere cannot leave them inconsistent.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A socket starts showing `view`; the cache keeps its frames until the returned
    /// [`Segment`] is dropped by the last socket showing it.
    pub fn join(self: &Arc<Self>, view: View) -> Segment {
        self.lock().entry(view.clone()).or_default().sockets += 1;
        Segment {
            feeds: self.clone(),
            view,
        }
    }

    /// Filters some socket shows (for tests and metrics).
    pub fn filters(&self) -> usize {
        self.lock().len()
    }

    fn snapshot_cell(&self, view: &View, seq: u64) -> Cell {
        let mut g = self.lock();
        let c = g.entry(view.clone()).or_default();
        match &c.snapshot {
            Some((s, cell)) if *s == seq => cell.clone(),
            _ => {
                let cell = Cell::default();
                c.snapshot = Some((seq, cell.clone()));
                cell
            }
        }
    }

    fn frame_cell(&self, view: &View, seq: u64) -> FrameCell {
        let mut g = self.lock();
        let c = g.entry(view.clone()).or_default();
        if let Some((_, cell)) = c.frames.iter().find(|(s, _)| *s == seq) {
            return cell.clone();
        }
        let cell = FrameCell::default();
        c.frames.push_back((seq, cell.clone()));
        while c.frames.len() > FRAMES_KEPT {
            c.frames.pop_front();
        }
        cell
    }

    fn render(
        &self,
        hub: &Hub,
        view: &View,
        windows: &[(i64, WindowState, Parts)],
    ) -> Vec<WindowView> {
        let width = self.segments.window_ms;
        let top = hub.config().top_n;
        let fold = segments::fold(view);
        let keep = view.keep();
        windows
            .iter()
            .map(|(start, state, parts)| {
                let mut keys: Vec<_> = parts.keys().collect();
                keys.sort();
                let mut part = Part::default();
                for k in keys {
                    fold(&mut part, &parts[k].with(keep));
                }
                segments::window_view(
                    *start,
                    width,
                    *state,
                    &part,
                    view,
                    top,
                    self.segments.goals(),
                )
            })
            .collect()
    }
}

/// One socket's segment: renders its frames; leaving the cache when dropped.
pub struct Segment {
    feeds: Arc<Feeds>,
    view: View,
}

impl Drop for Segment {
    fn drop(&mut self) {
        let mut g = self.feeds.lock();
        if let Some(c) = g.get_mut(&self.view) {
            c.sockets = c.sockets.saturating_sub(1);
            if c.sockets == 0 {
                g.remove(&self.view);
            }
        }
    }
}

impl Segment {
    /// The view shown.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The live feed and a snapshot of the segment to start from.
    pub fn subscribe(&self, hub: &Hub) -> Subscription {
        let (_, rx) = hub.subscribe_feed();
        let (seq, snap) = self.snapshot(hub);
        Subscription {
            start: Start::Snapshot(seq, snap),
            last_seq: seq,
            rx,
        }
    }

    /// A snapshot of the segment at the hub's current sequence (built once per sequence).
    pub fn snapshot(&self, hub: &Hub) -> (u64, Frame) {
        let (seq, windows, status) = hub.newest_windows();
        let cell = self.feeds.snapshot_cell(&self.view, seq);
        let text = cell.get_or_init(|| {
            encode(&ServerMsg::Snapshot {
                protocol: PROTOCOL_VERSION,
                seq,
                window_ms: self.feeds.segments.window_ms,
                windows: self.feeds.render(hub, &self.view, &windows),
                status,
                filter: self.view.filter.as_ref().map(ToString::to_string),
                site: self.view.site.clone(),
            })
        });
        (seq, text.clone())
    }

    /// The frame of message `seq` (its text `text`, its changes `changed`) for this
    /// segment, and what it changes: the windows it named, whole, as the segment sees them
    /// now, or the status as it is; `None` when the hub no longer knows what it carried
    /// (the socket then takes a snapshot).
    pub fn frame(
        &self,
        hub: &Hub,
        seq: u64,
        text: &Frame,
        changed: &Arc<Changed>,
    ) -> Option<(Frame, Arc<Changed>)> {
        let windows = match hub.published(seq) {
            Published::Other => return Some((text.clone(), changed.clone())),
            Published::Gone => return None,
            Published::Windows(w) => w,
        };
        let cell = self.feeds.frame_cell(&self.view, seq);
        let sent = cell.get_or_init(|| {
            let changed = Changed {
                windows: self
                    .feeds
                    .render(hub, &self.view, &windows)
                    .iter()
                    .map(patch::fields)
                    .collect(),
                status: None,
            };
            (changed.clone().encode(seq, seq - 1), Arc::new(changed))
        });
        Some(sent.clone())
    }
}

fn encode(msg: &ServerMsg) -> Frame {
    // Serialising plain structs of strings and numbers cannot fail.
    Frame::from(serde_json::to_string(msg).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de_view() -> View {
        View::of_filter(Some(
            pulseboard_model::agg::Filter::parse("country:DE").expect("filter"),
        ))
    }
    use crate::hub::tests::test_hub;
    use pulseboard_model::agg::{AggSpec, Aggregate, Dimension, Goal, SegmentSpec};
    use pulseboard_model::event::Event;

    fn spec() -> AggSpec {
        AggSpec {
            max_sites: 0,
            segments: SegmentSpec {
                dimensions: vec![Dimension::Country],
                top_n: 10,
            },
            goals: vec![Goal::parse("signup").expect("goal")],
        }
    }

    fn agg(countries: &[&str]) -> Aggregate {
        let mut a = Aggregate::new();
        for (i, c) in countries.iter().enumerate() {
            a.add_with(
                &Event {
                    ts: 0,
                    kind: if i % 2 == 0 { "signup" } else { "pageview" }.into(),
                    visitor: format!("v{i}{c}"),
                    url: "/".into(),
                    country: Some((*c).into()),
                    ..Event::default()
                },
                &spec(),
            );
        }
        a
    }

    fn feeds() -> Arc<Feeds> {
        Arc::new(Feeds::new(SegmentsState {
            spec: Arc::new(spec()),
            now_span_ms: 300_000,
            window_ms: 10_000,
        }))
    }

    fn decode(f: &Frame) -> ServerMsg {
        serde_json::from_str(f.as_str()).expect("message")
    }

    #[test]
    fn a_filtered_socket_gets_the_segment_under_the_same_sequence_numbers() {
        let hub = test_hub(|_| {});
        hub.update("t", 0, vec![(0, agg(&["DE", "US", "DE"]))]);
        hub.update("t", 1, vec![(0, agg(&["DE", "FR"]))]);
        let feeds = feeds();
        let de = feeds.join(de_view());
        let mut sub = de.subscribe(&hub);
        let Start::Snapshot(seq, snap) = &sub.start else {
            panic!("a filtered socket starts with a snapshot")
        };
        match decode(snap) {
            ServerMsg::Snapshot {
                windows, filter, ..
            } => {
                assert_eq!(filter.as_deref(), Some("country:DE"));
                assert_eq!(windows.len(), 1);
                let w = &windows[0];
                assert_eq!(
                    w.figures.events, 3,
                    "2 from partition 0, 1 from partition 1"
                );
                assert_eq!(w.figures.countries.len(), 1);
                assert_eq!(
                    w.figures.goals[0].completions, 3,
                    "every DE event was 1st or 3rd"
                );
                let note = w.segment.as_ref().expect("a note");
                assert!(note.complete);
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(*seq, 0);
        // The hub publishes a change: the socket gets it under the same sequence, filtered.
        hub.update("t", 0, vec![(0, agg(&["DE", "US", "DE", "DE", "FR"]))]);
        hub.publish_windows();
        let (s, text, changed) = sub.rx.try_recv().expect("a message");
        let (frame, _) = de.frame(&hub, s, &text, &changed).expect("still known");
        match decode(&frame) {
            ServerMsg::Changes {
                seq,
                after,
                windows,
                ..
            } => {
                assert_eq!((seq, after), (1, 0));
                // Whole, as the segment sees it.
                let w = patch::apply_window(None, &windows[0]).expect("a whole window");
                assert_eq!(w.figures.events, 4);
                assert!(w.segment.is_some());
            }
            m => panic!("{m:?}"),
        }
        // Rendered once, shared by another socket of the same filter.
        let (again, _) = feeds
            .join(de_view())
            .frame(&hub, s, &text, &changed)
            .expect("known");
        assert_eq!(again.as_str().as_ptr(), frame.as_str().as_ptr());
        // A status change goes through as it is.
        hub.publish_status();
        let (s, text, changed) = sub.rx.try_recv().expect("status");
        assert_eq!(de.frame(&hub, s, &text, &changed).map(|f| f.0), Some(text));
        // The cache keeps only filters some socket shows.
        assert_eq!(feeds.filters(), 1);
        drop(de);
        assert_eq!(feeds.filters(), 0);
    }

    #[test]
    fn a_message_the_hub_no_longer_holds_means_a_snapshot() {
        let hub = test_hub(|c| c.backlog = 2);
        let feeds = feeds();
        let de = feeds.join(de_view());
        for i in 1..=4 {
            hub.update("t", 0, vec![(0, agg(&vec!["DE"; i]))]);
            hub.publish_windows();
        }
        let none = Arc::new(Changed::default());
        assert!(de.frame(&hub, 1, &Frame::from("x"), &none).is_none());
        assert!(de.frame(&hub, 4, &Frame::from("x"), &none).is_some());
    }
}
