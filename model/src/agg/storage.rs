//! The storage format of an [`Aggregate`]: [`Aggregate::to_bytes`],
//! [`Aggregate::from_bytes`] and [`Aggregate::decode`], which may skip the segment tables.
//!
//! Contract:
//! - Version 6, the row format of `codec` (a sorted, front-coded dictionary of the row's
//!   keys, varints, Rice-coded sketches, the segment tables last, each skippable: [`Keep`]),
//!   is written. Version 5 (the same row format with a plain dictionary, top lists by count
//!   and sketches by varints) is read by `codec` too; versions 3 (postcard, HyperLogLogs in
//!   their old form) and 2 (before sources, goals and segments) through the mirror types
//!   of `legacy`, [`Keep`] included. (Version 4, postcard with the new sketches, was never
//!   released: it is not read.)
//! - Corrupt input yields [`AggError`], never a panic.

use super::legacy::{segments_v3, AggregateV2, FiguresV3};
use super::{Aggregate, Dimension};

/// Errors loading a stored [`Aggregate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    /// The bytes do not decode.
    #[error("stored aggregate is corrupt or from an incompatible version: {0}")]
    Corrupt(String),
    /// The format version byte is unknown.
    #[error(
        "stored aggregate is corrupt or from an incompatible version: format version {found}, expected {expected}"
    )]
    Version {
        /// Version byte found.
        found: u8,
        /// Version this build writes.
        expected: u8,
    },
}

/// Storage format version written by [`Aggregate::to_bytes`]: the row format of `codec`
/// (6: a sorted, front-coded dictionary and Rice-coded sketches; 5: the row format; 4:
/// HyperLogLogs in their own codec, see [`super::Hll::encode`]; 3 added referrer domains, goals
/// and segment tables). Versions 5, 3 and 2 are still read.
pub const AGG_FORMAT_VERSION: u8 = super::codec::ROW_FORMAT_VERSION;

/// What [`Aggregate::decode`] decodes of the segment tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Everything.
    All,
    /// No segment table (the figures of the whole traffic only).
    Figures,
    /// The table of one dimension.
    Dimension(Dimension),
    /// No segment table, and each site's figures (see [`super::site`]).
    Sites,
    /// Each site's figures with its table of one dimension, and that table of the whole
    /// traffic (a row of one sole site is that site's: its own tables are the site's).
    SiteDimension(Dimension),
    /// The table of one dimension of the whole traffic, and each site's figures (a view of a
    /// segment that lists the sites).
    DimensionAndSites(Dimension),
    /// One site (by [`super::site::site_hash`] of its name): its figures, with the table of
    /// the dimension when given, and that table of the whole traffic; the other sites' rows
    /// are skipped unread (a view of one site).
    Site(u64, Option<Dimension>),
}

impl Keep {
    /// Whether the segment table of `dim` of the whole traffic is decoded.
    pub fn table(self, dim: Dimension) -> bool {
        match self {
            Keep::All => true,
            Keep::Dimension(d) | Keep::SiteDimension(d) | Keep::DimensionAndSites(d) => d == dim,
            Keep::Site(_, d) => d == Some(dim),
            Keep::Figures | Keep::Sites => false,
        }
    }

    /// The one site whose row is decoded (by its name's hash), when only one is.
    pub fn only_site(self) -> Option<u64> {
        match self {
            Keep::Site(h, _) => Some(h),
            _ => None,
        }
    }

    /// What of each site's own row is decoded, if the sites are.
    pub fn of_sites(self) -> Option<Keep> {
        match self {
            Keep::All => Some(Keep::All),
            Keep::Sites | Keep::DimensionAndSites(_) => Some(Keep::Figures),
            Keep::Site(_, d) => Some(d.map_or(Keep::Figures, Keep::Dimension)),
            Keep::SiteDimension(d) => Some(Keep::Dimension(d)),
            Keep::Figures | Keep::Dimension(_) => None,
        }
    }
}

impl Aggregate {
    /// Storage encoding: the row format of `codec` (version [`AGG_FORMAT_VERSION`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        super::codec::encode(self)
    }

    /// Decodes [`Aggregate::to_bytes`] output (of this version, or versions 5, 3 and 2).
    pub fn from_bytes(b: &[u8]) -> Result<Self, AggError> {
        Aggregate::decode(b, Keep::All)
    }

    /// Decodes [`Aggregate::to_bytes`] output, with only the segment tables `keep` says
    /// (the bytes of the others are skipped, not checked).
    pub fn decode(b: &[u8], keep: Keep) -> Result<Self, AggError> {
        let corrupt = |e: postcard::Error| AggError::Corrupt(e.to_string());
        let (&version, rest) = b
            .split_first()
            .ok_or_else(|| AggError::Corrupt("empty input".into()))?;
        let no_trailing = |tail: &[u8]| match tail.len() {
            0 => Ok(()),
            n => Err(AggError::Corrupt(format!("{n} trailing bytes"))),
        };
        match version {
            AGG_FORMAT_VERSION | super::codec::ROW_WITH_SITES | 5 => super::codec::decode(b, keep),
            3 => {
                let (figures, tail) =
                    postcard::take_from_bytes::<FiguresV3>(rest).map_err(corrupt)?;
                let mut a = figures.into_aggregate();
                if Dimension::ALL.iter().any(|d| keep.table(*d)) {
                    let (segments, tail) = segments_v3(tail, keep).map_err(corrupt)?;
                    if keep == Keep::All {
                        no_trailing(tail)?;
                    }
                    a.segments = std::sync::Arc::new(segments);
                }
                Ok(a)
            }
            2 => {
                let (v2, tail) = postcard::take_from_bytes::<AggregateV2>(rest).map_err(corrupt)?;
                no_trailing(tail)?;
                Ok(v2.into())
            }
            found => Err(AggError::Version {
                found,
                expected: AGG_FORMAT_VERSION,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::{aggregate, ev, spec, wide_events};
    use crate::agg::{Coverage, Filter};

    #[test]
    fn aggregate_bytes_round_trip_and_reject_corruption() {
        let events = wide_events(5, 3_000);
        let a = aggregate(&events);
        let bytes = a.to_bytes();
        assert_eq!(Aggregate::from_bytes(&bytes), Ok(a.clone()));
        assert_eq!(
            Aggregate::from_bytes(&Aggregate::new().to_bytes()),
            Ok(Aggregate::new())
        );
        assert!(matches!(
            Aggregate::from_bytes(&[]),
            Err(AggError::Corrupt(_))
        ));
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 99;
        let err = Aggregate::from_bytes(&wrong_version).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("stored aggregate is corrupt or from an incompatible version"));
        assert!(Aggregate::from_bytes(&bytes[..bytes.len() / 2]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Aggregate::from_bytes(&trailing).is_err());
        // arbitrary garbage never panics
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..2_000 {
            let mut b = bytes.clone();
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(0..b.len());
                b[i] = rng.u8(..);
            }
            let _ = Aggregate::from_bytes(&b);
            let len = rng.usize(0..64);
            let junk: Vec<u8> = std::iter::once(AGG_FORMAT_VERSION)
                .chain((0..len).map(|_| rng.u8(..)))
                .collect();
            let _ = Aggregate::from_bytes(&junk);
        }
    }

    /// A version-2 aggregate as this project stored it before goals and segments (written by
    /// the previous release: four events, three visitors).
    const V2_BYTES: &str = "02040305636c69636b0108706167657669657702067369676e75700104000003f3c6c3a801b9be979102a9adeacc060004b8e3a48d048cfde8a709bfbc9dd1099197acba0c02012f01082f70726963696e67010200022668747470733a2f2f6e6577732e79636f6d62696e61746f722e636f6d2f6974656d3f69643d31011768747470733a2f2f7777772e676f6f676c652e636f6d2f01020003024445020246520102555301040002076465736b746f7002066d6f62696c65020400";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn a_version_2_aggregate_is_still_read() {
        let a = Aggregate::from_bytes(&hex(V2_BYTES)).expect("version 2 reads");
        assert_eq!(a.events, 4);
        assert_eq!(a.visitors.estimate(), 3);
        assert_eq!(a.sessions.estimate(), 4);
        assert_eq!(a.countries.get("DE"), 2);
        assert_eq!(a.by_type.get("signup"), 1);
        assert_eq!(a.urls.get("/pricing"), 1);
        assert!(a.sources.is_empty() && a.goals.is_empty() && a.segments.is_empty());
        // Written again, it is the current version, and reads back the same.
        let again = a.to_bytes();
        assert_eq!(again[0], AGG_FORMAT_VERSION);
        assert_eq!(Aggregate::from_bytes(&again), Ok(a.clone()));
        // Merged with a new aggregate of the same kind of events, nothing is lost.
        let mut b = Aggregate::new();
        b.add_with(&ev("signup", "v9", None, "/signup", None), &spec(10));
        b.merge(&a);
        assert_eq!(b.events, 5);
        let mut wrong = hex(V2_BYTES);
        wrong.push(7);
        assert!(Aggregate::from_bytes(&wrong).is_err(), "trailing bytes");
    }

    #[test]
    fn decode_can_skip_the_segment_tables_or_keep_one() {
        let mut rng = fastrand::Rng::with_seed(3);
        let countries = ["DE", "US", "FR", "JP"];
        let mut a = Aggregate::new();
        for i in 0..500 {
            let mut e = ev(
                if i % 7 == 0 { "signup" } else { "pageview" },
                &format!("v{}", rng.u32(0..200)),
                Some(&format!("s{}", rng.u32(0..300))),
                &format!("/p{}", rng.u32(0..40)),
                Some(["https://a.example/", "https://b.example/x"][i % 2]),
            );
            e.country = Some(countries[rng.usize(0..4)].into());
            e.device = Some(["mobile", "desktop"][i % 2].into());
            a.add_with(&e, &spec(10));
        }
        let bytes = a.to_bytes();
        let all = Aggregate::from_bytes(&bytes).expect("all");
        assert_eq!(all, a);
        let figures = Aggregate::decode(&bytes, Keep::Figures).expect("figures");
        let mut want = Aggregate::new();
        want.merge_figures(&a);
        assert_eq!(figures, want);
        let one = Aggregate::decode(&bytes, Keep::Dimension(Dimension::Country)).expect("one");
        assert!(one.segments.table(Dimension::Device).is_none());
        assert_eq!(
            one.segments.table(Dimension::Country),
            a.segments.table(Dimension::Country)
        );
        let f = Filter::parse("country:JP").expect("filter");
        let (mut x, mut cx, mut y, mut cy) = (
            Aggregate::new(),
            Coverage::default(),
            Aggregate::new(),
            Coverage::default(),
        );
        one.fold_segment(&f, &mut x, &mut cx);
        a.fold_segment(&f, &mut y, &mut cy);
        assert_eq!((x, cx), (y, cy));
        assert!(cy.complete() && cy.events > 0);
        // Corruption in a table is found when that table is decoded.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 3] ^= 0xff;
        bad.truncate(n - 1);
        assert!(Aggregate::from_bytes(&bad).is_err());
    }
}
