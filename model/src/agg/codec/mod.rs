//! The row format of an [`Aggregate`] (version 6): what the store, the state topic and the
//! roll-ups keep of a window or a bucket. Compact: every string of the row once, in a
//! sorted, front-coded dictionary, numbers as varints, the sketches of segments and goals
//! as Rice-coded positions in the window's; the server compresses the whole row when it
//! pays.
//!
//! Contract (all integers are LEB128 varints unless said otherwise):
//! ```text
//! row      := 6u8 dict figures segments              an aggregate without sites
//!           | 7u8 dict figures segments sites        one with sites (see `super::site`)
//! dict     := n, n × (shared, suffix len, suffix bytes)
//!             every key of the row, once, sorted bytewise ascending, each as the bytes it
//!             shares with the key before and the rest (see `dict`); a key's id is its
//!             position
//! figures  := events, top × 6, visitors: hll, sessions: hll, goals
//!             (top lists in this order: by_type, urls, referrers, countries, devices,
//!             sources)
//! top      := total, error, n, n × (key id step, count)
//!             entries by key id ascending (so by key); the first id whole, each other as
//!             its step (≥ 1) from the one before; counts whole
//! hll      := the sketch's own encoding (`Hll::encode`: sparse sketches Rice-coded); in a
//!             segment's figures, its visitors and sessions are written against the
//!             window's (`Hll::encode_against`: Rice-coded positions in the window's list),
//!             and a goal's converting visitors against the visitors of the figures they
//!             belong to (the window's)
//! goals    := n, n × (name id, completions, converting visitors: hll)   by name
//! segments := n, n × (dimension: u8, len, table)      a table can be skipped whole
//!             dimension: 0 country, 1 device, 2 type, 3 referrer, 4 a property
//! table    := [key id, counts: top] top_n, n, n × (value id, figures), other: figures
//!             values by key; a property's table (4) starts with its key and the
//!             window's counts of its values
//! sites    := 1, max, name: bytes                      every event of this one site
//!           | 2, max, n, n × (name: bytes, row: bytes), 0 | 1 row: bytes
//!             each site's own aggregate as a row of its own (without sites), by name,
//!             then "other sites"' when some came
//! ```
//! - Canonical: equal aggregates encode to equal bytes (the dictionary sorted, lists and
//!   maps in key order, sketches canonical).
//! - [`decode`] validates: a bad dictionary, an id outside it, an id step of 0, a count
//!   larger than the input could hold, a top list that is not one (see [`TopCounts`]), a
//!   corrupt sketch, a bad dimension, a table too large: each is an [`AggError`], never a
//!   panic. With [`Keep::Figures`] the tables are skipped unread; with [`Keep::Dimension`]
//!   all but one; the sites are read only with [`Keep::All`], [`Keep::Sites`] (each
//!   site's figures) and [`Keep::SiteDimension`] (each site's figures and one table). A top list is ranked (count descending, then key) as it is read.
//! - Rows of version 5 (earlier releases) are read too: the same layout but for the
//!   dictionary (keys whole, in the order first written) and the top lists (by count, see
//!   `v5`).
//! - A segment's sub-aggregate keeps [`SEGMENT_TOP_CAP`] keys per list; the window's
//!   lists [`TOP_CAP`].

mod dict;
mod v5;
mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use self::dict::Dict;
use self::wire::{put, put_bytes, Reader};
use super::prop::PropKey;
use super::segment::SegmentTable;
use super::site::{site_hash, Sites};
use super::{
    AggError, Aggregate, Dimension, GoalCounts, Hll, Keep, TopCounts, SEGMENT_TOP_CAP, TOP_CAP,
};

/// The version byte of the row format (of a row with sites: [`ROW_WITH_SITES`]).
pub const ROW_FORMAT_VERSION: u8 = 6;
/// The version byte of a row with sites.
pub const ROW_WITH_SITES: u8 = 7;

/// The row of `agg` (see the module docs).
pub(crate) fn encode(agg: &Aggregate) -> Vec<u8> {
    let dict = Dict::of(keys_of(agg));
    let mut out = Vec::with_capacity(4096);
    let with_sites = !agg.sites.is_empty();
    out.push(if with_sites {
        ROW_WITH_SITES
    } else {
        ROW_FORMAT_VERSION
    });
    dict.write(&mut out);
    figures(&mut out, &dict, agg, None);
    let refs = (&agg.visitors, &agg.sessions);
    let tables: Vec<(Dimension, &SegmentTable)> = agg.segments.tables().collect();
    put(&mut out, tables.len() as u64);
    let mut blob = Vec::new();
    for (dim, t) in tables {
        blob.clear();
        if let Some(k) = dim.prop() {
            put(&mut blob, dict.id(k.as_str()));
            top(&mut blob, &dict, t.counts());
        }
        put(&mut blob, t.top_n() as u64);
        let values: Vec<(&str, &Aggregate)> = t.values().collect();
        put(&mut blob, values.len() as u64);
        for (v, sub) in values {
            put(&mut blob, dict.id(v));
            figures(&mut blob, &dict, sub, Some(refs));
        }
        figures(&mut blob, &dict, t.other(), Some(refs));
        out.push(dim_code(dim));
        put_bytes(&mut out, &blob);
    }
    if with_sites {
        sites(&mut out, &agg.sites);
    }
    out
}

fn sites(out: &mut Vec<u8>, s: &Sites) {
    if let Some(name) = s.sole() {
        put(out, 1);
        put(out, s.max() as u64);
        put_bytes(out, name.as_bytes());
        return;
    }
    put(out, 2);
    put(out, s.max() as u64);
    let table: Vec<(&str, &Aggregate)> = s.table().collect();
    put(out, table.len() as u64);
    for (name, a) in table {
        put_bytes(out, name.as_bytes());
        put_bytes(out, &encode(a));
    }
    match s.overflow() {
        None => put(out, 0),
        Some(a) => {
            put(out, 1);
            put_bytes(out, &encode(a));
        }
    }
}

/// The sites section, each site's row decoded as `keep` says; with `only` (a site's
/// [`site_hash`]), the other sites' rows are skipped unread.
fn read_sites(r: &mut Reader<'_>, keep: Keep, only: Option<u64>) -> Result<Sites, AggError> {
    let wanted = |name: &str| only.is_none_or(|h| site_hash(name) == h);
    let name = |r: &mut Reader<'_>| -> Result<String, AggError> {
        std::str::from_utf8(r.bytes()?)
            .map(str::to_owned)
            .map_err(|_| corrupt("a site name that is not UTF-8"))
    };
    let row = |r: &mut Reader<'_>| -> Result<Aggregate, AggError> {
        let b = r.bytes()?;
        if b.first() != Some(&ROW_FORMAT_VERSION) {
            return Err(corrupt("a site's row of another version"));
        }
        decode(b, keep)
    };
    let kind = r.var()?;
    let max = usize::try_from(r.var()?).map_err(|_| corrupt("site bound"))?;
    match kind {
        1 => Sites::from_parts(Some(name(r)?), Vec::new(), None, max).map_err(corrupt),
        2 => {
            let n = r.count(2)?;
            let mut table = Vec::with_capacity(n.min(super::MAX_SITES));
            for _ in 0..n {
                let site = name(r)?;
                if wanted(&site) {
                    table.push((site, row(r)?));
                } else {
                    r.bytes()?;
                }
            }
            let other = match r.var()? {
                0 => None,
                1 if wanted(super::OTHER_SITES) => Some(row(r)?),
                1 => {
                    r.bytes()?;
                    None
                }
                _ => return Err(corrupt("bad other-sites flag")),
            };
            Sites::from_parts(None, table, other, max).map_err(corrupt)
        }
        _ => Err(corrupt("bad sites kind")),
    }
}

/// Every key of `agg`'s row: its lists' and goals', its tables' values and theirs.
fn keys_of(agg: &Aggregate) -> impl Iterator<Item = &str> {
    fn of_figures(a: &Aggregate) -> impl Iterator<Item = &str> {
        let lists = [
            &a.by_type,
            &a.urls,
            &a.referrers,
            &a.countries,
            &a.devices,
            &a.sources,
        ];
        lists
            .into_iter()
            .flat_map(|t| t.entries().map(|(k, _)| k))
            .chain(a.goals.keys().map(String::as_str))
    }
    let tables = agg.segments.tables().flat_map(|(dim, t)| {
        dim.prop()
            .map(|k| k.as_str())
            .into_iter()
            .chain(t.counts().entries().map(|(k, _)| k))
            .chain(
                t.values()
                    .flat_map(|(v, sub)| std::iter::once(v).chain(of_figures(sub))),
            )
            .chain(of_figures(t.other()))
    });
    of_figures(agg).chain(tables)
}

/// Decodes a row of version 6 or 5 (the version byte included), with the segment tables
/// `keep` says.
pub(crate) fn decode(row: &[u8], keep: Keep) -> Result<Aggregate, AggError> {
    let mut r = Reader::new(row);
    let version = r.u8()?;
    let front_coded;
    let (keys, top): (Vec<&str>, TopReader) = match version {
        ROW_FORMAT_VERSION => {
            front_coded = dict::read(&mut r)?;
            (front_coded.all()?, read_top)
        }
        ROW_WITH_SITES => {
            front_coded = dict::read(&mut r)?;
            (front_coded.all()?, read_top)
        }
        5 => (v5::dict(&mut r)?, v5::top),
        _ => return Err(corrupt("not a row of version 5, 6 or 7")),
    };
    let read_figures = |r: &mut Reader<'_>, cap, refs| read_figures(r, &keys, top, cap, refs);
    let mut agg = read_figures(&mut r, TOP_CAP, None)?;
    let (visitors, sessions) = (agg.visitors.clone(), agg.sessions.clone());
    let refs = Some((&visitors, &sessions));
    let tables = r.count(2)?;
    for _ in 0..tables {
        let code = r.u8()?;
        let blob = r.bytes()?;
        let mut t = Reader::new(blob);
        let dim = match code {
            PROP_CODE => {
                let name = key(&keys, t.var()?)?;
                let k = PropKey::register(name).map_err(|e| AggError::Corrupt(e.to_string()))?;
                Dimension::Prop(k)
            }
            _ => dim_of(code)?,
        };
        if !keep.table(dim) {
            continue;
        }
        let counts = match dim {
            Dimension::Prop(_) => top(&mut t, &keys, TOP_CAP)?,
            _ => TopCounts::default(),
        };
        let top_n = t.var()?;
        let n = t.count(1)?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            let v = key(&keys, t.var()?)?;
            values.push((v.to_owned(), read_figures(&mut t, SEGMENT_TOP_CAP, refs)?));
        }
        let other = read_figures(&mut t, SEGMENT_TOP_CAP, refs)?;
        if !t.is_empty() {
            return Err(corrupt("trailing bytes in a segment table"));
        }
        let top_n = usize::try_from(top_n).map_err(|_| corrupt("segment table size"))?;
        let table = SegmentTable::from_parts(top_n, values, other, counts).map_err(corrupt)?;
        if !Arc::make_mut(&mut agg.segments).insert(dim, table) {
            return Err(corrupt("duplicate segment dimension"));
        }
    }
    if version == ROW_WITH_SITES {
        let Some(of_sites) = keep.of_sites() else {
            // Last in the row: a reader of the whole traffic or of one segment stops here.
            return Ok(agg);
        };
        agg.sites = Arc::new(read_sites(&mut r, of_sites, keep.only_site())?);
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(agg)
}

fn corrupt(what: &str) -> AggError {
    AggError::Corrupt(what.to_owned())
}

fn key<'a>(keys: &[&'a str], id: u64) -> Result<&'a str, AggError> {
    usize::try_from(id)
        .ok()
        .and_then(|i| keys.get(i).copied())
        .ok_or_else(|| corrupt("a key id outside the dictionary"))
}

const DIMS: [Dimension; 4] = Dimension::ALL;
/// The code of a property's table.
const PROP_CODE: u8 = 4;

fn dim_code(d: Dimension) -> u8 {
    match d {
        Dimension::Prop(_) => PROP_CODE,
        d => DIMS.iter().position(|x| *x == d).unwrap_or(0) as u8,
    }
}

fn dim_of(code: u8) -> Result<Dimension, AggError> {
    DIMS.get(usize::from(code))
        .copied()
        .ok_or_else(|| corrupt("unknown segment dimension"))
}

/// The window's visitors and sessions, that a segment's sketches are written against.
type Refs<'r> = Option<(&'r Hll, &'r Hll)>;

/// `h` against `reference` when there is one (see `Hll::encode_against`).
fn put_sketch(out: &mut Vec<u8>, h: &Hll, reference: Option<&Hll>) {
    match reference {
        Some(r) => h.encode_against(r, out),
        None => h.encode(out),
    }
}

fn figures(out: &mut Vec<u8>, dict: &Dict<'_>, a: &Aggregate, refs: Refs<'_>) {
    put(out, a.events);
    for t in [
        &a.by_type,
        &a.urls,
        &a.referrers,
        &a.countries,
        &a.devices,
        &a.sources,
    ] {
        top(out, dict, t);
    }
    put_sketch(out, &a.visitors, refs.map(|r| r.0));
    put_sketch(out, &a.sessions, refs.map(|r| r.1));
    // A goal's converting visitors are visitors of the window (or of the segment's).
    let visitors = refs.map_or(&a.visitors, |r| r.0);
    put(out, a.goals.len() as u64);
    for (name, g) in &a.goals {
        put(out, dict.id(name));
        put(out, g.completions);
        g.visitors.encode_against(visitors, out);
    }
}

fn top(out: &mut Vec<u8>, dict: &Dict<'_>, t: &TopCounts) {
    put(out, t.total());
    put(out, t.error_bound());
    let entries = t.sorted_entries();
    put(out, entries.len() as u64);
    let mut before = None;
    for (k, c) in entries {
        let id = dict.id(k);
        put(out, before.map_or(id, |b| id - b));
        put(out, c);
        before = Some(id);
    }
}

/// Reads a top list of the row's version.
type TopReader = fn(&mut Reader<'_>, &[&str], usize) -> Result<TopCounts, AggError>;

fn read_figures(
    r: &mut Reader<'_>,
    keys: &[&str],
    read_top: TopReader,
    cap: usize,
    refs: Refs<'_>,
) -> Result<Aggregate, AggError> {
    let events = r.var()?;
    let mut tops: Vec<TopCounts> = Vec::with_capacity(6);
    for _ in 0..6 {
        tops.push(read_top(r, keys, cap)?);
    }
    let visitors = read_hll(r, refs.map(|r| r.0))?;
    let sessions = read_hll(r, refs.map(|r| r.1))?;
    let n = r.count(3)?;
    let mut goals = BTreeMap::new();
    for _ in 0..n {
        let name = key(keys, r.var()?)?;
        let completions = r.var()?;
        let visitors = read_hll(r, Some(refs.map_or(&visitors, |r| r.0)))?;
        if goals
            .insert(
                name.to_owned(),
                GoalCounts {
                    completions,
                    visitors,
                },
            )
            .is_some()
        {
            return Err(corrupt("duplicate goal"));
        }
    }
    let mut tops = tops.into_iter();
    let mut next = || tops.next().unwrap_or_default();
    Ok(Aggregate {
        events,
        by_type: next(),
        urls: next(),
        referrers: next(),
        countries: next(),
        devices: next(),
        sources: next(),
        visitors,
        sessions,
        goals,
        segments: Arc::default(),
        sites: Arc::default(),
    })
}

/// A top list: ranked (count descending, then key) as it is read, as it was counted.
fn read_top(r: &mut Reader<'_>, keys: &[&str], cap: usize) -> Result<TopCounts, AggError> {
    let total = r.var()?;
    let error = r.var()?;
    let n = r.count(2)?;
    // A segment's list may hold more than today's cap when it was merged with a row of an
    // earlier release (which kept more): never more than any list may.
    if n > TOP_CAP {
        return Err(corrupt("top counts exceed capacity"));
    }
    let mut entries = Vec::with_capacity(n);
    let mut before: Option<u64> = None;
    for _ in 0..n {
        let step = r.var()?;
        let id = match before {
            None => Some(step),
            Some(b) if step > 0 => b.checked_add(step),
            Some(_) => None,
        }
        .ok_or_else(|| corrupt("a key id step of zero"))?;
        entries.push((key(keys, id)?, r.var()?));
        before = Some(id);
    }
    entries.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    TopCounts::from_parts(cap.max(n), entries, total, error).map_err(corrupt)
}

fn read_hll(r: &mut Reader<'_>, reference: Option<&Hll>) -> Result<Hll, AggError> {
    let read = match reference {
        Some(reference) => Hll::decode_against(r.rest(), reference),
        None => Hll::decode(r.rest()),
    };
    let (h, used) = read.map_err(|e| AggError::Corrupt(e.to_string()))?;
    r.advance(used)?;
    Ok(h)
}

#[cfg(test)]
mod tests;
