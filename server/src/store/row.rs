//! The stored bytes of an aggregate (a window, a roll-up bucket, a state-topic value): the
//! model's row format, compressed with zstd when that makes it smaller.
//!
//! Contract:
//! - [`encode`] gives either the model's row as it is (its first byte is the row format's
//!   version, below 0x80) or [`ZSTD`] followed by a zstd frame of it. Rows of the earlier
//!   formats the model still reads (version 5, compressed the same way, and versions 2 and
//!   3, stored uncompressed by earlier releases) are read as they are.
//! - [`decode`] decompresses into at most [`MAX_ROW_BYTES`] (a frame that claims more is
//!   an error, not an allocation), then decodes with the segment tables `keep` says.
//! - Encoding is deterministic: equal aggregates give equal bytes.

use std::cell::RefCell;
use std::sync::Arc;

use pulseboard_model::agg::{AggError, Aggregate, Keep};

/// A window's row as a checkpoint writes it: the aggregate, shared, and its stored bytes,
/// encoded once (the store and the state topic write these).
#[derive(Debug, Clone)]
pub struct Row {
    /// The window's start.
    pub start: i64,
    /// The aggregate: its figures always; its segment tables unless the row was made
    /// [`Row::closed`] (the stored bytes always have them).
    pub agg: Arc<Aggregate>,
    /// [`encode`] of `agg`.
    pub stored: Arc<[u8]>,
}

/// The rows of `(start, aggregate)` pairs, each encoded.
pub fn rows_of(windows: Vec<(i64, Aggregate)>) -> Vec<Row> {
    windows.into_iter().map(|(s, a)| Row::new(s, a)).collect()
}

impl Row {
    /// The row of `agg`, encoded.
    pub fn new(start: i64, agg: Aggregate) -> Row {
        let stored = encode(&agg).into();
        Row {
            start,
            agg: Arc::new(agg),
            stored,
        }
    }

    /// The row of a closed window, encoded, keeping only the aggregate's figures in memory
    /// (its segment tables, most of its memory, are in the stored bytes).
    pub fn closed(start: i64, agg: Aggregate) -> Row {
        let stored = encode(&agg).into();
        let figures = Aggregate {
            segments: Arc::default(),
            ..agg
        };
        Row {
            start,
            agg: Arc::new(figures),
            stored,
        }
    }

    /// A row whose stored bytes are known already (read from the state topic).
    pub fn from_stored(start: i64, agg: Aggregate, stored: Vec<u8>) -> Row {
        Row {
            start,
            agg: Arc::new(agg),
            stored: stored.into(),
        }
    }
}

/// The byte that leads a zstd-compressed row.
pub const ZSTD: u8 = 0x81;

/// The largest row, compressed or not: what a Kafka record of the state topic may carry.
pub const MAX_ROW_BYTES: usize = 32 * 1024 * 1024;

/// zstd's level: 3 (zstd's default) compresses a realistic window's row 2 % smaller than 1
/// at 85 % of its speed (~490 MB/s on the bench machine: 30 µs a row); higher levels buy
/// little more on rows this small.
const LEVEL: i32 = 3;

/// Rows shorter than this are kept as they are (a frame's header costs more than it saves).
const COMPRESS_FROM: usize = 64;

/// The stored bytes of `agg`.
pub fn encode(agg: &Aggregate) -> Vec<u8> {
    compress(agg.to_bytes())
}

/// `row` (the model's encoding) as it is stored.
pub fn compress(row: Vec<u8>) -> Vec<u8> {
    if row.len() < COMPRESS_FROM {
        return row;
    }
    // One compression context per thread, kept: making one per row (its tables allocated
    // and cleared) cost more than compressing a small row.
    thread_local! {
        static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { RefCell::new(None) };
    }
    let frame = COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        c.as_mut()?.compress(&row).ok()
    });
    match frame {
        Some(frame) if frame.len() + 1 < row.len() => {
            let mut out = Vec::with_capacity(frame.len() + 1);
            out.push(ZSTD);
            out.extend_from_slice(&frame);
            out
        }
        // Compression failing (it cannot on a Vec) or not paying: the row as it is.
        _ => row,
    }
}

/// An aggregate from its stored bytes, with the segment tables `keep` says.
pub fn decode(bytes: &[u8], keep: Keep) -> Result<Aggregate, AggError> {
    match bytes.first() {
        Some(&ZSTD) => {
            let row = decompress(&bytes[1..])?;
            Aggregate::decode(&row, keep)
        }
        _ => Aggregate::decode(bytes, keep),
    }
}

/// [`decode`], every table.
pub fn decode_all(bytes: &[u8]) -> Result<Aggregate, AggError> {
    decode(bytes, Keep::All)
}

fn decompress(frame: &[u8]) -> Result<Vec<u8>, AggError> {
    let corrupt = |e: std::io::Error| AggError::Corrupt(format!("compressed row: {e}"));
    // A frame that says its size (every one written since the context is kept) is
    // decompressed in one call into a buffer of that size, with a context kept per thread.
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(frame) {
        if size > MAX_ROW_BYTES as u64 {
            return Err(AggError::Corrupt(format!(
                "compressed row larger than {MAX_ROW_BYTES} bytes"
            )));
        }
        thread_local! {
            static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { RefCell::new(None) };
        }
        return DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
            }
            let d = d
                .as_mut()
                .ok_or_else(|| AggError::Corrupt("no zstd context".into()))?;
            let out = d.decompress(frame, size as usize).map_err(corrupt)?;
            if out.len() as u64 != size {
                return Err(AggError::Corrupt(
                    "compressed row shorter than its frame says".into(),
                ));
            }
            Ok(out)
        });
    }
    let mut out = Vec::new();
    let mut reader = zstd::stream::Decoder::new(frame).map_err(corrupt)?;
    let read = std::io::copy(
        &mut std::io::Read::take(&mut reader, MAX_ROW_BYTES as u64 + 1),
        &mut out,
    )
    .map_err(corrupt)?;
    if read > MAX_ROW_BYTES as u64 {
        return Err(AggError::Corrupt(format!(
            "compressed row larger than {MAX_ROW_BYTES} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::{AggSpec, Dimension, Goal, SegmentSpec};
    use pulseboard_model::gen::{GenConfig, Generator};

    fn window(n: usize) -> Aggregate {
        let spec = AggSpec {
            max_sites: 0,
            segments: SegmentSpec {
                dimensions: Dimension::ALL.to_vec(),
                top_n: 10,
            },
            goals: vec![Goal::parse("signup").expect("goal")],
        };
        let mut g = Generator::new(9, GenConfig::default());
        let mut a = Aggregate::new();
        for i in 0..n {
            a.add_with(&g.next_event(1_800_000_000_000 + i as i64 * 5), &spec);
        }
        a
    }

    #[test]
    fn rows_are_stored_compressed_and_read_back_whole_or_in_part() {
        for n in [0, 3, 2_000] {
            let a = window(n);
            let stored = encode(&a);
            let row = a.to_bytes();
            if n == 2_000 {
                // zstd takes a quarter off (row format 5 left it a third: its sketches were
                // not Rice-coded, its dictionary not front-coded).
                assert_eq!(stored[0], ZSTD);
                assert!(
                    stored.len() * 20 < row.len() * 17,
                    "{} of {}",
                    stored.len(),
                    row.len()
                );
            }
            assert_eq!(decode_all(&stored).as_ref(), Ok(&a), "{n}");
            assert_eq!(encode(&a), stored, "deterministic");
            let figures = decode(&stored, Keep::Figures).expect("figures");
            assert!(figures.segments.is_empty());
            assert_eq!(figures.events, a.events);
            // The model's own bytes (uncompressed, as earlier releases stored rows) too.
            assert_eq!(decode_all(&row).as_ref(), Ok(&a));
        }
    }

    #[test]
    fn a_corrupt_or_oversized_frame_is_an_error() {
        let stored = encode(&window(500));
        assert!(decode_all(&stored[..stored.len() / 2]).is_err());
        let mut bad = stored.clone();
        bad[10] ^= 0xff;
        assert!(decode_all(&bad).is_err());
        // A frame of 40 MiB of zeros: more than a row may be.
        let mut bomb = vec![ZSTD];
        zstd::stream::copy_encode(&vec![0u8; 40 << 20][..], &mut bomb, 1).expect("encode");
        assert!(bomb.len() < 10_000);
        let err = decode_all(&bomb).expect_err("too large");
        assert!(err.to_string().contains("larger than"), "{err}");
        // The same saying its size in its header (as rows are written): refused before
        // anything is allocated for it.
        let mut sized = vec![ZSTD];
        sized.extend(zstd::bulk::compress(&vec![0u8; 40 << 20], 1).expect("encode"));
        let err = decode_all(&sized).expect_err("too large");
        assert!(err.to_string().contains("larger than"), "{err}");
        // A frame whose header says less than it holds.
        let row = window(500).to_bytes();
        let mut short = zstd::bulk::compress(&row, 3).expect("encode");
        assert_eq!(short[4] & 0xc0, 0x40, "a 2-byte content size field");
        // After the magic number and the descriptor, and the window byte unless the frame is
        // a single segment: the size, less 256.
        let field = 5 + usize::from(short[4] & 0x20 == 0);
        let size = u16::from_le_bytes([short[field], short[field + 1]]);
        short[field..field + 2].copy_from_slice(&(size - 10).to_le_bytes());
        let mut bad = vec![ZSTD];
        bad.extend(short);
        let err = decode_all(&bad).expect_err("short");
        assert!(err.to_string().contains("compressed row"), "{err}");
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&bad[1..]).ok(),
            Some(Some(row.len() as u64 - 10))
        );
    }
}
