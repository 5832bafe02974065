//! Sessions of browser events: a visit, as web analytics define one.
//!
//! Contract:
//! - A browser event (one whose visitor `/collect` derived) that carries no session gets
//!   one: its visitor's current session when that visitor's previous event came less than
//!   the session timeout before (`--session-timeout`, 30 min by default), else a new one.
//!   The id is derived from the visitor id and the instant its session started (16 hex
//!   digits of SHA-256), so it holds nothing the visitor id does not.
//! - Time is the server's receive time (`now`), as the visitor id's day is; an event
//!   received out of order (an earlier `now` than the visitor's last) joins the current
//!   session.
//! - Memory is bounded: visitors are held in two generations, the current one and the one
//!   before, swapped every timeout, so a visitor idle for two timeouts is forgotten at no
//!   cost. When the current generation reaches the cap (`--session-cap`, 100,000 visitors
//!   by default: about 13 MB a generation), it is swapped early and the visitors of the older one whose
//!   session was still open are counted as evicted: their next event starts a new session.
//! - The state lives in this instance's memory: a restart, or a visitor whose requests
//!   reach two instances, starts a new session (documented in docs/tracking.md).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// What is held of a visitor: its session's id and the time of its last event.
#[derive(Debug, Clone)]
struct Visit {
    session: String,
    last_ms: i64,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<String, Visit>,
    previous: HashMap<String, Visit>,
    /// When `current` began.
    since_ms: i64,
    evicted: u64,
}

/// The open sessions of browser visitors.
#[derive(Debug)]
pub struct Sessions {
    timeout_ms: i64,
    cap: usize,
    g: Mutex<Generations>,
}

impl Sessions {
    /// Sessions that end after `timeout_ms` without an event, holding at most `cap`
    /// visitors a generation.
    pub fn new(timeout_ms: i64, cap: usize) -> Self {
        Sessions {
            timeout_ms: timeout_ms.max(1),
            cap: cap.max(1),
            g: Mutex::default(),
        }
    }

    /// The session of `visitor`'s event received at `now_ms`.
    pub fn session(&self, visitor: &str, now_ms: i64) -> String {
        // A panic elsewhere cannot leave the maps inconsistent: each step is one insert.
        let mut g = self.g.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms.saturating_sub(g.since_ms) >= self.timeout_ms {
            // Everything in `previous` is older than a timeout: forgotten at no loss.
            let older = std::mem::take(&mut g.current);
            g.previous = older;
            g.since_ms = now_ms;
        } else if g.current.len() >= self.cap && !g.current.contains_key(visitor) {
            let open = g
                .previous
                .values()
                .filter(|v| now_ms.saturating_sub(v.last_ms) < self.timeout_ms)
                .count() as u64;
            g.evicted += open;
            crate::telemetry::collect_sessions_evicted(open);
            let older = std::mem::take(&mut g.current);
            g.previous = older;
            g.since_ms = now_ms;
        }
        let held = g
            .current
            .remove(visitor)
            .or_else(|| g.previous.remove(visitor));
        let visit = match held {
            Some(v) if now_ms.saturating_sub(v.last_ms) < self.timeout_ms => Visit {
                last_ms: v.last_ms.max(now_ms),
                session: v.session,
            },
            _ => Visit {
                session: session_id(visitor, now_ms),
                last_ms: now_ms,
            },
        };
        let session = visit.session.clone();
        g.current.insert(visitor.to_owned(), visit);
        session
    }

    /// Visitors whose open session was forgotten to keep within the cap, since start.
    pub fn evicted(&self) -> u64 {
        self.g.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }
}

/// A session's id: of its visitor and the instant it started.
fn session_id(visitor: &str, start_ms: i64) -> String {
    let mut h = Sha256::new();
    h.update((visitor.len() as u64).to_be_bytes());
    h.update(visitor.as_bytes());
    h.update(start_ms.to_be_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_visit_lasts_while_events_come_within_the_timeout() {
        let s = Sessions::new(30 * MIN, 1_000);
        let first = s.session("v1", T0);
        assert_eq!(first.len(), 16);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
        // Events 29 minutes apart, for an hour and a half: one visit.
        for i in 1..=3 {
            assert_eq!(s.session("v1", T0 + i * 29 * MIN), first, "event {i}");
        }
        // Another visitor at the same instant: another session.
        assert_ne!(s.session("v2", T0 + 87 * MIN), first);
        // 30 minutes of silence end it.
        let second = s.session("v1", T0 + 87 * MIN + 30 * MIN);
        assert_ne!(second, first);
        assert_eq!(s.session("v1", T0 + 118 * MIN), second);
        // An event received out of order joins the current visit.
        assert_eq!(s.session("v1", T0 + 100 * MIN), second);
        assert_eq!(s.evicted(), 0);
    }

    #[test]
    fn a_visitor_is_remembered_across_a_generation_swap_and_forgotten_after_two() {
        let s = Sessions::new(30 * MIN, 1_000);
        let a = s.session("a", T0);
        assert_eq!(s.session("a", T0 + 29 * MIN), a);
        // Another visitor's event at T0 + 30 min swaps the generations: "a" is in the older.
        s.session("b", T0 + 30 * MIN);
        assert_eq!(
            s.session("a", T0 + 45 * MIN),
            a,
            "16 minutes on: the same visit"
        );
        s.session("c", T0 + 60 * MIN);
        s.session("c", T0 + 90 * MIN);
        {
            let g = s.g.lock().expect("lock");
            assert!(!g.current.contains_key("a") && !g.previous.contains_key("a"));
            assert!(
                !g.previous.contains_key("b"),
                "two timeouts idle: forgotten"
            );
        }
        assert_ne!(s.session("a", T0 + 91 * MIN), a);
        assert_eq!(s.evicted(), 0, "forgetting the idle is no eviction");
    }

    #[test]
    fn the_cap_bounds_memory_and_counts_the_open_sessions_it_ends() {
        let s = Sessions::new(30 * MIN, 100);
        let first: Vec<String> = (0..100).map(|i| s.session(&format!("v{i}"), T0)).collect();
        // The 101st visitor swaps the generations: none of the first 100 is lost yet.
        s.session("v100", T0 + MIN);
        assert_eq!(s.evicted(), 0);
        assert_eq!(
            s.session("v7", T0 + 2 * MIN),
            first[7],
            "found in the older one"
        );
        // Fill the current generation again: the older one's 99 open visits are ended.
        for i in 200..300 {
            s.session(&format!("v{i}"), T0 + 3 * MIN);
        }
        assert_eq!(s.evicted(), 99);
        assert_ne!(s.session("v8", T0 + 4 * MIN), first[8], "a new visit");
        let g = s.g.lock().expect("lock");
        assert!(g.current.len() <= 100 && g.previous.len() <= 100);
    }
}
