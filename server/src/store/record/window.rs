//! The value of a window record: binary (window format 2): a header of figures any system
//! can read, then the window's stored row (the mergeable state, exactly the bytes the store
//! keeps, so a checkpoint encodes each window once).
//!
//! Layout (integers are LEB128 varints; `end` is zigzag-encoded; strings are a varint
//! length and UTF-8 bytes):
//! ```text
//! value := 0x02                          window format 2 (a JSON value starts with `{`)
//!          end seq flags events unique_visitors unique_sessions
//!          n (type count) × n            events by type
//!          row                           the rest: the stored row (see below)
//! flags := bit 0: the window took late events (revised)
//! row   := 0x81 zstd-frame               the row, compressed (zstd)
//!        | 0x06 …                        or as it is: row format 6 (`pulseboard_model::agg`;
//!                                        0x05: format 5, written by earlier releases)
//! ```
//! `unique_visitors` and `unique_sessions` are this partition's HyperLogLog estimates:
//! merge the rows across partitions, never sum these. `docs/state_topic_window.py` is a
//! reference decoder of the header and of the row's figures, in Python.
//!
//! Window values of format 1 (a JSON object with the aggregate as base64, written by
//! earlier releases and still found in a compacted state topic) are read too.

use std::collections::BTreeMap;

use base64::Engine as _;
use pulseboard_model::agg::Aggregate;
use serde::{Deserialize, Serialize};

use super::FormatError;
use crate::store::row::{self, Row};

/// The first byte of a window value of this format.
pub const WINDOW_FORMAT: u8 = 2;

/// The header of a window record's value: one partition's figures of the window
/// `[start, end)` as they stand after its checkpoint `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StateTopicWindowFields)]
pub struct WindowValue {
    /// End of the window (exclusive), epoch ms.
    pub end: i64,
    /// The partition's checkpoint this value belongs to.
    pub seq: u64,
    /// The window took late events (it changed after it closed).
    pub revised: bool,
    /// Events of this partition in the window.
    pub events: u64,
    /// HyperLogLog estimates of this partition alone (merge the rows across partitions;
    /// never sum these).
    pub unique_visitors: u64,
    pub unique_sessions: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
}

/// A window value, decoded: its header, its aggregate, and its stored row (the bytes the
/// store keeps: borrowed from the value, or made again for a format-1 value).
#[derive(Debug, Clone)]
pub struct Window {
    pub value: WindowValue,
    pub agg: Aggregate,
    pub stored: Vec<u8>,
}

/// The value of a window record: the header of `row`'s figures, then its stored bytes.
pub fn window_value(row: &Row, end: i64, seq: u64, revised: bool) -> Vec<u8> {
    let agg = &row.agg;
    let types = agg.by_type.sorted_entries();
    let mut out = Vec::with_capacity(row.stored.len() + 32 + 16 * types.len());
    out.push(WINDOW_FORMAT);
    put(&mut out, ((end << 1) ^ (end >> 63)) as u64);
    put(&mut out, seq);
    out.push(u8::from(revised));
    put(&mut out, agg.events);
    put(&mut out, agg.visitors.estimate());
    put(&mut out, agg.sessions.estimate());
    put(&mut out, types.len() as u64);
    for (k, n) in types {
        put(&mut out, k.len() as u64);
        out.extend_from_slice(k.as_bytes());
        put(&mut out, n);
    }
    out.extend_from_slice(&row.stored);
    out
}

impl Window {
    /// Decodes a window value of either format.
    pub fn decode(b: &[u8]) -> Result<Window, FormatError> {
        match b.first() {
            Some(&WINDOW_FORMAT) => {
                let (value, stored) = header(&b[1..])?;
                let agg =
                    row::decode_all(stored).map_err(|e| FormatError::Aggregate(e.to_string()))?;
                Ok(Window {
                    value,
                    agg,
                    stored: stored.to_vec(),
                })
            }
            Some(b'{') => {
                let v: V1 = super::decode(b)?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&v.aggregate)
                    .map_err(|e| FormatError::Aggregate(e.to_string()))?;
                let agg = Aggregate::from_bytes(&bytes)
                    .map_err(|e| FormatError::Aggregate(e.to_string()))?;
                Ok(Window {
                    value: v.header,
                    stored: row::encode(&agg),
                    agg,
                })
            }
            _ => Err(FormatError::Window("not a window value")),
        }
    }

    /// The stored row, as the store keeps it.
    pub fn into_row(self, start: i64) -> Row {
        Row::from_stored(start, self.agg, self.stored)
    }
}

/// A window value of format 1 (JSON).
#[derive(Deserialize)]
struct V1 {
    #[serde(flatten)]
    header: WindowValue,
    aggregate: String,
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn var(&mut self) -> Result<u64, FormatError> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or(FormatError::Window("truncated"))?;
            self.0 = rest;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(FormatError::Window("varint too long"))
    }

    fn byte(&mut self) -> Result<u8, FormatError> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or(FormatError::Window("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    fn str(&mut self) -> Result<&'a str, FormatError> {
        let n = usize::try_from(self.var()?).map_err(|_| FormatError::Window("length"))?;
        if n > self.0.len() {
            return Err(FormatError::Window("truncated"));
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(s).map_err(|_| FormatError::Window("a type is not UTF-8"))
    }
}

/// The header, and the stored row after it.
fn header(b: &[u8]) -> Result<(WindowValue, &[u8]), FormatError> {
    let mut r = Reader(b);
    let zz = r.var()?;
    let end = (zz >> 1) as i64 ^ -((zz & 1) as i64);
    let seq = r.var()?;
    let flags = r.byte()?;
    if flags > 1 {
        return Err(FormatError::Window("unknown flags"));
    }
    let (events, unique_visitors, unique_sessions) = (r.var()?, r.var()?, r.var()?);
    let n = r.var()?;
    if n > r.0.len() as u64 {
        return Err(FormatError::Window("more types than bytes"));
    }
    let mut by_type = BTreeMap::new();
    for _ in 0..n {
        let k = r.str()?.to_owned();
        by_type.insert(k, r.var()?);
    }
    Ok((
        WindowValue {
            end,
            seq,
            revised: flags == 1,
            events,
            unique_visitors,
            unique_sessions,
            by_type,
        },
        r.0,
    ))
}
