//! Fixtures of the hub's tests (and of the sockets' tests, which run over a hub).

use std::sync::Arc;
use std::time::Duration;

use pulseboard_model::agg::Aggregate;
use pulseboard_model::event::Event;
use pulseboard_model::proto::{ServerMsg, WindowView};

use super::{Hub, HubConfig};
use crate::progress::Progress;
use crate::store::Store;

pub(crate) fn agg(n: u64) -> Aggregate {
    let mut a = Aggregate::new();
    for i in 0..n {
        a.add(&Event {
            props: Vec::new(),
            site: None,
            ts: 0,
            kind: "pageview".into(),
            visitor: format!("v{i}"),
            session: None,
            url: "/".into(),
            referrer: None,
            country: None,
            device: None,
        });
    }
    a
}

/// A hub over a fresh embedded-mode `Progress`, with 10 s windows, tuned by `tune`.
pub(crate) fn test_hub(tune: impl FnOnce(&mut HubConfig)) -> Arc<Hub> {
    let mut cfg = HubConfig::new(10_000);
    tune(&mut cfg);
    Hub::new(cfg, embedded_progress(), None)
}

/// A hub with 10 s windows over `store`.
pub(crate) fn store_hub(store: &Store) -> Arc<Hub> {
    Hub::new(
        HubConfig::new(10_000),
        embedded_progress(),
        Some(store.clone()),
    )
}

/// A fresh embedded-mode `Progress` with 10 s windows.
fn embedded_progress() -> Arc<Progress> {
    Arc::new(Progress::new(
        "embedded".into(),
        true,
        10_000,
        Duration::from_secs(30),
    ))
}

pub(crate) fn hub(backlog: usize) -> Arc<Hub> {
    test_hub(|c| c.backlog = backlog)
}

pub(crate) fn decode(s: &str) -> ServerMsg {
    serde_json::from_str(s).expect("server message")
}

/// Each window's start and events, in order (of whole windows, or of changes that carry
/// the count).
pub(crate) fn events_by_start<W: serde::Serialize>(windows: &[W]) -> Vec<(i64, u64)> {
    windows
        .iter()
        .map(|w| {
            let f = pulseboard_model::proto::patch::fields(w);
            let n = |k: &str| f.get(k).and_then(serde_json::Value::as_i64).unwrap_or(-1);
            (n("start"), n("events") as u64)
        })
        .collect()
}

/// The windows a snapshot carries.
pub(crate) fn snapshot_windows(msg: &ServerMsg) -> &[WindowView] {
    match msg {
        ServerMsg::Snapshot { windows, .. } => windows,
        m => panic!("expected a snapshot, got {m:?}"),
    }
}

/// Change the status (its `annotations_version`), so the next status publish has a change.
pub(crate) fn touch_status(h: &Hub) {
    h.progress.annotations_changed();
}
