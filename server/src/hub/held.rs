//! What the hub holds of one partition's window.
//!
//! Contract:
//! - A closed window's row is held as its stored bytes (the checkpoint's own, shared; or
//!   the store's, or the state topic's): its figures and segment tables are decoded from
//!   them when a view, a range or a filtered view asks ([`Held::figures`], [`Held::with`]).
//!   A closed window changes rarely (its row comes once, its state twice), and its bytes
//!   are a twentieth of its decoded aggregate.
//! - An open window (a partition's live figures, with the segment tables of its last
//!   checkpoint) is held whole: it changes every few milliseconds and has no row yet; with
//!   it, that checkpoint's row (stored bytes). A filtered read ([`Keep::Dimension`]) of an
//!   open window gets the checkpoint's row: its segment tables and its counts of the
//!   dimension are of the same instant, so a filtered figure says "incomplete" only when
//!   its value really fell into "other" (live counts against tables a checkpoint older
//!   would say so of every value that grew since). It lags the live figures by at most a
//!   checkpoint. So does a read of its sites ([`Keep::Site`], [`Keep::SiteDimension`]):
//!   the live figures carry no sites, which would be copied at every hand-over; a read of
//!   the figures with the sites listed ([`Keep::Sites`]: a summary) gets the live figures and
//!   the checkpoint's sites.
//! - What a reader gets is what it would have got from the aggregate itself.

use std::borrow::Cow;
use std::sync::Arc;

use pulseboard_model::agg::{AggError, Aggregate, Keep};

use crate::store::row::{self, Row};

/// One partition's window in the hub (cheap to clone: a handle).
#[derive(Debug, Clone)]
pub(crate) enum Held {
    /// An open window's aggregate: its live figures, and segment tables; and its last
    /// checkpoint's row, for filtered reads.
    Open(Arc<Aggregate>, Option<Arc<[u8]>>),
    /// A closed window's stored row.
    Closed(Arc<[u8]>),
}

impl Held {
    /// A row read back as stored bytes (the store, the state topic), checked to decode.
    pub(crate) fn from_stored(stored: Arc<[u8]>) -> Result<Held, AggError> {
        row::decode(&stored, Keep::Figures)?;
        Ok(Held::Closed(stored))
    }

    /// The figures (with an open window's segment tables).
    pub(crate) fn figures(&self) -> Cow<'_, Aggregate> {
        self.with(Keep::Figures)
    }

    /// The aggregate with the segment tables `keep` says (an open window's has them all). A
    /// row that does not decode, which was checked when it came, is logged and read empty.
    pub(crate) fn with(&self, keep: Keep) -> Cow<'_, Aggregate> {
        if let (Held::Open(live, Some(row)), Keep::Sites) = (self, keep) {
            // The whole traffic's figures live, the sites as the last checkpoint has them (a
            // sole site's as a copy of that checkpoint's figures: the live ones may hold
            // another site's events since).
            let mut agg = (**live).clone();
            match row::decode(row, Keep::Sites) {
                Ok(r) => agg.sites = Arc::new(r.sites_detached()),
                Err(e) => tracing::error!(error = %e, "cannot decode a held window"),
            }
            return Cow::Owned(agg);
        }
        let bytes = match (self, keep) {
            // Segment tables and sites are the checkpoint's (see the module docs).
            (
                Held::Open(_, Some(row)),
                Keep::Dimension(_)
                | Keep::SiteDimension(_)
                | Keep::DimensionAndSites(_)
                | Keep::Site(..),
            ) => row,
            (Held::Open(agg, _), _) => return Cow::Borrowed(agg),
            (Held::Closed(bytes), _) => bytes,
        };
        match row::decode(bytes, keep) {
            Ok(agg) => Cow::Owned(agg),
            Err(e) => {
                tracing::error!(error = %e, "cannot decode a held window");
                Cow::Owned(Aggregate::new())
            }
        }
    }

    /// An open window's live figures (with segment tables) and its last checkpoint's row.
    pub(crate) fn open(live: Aggregate, checkpoint: Option<Arc<[u8]>>) -> Held {
        Held::Open(Arc::new(live), checkpoint)
    }

    /// Whether `other` holds the same aggregate (by stored bytes when both have them).
    pub(crate) fn same_as(&self, other: &Held) -> bool {
        match (self, other) {
            (Held::Closed(a), Held::Closed(b)) => a == b,
            _ => *self.with(Keep::All) == *other.with(Keep::All),
        }
    }
}

impl From<Arc<Aggregate>> for Held {
    /// An open window's aggregate, held whole.
    fn from(agg: Arc<Aggregate>) -> Held {
        Held::Open(agg, None)
    }
}

impl From<Aggregate> for Held {
    fn from(agg: Aggregate) -> Held {
        Held::Open(Arc::new(agg), None)
    }
}

impl From<&Row> for Held {
    /// A checkpoint's row: its bytes, shared.
    fn from(r: &Row) -> Held {
        Held::Closed(r.stored.clone())
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
    fn a_closed_row_is_held_as_bytes_and_decodes_as_the_aggregate_was() {
        let spec = AggSpec {
            max_sites: 0,
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
        assert!(matches!(held, Held::Closed(_)), "bytes only");
        assert!(
            held.figures().segments.is_empty(),
            "no tables decoded for figures"
        );
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

    #[test]
    fn a_filtered_read_of_an_open_window_is_of_its_checkpoint_so_growth_is_not_incompleteness() {
        use pulseboard_model::agg::{Coverage, Filter};
        use pulseboard_model::event::Event;
        let spec = AggSpec {
            max_sites: 0,
            segments: SegmentSpec {
                dimensions: vec![Dimension::Country],
                top_n: 10,
            },
            goals: Vec::new(),
        };
        let de = |i: u64| Event {
            ts: 0,
            kind: "pageview".into(),
            visitor: format!("v{i}"),
            url: "/".into(),
            country: Some("DE".into()),
            ..Event::default()
        };
        // The checkpoint saw 2 DE events; live, 3 more came (the tables are the
        // checkpoint's until the next one).
        let mut checkpoint = Aggregate::new();
        for i in 0..2 {
            checkpoint.add_with(&de(i), &spec);
        }
        let mut live = checkpoint.clone();
        for i in 2..5 {
            live.add_with(&de(i), &spec);
        }
        live.segments = checkpoint.segments.clone();
        let filter = Filter::parse("country:DE").expect("filter");
        let coverage = |held: &Held| {
            let (mut got, mut cov) = (Aggregate::new(), Coverage::default());
            held.with(Keep::Dimension(Dimension::Country))
                .fold_segment(&filter, &mut got, &mut cov);
            (got.events, cov)
        };
        // Live counts against a checkpoint's tables: 2 of 5, "incomplete", though DE never
        // fell into "other" (what the dashboard said before).
        let (events, cov) = coverage(&Held::open(live.clone(), None));
        assert_eq!((events, cov.complete()), (2, false));
        // With the checkpoint's row: its tables and its counts, of one instant: complete.
        let row = Row::new(0, checkpoint);
        let held = Held::open(live.clone(), Some(row.stored.clone()));
        let (events, cov) = coverage(&held);
        assert_eq!((events, cov.complete(), cov.incomplete_parts), (2, true, 0));
        // The figures are the live ones.
        assert_eq!(held.figures().events, 5);
    }

    #[test]
    fn a_summary_of_an_open_window_has_live_figures_and_the_checkpoints_sites() {
        use pulseboard_model::event::Event;
        let spec = AggSpec {
            max_sites: 10,
            ..AggSpec::NONE
        };
        let ev = |i: u64, site: &str| Event {
            ts: 0,
            kind: "pageview".into(),
            visitor: format!("v{i}"),
            url: "/".into(),
            site: Some(site.into()),
            ..Event::default()
        };
        // The checkpoint saw 2 of the shop's; live, 3 of the blog's came since.
        let mut checkpoint = Aggregate::new();
        for i in 0..2 {
            checkpoint.add_with(&ev(i, "shop.example"), &spec);
        }
        let mut live = checkpoint.clone();
        for i in 2..5 {
            live.add_with(&ev(i, "blog.example"), &spec);
        }
        let held = Held::open(live.figures_only(), Some(Row::new(0, checkpoint).stored));
        let read = held.with(Keep::Sites);
        assert_eq!(read.events, 5, "the whole traffic live");
        // The shop as the checkpoint counted it, not the live figures of both sites.
        assert_eq!(read.site("shop.example").map(|a| a.events), Some(2));
        assert_eq!(read.site("blog.example"), None, "not yet checkpointed");
    }
}
