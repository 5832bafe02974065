//! Reading a time range across resolutions: windows at full resolution (the hub's fresher
//! copies over the store's), minute and hour buckets of history; coarser steps; the earlier
//! period of a comparison.
//!
//! Contract:
//! - [`read`] returns the items whose start lies in `[from, to)`, merged across partitions,
//!   oldest first, without overlap: a row (a window, or a minute bucket) whose enclosing
//!   coarser bucket is in the answer is folded into it (a partition that was idle when the
//!   others rolled up keeps its windows a while longer; they are counted in the bucket).
//!   Windows and buckets are read under the store's history gate, so a roll-up committing
//!   meanwhile is seen wholly before or wholly after. Below the newest bucket read, windows
//!   come from the store alone (the hub may still hold copies of rolled-up windows); above
//!   it, the hub's fresher copies replace the store's rows per partition.
//! - [`step`] merges items narrower than a step into epoch-aligned steps; wider items stay
//!   as they are. Only the steps of [`STEPS`] are accepted, so a step never straddles a
//!   minute or hour bucket.
//! - An item's state: a window's own (`live`/`final`/`revised`), `final` for a bucket, and
//!   for a step the "most live" of what it holds.
//! - With a filter every row (a partition's window or bucket) is folded into its item as
//!   that segment ([`segments::fold`]): the figures of the value's sub-aggregate and what
//!   they cover of the value's events, so a filtered range reaches into history as an
//!   unfiltered one does.

use std::collections::BTreeMap;

use pulseboard_model::agg::Goal;
use pulseboard_model::proto::{Figures, Resolution, WindowState, WindowView};
use pulseboard_model::rollup::{bucket_start, Level};

use crate::hub::Hub;
use crate::query::segments::{self, Part, View};
use crate::store::{Store, StoreError};

/// The steps `GET /api/v1/windows?step=` accepts (each divides the next coarser unit).
pub const STEPS: [(&str, i64); 13] = [
    ("1m", 60_000),
    ("2m", 120_000),
    ("5m", 300_000),
    ("10m", 600_000),
    ("15m", 900_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("3h", 10_800_000),
    ("4h", 14_400_000),
    ("6h", 21_600_000),
    ("12h", 43_200_000),
    ("1d", 86_400_000),
];

/// One item of a range: a window, a bucket, or a step of several.
#[derive(Debug)]
pub struct Item {
    pub start: i64,
    pub end: i64,
    pub resolution: Resolution,
    pub state: WindowState,
    /// Its figures (of the segment, with a filter).
    pub part: Part,
}

impl Item {
    /// Its view with top lists of `top` entries, `goals` listed, and the segment note of
    /// `filter`.
    pub fn view(&self, top: usize, goals: &[Goal], view: &View) -> WindowView {
        WindowView {
            start: self.start,
            end: self.end,
            state: self.state,
            resolution: self.resolution,
            figures: Figures::with_goals(&self.part.agg, top, goals),
            segment: self.part.note(view.filter.as_ref()),
            site: self.part.site_note(view),
        }
    }
}

fn level_resolution(level: Level) -> Resolution {
    match level {
        Level::Minute => Resolution::Minute,
        Level::Hour => Resolution::Hour,
    }
}

/// Buckets of `level` in `[from, to)`, merged across partitions (as `filter`'s segment).
fn merged_buckets(
    store: &Store,
    level: Level,
    (from, to): (i64, i64),
    view: &View,
) -> Result<BTreeMap<i64, Part>, StoreError> {
    let fold = segments::fold(view);
    let mut out: BTreeMap<i64, Part> = BTreeMap::new();
    for b in store.buckets_in_with(level, from, to, view.keep())? {
        fold(out.entry(b.start).or_default(), &b.agg);
    }
    Ok(out)
}

/// The items of `[from, to)` (see the module docs), as `filter`'s segment when given.
/// `state_of` gives a window's state.
pub fn read(
    (store, hub): (&Store, &Hub),
    window_ms: i64,
    (from, to): (i64, i64),
    view: &View,
    state_of: impl Fn(i64) -> WindowState,
) -> Result<Vec<Item>, StoreError> {
    let keep = view.keep();
    let fold = segments::fold(view);
    let (windows, minutes, hours) = {
        let _gate = store.history_read();
        let minutes = merged_buckets(store, Level::Minute, (from, to), view)?;
        let hours = merged_buckets(store, Level::Hour, (from, to), view)?;
        // Below the newest bucket, windows come from the store alone: the hub may still
        // hold copies of windows that were rolled up since (a short --retention, or a
        // backlog of old events), and those are counted in their bucket already.
        let rolled_to = minutes
            .keys()
            .next_back()
            .map(|s| s + Level::Minute.width_ms())
            .into_iter()
            .chain(hours.keys().next_back().map(|s| s + Level::Hour.width_ms()))
            .max()
            .unwrap_or(from)
            .clamp(from, to);
        let mut windows: BTreeMap<i64, Part> = BTreeMap::new();
        for w in store.windows_in_with(from, rolled_to, keep)? {
            fold(windows.entry(w.start).or_default(), &w.agg);
        }
        windows.extend(hub.merged_range_with(store, rolled_to, to, keep, &fold)?);
        (windows, minutes, hours)
    };
    Ok(assemble(windows, minutes, hours, window_ms, state_of))
}

/// Fold rows into the coarser buckets that enclose them, and list everything by start.
pub fn assemble(
    windows: BTreeMap<i64, Part>,
    mut minutes: BTreeMap<i64, Part>,
    mut hours: BTreeMap<i64, Part>,
    window_ms: i64,
    state_of: impl Fn(i64) -> WindowState,
) -> Vec<Item> {
    let hour = Level::Hour.width_ms();
    let minute = Level::Minute.width_ms();
    let mut items = Vec::new();
    let minute_starts: Vec<i64> = minutes.keys().copied().collect();
    for m in minute_starts {
        if let Some(h) = hours.get_mut(&bucket_start(m, hour)) {
            if let Some(part) = minutes.remove(&m) {
                h.merge(&part);
            }
        }
    }
    for (start, part) in windows {
        if let Some(h) = hours.get_mut(&bucket_start(start, hour)) {
            h.merge(&part);
        } else if let Some(m) = minutes.get_mut(&bucket_start(start, minute)) {
            m.merge(&part);
        } else {
            items.push(Item {
                start,
                end: start + window_ms,
                resolution: Resolution::Window,
                state: state_of(start),
                part,
            });
        }
    }
    for (level, map) in [(Level::Minute, minutes), (Level::Hour, hours)] {
        for (start, part) in map {
            items.push(Item {
                start,
                end: start + level.width_ms(),
                resolution: level_resolution(level),
                state: WindowState::Final,
                part,
            });
        }
    }
    items.sort_by_key(|i| i.start);
    items
}

/// Items narrower than `step_ms` merged into epoch-aligned steps; wider ones unchanged.
pub fn step(items: Vec<Item>, step_ms: i64) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for item in items {
        if item.end - item.start >= step_ms {
            out.push(item);
            continue;
        }
        let s = bucket_start(item.start, step_ms);
        match out.last_mut() {
            Some(last) if last.start == s && last.end - last.start == step_ms => {
                last.part.merge(&item.part);
                last.state = last.state.most_live(item.state);
                last.resolution = last.resolution.max(item.resolution);
            }
            _ => out.push(Item {
                start: s,
                end: s + step_ms,
                resolution: item.resolution,
                state: item.state,
                part: item.part,
            }),
        }
    }
    out
}

/// The merge of every item.
pub fn total(items: &[Item]) -> Part {
    let mut t = Part::default();
    for i in items {
        t.merge(&i.part);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::Aggregate;
    use pulseboard_model::event::Event;

    fn agg(n: u64, visitor0: u64) -> Part {
        let mut a = Aggregate::new();
        for i in 0..n {
            a.add(&Event {
                props: Vec::new(),
                site: None,
                ts: 0,
                kind: "pageview".into(),
                visitor: format!("v{}", visitor0 + i),
                session: None,
                url: "/".into(),
                referrer: None,
                country: None,
                device: None,
            });
        }
        Part {
            agg: a,
            ..Part::default()
        }
    }

    #[test]
    fn rows_inside_a_coarser_bucket_fold_into_it_and_nothing_overlaps() {
        let h = 3_600_000;
        // Hour 0 rolled up; a straggler minute and window of an idle partition inside it;
        // minute buckets at 1 h and 1 h 1 m, a straggler window inside the first; windows
        // from 1 h 2 m on.
        let hours = BTreeMap::from([(0, agg(100, 0))]);
        let minutes = BTreeMap::from([
            (600_000, agg(3, 0)),
            (h, agg(5, 0)),
            (h + 60_000, agg(6, 0)),
        ]);
        let windows = BTreeMap::from([
            (20_000, agg(1, 0)),
            (h + 10_000, agg(2, 0)),
            (h + 120_000, agg(7, 0)),
            (h + 130_000, agg(8, 0)),
        ]);
        let items = assemble(windows, minutes, hours, 10_000, |_| WindowState::Live);
        let shape: Vec<(i64, i64, Resolution, u64)> = items
            .iter()
            .map(|i| (i.start, i.end, i.resolution, i.part.agg.events))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, h, Resolution::Hour, 104),
                (h, h + 60_000, Resolution::Minute, 7),
                (h + 60_000, h + 120_000, Resolution::Minute, 6),
                (h + 120_000, h + 130_000, Resolution::Window, 7),
                (h + 130_000, h + 140_000, Resolution::Window, 8),
            ]
        );
        assert_eq!(items[0].state, WindowState::Final);
        assert_eq!(items[3].state, WindowState::Live);
        assert_eq!(total(&items).agg.events, 132);
        // Steps of 30 min: the hour stays, the rest merges into the 1 h step.
        let stepped = step(items, 1_800_000);
        let shape: Vec<(i64, i64, Resolution, u64, WindowState)> = stepped
            .iter()
            .map(|i| (i.start, i.end, i.resolution, i.part.agg.events, i.state))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, h, Resolution::Hour, 104, WindowState::Final),
                (h, h + 1_800_000, Resolution::Minute, 28, WindowState::Live),
            ]
        );
        assert_eq!(
            stepped[1].part.agg.visitors.estimate(),
            8,
            "uniques merge, never add"
        );
    }
}
