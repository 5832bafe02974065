//! Pacing the opening of new sessions, so that a reconnect storm costs ingest a bounded
//! share of the CPU, however many clients take part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::HubArgs;

/// Refusals are logged at most this often (each is counted).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Paces the opening of new sessions: at most `rate` a second on average and `burst` at
/// once, by the generic cell rate algorithm (Kafka's `max.connection.creation.rate`
/// throttles new connections the same way). A session over the rate is told how long to
/// wait; turns are handed out in order of arrival. One whose turn is more than `max_wait`
/// away is refused and takes no turn.
///
/// Time is a parameter ([`ConnectPacer::admit`] takes `now`), so tests drive it with plain
/// values.
#[derive(Debug)]
pub struct ConnectPacer {
    /// Time between two sessions at the rate; `None`: no limit.
    interval: Option<Duration>,
    /// How far a burst may run ahead of the rate: `interval * (burst - 1)`.
    tolerance: Duration,
    max_wait: Duration,
    state: Mutex<PacerState>,
    /// Sessions that waited for their turn, refused, and the seconds waited (as ms).
    pub waited_total: AtomicU64,
    pub refused_total: AtomicU64,
    pub wait_ms_total: AtomicU64,
}

#[derive(Debug, Default)]
struct PacerState {
    /// When the next session would be due at exactly the rate (the "theoretical arrival
    /// time"); `None` before the first.
    next: Option<Instant>,
    last_log: Option<Instant>,
    refused_since_log: u64,
}

/// What a new session is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Now,
    /// Its turn comes after this wait.
    After(Duration),
    /// Its turn is too far away: try again after this.
    Refused {
        retry_after: Duration,
    },
}

impl ConnectPacer {
    /// `rate` sessions a second (0 = no limit), `burst` at once (at least 1).
    pub fn new(rate: u32, burst: u32, max_wait: Duration) -> Self {
        let interval = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
        ConnectPacer {
            interval,
            tolerance: interval.map_or(Duration::ZERO, |i| i * burst.max(1).saturating_sub(1)),
            max_wait,
            state: Mutex::default(),
            waited_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            wait_ms_total: AtomicU64::new(0),
        }
    }

    /// `--ws-connect-rate`, `--ws-connect-burst`, `--ws-connect-max-wait`.
    pub fn from_args(args: &HubArgs) -> Self {
        Self::new(
            args.ws_connect_rate,
            args.ws_connect_burst,
            args.ws_connect_max_wait,
        )
    }

    /// No limit.
    pub fn unlimited() -> Self {
        Self::new(0, 1, Duration::ZERO)
    }

    /// The turn of a session arriving at `now`.
    pub fn admit(&self, now: Instant) -> Admission {
        let Some(interval) = self.interval else {
            return Admission::Now;
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let next = st.next.map_or(now, |t| t.max(now));
        let turn = next.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
        let wait = turn - now;
        if wait > self.max_wait {
            let total = self.refused_total.fetch_add(1, Ordering::Relaxed) + 1;
            st.refused_since_log += 1;
            if st
                .last_log
                .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_EVERY)
            {
                tracing::warn!(
                    refused = st.refused_since_log,
                    refused_total = total,
                    wait_s = wait.as_secs_f64(),
                    "WebSocket sessions over --ws-connect-rate refused with 503: more clients are (re)connecting than it lets in within --ws-connect-max-wait"
                );
                st.last_log = Some(now);
                st.refused_since_log = 0;
            }
            return Admission::Refused { retry_after: wait };
        }
        st.next = Some(next + interval);
        if wait.is_zero() {
            return Admission::Now;
        }
        self.waited_total.fetch_add(1, Ordering::Relaxed);
        self.wait_ms_total
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        Admission::After(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The turns of `n` sessions all arriving at `now`.
    fn turns(p: &ConnectPacer, now: Instant, n: usize) -> Vec<Admission> {
        (0..n).map(|_| p.admit(now)).collect()
    }

    #[test]
    fn a_burst_is_let_in_at_once_then_one_session_per_interval() {
        let p = ConnectPacer::new(10, 3, Duration::from_secs(10));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            turns(&p, t0, 6),
            vec![
                Admission::Now,
                Admission::Now,
                Admission::Now,
                Admission::After(ms(100)),
                Admission::After(ms(200)),
                Admission::After(ms(300)),
            ]
        );
        assert_eq!(p.waited_total.load(Ordering::Relaxed), 3);
        assert_eq!(p.wait_ms_total.load(Ordering::Relaxed), 600);
        assert_eq!(p.refused_total.load(Ordering::Relaxed), 0);
        // 250 ms later the queue has moved on by that much.
        assert_eq!(p.admit(t0 + ms(250)), Admission::After(ms(150)));
    }

    #[test]
    fn a_session_whose_turn_is_beyond_the_max_wait_is_refused_and_takes_no_turn() {
        let p = ConnectPacer::new(10, 2, Duration::from_millis(250));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            turns(&p, t0, 4),
            vec![
                Admission::Now,
                Admission::Now,
                Admission::After(ms(100)),
                Admission::After(ms(200)),
            ]
        );
        assert_eq!(
            p.admit(t0),
            Admission::Refused {
                retry_after: ms(300)
            }
        );
        assert_eq!(
            p.admit(t0),
            Admission::Refused {
                retry_after: ms(300)
            },
            "a refusal takes no turn, so the next one is told the same"
        );
        assert_eq!(p.refused_total.load(Ordering::Relaxed), 2);
        assert_eq!(p.admit(t0 + ms(100)), Admission::After(ms(200)));
    }

    #[test]
    fn an_idle_pacer_refills_its_burst() {
        let p = ConnectPacer::new(10, 3, Duration::ZERO);
        let t0 = Instant::now();
        assert!(turns(&p, t0, 3).iter().all(|a| *a == Admission::Now));
        assert!(matches!(p.admit(t0), Admission::Refused { .. }));
        let later = t0 + Duration::from_secs(5);
        assert!(turns(&p, later, 3).iter().all(|a| *a == Admission::Now));
        assert!(matches!(p.admit(later), Admission::Refused { .. }));
    }

    #[test]
    fn an_unlimited_pacer_lets_everyone_in_at_once() {
        let p = ConnectPacer::new(0, 1, Duration::ZERO);
        let t0 = Instant::now();
        assert!(turns(&p, t0, 10_000).iter().all(|a| *a == Admission::Now));
        assert_eq!(p.waited_total.load(Ordering::Relaxed), 0);
        assert_eq!(p.refused_total.load(Ordering::Relaxed), 0);
    }
}
