//! What the hub holds of one partition's window.
//!
//! Contract:
//! - A closed window's row is held as its figures (no segment tables) beside its stored
//!   bytes (the checkpoint's own, shared): the segment tables, most of an aggregate's
//!   memory, are decoded from those bytes when a filtered view asks ([`Held::with`]).
//! - An open window (a partition's live figures, with the segment tables of its last
//!   checkpoint) is held whole: it changes every few milliseconds and has no row yet.
//! - Figures, and a table decoded on demand, are those of the whole aggregate: what a
//!   reader gets is what it would have got from the aggregate itself.

use std::borrow::Cow;
use std::sync::Arc;

use pulseboard_model::agg::{Aggregate, Keep};

use crate::store::row::{self, Row};

/// One partition's window in the hub (cheap to clone: two handles).
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The figures; for an open window, its segment tables too.
    agg: Arc<Aggregate>,
    /// A closed row's stored bytes, its segment tables' source; `None` for an open window.
    stored: Option<Arc<[u8]>>,
}

impl Held {
    /// A row held by its figures and stored bytes.
    pub(crate) fn closed(agg: &Arc<Aggregate>, stored: Arc<[u8]>) -> Held {
        let agg = if agg.segments.is_empty() {
            // Figures only already ([`Row::closed`]): shared.
            agg.clone()
        } else {
            Arc::new(agg.figures_only())
        };
        Held {
            agg,
            stored: Some(stored),
        }
    }

    /// A row read back as stored bytes (the store, the state topic): only its figures are
    /// decoded. An error when the bytes are not a row.
    pub(crate) fn from_stored(stored: Arc<[u8]>) -> Result<Held, pulseboard_model::agg::AggError> {
        let agg = row::decode(&stored, Keep::Figures)?;
        Ok(Held {
            agg: Arc::new(agg),
            stored: Some(stored),
        })
    }

    /// The figures (and an open window's segment tables).
    pub(crate) fn figures(&self) -> &Aggregate {
        &self.agg
    }

    /// The aggregate with the segment tables `keep` says, decoded from the stored bytes for a
    /// closed row (an undecodable row, which the store would have refused, is logged and
    /// read as its figures).
    pub(crate) fn with(&self, keep: Keep) -> Cow<'_, Aggregate> {
        match (&self.stored, keep) {
            (Some(bytes), Keep::All | Keep::Dimension(_)) => match row::decode(bytes, keep) {
                Ok(agg) => Cow::Owned(agg),
                Err(e) => {
                    tracing::error!(error = %e, "cannot decode a held window's segment tables");
                    Cow::Borrowed(&self.agg)
                }
            },
            _ => Cow::Borrowed(&self.agg),
        }
    }

    /// Whether `other` holds the same aggregate (by stored bytes when both have them).
    pub(crate) fn same_as(&self, other: &Held) -> bool {
        match (&self.stored, &other.stored) {
            (Some(a), Some(b)) => a == b,
            _ => *self.with(Keep::All) == *other.with(Keep::All),
        }
    }
}

impl From<Arc<Aggregate>> for Held {
    /// An open window's aggregate, held whole.
    fn from(agg: Arc<Aggregate>) -> Held {
        Held { agg, stored: None }
    }
}

impl From<Aggregate> for Held {
    fn from(agg: Aggregate) -> Held {
        Held::from(Arc::new(agg))
    }
}

impl From<&Row> for Held {
    fn from(r: &Row) -> Held {
        Held::closed(&r.agg, r.stored.clone())
    }
}

impl From<Row> for Held {
    fn from(r: Row) -> Held {
        Held::from(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::{AggSpec, Dimension, SegmentSpec};
    use pulseboard_model::gen::{GenConfig, Generator};

    #[test]
    fn a_closed_row_holds_its_figures_and_decodes_a_table_as_the_aggregate_had_it() {
        let spec = AggSpec {
            segments: SegmentSpec {
                dimensions: Dimension::ALL.to_vec(),
                top_n: 10,
            },
            goals: Vec::new(),
        };
        let mut g = Generator::new(9, GenConfig::default());
        let mut a = Aggregate::new();
        for i in 0..2_000 {
            a.add_with(&g.next_event(1_800_000_000_000 + i), &spec);
        }
        let held = Held::from(Row::new(0, a.clone()));
        assert!(held.figures().segments.is_empty(), "no tables held decoded");
        assert_eq!(*held.figures(), a.figures_only());
        for d in Dimension::ALL {
            let got = held.with(Keep::Dimension(d));
            assert_eq!(got.segments.table(d), a.segments.table(d), "{d:?}");
            let others = Dimension::ALL.into_iter().filter(|o| *o != d);
            assert!(others.into_iter().all(|o| got.segments.table(o).is_none()));
        }
        assert_eq!(*held.with(Keep::All), a);
        assert_eq!(*held.with(Keep::Figures), a.figures_only());
        // An open window is held whole; read back from stored bytes, the same row.
        let open = Held::from(a.clone());
        assert_eq!(*open.with(Keep::Figures), a);
        let again = Held::from_stored(Row::new(0, a.clone()).stored).expect("stored");
        assert!(again.same_as(&held));
        assert!(open.same_as(&held));
    }
}
