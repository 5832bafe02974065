//! The publisher: changes into sequenced messages.
//!
//! Contract:
//! - The publisher ([`Hub::run_publisher`]) turns changes into `changes` [`ServerMsg`]s: the
//!   windows whose figures or state changed (the fields that changed since the window was
//!   last published; a window never published goes whole), and the status fields that
//!   changed, every second. A change is pushed
//!   at once when the hub is idle; under load changes are coalesced, so window messages
//!   are at least `publish_interval` apart (at most 20 a second by default). Every message
//!   gets the next sequence number, is serialised once, kept in a bounded backlog for
//!   resumes, and broadcast.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pulseboard_model::proto::{patch, ServerMsg, WindowState, WindowView};
use tokio_util::sync::CancellationToken;

use super::{encode, Changed, Hub, Inner};

impl Hub {
    /// Publish what changed as the next message (nothing when nothing changed).
    fn publish_locked(&self, g: &mut Inner, changed: Changed) {
        g.seq += 1;
        let seq = g.seq;
        // The cached snapshot is of the previous sequence; clients building it keep theirs.
        g.snapshot = None;
        let msg = changed.message(seq, seq - 1);
        let text = encode(&msg);
        let ServerMsg::Changes {
            windows, status, ..
        } = msg
        else {
            return;
        };
        g.backlog.push_back((seq, text.clone()));
        while g.backlog.len() > self.cfg.backlog {
            g.backlog.pop_front();
        }
        self.stats.messages_total.fetch_add(1, Ordering::Relaxed);
        // No receiver is fine: nobody is watching.
        let _ = self
            .tx
            .send((seq, text, Arc::new(Changed { windows, status })));
    }

    /// Publish the windows that changed (figures or state) since the last call. The views
    /// are merged outside the lock the partitions hand their windows over through: under
    /// it only the handles of the changed windows are taken, and the message published.
    pub fn publish_windows(&self) {
        let state_of = self.progress.window_states();
        let changed: Vec<(i64, super::Parts, WindowState)> = {
            let mut guard = self.lock();
            let g = &mut *guard;
            let mut changed: BTreeSet<i64> = std::mem::take(&mut g.dirty);
            for &s in g.windows.keys() {
                let st = state_of(s);
                if g.states.insert(s, st) != Some(st) {
                    changed.insert(s);
                }
            }
            changed
                .iter()
                .filter_map(|s| {
                    g.windows
                        .get(s)
                        .map(|parts| (*s, parts.clone(), state_of(*s)))
                })
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        let windows: Vec<WindowView> = changed
            .iter()
            .map(|(s, parts, state)| self.view(*s, parts, *state))
            .collect();
        let mut guard = self.lock();
        let g = &mut *guard;
        let mut changes = Vec::with_capacity(windows.len());
        let mut starts = Vec::with_capacity(windows.len());
        for w in windows {
            // A window that left the horizon meanwhile is not kept.
            if !g.windows.contains_key(&w.start) {
                continue;
            }
            let old = g.views.get(&w.start).map(|v| patch::fields(&**v));
            if let Some(c) = patch::window_change(old.as_ref(), &patch::fields(&w)) {
                changes.push(c);
            }
            starts.push(w.start);
            g.views.insert(w.start, Arc::new(w));
        }
        // A window whose partitions changed but whose figures did not (a checkpoint that
        // brought an open window's segment tables) is still announced: the message carries
        // no change of it, and a filtered socket renders it for its segment.
        if starts.is_empty() {
            return;
        }
        let starts: Arc<[i64]> = starts.into();
        self.publish_locked(
            g,
            Changed {
                windows: changes,
                status: None,
            },
        );
        g.published.push_back((g.seq, starts));
        let first = g.backlog.front().map_or(u64::MAX, |(s, _)| *s);
        while g.published.front().is_some_and(|(s, _)| *s < first) {
            g.published.pop_front();
        }
    }

    /// Publish the status fields that changed since the last status published.
    pub fn publish_status(&self) {
        let status = self.progress.status();
        let new = patch::fields(&status);
        let mut g = self.lock();
        let change = match &g.status {
            Some((_, old)) => patch::diff(old, &new, &[]),
            None => Some(new.clone()),
        };
        g.status = Some((Arc::new(status), new));
        if let Some(change) = change {
            self.publish_locked(
                &mut g,
                Changed {
                    windows: Vec::new(),
                    status: Some(change),
                },
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::{agg, decode, events_by_start, hub, touch_status};
    use crate::hub::Start;

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
            ServerMsg::Changes {
                seq,
                after,
                windows,
                ..
            } => {
                assert_eq!((seq, after), (1, 0));
                assert_eq!(events_by_start(&windows), vec![(0, 5), (10_000, 1)]);
            }
            m => panic!("unexpected {m:?}"),
        }
        // Nothing changed: nothing published.
        h.publish_windows();
        assert_eq!(h.subscribe(None).last_seq, 1);
    }

    #[test]
    fn a_published_window_changes_by_the_fields_that_changed_and_status_likewise() {
        let h = hub(16);
        h.update("t", 0, vec![(0, agg(2))]);
        h.publish_windows();
        h.publish_status();
        h.update("t", 0, vec![(0, agg(3))]);
        h.publish_windows();
        // An unchanged status sends nothing; a changed one, what changed.
        h.publish_status();
        assert_eq!(h.subscribe(None).last_seq, 3);
        touch_status(&h);
        h.publish_status();
        let Start::Replay(msgs) = h.subscribe(Some(2)).start else {
            panic!("replay")
        };
        let ServerMsg::Changes { windows, .. } = decode(&msgs[0]) else {
            panic!("changes")
        };
        // The window's count, uniques and top list changed; its end, state and the rest
        // did not.
        let w = &windows[0];
        assert_eq!(events_by_start(&windows), vec![(0, 3)]);
        for unchanged in ["end", "state", "resolution", "countries", "devices"] {
            assert!(
                !w.contains_key(unchanged),
                "{unchanged} did not change: {w:?}"
            );
        }
        // The status: only what moved (the first status went whole).
        let ServerMsg::Changes { status, .. } = decode(&msgs[1]) else {
            panic!("changes")
        };
        let status = status.expect("status fields");
        assert!(status.contains_key("annotations_version"), "{status:?}");
        assert!(!status.contains_key("broker") && !status.contains_key("version"));
    }
}
