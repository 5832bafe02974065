//! Mergeable per-window aggregates: the [`Aggregate`] of one window (or of a merge of
//! windows), built from the sketches of [`hll`] and [`top`], and its storage encoding.
//!
//! Contract:
//! - [`Aggregate`] is a commutative monoid under [`Aggregate::merge`] with
//!   [`Aggregate::new`] as the identity: merging partial aggregates of any split of an
//!   event stream gives the same [`Hll`] registers, event totals and (while exact) the
//!   same [`TopCounts`] as aggregating the whole stream in one pass. Uniques over a range
//!   are therefore a merge, never a sum.
//! - [`Aggregate::add`] counts every event by type, visitor, session, referrer, country
//!   and device, and page views (type `pageview`) by URL.
//! - Memory is bounded whatever the input (see [`hll`] and [`top`] for the bounds and
//!   the error guarantees above [`TOP_CAP`] keys).
//! - [`Aggregate::to_bytes`] / [`Aggregate::from_bytes`] are the storage format
//!   (a version byte followed by postcard); corrupt input yields [`AggError`],
//!   never a panic.

pub mod hll;
pub mod top;

use serde::{Deserialize, Serialize};

use crate::event::Event;

pub use hll::{Hll, HLL_PRECISION, HLL_REGISTERS};
pub use top::{KeyHasher, TopCounts, TOP_CAP};

/// Errors loading a stored [`Aggregate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    /// The bytes do not decode.
    #[error("stored aggregate is corrupt or from an incompatible version: {0}")]
    Corrupt(String),
    /// The format version byte is unknown.
    #[error(
        "stored aggregate is corrupt or from an incompatible version: format version {found}, expected {expected}"
    )]
    Version {
        /// Version byte found.
        found: u8,
        /// Version this build writes.
        expected: u8,
    },
}

/// Storage format version written by [`Aggregate::to_bytes`].
pub const AGG_FORMAT_VERSION: u8 = 2;

/// Everything the dashboard shows for one window (or a merge of windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Aggregate {
    /// Number of events.
    pub events: u64,
    /// Events by type.
    pub by_type: TopCounts,
    /// Distinct visitors.
    pub visitors: Hll,
    /// Distinct sessions.
    pub sessions: Hll,
    /// Page views (type `pageview`) by URL.
    pub urls: TopCounts,
    /// Events by referrer (all types).
    pub referrers: TopCounts,
    /// Events by country (all types).
    pub countries: TopCounts,
    /// Events by device (all types).
    pub devices: TopCounts,
}

impl Aggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        Aggregate::default()
    }

    /// Accounts one event.
    pub fn add(&mut self, ev: &Event) {
        self.events += 1;
        self.by_type.add(&ev.kind, 1);
        self.visitors.insert(&ev.visitor);
        if let Some(s) = &ev.session {
            self.sessions.insert(s);
        }
        if ev.kind == "pageview" {
            self.urls.add(&ev.url, 1);
        }
        if let Some(r) = &ev.referrer {
            self.referrers.add(r, 1);
        }
        if let Some(c) = &ev.country {
            self.countries.add(c, 1);
        }
        if let Some(d) = &ev.device {
            self.devices.add(d, 1);
        }
    }

    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: &Aggregate) {
        self.events = self.events.saturating_add(other.events);
        self.by_type.merge(&other.by_type);
        self.visitors.merge(&other.visitors);
        self.sessions.merge(&other.sessions);
        self.urls.merge(&other.urls);
        self.referrers.merge(&other.referrers);
        self.countries.merge(&other.countries);
        self.devices.merge(&other.devices);
    }

    /// True when every top counter is exact.
    pub fn is_exact(&self) -> bool {
        [
            &self.by_type,
            &self.urls,
            &self.referrers,
            &self.countries,
            &self.devices,
        ]
        .iter()
        .all(|t| t.is_exact())
    }

    /// Storage encoding: [`AGG_FORMAT_VERSION`] followed by postcard.
    pub fn to_bytes(&self) -> Vec<u8> {
        let out = vec![AGG_FORMAT_VERSION];
        // Serialising into a Vec only fails on allocation failure.
        postcard::to_extend(self, out).expect("postcard serialisation into a Vec cannot fail")
    }

    /// Decodes [`Aggregate::to_bytes`] output.
    pub fn from_bytes(b: &[u8]) -> Result<Self, AggError> {
        let (&version, rest) = b
            .split_first()
            .ok_or_else(|| AggError::Corrupt("empty input".into()))?;
        if version != AGG_FORMAT_VERSION {
            return Err(AggError::Version {
                found: version,
                expected: AGG_FORMAT_VERSION,
            });
        }
        let (agg, tail) = postcard::take_from_bytes::<Aggregate>(rest)
            .map_err(|e| AggError::Corrupt(e.to_string()))?;
        if !tail.is_empty() {
            return Err(AggError::Corrupt(format!("{} trailing bytes", tail.len())));
        }
        Ok(agg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn ev(
        kind: &str,
        visitor: &str,
        session: Option<&str>,
        url: &str,
        referrer: Option<&str>,
    ) -> Event {
        Event {
            ts: 1_795_515_330_123,
            kind: kind.into(),
            visitor: visitor.into(),
            session: session.map(Into::into),
            url: url.into(),
            referrer: referrer.map(Into::into),
            country: Some(if visitor.len() % 2 == 0 { "DE" } else { "US" }.into()),
            device: None,
        }
    }

    fn aggregate(events: &[Event]) -> Aggregate {
        let mut a = Aggregate::new();
        for e in events {
            a.add(e);
        }
        a
    }

    /// Splits `events` at `cuts`, aggregates each part, then merges the parts
    /// in an order and grouping chosen by `seed`.
    fn split_merge(events: &[Event], cuts: &[usize], seed: u64) -> Aggregate {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([events.len()]) {
            parts.push(aggregate(&events[prev..c]));
            prev = c;
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        while parts.len() > 1 {
            let i = rng.usize(0..parts.len());
            let b = parts.swap_remove(i);
            let j = rng.usize(0..parts.len());
            if rng.bool() {
                parts[j].merge(&b);
            } else {
                let mut b = b;
                b.merge(&parts[j]);
                parts[j] = b;
            }
        }
        parts.pop().unwrap_or_default()
    }

    fn small_event() -> impl Strategy<Value = Event> {
        (
            prop::sample::select(vec!["pageview", "pageview", "click", "signup"]),
            0u8..30,
            prop::option::of(0u8..10),
            0u8..12,
            prop::option::of(prop::sample::select(vec![
                "https://g/",
                "https://hn/",
                "https://gh/",
            ])),
        )
            .prop_map(|(k, v, s, u, r)| {
                ev(
                    k,
                    &format!("v{v}"),
                    s.map(|s| format!("s{s}")).as_deref(),
                    &format!("/p{u}"),
                    r,
                )
            })
    }

    proptest! {
        #[test]
        fn merge_of_any_split_equals_one_pass_in_exact_mode(
            events in prop::collection::vec(small_event(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 1..4),
            seed in any::<u64>(),
        ) {
            let one = aggregate(&events);
            let merged = split_merge(&events, &cuts, seed);
            prop_assert!(one.is_exact());
            prop_assert_eq!(&merged, &one);
            prop_assert_eq!(merged.urls.top(5), one.urls.top(5));
            prop_assert_eq!(Aggregate::from_bytes(&merged.to_bytes()), Ok(one));
        }

        #[test]
        fn merge_is_commutative(
            a in prop::collection::vec(small_event(), 0..80),
            b in prop::collection::vec(small_event(), 0..80),
        ) {
            let (x, y) = (aggregate(&a), aggregate(&b));
            let mut xy = x.clone();
            xy.merge(&y);
            let mut yx = y.clone();
            yx.merge(&x);
            prop_assert_eq!(xy, yx);
            let mut id = x.clone();
            id.merge(&Aggregate::new());
            prop_assert_eq!(id, x);
        }
    }

    /// Events over many distinct URLs (above TOP_CAP) with a few heavy hitters.
    fn wide_events(seed: u64, n: usize) -> Vec<Event> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| {
                let url = if rng.u8(0..4) == 0 {
                    format!("/hot{}", rng.u8(0..5))
                } else {
                    format!("/cold{}", rng.u32(0..3_000))
                };
                let kind = if rng.u8(0..10) == 0 {
                    "click"
                } else {
                    "pageview"
                };
                ev(
                    kind,
                    &format!("v{}", rng.u32(0..5_000)),
                    Some(&format!("s{}", rng.u32(0..2_000))),
                    &url,
                    None,
                )
            })
            .collect()
    }

    fn truth(events: &[Event]) -> HashMap<String, u64> {
        let mut m = HashMap::new();
        for e in events.iter().filter(|e| e.kind == "pageview") {
            *m.entry(e.url.clone()).or_insert(0) += 1;
        }
        m
    }

    fn assert_within_bound(t: &TopCounts, truth: &HashMap<String, u64>) {
        let total: u64 = truth.values().sum();
        assert_eq!(t.total(), total);
        assert!(t.len() <= TOP_CAP);
        assert!(
            t.error_bound() <= total / (TOP_CAP as u64 + 1),
            "{} > {}",
            t.error_bound(),
            total
        );
        for (k, &n) in truth {
            let c = t.get(k);
            assert!(c <= n, "{k}: {c} > {n}");
            assert!(
                c + t.error_bound() >= n,
                "{k}: {c} + {} < {n}",
                t.error_bound()
            );
            if n * TOP_CAP as u64 > total {
                assert!(c > 0, "heavy hitter {k} ({n} of {total}) missing");
            }
        }
        for (k, c) in t.top(TOP_CAP) {
            assert!(truth.contains_key(&k) && c > 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn merge_above_cap_keeps_exact_totals_and_bounded_counts(
            seed in any::<u64>(),
            cuts in prop::collection::vec(any::<usize>(), 1..4),
            merge_seed in any::<u64>(),
        ) {
            let events = wide_events(seed, 6_000);
            let one = aggregate(&events);
            let merged = split_merge(&events, &cuts, merge_seed);
            prop_assert!(!one.urls.is_exact());
            prop_assert_eq!(merged.events, one.events);
            prop_assert_eq!(&merged.by_type, &one.by_type);
            prop_assert_eq!(&merged.visitors, &one.visitors);
            prop_assert_eq!(&merged.sessions, &one.sessions);
            let t = truth(&events);
            assert_within_bound(&one.urls, &t);
            assert_within_bound(&merged.urls, &t);
            // the heavy hitters lead the top list in both
            let hot = |a: &Aggregate| {
                let mut v: Vec<String> = a.urls.top(5).into_iter().map(|(k, _)| k).collect();
                v.sort();
                v
            };
            prop_assert_eq!(hot(&merged), hot(&one));
            prop_assert_eq!(Aggregate::from_bytes(&merged.to_bytes()), Ok(merged));
        }
    }

    #[test]
    fn aggregate_add_counts_pageview_urls_only_and_optional_fields() {
        let mut a = Aggregate::new();
        a.add(&ev("pageview", "v1", Some("s1"), "/a", Some("https://g/")));
        a.add(&ev("click", "v1", Some("s1"), "/b", Some("https://g/")));
        a.add(&ev("pageview", "v2", None, "/a", None));
        assert_eq!(a.events, 3);
        assert_eq!(a.by_type.get("pageview"), 2);
        assert_eq!(a.by_type.get("click"), 1);
        assert_eq!(a.urls.get("/a"), 2);
        assert_eq!(a.urls.get("/b"), 0);
        assert_eq!(a.referrers.get("https://g/"), 2);
        assert_eq!(a.countries.total(), 3);
        assert_eq!(a.devices.total(), 0);
        assert_eq!(a.visitors.estimate(), 2);
        assert_eq!(a.sessions.estimate(), 1);
    }

    #[test]
    fn aggregate_bytes_round_trip_and_reject_corruption() {
        let events = wide_events(5, 3_000);
        let a = aggregate(&events);
        let bytes = a.to_bytes();
        assert_eq!(Aggregate::from_bytes(&bytes), Ok(a.clone()));
        assert_eq!(
            Aggregate::from_bytes(&Aggregate::new().to_bytes()),
            Ok(Aggregate::new())
        );
        assert!(matches!(
            Aggregate::from_bytes(&[]),
            Err(AggError::Corrupt(_))
        ));
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 99;
        let err = Aggregate::from_bytes(&wrong_version).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("stored aggregate is corrupt or from an incompatible version"));
        assert!(Aggregate::from_bytes(&bytes[..bytes.len() / 2]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Aggregate::from_bytes(&trailing).is_err());
        // arbitrary garbage never panics
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..2_000 {
            let mut b = bytes.clone();
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(0..b.len());
                b[i] = rng.u8(..);
            }
            let _ = Aggregate::from_bytes(&b);
            let len = rng.usize(0..64);
            let junk: Vec<u8> = std::iter::once(AGG_FORMAT_VERSION)
                .chain((0..len).map(|_| rng.u8(..)))
                .collect();
            let _ = Aggregate::from_bytes(&junk);
        }
    }
}
