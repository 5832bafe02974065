//! Where a newly assigned partition starts: this store's offset, or the group's when
//! another instance read further.

use rdkafka::{Offset, TopicPartitionList};

use crate::ingest::client::committed_position;
use crate::store::Store;

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    /// Never seen by this store or the group: the log start.
    Beginning,
    /// The next offset stored in sled (the source of truth for partitions we owned last).
    Stored(i64),
    /// Another instance of the group owned the partition after us (or we never did): its
    /// committed offset, and the max event time it had folded (from the commit metadata).
    HandedOver {
        offset: i64,
        max_event_ts: Option<i64>,
    },
}

impl StartPoint {
    /// Our store's offset unless the group committed further: then another instance read
    /// (and stored, in its own store) the messages in between, and reading them again here
    /// would count them twice across the two stores.
    pub fn choose(stored: Option<i64>, committed: Option<(i64, Option<i64>)>) -> Self {
        match committed.filter(|(c, _)| stored.is_none_or(|s| *c > s)) {
            Some((offset, max_event_ts)) => StartPoint::HandedOver {
                offset,
                max_event_ts,
            },
            None => stored.map_or(StartPoint::Beginning, StartPoint::Stored),
        }
    }

    /// The offset reading starts at (`None`: the log start).
    pub(super) fn stored(self) -> Option<i64> {
        match self {
            StartPoint::Beginning => None,
            StartPoint::Stored(o) | StartPoint::HandedOver { offset: o, .. } => Some(o),
        }
    }

    pub(super) fn offset(self) -> Offset {
        match self {
            StartPoint::Beginning => Offset::Beginning,
            StartPoint::Stored(o) | StartPoint::HandedOver { offset: o, .. } => Offset::Offset(o),
        }
    }
}

/// Where each of `parts` starts ([`StartPoint::choose`]): this store's offset, unless the
/// group's `committed` offsets (when asked: not with a state topic) are further. A store
/// that cannot be read counts as empty here; the partition's task meets the same error on
/// restore and stops ingest with it.
pub fn start_points(
    store: &Store,
    parts: &[(String, i32)],
    committed: Option<&TopicPartitionList>,
) -> Vec<StartPoint> {
    parts
        .iter()
        .map(|(topic, partition)| {
            let stored = match store.partition(topic, *partition) {
                Ok(cp) => cp.map(|cp| cp.next_offset),
                Err(e) => {
                    tracing::error!(topic, partition, error = %e, "cannot read stored offset");
                    None
                }
            };
            let group = committed
                .and_then(|c| committed_position(c, topic, *partition))
                .map(|c| (c.offset, c.max_event_ts));
            StartPoint::choose(stored, group)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PartitionCheckpoint, PartitionWrite};

    #[tokio::test]
    async fn an_assigned_partition_starts_where_the_store_or_the_group_got_furthest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 10_000).expect("store");
        let stored = |partition, next_offset| PartitionWrite {
            topic: "clicks".into(),
            partition,
            checkpoint: PartitionCheckpoint {
                next_offset,
                seq: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        store
            .write(&[stored(0, 7), stored(3, 10)])
            .await
            .expect("write");
        let mut group = TopicPartitionList::new();
        for (p, o) in [(0, 9), (1, 4), (3, 3)] {
            group
                .add_partition_offset("clicks", p, Offset::Offset(o))
                .expect("offset");
        }
        if let Some(mut e) = group.find_partition("clicks", 0) {
            e.set_metadata("max_event_ts=5");
        }
        let parts: Vec<(String, i32)> = (0..4).map(|p| ("clicks".to_owned(), p)).collect();
        assert_eq!(
            start_points(&store, &parts, Some(&group)),
            vec![
                StartPoint::HandedOver {
                    offset: 9,
                    max_event_ts: Some(5)
                },
                StartPoint::HandedOver {
                    offset: 4,
                    max_event_ts: None
                },
                StartPoint::Beginning,
                StartPoint::Stored(10),
            ]
        );
        // With a state topic the group is not asked here: the store alone.
        assert_eq!(
            start_points(&store, &parts, None),
            vec![
                StartPoint::Stored(7),
                StartPoint::Beginning,
                StartPoint::Beginning,
                StartPoint::Stored(10),
            ]
        );
    }

    #[test]
    fn start_point_is_the_store_unless_the_group_committed_further() {
        assert_eq!(StartPoint::choose(None, None), StartPoint::Beginning);
        assert_eq!(StartPoint::choose(Some(7), None), StartPoint::Stored(7));
        assert_eq!(
            StartPoint::choose(Some(7), Some((7, Some(1)))),
            StartPoint::Stored(7)
        );
        assert_eq!(
            StartPoint::choose(Some(7), Some((3, None))),
            StartPoint::Stored(7)
        );
        assert_eq!(
            StartPoint::choose(Some(7), Some((9, Some(5)))),
            StartPoint::HandedOver {
                offset: 9,
                max_event_ts: Some(5)
            }
        );
        assert_eq!(
            StartPoint::choose(None, Some((4, None))),
            StartPoint::HandedOver {
                offset: 4,
                max_event_ts: None
            }
        );
    }
}
