//! Where a newly assigned partition starts: this store's offset, or the group's when
//! another instance read further.

use rdkafka::Offset;

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

#[cfg(test)]
mod tests {
    use super::*;

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
