//! Tests of the rows' sizes (`store::sizes`).

use pulseboard_model::agg::Aggregate;
use pulseboard_model::event::Event;

use crate::store::Store;

#[test]
fn every_row_is_counted_once_under_its_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let mut agg = Aggregate::new();
    agg.add(&Event {
        props: Vec::new(),
        site: None,
        ts: 0,
        kind: "pageview".into(),
        visitor: "v-1".into(),
        session: None,
        url: "/".into(),
        referrer: None,
        country: None,
        device: None,
    });
    let hour = 3_600_000;
    let rows: Vec<(i64, Aggregate)> = (0..6).map(|i| (i * 10_000, agg.clone())).collect();
    store.merge_windows("clicks", 0, &rows).expect("windows");
    store
        .merge_windows("clicks", 0, &[(hour, agg.clone())])
        .expect("window");
    // The first minute's windows become one minute bucket, and that an hour bucket.
    let before = store.row_sizes().expect("sizes");
    assert_eq!(before.windows.len(), 7);
    let window_bytes = before.windows[0].1;
    // Key: start (8), topic length (2) and name, partition (4).
    let key = 8 + 2 + "clicks".len() + 4;
    assert_eq!(window_bytes, (key + agg.to_bytes().len()) as u64);
    store
        .roll_up_windows(60_000, |_, _| 60_000, 100)
        .expect("minutes");
    let minutes = store.row_sizes().expect("sizes");
    assert_eq!(minutes.windows, vec![(hour, window_bytes)]);
    assert_eq!(minutes.minutes.len(), 1);
    assert!(minutes.hours.is_empty());
    store.roll_up_minutes(hour, 100).expect("hours");
    let hours = store.row_sizes().expect("sizes");
    assert!(hours.minutes.is_empty());
    assert_eq!(hours.hours.len(), 1);
    assert_eq!(hours.hours[0].0, 0);
    assert!(hours.other_bytes > 0, "meta at least");
    assert_eq!(
        hours.total(),
        window_bytes + hours.hours[0].1 + hours.other_bytes
    );
}
