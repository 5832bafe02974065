//! Reads of a range over the store and the hub.
//!
//! Contract:
//! - Readers of a range ([`Hub::merged_range`]) get the store's rows with each partition's
//!   row replaced by the hub's fresher copy where it holds one: per partition, never one
//!   source instead of the other. The work is done outside the hub's lock.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use pulseboard_model::agg::{Aggregate, Keep};

use super::{Hub, PartKey, Parts};
use crate::store::{Store, StoreError};

impl Hub {
    /// Windows with start in `[from, to)`, merged across partitions: the store's rows, with
    /// each partition's row replaced by the hub's fresher copy where the hub holds one.
    /// Their figures only: the segment tables are not merged.
    pub fn merged_range(
        &self,
        store: &Store,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<i64, Aggregate>, StoreError> {
        self.merged_range_with(store, from, to, Keep::Figures, |t: &mut Aggregate, a| {
            t.merge_figures(a)
        })
    }

    /// [`Hub::merged_range`] folding each partition's row of a window into a `T` with
    /// `fold`, in partition order; rows read from the store are decoded with the segment
    /// tables `keep` says.
    ///
    /// The hub's handles are taken under its lock and folded outside it; the store's rows
    /// of the partitions the hub holds are not decoded (a closed row the hub holds decodes
    /// the table `keep` asks for from its stored bytes).
    pub fn merged_range_with<T: Default>(
        &self,
        store: &Store,
        from: i64,
        to: i64,
        keep: Keep,
        mut fold: impl FnMut(&mut T, &Aggregate),
    ) -> Result<BTreeMap<i64, T>, StoreError> {
        let held: BTreeMap<i64, Parts> = {
            let g = self.lock();
            g.windows
                .range(from..to)
                .map(|(s, p)| (*s, p.clone()))
                .collect()
        };
        let is_held = |start: i64, topic: &str, partition: i32| {
            held.get(&start).is_some_and(|h| {
                h.keys()
                    .any(|(t, p)| t.as_str() == topic && *p == partition)
            })
        };
        let mut stored: BTreeMap<i64, Vec<(PartKey, Aggregate)>> = BTreeMap::new();
        for row in store.windows_in_where(from, to, keep, |s, t, p| !is_held(s, t, p))? {
            stored
                .entry(row.start)
                .or_default()
                .push(((row.topic, row.partition), row.agg));
        }
        let starts: BTreeSet<i64> = stored.keys().chain(held.keys()).copied().collect();
        let mut out = BTreeMap::new();
        for start in starts {
            let mut rows: Vec<(&PartKey, Cow<'_, Aggregate>)> = stored
                .get(&start)
                .into_iter()
                .flatten()
                .map(|(k, a)| (k, Cow::Borrowed(a)))
                .chain(
                    held.get(&start)
                        .into_iter()
                        .flat_map(|h| h.iter().map(|(k, a)| (k, a.with(keep)))),
                )
                .collect();
            // Partition order, whatever the source.
            rows.sort_by(|a, b| a.0.cmp(b.0));
            let mut total = T::default();
            for (_, a) in &rows {
                fold(&mut total, a);
            }
            out.insert(start, total);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::{agg, decode, store_hub, test_hub};
    use pulseboard_model::proto::ServerMsg;

    #[tokio::test]
    async fn a_window_is_never_shown_with_partitions_missing_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("open");
        // Four partitions stored window 0 before the restart: 1 + 2 + 3 + 4 events.
        for p in 0..4 {
            let write = crate::store::PartitionWrite {
                topic: "t".into(),
                partition: p,
                rows: vec![crate::store::row::Row::new(0, agg(p as u64 + 1))],
                ..Default::default()
            };
            store.write(&[write]).await.expect("checkpoint");
        }
        // After the restart the hub was not seeded (say the window was older than its
        // range); partition 0 alone hands over a fresher copy of window 0: 5 events.
        let h = store_hub(&store);
        h.update("t", 0, vec![(0, agg(5))]);
        let merged = h.merged_range(&store, 0, 10_000).expect("range");
        assert_eq!(
            merged[&0].events,
            5 + 2 + 3 + 4,
            "partition 0 fresher, the others stored"
        );
        match decode(&h.snapshot().1) {
            ServerMsg::Snapshot { windows, .. } => assert_eq!(windows[0].figures.events, 14),
            m => panic!("unexpected {m:?}"),
        }
        // Without the hub's copy a window is the store's alone.
        let fresh = test_hub(|_| {});
        assert_eq!(
            fresh.merged_range(&store, 0, 10_000).expect("range")[&0].events,
            1 + 2 + 3 + 4
        );
    }
}
