//! Demo history: in embedded mode, the hour before (and ten minutes after) the same time one
//! day and one week earlier is filled with generated traffic, so that a newcomer's first
//! run can already compare with the day and the week before. Also the folding that the
//! benchmark uses to measure the disk bytes of history.
//!
//! Contract:
//! - [`fold_period`] runs the demo generator ([`pulseboard_model::gen`]) over `[from, to)`
//!   at `rate` events per second of event time and folds its events into windows per
//!   partition (by visitor, as the demo producer keys them) with the goals and segment tables
//!   of the running configuration's [`AggSpec`]: real events, real aggregates, so a
//!   comparison filtered by a segment or showing goals has its earlier period too.
//! - [`seed`] writes the periods of [`periods`] that hold no data yet (windows or buckets)
//!   into the store as windows ([`Store::merge_windows`]); the retention pass rolls them up
//!   like any other. Running it again adds nothing.
//! - It runs off the runtime (blocking) after start-up and never delays ingest; it stops
//!   between five-minute slices when Pulseboard shuts down, and the shutdown waits for it
//!   before the store is closed (a blocking task must not outlive the store's last use).

use std::collections::BTreeMap;

use pulseboard_model::agg::{AggSpec, Aggregate};
use pulseboard_model::gen::{GenConfig, Generator};
use pulseboard_model::rollup::{bucket_start, Level};

use crate::store::{Store, StoreError};

/// The periods filled: `[now - d - 1 h, now - d + 10 min)` for one day and one week.
pub fn periods(now_ms: i64) -> Vec<(i64, i64)> {
    [86_400_000i64, 7 * 86_400_000]
        .into_iter()
        .map(|d| (now_ms - d - 3_600_000, now_ms - d + 600_000))
        .collect()
}

/// Windows of `window_ms` per partition (of `partitions`) of the generator's traffic over
/// `[from, to)` at `rate` events/s, counted as `spec` says (goals, segment tables). Returns
/// the windows and the number of events.
pub fn fold_period(
    seed: u64,
    rate: u32,
    (from, to): (i64, i64),
    window_ms: i64,
    partitions: i32,
    spec: &AggSpec,
) -> (BTreeMap<i32, BTreeMap<i64, Aggregate>>, u64) {
    let mut gen = Generator::new(
        seed,
        GenConfig {
            sites: GenConfig::demo().sites,
            props: true,
            ..GenConfig::default()
        },
    );
    let mut out: BTreeMap<i32, BTreeMap<i64, Aggregate>> = BTreeMap::new();
    let rate = u64::from(rate.max(1));
    let span_ms = (to - from).max(0) as u64;
    let n = span_ms * rate / 1000;
    let parts = partitions.max(1) as u64;
    for i in 0..n {
        let t = from + (i * 1000 / rate) as i64;
        let ev = gen.next_event(t);
        let p = (xxhash_rust::xxh3::xxh3_64(ev.visitor.as_bytes()) % parts) as i32;
        out.entry(p)
            .or_default()
            .entry(bucket_start(ev.ts, window_ms))
            .or_default()
            .add_with(&ev, spec);
    }
    (out, n)
}

/// Event time generated and written at a time, ms: `stop` is asked between slices.
const SLICE_MS: i64 = 5 * 60_000;

/// The embedded traffic the demo history imitates: its topic, partitions, events/s, window
/// width, and what each window counts (`--goal`, `--segment-dimensions`).
pub struct DemoTraffic<'a> {
    pub topic: &'a str,
    pub partitions: i32,
    pub rate: u32,
    pub window_ms: i64,
    pub spec: &'a AggSpec,
}

/// Fill the [`periods`] before `now_ms` that hold no data yet with generated traffic like
/// `demo`'s, in slices of five minutes; gives up between slices once `stop()` says so
/// (shutdown). Returns the events written.
pub fn seed(
    store: &Store,
    demo: &DemoTraffic<'_>,
    now_ms: i64,
    stop: &dyn Fn() -> bool,
) -> Result<u64, StoreError> {
    let mut written = 0;
    for (i, (from, to)) in periods(now_ms).into_iter().enumerate() {
        let has_data = {
            let _gate = store.history_read();
            !store.windows_in(from, to)?.is_empty()
                || Level::ALL
                    .into_iter()
                    .map(|l| store.buckets_in(l, from, to).map(|b| !b.is_empty()))
                    .collect::<Result<Vec<bool>, _>>()?
                    .into_iter()
                    .any(|b| b)
        };
        if has_data {
            continue;
        }
        let mut at = from;
        while at < to {
            if stop() {
                return Ok(written);
            }
            let end = (at + SLICE_MS).min(to);
            let seed = 0x5eed + i as u64 * 1_000 + ((at - from) / SLICE_MS) as u64;
            let (parts, n) = fold_period(
                seed,
                demo.rate,
                (at, end),
                demo.window_ms,
                demo.partitions,
                demo.spec,
            );
            for (p, windows) in parts {
                let rows: Vec<(i64, Aggregate)> = windows.into_iter().collect();
                store.merge_windows(demo.topic, p, &rows)?;
            }
            written += n;
            at = end;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    use pulseboard_model::agg::{Dimension, Goal, SegmentSpec};

    fn demo(spec: &AggSpec) -> DemoTraffic<'_> {
        DemoTraffic {
            topic: "clicks",
            partitions: 4,
            rate: 20,
            window_ms: 10_000,
            spec,
        }
    }

    #[test]
    fn seeding_fills_the_day_and_week_before_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let now = 1_800_000_000_000;
        let spec = AggSpec {
            max_sites: 0,
            segments: SegmentSpec {
                dimensions: vec![Dimension::Country],
                top_n: 10,
            },
            goals: vec![Goal::parse("signup").expect("goal")],
        };
        let n = seed(&store, &demo(&spec), now, &|| false).expect("seed");
        assert_eq!(n, 2 * 4_200 * 20);
        let (from, to) = periods(now)[0];
        let rows = store.windows_in(from - 200_000, to).expect("rows");
        let events: u64 = rows.iter().map(|w| w.agg.events).sum();
        assert_eq!(
            events,
            4_200 * 20,
            "late events of the generator stay inside the period"
        );
        assert!(rows.iter().map(|w| w.partition).max() == Some(3));
        // Counted as the running configuration counts: its segment tables and goals, so a
        // filtered comparison or a goal's has the earlier period too.
        let in_countries: u64 = rows
            .iter()
            .filter_map(|w| w.agg.segments.table(Dimension::Country))
            .map(|t| t.values().map(|(_, a)| a.events).sum::<u64>() + t.other().events)
            .sum();
        let with_country: u64 = rows.iter().map(|w| w.agg.countries.total()).sum();
        assert!(with_country > 0);
        assert_eq!(
            in_countries, with_country,
            "every event with a country is in its table"
        );
        assert!(rows
            .iter()
            .any(|w| w.agg.goals.get("signup").is_some_and(|g| g.completions > 0)));
        assert_eq!(
            seed(&store, &demo(&spec), now, &|| false).expect("again"),
            0
        );
        // Asked to stop: nothing more is written.
        let other = tempfile::tempdir().expect("tempdir");
        let fresh = Store::open(other.path(), 10_000).expect("open");
        assert_eq!(
            seed(&fresh, &demo(&AggSpec::NONE), now, &|| true).expect("stopped"),
            0
        );
    }
}
