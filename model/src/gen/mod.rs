//! Deterministic, realistic clickstream traffic for demos, tests and benchmarks.
//!
//! Contract:
//! - Pure: the caller passes the current time; output depends only on the seed,
//!   the [`GenConfig`] and the sequence of `now_ms` values.
//! - [`Generator::next_event`] always yields an event the canonical decoder
//!   accepts; [`Generator::next_payload`] yields its canonical JSON, or (with
//!   probability `malformed`) a payload the canonical decoder rejects.
//! - Traffic shape: Zipf page popularity over `pages` URLs, visitors with sticky
//!   country/device (`countries` of them, the site's 16 weighted ones by default),
//!   multi-event sessions, ~85/13/2 % pageview/click/signup (the signups, on `/signup`,
//!   are what the demo's `signup` goal counts), `referrers` weighted referrers (no referrer
//!   among them; 10 by default), a fraction of
//!   out-of-order and of late events.
//! - With a [`Spike`] (the demo's, [`GenConfig::demo`]), traffic now and then swells: a link
//!   on a busy site sends a crowd of new visitors to one blog post. [`Generator::rate_factor`]
//!   says how many times the base rate to send at an instant (the caller paces by it), and
//!   during a spike that share of the events comes from the crowd (referrer
//!   `news.ycombinator.com`, landing on the post). Its schedule counts from the first `now`
//!   the generator sees. Without a spike, the generator draws exactly the random numbers it
//!   always did.
//!
//! Files: the configuration and the generator's sessions and events here; `site` (the
//! simulated site: pages, referrers, countries, devices and their weights), `spike` (the
//! spike's schedule and its crowd) and `malformed` (the payloads the decoder must reject).

mod malformed;
mod site;
mod spike;

pub use spike::{Spike, SPIKE_PAGE, SPIKE_REFERRER};

use crate::event::Event;
use site::{countries, page_paths, referrers, total_weight, weighted, DEVICES};

/// Generator parameters.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Number of distinct page URLs.
    pub pages: usize,
    /// Number of distinct countries: the site's 16 weighted ones, then (with more) a tail of
    /// weight 1 each.
    pub countries: usize,
    /// Number of distinct referrers, "none" included: the site's 10 weighted ones, then
    /// (with more) other sites of weight 1 each.
    pub referrers: usize,
    /// Number of distinct visitors.
    pub visitors: usize,
    /// Zipf exponent of page popularity.
    pub zipf_s: f64,
    /// Fraction of events 100–4000 ms behind `now`.
    pub out_of_order: f64,
    /// Fraction of events 20–120 s behind `now`.
    pub late: f64,
    /// Fraction of malformed payloads from [`Generator::next_payload`].
    pub malformed: f64,
    /// An occasional traffic spike (none by default).
    pub spike: Option<Spike>,
    /// The sites the traffic is of, each visitor always on the same one (`visitor mod n`);
    /// none by default (events without a site, and not one random number more drawn).
    pub sites: Vec<String>,
    /// Every event carries the property `plan` of its visitor ([`DEMO_PLANS`], fixed per
    /// visitor, most on `free`); off by default (and no random number more drawn).
    pub props: bool,
    /// No event is stamped before this time (epoch ms): traffic that starts now has no late
    /// or out-of-order event before it (the demo's first two minutes would otherwise sprinkle
    /// a few events over the windows before it started).
    pub not_before: Option<i64>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            pages: 300,
            countries: 16,
            referrers: 10,
            visitors: 20_000,
            zipf_s: 1.1,
            out_of_order: 0.02,
            late: 0.002,
            malformed: 0.003,
            spike: None,
            sites: Vec::new(),
            props: false,
            not_before: None,
        }
    }
}

impl GenConfig {
    /// The embedded demo's traffic: the defaults with [`Spike::DEMO`].
    pub fn demo() -> Self {
        GenConfig {
            spike: Some(Spike::DEMO),
            sites: DEMO_SITES.iter().map(|s| (*s).to_owned()).collect(),
            props: true,
            ..GenConfig::default()
        }
    }
}

/// The demo's sites: a shop and its blog.
pub const DEMO_SITES: [&str; 2] = ["shop.example", "blog.example"];

/// The values of the demo's property `plan`, a visitor's drawn by its number: free 4 in 8,
/// pro 2, team 1, enterprise 1.
pub const DEMO_PLANS: [&str; 8] = [
    "free",
    "pro",
    "free",
    "team",
    "free",
    "pro",
    "free",
    "enterprise",
];

/// One generated message: a good event or a malformed payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Generated {
    /// A well-formed event.
    Good(Event),
    /// Bytes the decoder must reject.
    Malformed(Vec<u8>),
}

struct Session {
    visitor: usize,
    id: String,
    remaining: u32,
    /// Index into [`Generator::referrers`].
    referrer: usize,
}

/// Deterministic traffic generator.
pub struct Generator {
    rng: fastrand::Rng,
    cfg: GenConfig,
    pages: Vec<String>,
    zipf_cdf: Vec<f64>,
    countries: Vec<(String, u32)>,
    referrers: Vec<(Option<String>, u32)>,
    sessions: Vec<Session>,
    max_sessions: usize,
    visitor_salt: u64,
    /// The first `now` seen: a spike's schedule counts from it.
    origin: Option<i64>,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Generator {
    /// A generator with its own RNG seeded by `seed`.
    pub fn new(seed: u64, cfg: GenConfig) -> Self {
        let mut cfg = cfg;
        cfg.pages = cfg.pages.max(1);
        cfg.visitors = cfg.visitors.max(1);
        let clamp = |p: f64| {
            if p.is_finite() {
                p.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        cfg.out_of_order = clamp(cfg.out_of_order);
        cfg.late = clamp(cfg.late);
        cfg.malformed = clamp(cfg.malformed);
        let s = if cfg.zipf_s.is_finite() {
            cfg.zipf_s.max(0.0)
        } else {
            1.0
        };
        let mut acc = 0.0;
        let zipf_cdf = (1..=cfg.pages)
            .map(|r| {
                acc += 1.0 / (r as f64).powf(s);
                acc
            })
            .collect();
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            pages: page_paths(cfg.pages),
            zipf_cdf,
            countries: countries(cfg.countries),
            referrers: referrers(cfg.referrers),
            sessions: Vec::new(),
            max_sessions: (cfg.visitors / 20).clamp(1, 400),
            visitor_salt: mix(seed),
            origin: None,
            cfg,
        }
    }

    fn zipf_page(&mut self) -> String {
        let total = self.zipf_cdf.last().copied().unwrap_or(1.0);
        let u = self.rng.f64() * total;
        let i = self.zipf_cdf.partition_point(|&c| c <= u);
        self.pages[i.min(self.pages.len() - 1)].clone()
    }

    fn visitor_id(&self, v: usize) -> String {
        format!(
            "v-{:012x}",
            mix(self.visitor_salt ^ v as u64) & 0xffff_ffff_ffff
        )
    }

    /// Sticky per-visitor attributes derived from the visitor number.
    fn visitor_attrs(&self, v: usize) -> (String, &'static str) {
        let h = mix(self.visitor_salt.wrapping_add(v as u64).rotate_left(17));
        let all = u64::from(total_weight(&self.countries));
        let c = weighted(&self.countries, (h % all) as u32).clone();
        let d = *weighted(
            DEVICES,
            ((h >> 32) % u64::from(total_weight(DEVICES))) as u32,
        );
        (c, d)
    }

    fn pick_session(&mut self) -> usize {
        let start_new = self.sessions.len() < self.max_sessions / 2
            || (self.sessions.len() < self.max_sessions && self.rng.f64() < 0.15)
            || self.sessions.is_empty();
        if start_new {
            let visitor = self.rng.usize(0..self.cfg.visitors);
            let id = format!("s-{:016x}", self.rng.u64(..));
            let r = self.rng.u32(0..total_weight(&self.referrers));
            let referrer = self.referrer_index(r);
            // geometric-ish session length, mean about 5 events
            let remaining = 1 + (0..20).take_while(|_| self.rng.f64() < 0.8).count() as u32;
            self.sessions.push(Session {
                visitor,
                id,
                remaining,
                referrer,
            });
            self.sessions.len() - 1
        } else {
            self.rng.usize(0..self.sessions.len())
        }
    }

    /// The referrer of weighted draw `r` (below the referrers' total weight), as an index.
    fn referrer_index(&self, mut r: u32) -> usize {
        for (i, (_, w)) in self.referrers.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        self.referrers.len() - 1
    }

    /// The next well-formed event at (about) `now_ms`.
    pub fn next_event(&mut self, now_ms: i64) -> Event {
        if self.cfg.spike.is_some() {
            // During a spike, the share of traffic above the base rate is the crowd.
            let f = self.rate_factor(now_ms);
            if f > 1.0 && self.rng.f64() < (f - 1.0) / f {
                return self.crowd_event(now_ms);
            }
        }
        let si = self.pick_session();
        let roll = self.rng.u32(0..100);
        let kind = match roll {
            0..=84 => "pageview",
            85..=97 => "click",
            _ => "signup",
        };
        let url = if kind == "signup" {
            "/signup".to_owned()
        } else {
            self.zipf_page()
        };
        let ts = if self.rng.f64() < self.cfg.late {
            now_ms - self.rng.i64(20_000..120_000)
        } else if self.rng.f64() < self.cfg.out_of_order {
            now_ms - self.rng.i64(100..4_000)
        } else {
            now_ms
        };
        let ts = self.cfg.not_before.map_or(ts, |t| ts.max(t.min(now_ms)));
        let s = &mut self.sessions[si];
        s.remaining = s.remaining.saturating_sub(1);
        let (visitor, session, referrer) = (s.visitor, s.id.clone(), s.referrer);
        if s.remaining == 0 {
            self.sessions.swap_remove(si);
        }
        let (country, device) = self.visitor_attrs(visitor);
        let referrer = self.referrers.get(referrer).and_then(|r| r.0.clone());
        Event {
            props: self.props_of(visitor),
            ts,
            kind: kind.to_owned(),
            visitor: self.visitor_id(visitor),
            session: Some(session),
            url,
            referrer,
            country: Some(country),
            device: Some(device.to_owned()),
            site: self.site_of(visitor),
        }
    }

    /// The properties of visitor number `visitor`'s events (see [`GenConfig::props`]).
    pub(super) fn props_of(&self, visitor: usize) -> Vec<(String, String)> {
        if !self.cfg.props {
            return Vec::new();
        }
        // Spread the numbers (consecutive visitors share a site) before picking.
        let i = (visitor as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61;
        vec![("plan".to_owned(), DEMO_PLANS[i as usize].to_owned())]
    }

    /// The site of visitor number `visitor` (see [`GenConfig::sites`]).
    pub(super) fn site_of(&self, visitor: usize) -> Option<String> {
        match self.cfg.sites.len() {
            0 => None,
            n => Some(self.cfg.sites[visitor % n].clone()),
        }
    }

    /// Canonical JSON of the next event (`Some(event)`), or with probability
    /// `malformed` a payload the decoder rejects (`None`).
    pub fn next_payload(&mut self, now_ms: i64) -> (Vec<u8>, Option<Event>) {
        if self.rng.f64() < self.cfg.malformed {
            return (self.malformed(now_ms), None);
        }
        let ev = self.next_event(now_ms);
        (ev.to_json().into_bytes(), Some(ev))
    }

    /// [`Self::next_payload`] as a [`Generated`] value.
    pub fn next_generated(&mut self, now_ms: i64) -> Generated {
        match self.next_payload(now_ms) {
            (_, Some(ev)) => Generated::Good(ev),
            (bytes, None) => Generated::Malformed(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;
    use std::collections::{HashMap, HashSet};

    pub(super) const NOW: i64 = 1_795_515_330_123;

    /// xxh3 of the first 2,000 payloads of seed 7 (at `NOW + 3·i`), newline-separated.
    /// Update it when the generator's output changes on purpose (new traffic shape, a
    /// fastrand upgrade that changes its streams), and say so in the change.
    const SEED_7_FINGERPRINT: u64 = 0x4ea8_5c11_4d05_d468;

    #[test]
    fn generator_is_deterministic_for_a_seed() {
        // Two generators of one seed, advanced in turn: nothing shared between them
        // (a global RNG, a clock) may make them drift apart.
        let mut a = Generator::new(7, GenConfig::default());
        let mut b = Generator::new(7, GenConfig::default());
        let mut other = Generator::new(8, GenConfig::default());
        let mut all = Vec::new();
        let mut differs = false;
        for i in 0..2_000 {
            let now = NOW + i * 3;
            let pa = a.next_payload(now);
            assert_eq!(b.next_payload(now), pa, "payload {i}");
            differs |= other.next_payload(now).0 != pa.0;
            all.extend_from_slice(&pa.0);
            all.push(b'\n');
        }
        assert!(differs, "another seed gives other traffic");
        assert_eq!(
            xxhash_rust::xxh3::xxh3_64(&all),
            SEED_7_FINGERPRINT,
            "the generator's output for seed 7 changed"
        );
    }

    #[test]
    fn good_payloads_decode_to_the_same_event() {
        let mut g = Generator::new(3, GenConfig::default());
        let d = Decoder::default();
        let mut malformed = 0;
        for i in 0..5_000 {
            let now = NOW + i * 7;
            match g.next_payload(now) {
                (bytes, Some(ev)) => assert_eq!(d.decode(&bytes, Some(now)), Ok(ev)),
                (bytes, None) => {
                    malformed += 1;
                    assert!(d.decode(&bytes, Some(now)).is_err());
                }
            }
        }
        assert!(malformed > 0 && malformed < 50, "{malformed}");
    }

    #[test]
    fn traffic_has_a_realistic_shape() {
        let mut g = Generator::new(11, GenConfig::default());
        let n = 20_000;
        let evs: Vec<Event> = (0..n).map(|i| g.next_event(NOW + i)).collect();
        let lag: Vec<i64> = evs
            .iter()
            .enumerate()
            .map(|(i, e)| NOW + i as i64 - e.ts)
            .collect();
        let frac =
            |f: &dyn Fn(&Event) -> bool| evs.iter().filter(|e| f(e)).count() as f64 / n as f64;
        let pv = frac(&|e| e.kind == "pageview");
        assert!((0.82..0.88).contains(&pv), "{pv}");
        let click = frac(&|e| e.kind == "click");
        assert!((0.11..0.15).contains(&click), "{click}");
        let no_ref = frac(&|e| e.referrer.is_none());
        assert!((0.3..0.5).contains(&no_ref), "{no_ref}");
        let mobile = frac(&|e| e.device.as_deref() == Some("mobile"));
        assert!((0.3..0.5).contains(&mobile), "{mobile}");
        let late = lag.iter().filter(|&&l| l >= 20_000).count();
        assert!((10..=100).contains(&late), "{late}");
        // Traffic that starts at NOW has none of its events before NOW.
        let mut from_now = Generator::new(
            7,
            GenConfig {
                not_before: Some(NOW),
                ..GenConfig::default()
            },
        );
        assert!((0..n).all(|i| from_now.next_event(NOW + i).ts >= NOW));
        let ooo = lag.iter().filter(|&&l| (100..4_000).contains(&l)).count();
        assert!((200..=700).contains(&ooo), "{ooo}");
        assert!(lag
            .iter()
            .all(|&l| l == 0 || (100..4_000).contains(&l) || (20_000..120_000).contains(&l)));

        // Zipf: the most popular page gets far more views than the median one.
        let mut by_url: HashMap<&str, usize> = HashMap::new();
        for e in &evs {
            *by_url.entry(e.url.as_str()).or_default() += 1;
        }
        let mut counts: Vec<usize> = by_url.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        assert!(counts[0] > 10 * counts[counts.len() / 2]);
        assert_eq!(by_url.get("/").copied(), Some(counts[0]));

        // Sessions: several events per session, one visitor per session.
        let mut sess: HashMap<&str, (usize, HashSet<&str>)> = HashMap::new();
        for e in &evs {
            let s = sess.entry(e.session.as_deref().unwrap()).or_default();
            s.0 += 1;
            s.1.insert(&e.visitor);
        }
        let avg = n as f64 / sess.len() as f64;
        assert!(avg > 2.5, "{avg}");
        assert!(sess.values().all(|(_, v)| v.len() == 1));
        assert!(evs
            .iter()
            .all(|e| e.visitor.starts_with("v-") && e.url.starts_with('/')));
    }
}
