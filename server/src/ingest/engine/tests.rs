//! The partition engine's unit tests.

use super::*;
use pulseboard_model::mapping::FieldMapping;

const T0: i64 = 1_000_000_000_000;
const HOUR: i64 = 3_600_000;

impl PartitionEngine {
    /// Prepare and write at once (what the committer does, without Kafka).
    async fn checkpoint(&mut self, store: &Store) -> Result<PartitionWrite, StoreError> {
        let w = self.prepare(store)?.unwrap_or_default();
        store.write(std::slice::from_ref(&w)).await?;
        Ok(w)
    }
}

fn engine(store: &Store) -> PartitionEngine {
    let cfg = EngineConfig {
        windows: WindowConfig {
            width_ms: 10_000,
            lateness_ms: 5_000,
        },
        max_clock_skew_ms: 5 * 60_000,
        revision_horizon_ms: HOUR,
        spec: Arc::default(),
    };
    let decoder = Arc::new(Decoder::new(FieldMapping::new(Default::default(), &[])));
    PartitionEngine::restore(store, "clicks", 0, cfg, decoder).expect("restore")
}

fn ev(ts: i64, visitor: &str) -> String {
    format!(r#"{{"ts":{ts},"type":"pageview","visitor":"{visitor}","url":"/"}}"#)
}

/// Feed `payloads` from offset `first`, with the wall clock at `now`.
fn feed(e: &mut PartitionEngine, first: i64, now: i64, payloads: &[String]) -> Vec<Outcome> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            e.on_record(Record {
                offset: first + i as i64,
                timestamp: Some(now),
                payload: Some(p.as_bytes()),
                now_ms: now,
            })
        })
        .collect()
}

fn stored_events(store: &Store) -> u64 {
    let rows = store.windows_in(i64::MIN, i64::MAX).expect("rows");
    rows.iter().map(|w| w.agg.events).sum()
}

#[tokio::test]
async fn restore_continues_exactly_where_checkpoint_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let now = T0 + 60_000;
    let payloads = [
        ev(T0, "a"),
        ev(T0 + 1_000, "b"),
        "garbage".to_owned(),
        ev(T0 + 30_000, "c"),
        // Late: its window (0-10 s) closed under the watermark (30 s - 5 s); within the
        // revision horizon, so it is still counted, as a revision of that window.
        ev(T0 + 2_000, "d"),
    ];
    let mut e = engine(&store);
    assert_eq!(e.stored_offset(), None);
    let out = feed(&mut e, 0, now, &payloads[..2]);
    assert!(out.iter().all(|o| matches!(o, Outcome::Folded(_))));
    e.checkpoint(&store).await.expect("checkpoint");
    // Records after the checkpoint are lost in a "crash"...
    assert!(matches!(
        feed(&mut e, 2, now, &payloads[2..3])[0],
        Outcome::Dead {
            reason: DeadReason::NotJson,
            ..
        }
    ));
    drop(e);
    // ...and replayed after restore, from the stored offset.
    let mut e = engine(&store);
    assert_eq!(e.stored_offset(), Some(2));
    assert_eq!(feed(&mut e, 1, now, &payloads[1..2])[0], Outcome::Duplicate);
    let out = feed(&mut e, 2, now, &payloads[2..]);
    assert_eq!(out[2], Outcome::Revised(T0));
    let report = e.checkpoint(&store).await.expect("checkpoint");
    assert_eq!(report.revised, vec![T0]);
    assert_eq!(report.checkpoint.seq, 2, "the second checkpoint");
    let cp = store.partition("clicks", 0).expect("read").expect("stored");
    assert_eq!(cp.next_offset, 5);
    assert_eq!(cp.events, 4);
    assert_eq!((cp.late, cp.revised_events), (1, 1));
    assert_eq!(cp.dead_letters.get("not_json"), Some(&1));
    assert_eq!(
        stored_events(&store),
        4,
        "the revision is merged into the stored row"
    );
    let first = store.windows_in(T0, T0 + 1).expect("row");
    assert_eq!(first[0].agg.events, 3, "a, b and the late d");
}

#[tokio::test]
async fn an_event_from_a_wrong_clock_is_dead_lettered_and_moves_no_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut e = engine(&store);
    let now = T0;
    let out = feed(
        &mut e,
        0,
        now,
        &[
            ev(now - 1_000, "a"),
            ev(now + 24 * HOUR, "from-the-future"),
            ev(now - 500, "b"),
            ev(now + 60_000, "a-minute-ahead-is-fine"),
        ],
    );
    assert!(matches!(
        out[1],
        Outcome::Dead {
            reason: DeadReason::Future,
            ..
        }
    ));
    assert!(
        matches!(out[2], Outcome::Folded(_)),
        "the event after it is on time: {:?}",
        out[2]
    );
    assert!(matches!(out[3], Outcome::Folded(_)));
    assert_eq!(e.watermark(), Some(now + 60_000 - 5_000));
}

#[tokio::test]
async fn an_event_beyond_the_revision_horizon_is_too_late() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut e = engine(&store);
    let now = T0 + 3 * HOUR;
    let out = feed(
        &mut e,
        0,
        now,
        &[
            ev(now, "a"),
            ev(now - 2 * HOUR, "old"),
            ev(now - HOUR / 2, "late"),
        ],
    );
    assert!(matches!(
        out[1],
        Outcome::Dead {
            reason: DeadReason::TooLate,
            ..
        }
    ));
    assert!(matches!(out[2], Outcome::Revised(_)));
    assert_eq!(e.checkpoint_state().late, 2);
    assert_eq!(e.checkpoint_state().revised_events, 1);
}

#[tokio::test]
async fn the_offset_reset_target_is_what_the_checkpoint_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut e = engine(&store);
    feed(&mut e, 0, T0, &[ev(T0, "a"), ev(T0 + 1, "b")]);
    e.checkpoint(&store).await.expect("checkpoint");
    // The log was recreated; `latest` restarts at its end, offset 40.
    e.reset_offset(Some(40));
    e.checkpoint(&store).await.expect("checkpoint");
    drop(e);
    // A crash now restarts at 40, not at the old offset 2 nor at the end of a log that
    // has grown since.
    let e = engine(&store);
    assert_eq!(e.stored_offset(), Some(40));
    assert_eq!(e.checkpoint_state().offset_resets, 1);
}

#[tokio::test]
async fn an_undelivered_dead_letter_is_recorded_with_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut e = engine(&store);
    let out = feed(&mut e, 0, T0, &["x".repeat(10)]);
    assert!(matches!(out[0], Outcome::Dead { .. }));
    e.record_undelivered(DeadLetterRecord {
        topic: "clicks".into(),
        partition: 0,
        offset: 0,
        reason: "not_json".into(),
        error: "Message size too large".into(),
        at_ms: T0,
        value_bytes: 10,
        value_head: b"xxxxxxxxxx".to_vec(),
    });
    e.checkpoint(&store).await.expect("checkpoint");
    let kept = store.recorded_dead_letters(10).expect("read");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].offset, 0);
    let cp = store.partition("clicks", 0).expect("read").expect("stored");
    assert_eq!((cp.next_offset, cp.dead_letters_recorded), (1, 1));
}

#[tokio::test]
async fn on_time_and_late_events_of_one_window_between_two_checkpoints_are_all_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut e = engine(&store);
    let out = feed(
        &mut e,
        0,
        T0 + 60_000,
        &[
            ev(T0 + 1_000, "a"),
            // Closes window T0 (watermark T0 + 25 s).
            ev(T0 + 30_000, "b"),
            // Late for T0, in the same checkpoint as its on-time event.
            ev(T0 + 2_000, "c"),
        ],
    );
    assert_eq!(out[2], Outcome::Revised(T0));
    let w = e.checkpoint(&store).await.expect("checkpoint");
    let starts: Vec<i64> = w.rows.iter().map(|r| r.start).collect();
    assert_eq!(starts.iter().filter(|s| **s == T0).count(), 1, "{starts:?}");
    assert_eq!(store.windows_in(T0, T0 + 1).expect("row")[0].agg.events, 2);
    assert_eq!(stored_events(&store), 3);
    assert_eq!(
        e.prepare(&store).expect("prepare").map(|w| w.rows.len()),
        None
    );
}

#[tokio::test]
async fn a_window_leaves_memory_as_it_closes_and_its_row_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut e = engine(&store);
    e.cfg.spec = Arc::new(AggSpec {
        max_sites: 0,
        segments: pulseboard_model::agg::SegmentSpec {
            dimensions: vec![pulseboard_model::agg::Dimension::Type],
            top_n: 10,
        },
        goals: Vec::new(),
    });
    e.windows = PartitionWindows::new(e.cfg.windows).with_spec(e.cfg.spec.clone());
    // A backlog over six windows, read before any checkpoint.
    let events: Vec<String> = (0..60)
        .map(|i| ev(T0 + i * 1_000, &format!("v{i}")))
        .collect();
    feed(&mut e, 0, T0 + HOUR, &events);
    // The watermark (T0 + 54 s) closed the first five: rows, figures only in memory.
    assert_eq!(e.windows.open_windows().count(), 1);
    let starts: Vec<i64> = e.closed.iter().map(|r| r.start).collect();
    assert_eq!(starts, (0..5).map(|i| T0 + i * 10_000).collect::<Vec<_>>());
    assert!(e.closed.iter().all(|r| r.agg.segments.is_empty()));
    // The live path shows their final figures, then the open windows'.
    let live = e.take_live_windows().expect("changed");
    let shown: Vec<(i64, u64)> = live.iter().map(|(s, a)| (*s, a.events)).collect();
    assert_eq!(
        shown,
        (0..6).map(|i| (T0 + i * 10_000, 10)).collect::<Vec<_>>()
    );
    // The checkpoint writes all six; the closed rows' bytes have their segment tables.
    let w = e.checkpoint(&store).await.expect("checkpoint");
    assert_eq!(w.rows.len(), 6);
    let first = &store.windows_in(T0, T0 + 1).expect("row")[0].agg;
    let table = first
        .segments
        .table(pulseboard_model::agg::Dimension::Type)
        .expect("table");
    assert_eq!(table.get("pageview").map(|a| a.events), Some(10));
    assert_eq!(stored_events(&store), 60);
}
