//! History: windows past retention are rolled up into per-minute, then per-hour buckets.
//!
//! Contract (pure: the store applies it, the retention pass decides when):
//! - A bucket of a [`Level`] is `[start, start + width)` with `start` aligned to the Unix
//!   epoch ([`bucket_start`]), like windows. A window (or a finer bucket) belongs to the
//!   bucket holding its start; window widths that divide a minute never straddle one.
//! - A bucket's aggregate is the [`Aggregate::merge`] of its sources: event counts and
//!   counts by type exact, uniques the HyperLogLog union (never a sum), and top lists
//!   capped to [`ROLLUP_TOP_KEYS`] keys per list by a Misra–Gries reduction
//!   ([`crate::agg::TopCounts::reduce_to`]): totals stay exact and every reported count is
//!   a lower bound within the list's error bound. A segment's sub-aggregate keeps what a
//!   filtered history view shows: [`ROLLUP_SEGMENT_TOP_KEYS`] keys a list and sketches of
//!   [`ROLLUP_SEGMENT_PRECISION`] (see there for the trade-off). [`fold_into`] is that step, so rolling
//!   the same sources up in one pass or several gives the same events, types and uniques.
//! - Roll-ups keep the dimension of their sources (topic and partition): [`roll_up`]
//!   groups by the caller's key, never across keys.
//! - [`plan`] turns the clock, the watermark and the three ages (`--retention`,
//!   `--minute-history`, `--history`) into the cut-offs of one pass, each aligned to the
//!   width of the level it feeds, so only whole buckets are ever rolled up.

use std::collections::BTreeMap;

use crate::agg::Aggregate;

/// Keys kept per top list of a roll-up bucket (a window keeps up to [`crate::TOP_CAP`]).
pub const ROLLUP_TOP_KEYS: usize = 100;

/// Keys kept per top list of a segment's sub-aggregate in a roll-up bucket: what a panel
/// of a filtered view shows (a window's keep [`crate::agg::SEGMENT_TOP_CAP`]).
pub const ROLLUP_SEGMENT_TOP_KEYS: usize = 10;

/// Precision of a segment's sketches in a roll-up bucket (visitors, sessions and goals'
/// converting visitors of one value): p = 8, a standard error of 1.04 / √256 ≈ 6.5 %, and
/// at most 256 bytes a sketch. A window keeps them at p = 12 (1.6 %); the bucket's own
/// figures (the whole traffic's) keep the window's precision. Filtered uniques over a range
/// of history are the coarser for it, at a fraction of the bytes: a bucket holds a sketch
/// of each kind for every segment value it kept, which at p = 12 would be most of its size.
pub const ROLLUP_SEGMENT_PRECISION: u8 = 8;

/// The resolution of a roll-up bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
}

impl Level {
    /// Both levels, finest first.
    pub const ALL: [Level; 2] = [Level::Minute, Level::Hour];

    /// Width of a bucket, ms.
    pub fn width_ms(self) -> i64 {
        match self {
            Level::Minute => 60_000,
            Level::Hour => 3_600_000,
        }
    }

    /// The byte that leads its keys in the store.
    pub fn code(self) -> u8 {
        match self {
            Level::Minute => 1,
            Level::Hour => 2,
        }
    }

    /// The level whose key byte is `b`.
    pub fn from_code(b: u8) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.code() == b)
    }

    /// `minute` or `hour`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Minute => "minute",
            Level::Hour => "hour",
        }
    }
}

/// Start of the bucket of `width_ms` holding `ts` (aligned to the epoch; negative times
/// included). Near `i64::MIN` (a cut-off meaning "nothing") it saturates at `i64::MIN`.
pub fn bucket_start(ts: i64, width_ms: i64) -> i64 {
    if width_ms <= 0 {
        return ts;
    }
    ts.saturating_sub(ts.rem_euclid(width_ms))
}

/// Folds `source` into the bucket aggregate `bucket` and caps its top lists.
pub fn fold_into(bucket: &mut Aggregate, source: &Aggregate) {
    bucket.merge(source);
    cap(bucket);
}

/// Keeps what history views need of `agg`: every top list cut to [`ROLLUP_TOP_KEYS`] keys,
/// and each segment's sub-aggregate to [`ROLLUP_SEGMENT_TOP_KEYS`] keys a list and
/// sketches of [`ROLLUP_SEGMENT_PRECISION`]. Counts stay exact; every cut list stays a
/// Misra–Gries summary (lower bounds within its error bound).
pub fn cap(agg: &mut Aggregate) {
    agg.reduce_tops_to(ROLLUP_TOP_KEYS);
    if !agg.segments.is_empty() {
        for sub in std::sync::Arc::make_mut(&mut agg.segments).subs_mut() {
            sub.reduce_tops_to(ROLLUP_SEGMENT_TOP_KEYS);
            sub.fold_hll_to(ROLLUP_SEGMENT_PRECISION);
        }
    }
    // Each site's own aggregate as the whole traffic's (a sole site's is this one).
    if agg.sites.table().next().is_some() || agg.sites.overflow().is_some() {
        for site in std::sync::Arc::make_mut(&mut agg.sites).subs_mut() {
            cap(site);
        }
    }
}

/// Rolls rows `(start, key, aggregate)` up into buckets of `level`, one per
/// `(bucket start, key)`.
pub fn roll_up<'a, K: Ord + Clone + 'a>(
    rows: impl IntoIterator<Item = (i64, K, &'a Aggregate)>,
    level: Level,
) -> BTreeMap<(i64, K), Aggregate> {
    let mut out: BTreeMap<(i64, K), Aggregate> = BTreeMap::new();
    for (start, key, agg) in rows {
        let b = bucket_start(start, level.width_ms());
        fold_into(out.entry((b, key)).or_default(), agg);
    }
    out
}

/// How long each resolution is kept, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ages {
    /// Windows at full resolution (`--retention`).
    pub retention_ms: i64,
    /// Minute buckets (`--minute-history`), counted from the same point as retention.
    pub minutes_ms: i64,
    /// Anything at all (`--history`): hour buckets older than this are deleted.
    pub history_ms: i64,
}

/// The cut-offs of one roll-up pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Windows starting before this are rolled up into minute buckets (minute-aligned).
    pub windows_before: i64,
    /// Minute buckets starting before this are rolled up into hour buckets (hour-aligned).
    pub minutes_before: i64,
    /// Hour buckets (and anything else) starting before this are deleted (hour-aligned).
    pub delete_before: i64,
}

/// The cut-offs at wall-clock `now_ms` with the global `watermark`: each age is counted
/// back from `min(watermark, now)` (never from a watermark ahead of the clock, so one
/// event stamped in the future cannot make history disappear), then aligned down to the
/// width of the level it feeds. Later levels never cut above earlier ones.
pub fn plan(now_ms: i64, watermark: Option<i64>, ages: Ages) -> Plan {
    let base = watermark.map_or(now_ms, |w| w.min(now_ms));
    let windows_before = bucket_start(
        base.saturating_sub(ages.retention_ms),
        Level::Minute.width_ms(),
    );
    let minutes_before = bucket_start(
        base.saturating_sub(ages.minutes_ms.max(ages.retention_ms)),
        Level::Hour.width_ms(),
    )
    .min(windows_before);
    let delete_before = bucket_start(
        base.saturating_sub(ages.history_ms.max(ages.minutes_ms)),
        Level::Hour.width_ms(),
    )
    .min(minutes_before);
    Plan {
        windows_before,
        minutes_before,
        delete_before,
    }
}

/// Percent change from `before` to `now` (`+25.0` for 80 → 100); `None` when `before` is 0.
pub fn percent_change(now: u64, before: u64) -> Option<f64> {
    if before == 0 {
        return None;
    }
    let pct = (now as f64 - before as f64) / before as f64 * 100.0;
    // Rounded to 0.1 %: what is shown, and stable to compare in tests.
    Some((pct * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::AggSpec;
    use crate::event::Event;

    fn ev(i: u64, url: &str) -> Event {
        Event {
            props: Vec::new(),
            site: None,
            ts: 0,
            kind: if i % 10 == 0 { "click" } else { "pageview" }.into(),
            visitor: format!("v{}", i % 700),
            session: Some(format!("s{}", i % 300)),
            url: url.into(),
            referrer: None,
            country: Some("DE".into()),
            device: None,
        }
    }

    #[test]
    fn a_bucket_holds_each_sites_roll_up_as_if_it_were_alone() {
        let spec = AggSpec {
            max_sites: 10,
            ..AggSpec::NONE
        };
        let site_of = |i: u64| ["a.example", "b.example"][(i % 700 % 2) as usize];
        // Six windows, each of both sites, many URLs (the caps cut them).
        let (mut bucket, mut alone) = (Aggregate::new(), BTreeMap::<&str, Aggregate>::new());
        for w in 0..6u64 {
            let mut window = Aggregate::new();
            let mut per_site: BTreeMap<&str, Aggregate> = BTreeMap::new();
            for i in w * 1_000..(w + 1) * 1_000 {
                let mut e = ev(i, &format!("/p{}", i % 400));
                e.site = Some(site_of(i).into());
                window.add_with(&e, &spec);
                per_site
                    .entry(site_of(i))
                    .or_default()
                    .add_with(&e, &AggSpec::NONE);
            }
            fold_into(&mut bucket, &window);
            for (s, a) in per_site {
                fold_into(alone.entry(s).or_default(), &a);
            }
        }
        for (s, want) in &alone {
            let mut got = bucket.site(s).cloned().expect("the site's roll-up");
            got.sites = Default::default();
            assert_eq!(&got, want, "{s}");
            assert!(
                got.urls.len() <= ROLLUP_TOP_KEYS,
                "capped as the whole traffic's"
            );
        }
    }

    #[test]
    fn buckets_align_to_the_epoch() {
        assert_eq!(bucket_start(119_999, 60_000), 60_000);
        assert_eq!(bucket_start(-1, 60_000), -60_000);
        assert_eq!(bucket_start(7_200_000, 3_600_000), 7_200_000);
        // "No cut-off" stays the lowest time: nothing starts before it.
        assert_eq!(bucket_start(i64::MIN, 60_000), i64::MIN);
        assert_eq!(bucket_start(i64::MIN + 1, 3_600_000), i64::MIN);
        assert_eq!(Level::from_code(Level::Hour.code()), Some(Level::Hour));
        assert_eq!(Level::from_code(0), None);
    }

    #[test]
    fn rolling_up_keeps_counts_types_and_uniques_of_one_pass_per_key() {
        // Six 10 s windows per minute over three minutes, two partitions.
        let mut windows = Vec::new();
        let mut truth: BTreeMap<(i64, i32), Aggregate> = BTreeMap::new();
        for w in 0..18i64 {
            for p in 0..2i32 {
                let mut a = Aggregate::new();
                for i in 0..50u64 {
                    let e = ev(
                        w as u64 * 100 + i + p as u64,
                        &format!("/p{}", i % 150 + w as u64),
                    );
                    a.add(&e);
                    truth
                        .entry((w * 10_000 / 60_000 * 60_000, p))
                        .or_default()
                        .add(&e);
                }
                windows.push((w * 10_000, p, a));
            }
        }
        let rolled = roll_up(windows.iter().map(|(s, p, a)| (*s, *p, a)), Level::Minute);
        assert_eq!(rolled.len(), 3 * 2);
        for ((b, p), agg) in &rolled {
            let t = &truth[&(*b, *p)];
            assert_eq!(agg.events, t.events);
            assert_eq!(agg.by_type, t.by_type);
            assert_eq!(agg.visitors, t.visitors);
            assert_eq!(agg.sessions, t.sessions);
            assert!(agg.urls.len() <= ROLLUP_TOP_KEYS);
            assert_eq!(agg.urls.total(), t.urls.total());
        }
        // Rolling the minutes up into an hour gives the same as rolling the windows.
        let hour = roll_up(rolled.iter().map(|((b, p), a)| (*b, *p, a)), Level::Hour);
        let direct = roll_up(windows.iter().map(|(s, p, a)| (*s, *p, a)), Level::Hour);
        for (k, a) in &hour {
            assert_eq!(a.events, direct[k].events);
            assert_eq!(a.visitors, direct[k].visitors);
            assert_eq!(a.by_type, direct[k].by_type);
        }
    }

    #[test]
    fn a_bucket_keeps_what_history_views_show_of_segments() {
        use crate::agg::{AggSpec, Dimension, SegmentSpec, HLL_PRECISION};
        use crate::gen::{GenConfig, Generator};
        let spec = AggSpec {
            max_sites: 0,
            segments: SegmentSpec {
                dimensions: Dimension::ALL.to_vec(),
                top_n: 10,
            },
            goals: vec![crate::agg::Goal::parse("signup").expect("goal")],
        };
        let mut g = Generator::new(3, GenConfig::default());
        let windows: Vec<(i64, i32, Aggregate)> = (0..6)
            .map(|w| {
                let mut a = Aggregate::new();
                for i in 0..2_000 {
                    a.add_with(&g.next_event(w * 10_000 + i * 5), &spec);
                }
                (w * 10_000, 0, a)
            })
            .collect();
        let rolled = roll_up(windows.iter().map(|(s, p, a)| (*s, *p, a)), Level::Minute);
        let bucket = &rolled[&(0, 0)];
        let events: u64 = windows.iter().map(|w| w.2.events).sum();
        assert_eq!(bucket.events, events);
        assert_eq!(
            bucket.visitors.precision(),
            HLL_PRECISION,
            "the whole traffic's"
        );
        for t in [&bucket.urls, &bucket.sources, &bucket.referrers] {
            assert!(t.len() <= ROLLUP_TOP_KEYS);
        }
        let mut subs = 0;
        for d in Dimension::ALL {
            let t = bucket.segments.table(d).expect("table");
            let held: u64 = t.values().map(|(_, s)| s.events).sum::<u64>() + t.other().events;
            assert!(held <= events && held > 0, "{d}: counts stay exact");
            for s in t.values().map(|(_, s)| s).chain([t.other()]) {
                subs += 1;
                assert_eq!(s.visitors.precision(), ROLLUP_SEGMENT_PRECISION);
                assert_eq!(s.sessions.precision(), ROLLUP_SEGMENT_PRECISION);
                assert!(s.urls.len() <= ROLLUP_SEGMENT_TOP_KEYS);
                for g in s.goals.values() {
                    assert_eq!(g.visitors.precision(), ROLLUP_SEGMENT_PRECISION);
                }
            }
        }
        assert!(subs > 4);
    }

    #[test]
    fn plan_aligns_cutoffs_and_never_trusts_a_watermark_ahead_of_the_clock() {
        let h = 3_600_000;
        let now = 1_800_000_000_000 + 1_234_567;
        let ages = Ages {
            retention_ms: 24 * h,
            minutes_ms: 8 * 24 * h,
            history_ms: 35 * 24 * h,
        };
        let p = plan(now, Some(now + 100 * 24 * h), ages);
        assert_eq!(p, plan(now, None, ages));
        assert_eq!(p.windows_before % 60_000, 0);
        assert!(p.windows_before <= now - 24 * h && p.windows_before > now - 24 * h - 60_000);
        assert_eq!(p.minutes_before % h, 0);
        assert!(p.minutes_before <= now - 8 * 24 * h);
        assert_eq!(p.delete_before % h, 0);
        assert!(p.delete_before <= now - 35 * 24 * h);
        // A watermark behind the clock moves everything back.
        let behind = plan(now, Some(now - 5 * h), ages);
        assert!(behind.windows_before <= now - 29 * h);
        // Ages out of order never make a later level cut above an earlier one.
        let odd = plan(
            now,
            None,
            Ages {
                retention_ms: 10 * h,
                minutes_ms: h,
                history_ms: 2 * h,
            },
        );
        assert!(
            odd.delete_before <= odd.minutes_before && odd.minutes_before <= odd.windows_before
        );
    }

    #[test]
    fn percent_change_is_rounded_and_undefined_from_zero() {
        assert_eq!(percent_change(100, 80), Some(25.0));
        assert_eq!(percent_change(50, 200), Some(-75.0));
        assert_eq!(percent_change(1, 3), Some(-66.7));
        assert_eq!(percent_change(5, 0), None);
    }
}
