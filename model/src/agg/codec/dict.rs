//! The dictionary of a row of format 6: every key of the row once, sorted bytewise
//! ascending, front-coded.
//!
//! Contract:
//! - `dict := n, n × (shared, suffix length, suffix bytes)`, varints: `shared` the bytes
//!   the key has in common with the key before (0 for the first), always as many as they
//!   have (the encoder writes the longest common prefix, and the decoder refuses a key
//!   not above the one before, which a shorter one would make), the suffix empty only for
//!   the first key (the empty key). A key's id is its position.
//! - [`read`] validates: `shared` above the previous key's length, keys not strictly
//!   ascending, a key that is not UTF-8, a key above [`MAX_KEY_BYTES`] or a dictionary above
//!   [`MAX_DICT_BYTES`] are each an [`AggError`], never a panic: whatever the input, the
//!   keys take at most about [`MAX_DICT_BYTES`] (front coding lets a few bytes stand for
//!   a long key).

use std::collections::{BTreeSet, HashMap};

use super::wire::{put, put_bytes, Reader};
use crate::agg::AggError;

/// The longest key: no event field is longer than its payload (64 KiB).
pub(super) const MAX_KEY_BYTES: usize = crate::event::MAX_VALUE_BYTES;

/// The largest dictionary, its keys' bytes: a row the server stores is at most 32 MiB.
pub(super) const MAX_DICT_BYTES: usize = 32 << 20;

/// The keys of a row, numbered in bytewise order.
pub(super) struct Dict<'a> {
    ids: HashMap<&'a str, u64>,
    keys: Vec<&'a str>,
}

impl<'a> Dict<'a> {
    /// The dictionary of `keys` (in any order, repeats allowed).
    pub(super) fn of(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let keys: Vec<&str> = keys
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i as u64))
            .collect();
        Dict { ids, keys }
    }

    /// The id of `k`, a key the dictionary was made of.
    pub(super) fn id(&self, k: &str) -> u64 {
        debug_assert!(self.ids.contains_key(k), "{k} is not in the dictionary");
        self.ids.get(k).copied().unwrap_or(0)
    }

    /// Appends the front-coded dictionary.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        put(out, self.keys.len() as u64);
        let mut before: &[u8] = &[];
        for k in &self.keys {
            let k = k.as_bytes();
            let shared = before.iter().zip(k).take_while(|(a, b)| a == b).count();
            put(out, shared as u64);
            put_bytes(out, &k[shared..]);
            before = k;
        }
    }
}

fn corrupt(what: &str) -> AggError {
    AggError::Corrupt(what.to_owned())
}

/// The keys of a front-coded dictionary: their bytes one after the other, and where each
/// ends.
pub(super) struct Keys {
    text: String,
    ends: Vec<usize>,
}

impl Keys {
    /// The keys, in id order.
    pub(super) fn all(&self) -> Result<Vec<&str>, AggError> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let k = self.text.get(start..end);
                start = end;
                k.ok_or_else(|| corrupt("a key is not UTF-8"))
            })
            .collect()
    }
}

/// Reads a front-coded dictionary (see the module docs).
pub(super) fn read(r: &mut Reader<'_>) -> Result<Keys, AggError> {
    // A key takes 2 bytes at least: its shared length and its suffix length.
    let n = r.count(2)?;
    let mut text: Vec<u8> = Vec::with_capacity(r.rest().len().min(MAX_DICT_BYTES));
    let mut ends = Vec::with_capacity(n);
    let mut start = 0;
    for _ in 0..n {
        let shared = r.var()?;
        let suffix = r.bytes()?;
        let before = &text[start..];
        let shared = usize::try_from(shared)
            .ok()
            .filter(|&s| s <= before.len())
            .ok_or_else(|| corrupt("a key shares more than the key before has"))?;
        // Above the key before: a first differing byte that is larger, or longer.
        let above = match (suffix.first(), before.get(shared)) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !above && !ends.is_empty() {
            return Err(corrupt("dictionary keys are not strictly ascending"));
        }
        let len = shared + suffix.len();
        if len > MAX_KEY_BYTES || text.len() + len > MAX_DICT_BYTES {
            return Err(corrupt("a dictionary key is too long"));
        }
        let here = text.len();
        text.extend_from_within(start..start + shared);
        text.extend_from_slice(suffix);
        start = here;
        ends.push(text.len());
    }
    let text = String::from_utf8(text).map_err(|_| corrupt("a key is not UTF-8"))?;
    Ok(Keys { text, ends })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: &[u8]) -> Result<Vec<String>, AggError> {
        let mut r = Reader::new(b);
        let k = read(&mut r)?;
        assert!(r.is_empty());
        Ok(k.all()?.into_iter().map(str::to_owned).collect())
    }

    #[test]
    fn a_dictionary_is_sorted_front_coded_and_reads_back() {
        let words = [
            "/docs/a", "/docs/ab", "/", "é", "/docs/b", "/docs/a", "DE", "e",
        ];
        let d = Dict::of(words);
        let mut out = Vec::new();
        d.write(&mut out);
        let mut want: Vec<&str> = words.to_vec();
        want.sort_unstable();
        want.dedup();
        assert_eq!(keys(&out).expect("reads"), want);
        for (i, k) in want.iter().enumerate() {
            assert_eq!(d.id(k), i as u64);
        }
        // "/docs/ab" after "/docs/a": 7 shared, "b".
        assert!(out.windows(3).any(|w| w == [7, 1, b'b']));
        let mut empty = Vec::new();
        Dict::of([]).write(&mut empty);
        assert_eq!(keys(&empty).expect("reads"), Vec::<String>::new());
        // The empty key, first.
        let mut out = Vec::new();
        Dict::of(["b", ""]).write(&mut out);
        assert_eq!(out, [2, 0, 0, 0, 1, b'b']);
        assert_eq!(keys(&out).expect("reads"), ["", "b"]);
    }

    #[test]
    fn a_bad_dictionary_is_an_error() {
        for (what, b) in [
            ("shares more than before", &[2, 0, 1, b'a', 2, 1, b'b'][..]),
            ("not ascending", &[2, 0, 1, b'b', 0, 1, b'a']),
            ("equal", &[2, 0, 1, b'a', 0, 1, b'a']),
            ("shorter shared", &[2, 0, 2, b'a', b'b', 0, 2, b'a', b'c']),
            ("an empty suffix", &[2, 0, 1, b'a', 1, 0]),
            ("two empty keys", &[2, 0, 0, 0, 0]),
            ("not UTF-8", &[1, 0, 1, 0xff]),
            ("a split character", &[2, 0, 2, b'a', 0xc3, 0, 1, 0xa9]),
            ("truncated", &[2, 0, 1, b'a', 1]),
            ("more keys than bytes", &[0x7f, 0, 1, b'a']),
        ] {
            let got = keys(b);
            assert!(got.is_err(), "{what}: {got:?}");
        }
        // A key longer than any field, or keys that expand past the bound: errors.
        let mut long = vec![1, 0];
        put_bytes(&mut long, &vec![b'a'; MAX_KEY_BYTES + 1]);
        assert!(keys(&long).is_err());
        let stem = "a".repeat(MAX_KEY_BYTES - 3);
        let many: Vec<String> = (0..=MAX_DICT_BYTES / MAX_KEY_BYTES)
            .map(|i| format!("{stem}{i:03}"))
            .collect();
        let mut out = Vec::new();
        Dict::of(many.iter().map(String::as_str)).write(&mut out);
        assert!(out.len() < MAX_KEY_BYTES + 10 * many.len());
        assert!(keys(&out).is_err());
        let mut out = Vec::new();
        Dict::of(many[1..].iter().map(String::as_str)).write(&mut out);
        assert_eq!(keys(&out).map(|k| k.len()), Ok(many.len() - 1));
    }
}
