//! What one published message changed, kept beside its encoded text so a socket paced to a
//! display can fold many messages into one.
//!
//! Contract: [`Changed::compose`] of the changes of messages `a` then `b` takes a client
//! from before `a` to after `b` (see `pulseboard_model::proto::patch`); [`Changed::message`]
//! is the `changes` message that carries them.

use pulseboard_model::proto::patch::{self, Fields};
use pulseboard_model::proto::ServerMsg;

use super::Frame;

/// The windows (by start, oldest first) and status fields one message, or several
/// composed, changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changed {
    pub windows: Vec<Fields>,
    pub status: Option<Fields>,
}

impl Changed {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.status.is_none()
    }

    /// Fold the changes of a later message into these.
    pub fn compose(&mut self, then: &Changed) {
        for w in &then.windows {
            let start = patch::window_start(w);
            match self
                .windows
                .iter_mut()
                .find(|x| patch::window_start(x) == start)
            {
                Some(x) => patch::compose(x, w),
                None => self.windows.push(w.clone()),
            }
        }
        self.windows.sort_by_key(patch::window_start);
        match (&mut self.status, &then.status) {
            (Some(s), Some(t)) => patch::compose(s, t),
            (None, Some(t)) => self.status = Some(t.clone()),
            (_, None) => {}
        }
    }

    /// The `changes` message `seq` (following message `after`) that carries them.
    pub fn message(self, seq: u64, after: u64) -> ServerMsg {
        ServerMsg::Changes {
            seq,
            after,
            windows: self.windows,
            status: self.status,
        }
    }

    /// [`Changed::message`], encoded.
    pub fn encode(self, seq: u64, after: u64) -> Frame {
        super::encode(&self.message(seq, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> Fields {
        patch::fields(&v)
    }

    #[test]
    fn composed_changes_keep_one_entry_per_window_in_order_and_the_latest_values() {
        let mut a = Changed {
            windows: vec![fields(json!({"start": 10, "events": 1}))],
            status: Some(fields(json!({"events_total": 1, "uptime_secs": 5}))),
        };
        a.compose(&Changed {
            windows: vec![
                fields(json!({"start": 0, "state": "final"})),
                fields(json!({"start": 10, "events": 3})),
            ],
            status: Some(fields(json!({"events_total": 3}))),
        });
        a.compose(&Changed::default());
        assert_eq!(
            a,
            Changed {
                windows: vec![
                    fields(json!({"start": 0, "state": "final"})),
                    fields(json!({"start": 10, "events": 3})),
                ],
                status: Some(fields(json!({"events_total": 3, "uptime_secs": 5}))),
            }
        );
    }
}
