//! The primitives of the row format: LEB128 varints, length-prefixed bytes, and a reader
//! that checks every length against what is left, so corrupt input is an error, never a
//! panic or an allocation larger than the input.

use crate::agg::AggError;

/// Appends `v` as a LEB128 varint.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `b` with its length before it.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads the row format from a slice.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
}

fn corrupt(what: &str) -> AggError {
    AggError::Corrupt(what.to_owned())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }

    /// What is left.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.b
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, AggError> {
        let (&v, rest) = self
            .b
            .split_first()
            .ok_or_else(|| corrupt("truncated row"))?;
        self.b = rest;
        Ok(v)
    }

    /// A LEB128 varint of at most 64 bits.
    pub(crate) fn var(&mut self) -> Result<u64, AggError> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(corrupt("varint overflows"));
            }
            v |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint overflows"))
    }

    /// A varint that counts things of at least `min_bytes` bytes each: never more than
    /// the input could hold, so a corrupt count cannot make a large allocation.
    pub(crate) fn count(&mut self, min_bytes: usize) -> Result<usize, AggError> {
        let n = self.var()?;
        let most = (self.b.len() / min_bytes.max(1)) as u64;
        if n > most {
            return Err(corrupt("count larger than the row"));
        }
        Ok(n as usize)
    }

    /// `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], AggError> {
        if n > self.b.len() {
            return Err(corrupt("truncated row"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    /// Length-prefixed bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], AggError> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// Skips `n` bytes the caller has already used (after decoding from [`Self::rest`]).
    pub(crate) fn advance(&mut self, n: usize) -> Result<(), AggError> {
        self.take(n).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_bad_ones_are_errors() {
        let mut out = Vec::new();
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            out.clear();
            put(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.var(), Ok(v));
            assert!(r.is_empty());
        }
        assert!(Reader::new(&[0x80]).var().is_err(), "truncated");
        assert!(Reader::new(&[0xff; 11]).var().is_err(), "too long");
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .var()
                .is_err(),
            "above 64 bits"
        );
        // A count cannot promise more than the input holds.
        let mut out = Vec::new();
        put(&mut out, 1_000_000);
        out.extend_from_slice(&[0; 10]);
        assert!(Reader::new(&out).count(1).is_err());
        let mut out = Vec::new();
        put_bytes(&mut out, b"abc");
        assert_eq!(Reader::new(&out).bytes(), Ok(&b"abc"[..]));
        assert!(Reader::new(&out[..3]).bytes().is_err());
    }
}
