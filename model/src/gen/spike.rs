//! Traffic spikes: the [`Spike`]'s schedule and shape, and the crowd the generator sends
//! during one (a page view from [`SPIKE_REFERRER`] on [`SPIKE_PAGE`] per crowd event).
//!
//! Contract: [`Spike::factor`] is 1.0 before `first_after_ms` and between spikes, and
//! follows a trapezoid up to `peak` during one; [`Generator::rate_factor`] counts the
//! schedule from the first `now` the generator sees. During a spike, the share
//! `(f - 1) / f` of the events is the crowd's.

use super::Generator;
use crate::event::Event;

/// A recurring traffic spike, shaped as a trapezoid: the rate climbs from 1× to `peak`× in
/// the first fifth of `duration_ms`, holds, and falls back in the last fifth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// When the first spike starts, after the first event.
    pub first_after_ms: i64,
    /// Time from the start of one spike to the start of the next.
    pub every_ms: i64,
    /// How long a spike lasts.
    pub duration_ms: i64,
    /// Traffic at its height, as a multiple of the base rate.
    pub peak: f64,
}

impl Spike {
    /// The demo's: 90 s after start, then every 10 minutes, 60 s long, up to 5× the rate.
    /// At the default 200 events/s, a 10 s window at the peak holds about 10,000 events
    /// instead of 2,000: enough for a rule on events per window to fire.
    pub const DEMO: Spike = Spike {
        first_after_ms: 90_000,
        every_ms: 600_000,
        duration_ms: 60_000,
        peak: 5.0,
    };

    /// The rate multiplier `elapsed_ms` after the first event (1.0 outside spikes).
    pub fn factor(&self, elapsed_ms: i64) -> f64 {
        let since = elapsed_ms - self.first_after_ms;
        if since < 0 || self.duration_ms <= 0 || !self.peak.is_finite() {
            return 1.0;
        }
        let t = since % self.every_ms.max(self.duration_ms);
        if t >= self.duration_ms {
            return 1.0;
        }
        let x = t as f64 / self.duration_ms as f64;
        let ramp = if x < 0.2 {
            x / 0.2
        } else if x > 0.8 {
            (1.0 - x) / 0.2
        } else {
            1.0
        };
        1.0 + (self.peak.max(1.0) - 1.0) * ramp
    }
}

/// The page a spike's crowd lands on, and where it comes from.
pub const SPIKE_PAGE: &str = "/blog/launching-real-time-analytics";
/// The referrer of a spike's crowd.
pub const SPIKE_REFERRER: &str = "https://news.ycombinator.com/";

impl Generator {
    /// How many times the base rate to send at `now_ms`: 1.0, or more during a spike.
    pub fn rate_factor(&mut self, now_ms: i64) -> f64 {
        let origin = *self.origin.get_or_insert(now_ms);
        self.cfg
            .spike
            .map_or(1.0, |s| s.factor(now_ms.saturating_sub(origin)))
    }

    /// A page view of a spike's crowd: a visitor from the spike's referrer on its page, who
    /// leaves again (a session of one page view: such crowds mostly bounce).
    pub(super) fn crowd_event(&mut self, now_ms: i64) -> Event {
        let visitor = self.rng.usize(0..self.cfg.visitors);
        let (country, device) = self.visitor_attrs(visitor);
        Event {
            props: self.props_of(visitor),
            ts: now_ms,
            kind: "pageview".to_owned(),
            visitor: self.visitor_id(visitor),
            session: Some(format!("s-{:016x}", self.rng.u64(..))),
            url: SPIKE_PAGE.to_owned(),
            referrer: Some(SPIKE_REFERRER.to_owned()),
            country: Some(country),
            device: Some(device.to_owned()),
            site: self.site_of(visitor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::tests::NOW;
    use crate::gen::GenConfig;

    #[test]
    fn a_spike_rises_holds_and_falls_on_its_schedule() {
        let s = Spike::DEMO;
        assert_eq!(s.factor(0), 1.0);
        assert_eq!(s.factor(89_999), 1.0);
        assert_eq!(s.factor(90_000), 1.0, "the ramp starts at 1x");
        assert!((s.factor(90_000 + 6_000) - 3.0).abs() < 1e-9, "half way up");
        assert_eq!(s.factor(90_000 + 30_000), 5.0);
        assert!(
            (s.factor(90_000 + 57_000) - 2.0).abs() < 1e-9,
            "coming down"
        );
        assert_eq!(s.factor(90_000 + 60_000), 1.0);
        assert_eq!(
            s.factor(90_000 + 600_000 + 30_000),
            5.0,
            "and again 10 min later"
        );
        assert_eq!(GenConfig::default().spike, None);
    }

    #[test]
    fn the_demo_sends_a_crowd_from_one_referrer_during_a_spike() {
        let mut g = Generator::new(5, GenConfig::demo());
        // Before the spike: 1x, and few events from the spike's referrer to its page.
        let from_crowd = |evs: &[Event]| {
            evs.iter()
                .filter(|e| e.referrer.as_deref() == Some(SPIKE_REFERRER) && e.url == SPIKE_PAGE)
                .count() as f64
                / evs.len() as f64
        };
        let calm: Vec<Event> = (0..5_000).map(|i| g.next_event(NOW + i * 10)).collect();
        assert_eq!(g.rate_factor(NOW + 50_000), 1.0);
        let peak_at = NOW + 90_000 + 30_000;
        assert_eq!(g.rate_factor(peak_at), 5.0);
        let spike: Vec<Event> = (0..5_000).map(|_| g.next_event(peak_at)).collect();
        assert!(from_crowd(&calm) < 0.01, "{}", from_crowd(&calm));
        // At 5x, 4/5 of the events are the crowd's.
        let share = from_crowd(&spike);
        assert!((0.77..0.83).contains(&share), "{share}");
        // The site's own traffic goes on, signups included.
        let signups = spike.iter().filter(|e| e.kind == "signup").count();
        assert!(signups > 5, "{signups}");
    }
}
