//! Tests of event-time windows (`window`).

use super::*;

const W: i64 = 10_000;
const BASE: i64 = 1_795_515_330_000 - 1_795_515_330_000 % W;

fn cfg() -> WindowConfig {
    WindowConfig {
        width_ms: W,
        lateness_ms: 5_000,
    }
}

fn ev(ts: i64, visitor: &str) -> Event {
    Event {
        props: Vec::new(),
        site: None,
        ts,
        kind: "pageview".into(),
        visitor: visitor.into(),
        session: None,
        url: "/".into(),
        referrer: None,
        country: None,
        device: None,
    }
}

#[test]
fn window_start_at_exact_edges_is_the_edge() {
    assert_eq!(window_start(0, W), 0);
    assert_eq!(window_start(W, W), W);
    assert_eq!(window_start(BASE, W), BASE);
    assert_eq!(window_start(-W, W), -W);
}

#[test]
fn window_start_just_below_and_above_edges() {
    assert_eq!(window_start(W - 1, W), 0);
    assert_eq!(window_start(W + 1, W), W);
    assert_eq!(window_start(BASE - 1, W), BASE - W);
    assert_eq!(window_start(BASE + 1, W), BASE);
}

#[test]
fn window_start_handles_negative_timestamps() {
    assert_eq!(window_start(-1, 10_000), -10_000);
    assert_eq!(window_start(-10_000, 10_000), -10_000);
    assert_eq!(window_start(-10_001, 10_000), -20_000);
    assert_eq!(window_start(-9_999, 10_000), -10_000);
}

#[test]
fn window_start_with_width_one_is_identity() {
    for ts in [-3, -1, 0, 1, 7, BASE + 123] {
        assert_eq!(window_start(ts, 1), ts);
    }
}

#[test]
fn window_start_never_panics_on_extremes() {
    assert_eq!(window_start(i64::MIN, W), i64::MIN);
    assert_eq!(window_start(i64::MAX, W), i64::MAX - i64::MAX % W);
    assert_eq!(window_start(5, 0), 5);
    assert_eq!(window_start(5, -10), 5);
}

#[test]
fn windows_count_the_goals_and_segments_of_their_spec() {
    use crate::agg::{Dimension, Filter, Goal, SegmentSpec};
    let spec = Arc::new(AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: vec![Dimension::Type],
            top_n: 5,
        },
        goals: vec![Goal::parse("signup").expect("goal")],
    });
    let mut pw = PartitionWindows::new(cfg()).with_spec(spec.clone());
    let mut signup = ev(BASE + 1, "a");
    signup.kind = "signup".into();
    pw.on_event(&signup).expect("on time");
    pw.on_event(&ev(BASE + 2, "b")).expect("on time");
    let w = pw.take_dirty().remove(0).1;
    assert_eq!(w.goals["signup"].completions, 1);
    let f = Filter::parse("type:signup").expect("filter");
    assert_eq!(w.segment(&f).map(|a| a.events), Some(1));
    // A restored state counts with the spec it is given.
    let restored = PartitionWindows::restore(cfg(), None, vec![]).with_spec(spec);
    assert_eq!(restored.spec().goals.len(), 1);
}

#[test]
fn late_detection_uses_the_watermark_before_the_event() {
    let mut pw = PartitionWindows::new(cfg());
    assert_eq!(pw.watermark(), None);
    let far = BASE + 3 * W;
    pw.on_event(&ev(BASE, "a")).unwrap();
    // This event moves the watermark past BASE's window, but is accepted
    // because the check uses the old watermark (BASE - 5s).
    assert_eq!(pw.on_event(&ev(far, "b")), Ok(far));
    assert_eq!(pw.watermark(), Some(far - 5_000));
    // Now BASE's window [BASE, BASE+W) is closed.
    assert_eq!(
        pw.on_event(&ev(BASE + 1, "c")),
        Err(Late {
            window_start: BASE,
            watermark: far - 5_000
        })
    );
    // A late event does not move max_event_ts.
    assert_eq!(pw.max_event_ts(), Some(far));
}

#[test]
fn window_closes_exactly_when_end_reaches_the_watermark() {
    let mut pw = PartitionWindows::new(cfg());
    pw.on_event(&ev(BASE + W + 4_999, "a")).unwrap(); // wm = BASE + W - 1
    assert!(pw.on_event(&ev(BASE, "b")).is_ok());
    pw.on_event(&ev(BASE + W + 5_000, "a")).unwrap(); // wm = BASE + W
    assert!(pw.on_event(&ev(BASE + W - 1, "b")).is_err());
    assert!(pw.on_event(&ev(BASE + W, "b")).is_ok());
}

#[test]
fn out_of_order_events_within_lateness_are_accepted() {
    let mut pw = PartitionWindows::new(cfg());
    pw.on_event(&ev(BASE + W + 3_000, "a")).unwrap();
    // 4 s back, previous window still open (wm = BASE + W - 2000)
    assert_eq!(pw.on_event(&ev(BASE + W - 1_000, "b")), Ok(BASE));
    assert_eq!(pw.on_event(&ev(BASE + W + 1_000, "c")), Ok(BASE + W));
    assert_eq!(pw.max_event_ts(), Some(BASE + W + 3_000));
    let open: Vec<_> = pw.open_windows().map(|(s, a)| (s, a.events)).collect();
    assert_eq!(open, vec![(BASE, 1), (BASE + W, 2)]);
}

#[test]
fn take_dirty_returns_changed_windows_oldest_first_and_clears() {
    let mut pw = PartitionWindows::new(cfg());
    pw.on_event(&ev(BASE + W + 100, "a")).unwrap();
    pw.on_event(&ev(BASE + 100, "b")).unwrap();
    assert!(pw.is_dirty());
    let d = pw.take_dirty();
    assert_eq!(
        d.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![BASE, BASE + W]
    );
    assert!(!pw.is_dirty());
    assert!(pw.take_dirty().is_empty());
    pw.on_event(&ev(BASE + W + 200, "c")).unwrap();
    let d = pw.take_dirty();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, BASE + W);
    assert_eq!(d[0].1.events, 2);
}

#[test]
fn take_dirty_evicts_closed_windows_after_reporting_them() {
    let mut pw = PartitionWindows::new(cfg());
    pw.on_event(&ev(BASE + 100, "a")).unwrap();
    pw.take_dirty();
    pw.on_event(&ev(BASE + 200, "b")).unwrap();
    // closes BASE's window (wm = BASE + 2W + 100 - 5000 >= BASE + W)
    pw.on_event(&ev(BASE + 2 * W + 100, "c")).unwrap();
    let d = pw.take_dirty();
    // the final state of the closing window is still reported once
    assert_eq!(
        d.iter().map(|(s, a)| (*s, a.events)).collect::<Vec<_>>(),
        vec![(BASE, 2), (BASE + 2 * W, 1)]
    );
    let open: Vec<i64> = pw.open_windows().map(|(s, _)| s).collect();
    assert_eq!(open, vec![BASE + 2 * W]);
    // and it never changes again
    assert!(pw.on_event(&ev(BASE + 300, "d")).is_err());
    assert!(pw.take_dirty().is_empty());
}

#[test]
fn restore_round_trips_open_state_and_drops_closed_windows() {
    let mut pw = PartitionWindows::new(cfg());
    for (i, ts) in [BASE + 100, BASE + W + 100, BASE + W + 3_000, BASE + 50]
        .into_iter()
        .enumerate()
    {
        pw.on_event(&ev(ts, &format!("v{i}"))).unwrap();
    }
    pw.take_dirty();
    let saved: Vec<(i64, Aggregate)> = pw.open_windows().map(|(s, a)| (s, a.clone())).collect();
    let mut restored = PartitionWindows::restore(cfg(), pw.max_event_ts(), saved.clone());
    assert_eq!(restored.max_event_ts(), pw.max_event_ts());
    assert_eq!(restored.watermark(), pw.watermark());
    assert!(!restored.is_dirty());
    let again: Vec<(i64, Aggregate)> = restored
        .open_windows()
        .map(|(s, a)| (s, a.clone()))
        .collect();
    assert_eq!(again, saved);
    // both continue identically
    let next = ev(BASE + W + 8_000, "z");
    assert_eq!(pw.on_event(&next), restored.on_event(&next));
    assert_eq!(pw.take_dirty(), restored.take_dirty());

    // windows already closed under the restored watermark are dropped
    let mut stale = Aggregate::new();
    stale.add(&ev(BASE - W, "old"));
    let r = PartitionWindows::restore(
        cfg(),
        Some(BASE + W),
        vec![(BASE - W, stale), (BASE, Aggregate::new())],
    );
    let open: Vec<i64> = r.open_windows().map(|(s, _)| s).collect();
    assert_eq!(open, vec![BASE]);
}

#[test]
fn accepts_and_counts_like_a_plain_recomputation() {
    // Event times wander back and forth; some fall far enough behind to be late.
    let events: Vec<Event> = (0..500i64)
        .map(|i| ev(BASE + i * 97 - (i % 7) * 3_000, &format!("v{}", i % 13)))
        .collect();
    let mut pw = PartitionWindows::new(cfg());
    let mut results = Vec::new();
    let mut reported: BTreeMap<i64, u64> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        results.push(pw.on_event(e));
        if i % 50 == 0 {
            reported.extend(pw.take_dirty().into_iter().map(|(s, a)| (s, a.events)));
        }
    }
    reported.extend(pw.take_dirty().into_iter().map(|(s, a)| (s, a.events)));

    // The rules written out plainly: late when the event's window ended at or before
    // (max accepted time - lateness); a late event moves nothing.
    let mut max_ts: Option<i64> = None;
    let mut expected = Vec::new();
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for e in &events {
        let start = e.ts - e.ts.rem_euclid(W);
        match max_ts.map(|m| m - 5_000) {
            Some(wm) if start + W <= wm => expected.push(Err(Late {
                window_start: start,
                watermark: wm,
            })),
            _ => {
                expected.push(Ok(start));
                *counts.entry(start).or_default() += 1;
                max_ts = Some(max_ts.map_or(e.ts, |m| m.max(e.ts)));
            }
        }
    }
    assert_eq!(results, expected);
    assert!(
        results.iter().any(Result::is_err),
        "the input has late events"
    );
    assert_eq!(
        reported, counts,
        "the last report of each window is its count"
    );
}

#[test]
fn global_watermark_is_the_min_over_active_partitions() {
    assert_eq!(
        global_watermark([(true, Some(25_000)), (true, Some(12_000))]),
        Some(12_000)
    );
    assert_eq!(
        global_watermark([(true, Some(25_000)), (false, Some(3_000)), (false, None)]),
        Some(25_000),
        "inactive partitions do not hold it back"
    );
    assert_eq!(
        global_watermark([(true, Some(25_000)), (true, None)]),
        None,
        "an active partition without an event holds everything back"
    );
    assert_eq!(
        global_watermark([(false, Some(50_000)), (false, Some(20_000)), (false, None)]),
        Some(50_000),
        "all idle: the max"
    );
    assert_eq!(global_watermark([(false, None)]), None);
    assert_eq!(global_watermark(std::iter::empty()), None);
}

#[test]
fn window_state_is_final_once_closed_and_revised_only_then() {
    assert_eq!(window_state(0, W, Some(W), false), WindowState::Final);
    assert_eq!(window_state(0, W, Some(W - 1), false), WindowState::Live);
    assert_eq!(window_state(0, W, Some(W), true), WindowState::Revised);
    assert_eq!(
        window_state(0, W, Some(W - 1), true),
        WindowState::Live,
        "an open window is live whatever was written"
    );
    assert_eq!(window_state(0, W, None, true), WindowState::Live);
    assert_eq!(
        window_state(BASE, W, Some(BASE + 3 * W), false),
        WindowState::Final
    );
    assert!(is_closed(i64::MAX - 1, W, i64::MAX), "the end saturates");
    assert!(!is_closed(i64::MAX - 1, W, i64::MAX - 1));
}

#[test]
fn final_windows_never_go_back_to_live() {
    assert_eq!(final_up_to(None, None), None);
    assert_eq!(final_up_to(None, Some(12_000)), Some(12_000));
    assert_eq!(final_up_to(Some(12_000), None), Some(12_000));
    assert_eq!(final_up_to(Some(12_000), Some(30_000)), Some(30_000));
    // A partition wakes up with an older watermark: the global one goes back ...
    let fin = final_up_to(Some(30_000), global_watermark([(true, Some(5_000))]));
    // ... but what was final stays final.
    assert_eq!(fin, Some(30_000));
    assert_eq!(window_state(0, W, fin, false), WindowState::Final);
    assert_eq!(window_state(0, W, fin, true), WindowState::Revised);
    assert_eq!(window_state(30_000, W, fin, false), WindowState::Live);
}

#[test]
fn closed_windows_pop_oldest_first_with_whether_they_changed() {
    let mut pw = PartitionWindows::new(cfg());
    assert!(pw.pop_closed().is_none(), "no watermark yet");
    pw.on_event(&ev(BASE, "a")).expect("on time");
    pw.on_event(&ev(BASE + W, "b")).expect("on time");
    // Written at a checkpoint: clean, still open.
    assert_eq!(pw.take_dirty().len(), 2);
    pw.on_event(&ev(BASE + W + 1, "c")).expect("on time");
    assert!(pw.pop_closed().is_none(), "the oldest is open");
    // The watermark passes both: the clean one first, then the changed one.
    pw.on_event(&ev(BASE + 3 * W + 5_000, "d"))
        .expect("on time");
    let (s, a, dirty) = pw.pop_closed().expect("first");
    assert_eq!((s, a.events, dirty), (BASE, 1, false));
    let (s, a, dirty) = pw.pop_closed().expect("second");
    assert_eq!((s, a.events, dirty), (BASE + W, 2, true));
    assert!(pw.pop_closed().is_none(), "the newest is open");
    // What is popped is gone: the next checkpoint has the open window only.
    let rows = pw.take_dirty();
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![BASE + 3 * W]
    );
}
