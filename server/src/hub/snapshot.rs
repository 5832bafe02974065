//! Snapshots: the newest windows and the status in one message, for a client that starts or
//! falls behind.
//!
//! Contract:
//! - A snapshot is built and serialised at most once per sequence number, and never under
//!   the lock the partitions publish through: under it the hub only takes shared handles
//!   (`Arc`s) of the windows a snapshot shows; merging, rendering and encoding happen after
//!   it is released. Every client that asks at the same sequence, at once or later, gets the
//!   same encoded text; one that asks while it is being built waits for that build.
//! - A snapshot is of its sequence number: it shows each window and the status as last
//!   published (the view the publisher rendered, not merged again), so the changes that
//!   follow it apply to exactly what it showed; a window never published is merged from
//!   its partitions (its first change goes whole).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use pulseboard_model::proto::{ServerMsg, Status, WindowState, WindowView, PROTOCOL_VERSION};

use super::{encode, Frame, Hub, Inner, Parts};

/// The encoded snapshot of one sequence number, filled once by whoever asks first.
pub(super) type SnapshotCell = Arc<OnceLock<Frame>>;

/// What a snapshot of one sequence needs, taken under the lock; built outside it.
pub(super) enum SnapshotTicket {
    /// Already encoded.
    Ready(u64, Frame),
    /// To be built into `cell` (or taken from it if someone else builds it first) from the
    /// newest windows, oldest first, with their state at the time they were taken.
    Build {
        seq: u64,
        cell: SnapshotCell,
        windows: Vec<SnapshotWindow>,
        /// The status as published at `seq` (`None`: none yet, the current one).
        status: Option<Arc<Status>>,
    },
}

/// One window of a snapshot to build.
pub(super) enum SnapshotWindow {
    /// As last published.
    Published(Arc<WindowView>),
    /// Never published: to be merged from its partitions, in this state.
    Merge(i64, WindowState, Parts),
}

impl Hub {
    /// The current sequence, the newest windows a snapshot shows (start, state, parts),
    /// oldest first, and the status as published at that sequence, taken together under
    /// the lock.
    pub(crate) fn newest_windows(&self) -> (u64, Vec<(i64, WindowState, Parts)>, Status) {
        let state_of = self.progress.window_states();
        let g = self.lock();
        let mut windows: Vec<(i64, WindowState, Parts)> = g
            .windows
            .iter()
            .rev()
            .take(self.cfg.snapshot_windows)
            .map(|(s, p)| (*s, state_of(*s), p.clone()))
            .collect();
        windows.reverse();
        let status = g.status.as_ref().map(|(s, _)| s.clone());
        let seq = g.seq;
        drop(g);
        let status = status.map_or_else(|| self.progress.status(), |s| Status::clone(&s));
        (seq, windows, status)
    }

    /// The snapshot of the current sequence as far as it can be had under the lock: the
    /// encoded text when someone already built it, else what building it takes (cheap
    /// handles of the newest windows and their states).
    pub(super) fn snapshot_ticket(&self, g: &mut Inner) -> SnapshotTicket {
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
        let state_of = self.progress.window_states();
        let mut windows: Vec<SnapshotWindow> = g
            .windows
            .iter()
            .rev()
            .take(self.cfg.snapshot_windows)
            .map(|(s, parts)| {
                // As of `seq`: a window's changes since are in the messages after it.
                match g.views.get(s) {
                    Some(v) => SnapshotWindow::Published(v.clone()),
                    None => SnapshotWindow::Merge(*s, state_of(*s), parts.clone()),
                }
            })
            .collect();
        windows.reverse();
        let status = g.status.as_ref().map(|(s, _)| s.clone());
        SnapshotTicket::Build {
            seq,
            cell,
            windows,
            status,
        }
    }

    /// The encoded snapshot of a ticket. Call it without the lock: this is where the windows
    /// are merged and the message serialised, once per sequence; a caller that finds the
    /// build under way waits for it instead of doing it again.
    pub(super) fn redeem(&self, ticket: SnapshotTicket) -> (u64, Frame) {
        match ticket {
            SnapshotTicket::Ready(seq, text) => (seq, text),
            SnapshotTicket::Build {
                seq,
                cell,
                windows,
                status,
            } => {
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
                        site: None,
                        protocol: PROTOCOL_VERSION,
                        seq,
                        window_ms: self.cfg.window_ms,
                        windows,
                        status: status
                            .map_or_else(|| self.progress.status(), |s| Status::clone(&s)),
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
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::hub::tests::{agg, decode, events_by_start, hub, snapshot_windows, touch_status};
    use crate::hub::Start;
    use pulseboard_model::stream::{Apply, StreamState};

    /// The same encoded bytes (not only equal ones).
    fn same(a: &Frame, b: &Frame) -> bool {
        a.as_str().as_ptr() == b.as_str().as_ptr()
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
        assert_eq!(decode(&first).seq(), 2);
        assert_eq!(
            events_by_start(snapshot_windows(&decode(&first))),
            vec![(0, 2), (10_000, 1)]
        );
        // The next sequence gets its own snapshot, once.
        touch_status(&h);
        h.publish_status();
        let (seq, next) = h.snapshot();
        assert_eq!(seq, 3);
        assert!(!same(&next, &first));
        assert!(same(&h.snapshot().1, &next));
        assert_eq!(h.stats.snapshots_encoded.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_snapshot_shows_windows_and_status_as_published_at_its_sequence() {
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
        h.publish_status();
        h.snapshot();
        assert_eq!(merged(&h), 3, "all three reused as published");
        // One window changes, not yet published: the snapshot is of its sequence, so it
        // shows the window as published (the change comes in the next message).
        h.update("t", 1, vec![(20_000, agg(5))]);
        let (seq, text) = h.snapshot();
        assert_eq!(merged(&h), 3);
        assert_eq!(
            events_by_start(snapshot_windows(&decode(&text))),
            vec![(0, 5), (10_000, 1), (20_000, 4)]
        );
        // The snapshot and the changes after it make what a hub that merges everything
        // shows.
        h.publish_windows();
        let mut client = StreamState::new(0);
        client.apply(decode(&text));
        let Start::Replay(after) = h.subscribe(Some(seq)).start else {
            panic!("replay")
        };
        for m in after {
            assert_eq!(client.apply(decode(&m)), Apply::Applied);
        }
        let fresh = hub(16);
        fresh.update(
            "t",
            0,
            vec![(0, agg(2)), (10_000, agg(1)), (20_000, agg(4))],
        );
        fresh.update("t", 1, vec![(0, agg(3)), (20_000, agg(5))]);
        let all = snapshot_windows(&decode(&fresh.snapshot().1)).to_vec();
        assert_eq!(client.windows.into_values().collect::<Vec<_>>(), all);
        assert_eq!(
            events_by_start(snapshot_windows(&decode(&h.snapshot().1))),
            vec![(0, 5), (10_000, 1), (20_000, 9)]
        );
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
