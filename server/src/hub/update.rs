//! What the partitions hand over, and what the hub holds of it.
//!
//! Contract:
//! - Partition tasks [`Hub::update`] the windows they changed (per-partition [`Held`]s: a
//!   committed row as the checkpoint's own stored bytes, an open window's live figures
//!   with the segment tables of its last checkpoint). The hub keeps the windows of the last
//!   [`HubConfig::horizon_ms`] in memory, seeded from the store at start (as stored
//!   bytes), so it can merge any recent window across partitions.
//!   A window the hub does not hold yet is completed from the store when a partition first
//!   updates it, so a merged window never lacks a partition that has data for it.
//! - The windows held in memory are those of the last `horizon_ms` before the newest window,
//!   but never before `now - horizon_ms`: a window stamped in the future cannot push the real
//!   recent windows out.
//!
//! [`HubConfig::horizon_ms`]: super::HubConfig::horizon_ms

use std::collections::HashMap;
use std::sync::Arc;

use super::{Held, Hub, PartKey};
use crate::store::{Store, StoreError};

impl Hub {
    /// Seed the recent windows from the store: the horizon before now, or before the
    /// newest stored window when the data is older than that.
    pub fn seed(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        let newest = store.newest_window()?.unwrap_or(now_ms).min(now_ms);
        let rows = store.window_rows_in(newest - self.cfg.horizon_ms, i64::MAX)?;
        let mut g = self.lock();
        for (start, topic, partition, stored) in rows {
            let held = Held::from_stored(stored).map_err(StoreError::from)?;
            Arc::make_mut(g.windows.entry(start).or_default()).insert((topic, partition), held);
        }
        Ok(())
    }

    /// A partition's current aggregates of the windows it changed (see [`Held`]: handles,
    /// kept as given; nothing is copied).
    pub(crate) fn update<A: Into<Held>>(
        &self,
        topic: &str,
        partition: i32,
        windows: Vec<(i64, A)>,
    ) {
        self.update_at(topic, partition, windows, crate::now_ms());
    }

    /// [`Hub::update`] at wall-clock time `now_ms`: the horizon is counted back from the
    /// newest window, or from `now_ms` when the newest window lies in the future.
    pub(crate) fn update_at<A: Into<Held>>(
        &self,
        topic: &str,
        partition: i32,
        windows: Vec<(i64, A)>,
        now_ms: i64,
    ) {
        if windows.is_empty() {
            return;
        }
        let mut g = self.lock();
        let held = g.windows.keys().next_back().copied().unwrap_or(i64::MIN);
        let newest = held.max(windows.iter().map(|w| w.0).max().unwrap_or(i64::MIN));
        let floor = newest.min(now_ms).saturating_sub(self.cfg.horizon_ms);
        for (start, agg) in windows {
            if start < floor {
                continue;
            }
            let parts = g
                .windows
                .entry(start)
                .or_insert_with(|| Arc::new(self.stored_parts(start)));
            // Copies the map of handles only when a snapshot being built still holds it.
            Arc::make_mut(parts).insert((topic.to_owned(), partition), agg.into());
            g.dirty.insert(start);
        }
        // Keep memory bounded: drop what fell out of the horizon.
        let keep = g.windows.split_off(&floor);
        g.windows = keep;
        let keep = g.states.split_off(&floor);
        g.states = keep;
        let keep = g.views.split_off(&floor);
        g.views = keep;
        drop(g);
        self.changed.notify_one();
    }

    /// Replace what the hub holds of one partition by the store's rows: after this instance
    /// stopped reading it (its last figures may not have been committed; the store holds
    /// what was, by this instance or the next owner).
    pub fn reload_partition(&self, topic: &str, partition: i32) {
        let Some(store) = &self.store else {
            return;
        };
        let key: PartKey = (topic.to_owned(), partition);
        let mut g = self.lock();
        let Some(from) = g.windows.keys().next().copied() else {
            return;
        };
        let rows = match store.partition_window_rows_from(topic, partition, from) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(topic, partition, error = %e, "cannot reload a partition's windows from the store");
                return;
            }
        };
        let mut stored: HashMap<i64, Held> = HashMap::new();
        for (start, bytes) in rows {
            match Held::from_stored(bytes) {
                Ok(h) => {
                    stored.insert(start, h);
                }
                Err(e) => {
                    tracing::error!(topic, partition, start, error = %e, "cannot decode a stored window");
                    return;
                }
            }
        }
        let starts: Vec<i64> = g.windows.keys().copied().collect();
        for start in starts {
            let row = stored.remove(&start);
            let Some(parts) = g.windows.get_mut(&start) else {
                continue;
            };
            let held = parts.get(&key).cloned();
            let changed = match (&held, &row) {
                (Some(h), Some(r)) => !h.same_as(r),
                (None, None) => false,
                _ => true,
            };
            if !changed {
                continue;
            }
            let parts = Arc::make_mut(parts);
            match row {
                Some(r) => {
                    parts.insert(key.clone(), r);
                }
                None => {
                    parts.remove(&key);
                }
            }
            g.dirty.insert(start);
        }
        // Windows the hub did not hold yet (written by an earlier run, or another instance).
        for (start, row) in stored {
            let parts = g
                .windows
                .entry(start)
                .or_insert_with(|| Arc::new(self.stored_parts(start)));
            Arc::make_mut(parts).insert(key.clone(), row);
            g.dirty.insert(start);
        }
        drop(g);
        self.changed.notify_one();
    }

    /// The stored rows of one window, by partition (empty without a store or on error: the
    /// partitions then fill it in as they update it).
    fn stored_parts(&self, start: i64) -> HashMap<PartKey, Held> {
        let Some(store) = &self.store else {
            return HashMap::new();
        };
        let rows = store.window_rows_in(start, start + 1).and_then(|rows| {
            rows.into_iter()
                .map(|(_, t, p, bytes)| Ok(((t, p), Held::from_stored(bytes)?)))
                .collect::<Result<HashMap<_, _>, StoreError>>()
        });
        match rows {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(start, error = %e, "cannot read a window from the store");
                HashMap::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::{agg, decode, events_by_start, hub, store_hub};
    use pulseboard_model::agg::Aggregate;
    use pulseboard_model::proto::ServerMsg;

    #[tokio::test]
    async fn reloading_a_partition_shows_what_the_store_got_after_the_hub_loaded_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        let write = |p: i32, rows: Vec<(i64, Aggregate)>| crate::store::PartitionWrite {
            topic: "t".into(),
            partition: p,
            rows: crate::store::row::rows_of(rows),
            ..Default::default()
        };
        store
            .write(&[write(0, vec![(0, agg(1))]), write(1, vec![(0, agg(2))])])
            .await
            .expect("checkpoint");
        let h = store_hub(&store);
        h.update("t", 1, vec![(0, agg(2))]);
        // A checkpoint of partition 0 reaches the store behind the hub's back (an earlier
        // run's, brought by the state topic): window 0 grew, window 10 s is new.
        store
            .write(&[write(0, vec![(0, agg(4)), (10_000, agg(3))])])
            .await
            .expect("checkpoint");
        h.reload_partition("t", 0);
        h.publish_windows();
        match decode(&h.snapshot().1) {
            ServerMsg::Snapshot { windows, .. } => {
                assert_eq!(events_by_start(&windows), vec![(0, 4 + 2), (10_000, 3)])
            }
            m => panic!("unexpected {m:?}"),
        }
    }

    #[test]
    fn memory_is_bounded_by_the_horizon() {
        let h = hub(16);
        let horizon = h.config().horizon_ms;
        for i in 0..1_000 {
            h.update("t", 0, vec![(i * 10_000, agg(1))]);
        }
        let g = h.lock();
        assert!(
            g.windows.len() as i64 <= horizon / 10_000 + 1,
            "{}",
            g.windows.len()
        );
    }

    #[test]
    fn a_window_stamped_in_the_future_does_not_evict_the_recent_windows() {
        let h = hub(16);
        let horizon = h.config().horizon_ms;
        let now = 1_800_000_000_000;
        let recent = now - now % 10_000 - 50_000;
        h.update_at("t", 0, vec![(recent, agg(3))], now);
        // A window far ahead of the wall clock: the horizon still counts back from now.
        let future = now + 10 * horizon;
        h.update_at("t", 1, vec![(future, agg(1))], now);
        h.update_at("t", 0, vec![(recent + 10_000, agg(2))], now);
        let g = h.lock();
        let held: Vec<i64> = g.windows.keys().copied().collect();
        assert_eq!(held, vec![recent, recent + 10_000, future]);
        drop(g);
        // Once the wall clock has moved on, the horizon still bounds memory.
        h.update_at("t", 0, vec![(future, agg(1))], future);
        let g = h.lock();
        assert_eq!(g.windows.keys().copied().collect::<Vec<_>>(), vec![future]);
    }
}
