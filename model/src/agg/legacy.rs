//! Aggregates of storage format versions 2 and 3, read through mirror types and converted
//! into the current [`Aggregate`].
//!
//! Contract:
//! - Version 3 stored the fields of today's aggregate in the same order (segment tables
//!   last, as nested length-prefixed blobs), and version 2 the fields before sources, goals
//!   and segments; both stored each HyperLogLog in its old serde form, read by
//!   [`LegacyHll`] (see `hll::legacy` for the conversion and what it may under-rank).
//! - Converted, the window's visitors and sessions stay at [`super::HLL_PRECISION`] (old
//!   dense registers map one to one); the sketches of goals and of segment sub-aggregates
//!   are folded down to [`HLL_SUB_PRECISION`], as version 4 keeps them (their estimates
//!   move within that precision's error).
//! - A version-3 table is converted into today's and built by
//!   `SegmentTable::from_parts`, so it passes the same checks as a new one.
//! - Corrupt input is a postcard error, never a panic.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::hll::LegacyHll;
use super::segment::SegmentTable;
use super::{Aggregate, Dimension, GoalCounts, Keep, Segments, TopCounts, HLL_SUB_PRECISION};

/// An [`Aggregate`] as format version 2 stored it.
#[derive(Deserialize)]
pub(super) struct AggregateV2 {
    events: u64,
    by_type: TopCounts,
    visitors: LegacyHll,
    sessions: LegacyHll,
    urls: TopCounts,
    referrers: TopCounts,
    countries: TopCounts,
    devices: TopCounts,
}

/// A [`GoalCounts`] of format version 3.
#[derive(Deserialize)]
struct GoalCountsV3 {
    completions: u64,
    visitors: LegacyHll,
}

/// The figures of an [`Aggregate`] of format version 3 (all but its segment tables):
/// version 2's fields, then the ones version 3 added (postcard writes a nested struct's
/// fields in line, so this is the same layout as the flat one).
#[derive(Deserialize)]
pub(super) struct FiguresV3 {
    v2: AggregateV2,
    sources: TopCounts,
    goals: BTreeMap<String, GoalCountsV3>,
}

/// A dimension as version 3 wrote it (the variant's index, before properties).
#[derive(Deserialize, Clone, Copy)]
enum DimensionV3 {
    Country,
    Device,
    Type,
    Referrer,
}

impl From<DimensionV3> for Dimension {
    fn from(d: DimensionV3) -> Dimension {
        match d {
            DimensionV3::Country => Dimension::Country,
            DimensionV3::Device => Dimension::Device,
            DimensionV3::Type => Dimension::Type,
            DimensionV3::Referrer => Dimension::Referrer,
        }
    }
}

/// A segment's sub-aggregate of format version 3: its figures and its (empty) tables.
#[derive(Deserialize)]
struct SubV3<'a> {
    figures: FiguresV3,
    #[serde(borrow)]
    segments: Vec<(DimensionV3, &'a [u8])>,
}

/// A segment table of format version 3.
#[derive(Deserialize)]
struct TableV3<'a> {
    top_n: u32,
    #[serde(borrow)]
    values: Vec<(String, SubV3<'a>)>,
    other: SubV3<'a>,
}

impl From<AggregateV2> for Aggregate {
    fn from(v: AggregateV2) -> Self {
        Aggregate {
            events: v.events,
            by_type: v.by_type,
            visitors: v.visitors.into_hll(),
            sessions: v.sessions.into_hll(),
            urls: v.urls,
            referrers: v.referrers,
            countries: v.countries,
            devices: v.devices,
            ..Aggregate::default()
        }
    }
}

impl FiguresV3 {
    /// The aggregate, without segment tables (goals' sketches at [`HLL_SUB_PRECISION`]).
    pub(super) fn into_aggregate(self) -> Aggregate {
        let mut a = Aggregate::from(self.v2);
        a.sources = self.sources;
        a.goals = self
            .goals
            .into_iter()
            .map(|(name, g)| {
                let mut visitors = g.visitors.into_hll();
                visitors.fold_to(HLL_SUB_PRECISION);
                let completions = g.completions;
                (
                    name,
                    GoalCounts {
                        completions,
                        visitors,
                    },
                )
            })
            .collect();
        a
    }
}

impl SubV3<'_> {
    fn into_sub(self) -> Result<Aggregate, postcard::Error> {
        if !self.segments.is_empty() {
            return Err(postcard::Error::DeserializeBadEncoding); // nested segments
        }
        let mut a = self.figures.into_aggregate();
        a.fold_hll_to(HLL_SUB_PRECISION);
        Ok(a)
    }
}

/// A version-3 table's bytes, converted into a table of today (checked as any is).
fn table_v3(blob: &[u8]) -> Result<SegmentTable, postcard::Error> {
    let t: TableV3<'_> = postcard::from_bytes(blob)?;
    let values = t
        .values
        .into_iter()
        .map(|(k, sub)| Ok((k, sub.into_sub()?)))
        .collect::<Result<_, postcard::Error>>()?;
    SegmentTable::from_parts(
        t.top_n as usize,
        values,
        t.other.into_sub()?,
        TopCounts::default(),
    )
    .map_err(|_| postcard::Error::DeserializeBadEncoding)
}

/// The segment tables `keep` says of a version-3 aggregate, from the bytes after its
/// figures: the tables and the bytes after them.
pub(super) fn segments_v3(tail: &[u8], keep: Keep) -> Result<(Segments, &[u8]), postcard::Error> {
    let (blobs, rest) = postcard::take_from_bytes::<Vec<(DimensionV3, &[u8])>>(tail)?;
    let mut segments = Segments::default();
    for (dim, blob) in blobs {
        let dim = Dimension::from(dim);
        if keep.table(dim) && !segments.insert(dim, table_v3(blob)?) {
            return Err(postcard::Error::DeserializeBadEncoding); // a dimension twice
        }
    }
    Ok((segments, rest))
}
