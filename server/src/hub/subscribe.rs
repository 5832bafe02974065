//! Subscriptions: what a client gets first, then the feed; and what a published message
//! was, for a socket that renders it for a segment.
//!
//! Contract:
//! - A client subscribes with the last sequence it saw: it gets the missed messages from the
//!   backlog, or a snapshot when they are gone. Broadcast is a bounded ring: a client that
//!   falls more than its capacity behind is resynced with a snapshot, and nobody waits for it.

use pulseboard_model::proto::WindowState;
use tokio::sync::broadcast;

use super::{Frame, Hub, Parts, Sent};

/// What a published message was, as a filtered socket needs to know it.
pub(crate) enum Published {
    /// A window message: the windows it carried, as they are now (start, state, parts).
    Windows(Vec<(i64, WindowState, Parts)>),
    /// Not a window message (status): the same for every client.
    Other,
    /// No longer in the backlog.
    Gone,
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
    pub rx: broadcast::Receiver<Sent>,
}

impl Hub {
    /// What message `seq` was (see [`Published`]), with the windows it carried as they are
    /// now.
    pub(crate) fn published(&self, seq: u64) -> Published {
        let state_of = self.progress.window_states();
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
    pub(crate) fn subscribe_feed(&self) -> (u64, broadcast::Receiver<Sent>) {
        let g = self.lock();
        (g.seq, self.tx.subscribe())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::{agg, decode, hub};
    use pulseboard_model::proto::ServerMsg;

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
}
