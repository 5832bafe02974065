//! The Rice-coded forms of the codec: they round-trip over random lists at every precision,
//! pick their parameter and the listing that take fewer bytes, read every form of earlier
//! releases, and refuse bad input without a panic.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::codec::by_index_len;
use super::rice::BitWriter;
use super::sparse::{index, is_valid, keeps_rank, normalized, rank};
use super::*;

/// A random valid sparse list of `n` entries at precision `p`: indices anywhere, at both
/// ends of the range, and on multiples of 2^13 (whose ranks count at every precision).
fn random_list(rng: &mut fastrand::Rng, p: u8, n: usize) -> Vec<u32> {
    let mut idx = BTreeSet::new();
    while idx.len() < n {
        idx.insert(match rng.u8(0..8) {
            0 => rng.u32(0..1 << 12) << 13,
            1 => [0, (1 << 25) - 1][rng.usize(0..2)],
            _ => rng.u32(0..1 << 25),
        });
    }
    idx.into_iter()
        .map(|i| normalized(i << 6 | rng.u32(1..=40), p))
        .collect()
}

fn sparse(p: u8, list: Vec<u32>) -> Hll {
    Hll {
        p,
        repr: Repr::Sparse(list),
    }
}

fn list(h: &Hll) -> &[u32] {
    match &h.repr {
        Repr::Sparse(l) => l,
        Repr::Dense(_) => panic!("sparse"),
    }
}

/// Whether `h` is a valid sketch: a sparse list sorted by index, of valid entries kept as
/// its precision keeps them, no longer than it keeps sparse.
fn is_valid_sketch(h: &Hll) -> bool {
    match &h.repr {
        Repr::Sparse(l) => {
            l.len() <= max_sparse(h.p)
                && l.iter().all(|&e| is_valid(e) && normalized(e, h.p) == e)
                && l.windows(2).all(|w| index(w[0]) < index(w[1]))
        }
        Repr::Dense(_) => true,
    }
}

fn rice_form(h: &Hll) -> Vec<u8> {
    super::rice::encode(h.p | 0x80, h.p, list(h))
}

fn against(h: &Hll, reference: &Hll) -> Vec<u8> {
    let mut out = Vec::new();
    h.encode_against(reference, &mut out);
    out
}

fn put(out: &mut Vec<u8>, v: u32) {
    super::codec::put_varint(out, v);
}

/// The forms earlier releases wrote, as they wrote them.
mod earlier {
    use super::*;

    /// Sparse, every entry whole (tag `p | 1 << 5`).
    pub(super) fn whole(h: &Hll) -> Vec<u8> {
        let mut out = vec![h.p | 0x20];
        put(&mut out, list(h).len() as u32);
        let mut prev = 0;
        for &e in list(h) {
            put(&mut out, e - prev);
            prev = e;
        }
        out
    }

    /// Sparse by index (tag `p | 0xa0`).
    pub(super) fn by_index(h: &Hll) -> Vec<u8> {
        let mut out = vec![h.p | 0xa0];
        put(&mut out, list(h).len() as u32);
        let mut prev = 0;
        for &e in list(h) {
            put(&mut out, index(e) - prev);
            prev = index(e);
            if keeps_rank(prev, h.p) {
                out.push(rank(e) as u8);
            }
        }
        out
    }

    /// Dense, packed 6 bits a register (tag `p | 2 << 5`), and a byte a register (`p |
    /// 0xc0`).
    pub(super) fn dense(h: &Hll) -> (Vec<u8>, Vec<u8>) {
        let regs: Vec<u8> = match &h.repr {
            Repr::Sparse(l) => registers_of(l, h.p).iter().collect(),
            Repr::Dense(r) => r.iter().collect(),
        };
        let mut packed = vec![h.p | 0x40];
        for g in regs.chunks(4) {
            let v = g
                .iter()
                .enumerate()
                .fold(0u32, |v, (k, &r)| v | u32::from(r) << (6 * k));
            packed.extend_from_slice(&v.to_le_bytes()[..3]);
        }
        (packed, [&[h.p | 0xc0][..], &regs].concat())
    }

    /// Against a reference, positions as varints (tag `p | 3 << 5`).
    pub(super) fn relative(h: &Hll, reference: &Hll) -> Vec<u8> {
        let (mine, theirs) = (list(h), list(reference));
        let mut out = vec![h.p | 0x60];
        put(&mut out, mine.len() as u32);
        let mut next = 0;
        for &e in mine {
            let pos = theirs.partition_point(|&t| index(t) < index(e));
            let own = theirs[pos] != e;
            put(&mut out, ((pos - next) as u32) << 1 | u32::from(own));
            if own {
                out.push(rank(e) as u8);
            }
            next = pos + 1;
        }
        out
    }
}

/// A subset of `reference`'s indices at precision `p`: each entry kept with probability
/// `keep` (one at least), some with a rank of their own where it counts at `p`.
fn subset(rng: &mut fastrand::Rng, reference: &Hll, p: u8, keep: f64) -> Hll {
    let theirs = list(reference);
    let mut mine: Vec<u32> = theirs
        .iter()
        .filter(|_| rng.f64() < keep)
        .map(|&t| normalized(t, p))
        .collect();
    if mine.is_empty() {
        mine.push(normalized(theirs[rng.usize(0..theirs.len())], p));
    }
    mine.truncate(max_sparse(p));
    for e in &mut mine {
        if keeps_rank(index(*e), p) && rng.u8(0..3) == 0 {
            *e = index(*e) << 6 | rng.u32(1..=40);
        }
    }
    sparse(p, mine)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_rice_form_round_trips_at_every_size_and_precision(
        p in prop::sample::select(vec![4u8, 8, 10, 12, 12, 14, 14, 16]),
        fill in 0.0f64..=1.0,
        small in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let most = max_sparse(p);
        let n = if small { 1 + (fill * 10.0) as usize } else { 1 + (fill * (most - 1) as f64) as usize };
        let h = sparse(p, random_list(&mut rng, p, n.min(most)));
        let rice = rice_form(&h);
        prop_assert_eq!(Hll::decode(&rice), Ok((h.clone(), rice.len())));
        // What `encode` writes: the Rice form, or the form by index when that is shorter.
        let mut enc = Vec::new();
        h.encode(&mut enc);
        let by_index = earlier::by_index(&h);
        prop_assert_eq!(by_index.len(), by_index_len(p, list(&h)));
        prop_assert_eq!(&enc, if rice.len() <= by_index.len() { &rice } else { &by_index });
        prop_assert_eq!(Hll::decode(&enc), Ok((h.clone(), enc.len())));
        // Every form of earlier releases still reads.
        let (packed, bytes) = earlier::dense(&h);
        for old in [earlier::whole(&h), by_index, packed, bytes] {
            prop_assert_eq!(Hll::decode(&old).map(|d| d.0), Ok(h.clone()));
        }
    }

    #[test]
    fn the_relative_rice_form_round_trips_for_any_subset(
        pr in prop::sample::select(vec![12u8, 14]),
        p in prop::sample::select(vec![12u8, 14]),
        n in 1usize..=768,
        keep in prop::sample::select(vec![0.0f64, 0.02, 0.2, 0.5, 0.9, 0.97, 1.0]),
        seed in any::<u64>(),
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let reference = sparse(pr, random_list(&mut rng, pr, n));
        let sub = subset(&mut rng, &reference, p, keep);
        let out = against(&sub, &reference);
        prop_assert_eq!(out[0], p | 0xe0);
        prop_assert_eq!(Hll::decode_against(&out, &reference), Ok((sub.clone(), out.len())));
        // The earlier form of the same sketch reads the same.
        let old = earlier::relative(&sub, &reference);
        prop_assert_eq!(Hll::decode_against(&old, &reference), Ok((sub.clone(), old.len())));
        // Listing the missing entries when most are in.
        let flags = out[if list(&sub).len() < 128 { 2 } else { 3 }];
        if keep >= 0.97 && n >= 100 {
            prop_assert_eq!(flags, 1);
        }
        if keep <= 0.2 && n >= 50 {
            prop_assert_eq!(flags, 0);
        }
    }
}

#[test]
fn a_sub_aggregate_of_most_visitors_lists_the_few_it_lacks() {
    let mut rng = fastrand::Rng::with_seed(575);
    let window = sparse(14, random_list(&mut rng, 14, 575));
    let mut mine = list(&window).to_vec();
    for _ in 0..20 {
        mine.remove(rng.usize(0..mine.len()));
    }
    let sub = sparse(14, mine);
    let out = against(&sub, &window);
    assert_eq!(
        out[..4],
        [14 | 0xe0, 0xab, 0x04, 1],
        "555 entries: those not in it listed"
    );
    assert!(out.len() < 30, "{} bytes", out.len());
    assert_eq!(
        Hll::decode_against(&out, &window),
        Ok((sub.clone(), out.len()))
    );
    // Half of them: the positions of the sketch's own, about two bits each.
    let half = sparse(14, list(&window).iter().copied().step_by(2).collect());
    let out = against(&half, &window);
    assert_eq!(out[3], 0);
    assert!(out.len() < 5 + 288 * 2 / 8 + 2, "{} bytes", out.len());
    assert_eq!(Hll::decode_against(&out, &window), Ok((half, out.len())));
    // Not a subset, dense, or against a dense reference: the sketch's own form.
    let mut other = window.clone();
    other.insert("not in the window");
    let dense = hll_of_many(20_000);
    for (h, r) in [(&other, &window), (&dense, &window), (&sub, &dense)] {
        let mut own = Vec::new();
        h.encode(&mut own);
        assert_eq!(against(h, r), own);
        assert_eq!(Hll::decode_against(&own, r), Ok((h.clone(), own.len())));
    }
    // The largest sketch of the largest precision.
    let big = sparse(18, random_list(&mut rng, 18, max_sparse(18)));
    let rice = rice_form(&big);
    assert_eq!(Hll::decode(&rice), Ok((big, rice.len())));
}

fn hll_of_many(n: u64) -> Hll {
    let mut h = Hll::new();
    (0..n).for_each(|i| h.insert(&format!("d{i}")));
    assert!(!h.is_sparse());
    h
}

/// A Rice-coded sparse sketch made by hand: `p`, count, `k`, then what `write` puts in the
/// stream.
fn hand_made(p: u8, count: u32, k: u8, write: impl FnOnce(&mut BitWriter<'_>)) -> Vec<u8> {
    let mut out = vec![p | 0x80];
    put(&mut out, count);
    out.push(k);
    let mut w = BitWriter::new(&mut out);
    write(&mut w);
    w.finish();
    out
}

#[test]
fn a_bad_rice_form_is_an_error() {
    let bad = |b: &[u8]| Hll::decode(b).expect_err(&format!("{b:x?}"));
    let good = hand_made(14, 2, 3, |w| {
        w.rice(5, 3);
        w.rice(9, 3);
    });
    assert_eq!(Hll::decode(&good).map(|d| d.1), Ok(good.len()));
    for cut in 1..good.len() {
        assert_eq!(bad(&good[..cut]), HllError::Truncated, "cut at {cut}");
    }
    assert_eq!(bad(&hand_made(14, 1, 25, |_| {})), HllError::Rice(25));
    assert!(matches!(
        bad(&hand_made(14, 0, 3, |_| {})),
        HllError::Size { count: 0, .. }
    ));
    assert!(matches!(
        bad(&hand_made(12, 769, 3, |_| {})),
        HllError::Size { count: 769, .. }
    ));
    // A count the stream cannot hold (each entry takes 1 + k bits at least).
    assert_eq!(
        bad(&hand_made(14, 100, 20, |w| w.rice(1, 20))),
        HllError::Truncated
    );
    // An overlong unary run: an error as soon as it passes 2^25, though more follows.
    let ones = hand_made(14, 1, 20, |w| (0..8).for_each(|_| w.bits(u32::MAX, 32)));
    assert!(matches!(bad(&ones), HllError::Entry(_)));
    let ones = hand_made(14, 1, 0, |w| (0..8).for_each(|_| w.bits(u32::MAX, 32)));
    assert_eq!(bad(&ones), HllError::Truncated);
    // The largest index, then one more; a step of 0 (a repeated index).
    let last = (1 << 25) - 1;
    let ok = hand_made(14, 1, 24, |w| w.rice(last, 24));
    assert_eq!(
        list(&Hll::decode(&ok).expect("2^25 − 1").0),
        [last << 6 | 1]
    );
    let past = hand_made(14, 2, 24, |w| {
        w.rice(last, 24);
        w.rice(1, 24);
    });
    assert!(matches!(bad(&past), HllError::Entry(_)));
    let again = hand_made(14, 2, 3, |w| {
        w.rice(5, 3);
        w.rice(0, 3);
    });
    assert!(matches!(bad(&again), HllError::Entry(_)));
    // Ranks 0 and 41 where the rank counts (index 0 at p = 14).
    for r in [0, 41] {
        let rank = hand_made(14, 1, 0, |w| {
            w.rice(0, 0);
            w.bits(r, 6);
        });
        assert!(matches!(bad(&rank), HllError::Entry(_)), "rank {r}");
    }
    // Nonzero padding.
    let mut padded = good.clone();
    *padded.last_mut().expect("a byte") |= 0x80;
    assert_eq!(bad(&padded), HllError::Padding);
}

#[test]
fn a_bad_relative_rice_form_is_an_error() {
    let mut rng = fastrand::Rng::with_seed(8);
    let window = sparse(12, random_list(&mut rng, 12, 300));
    // A third of the window, and one own rank (at an index whose rank counts at p = 12).
    let t = *list(&window)
        .iter()
        .find(|&&t| keeps_rank(index(t), 12))
        .expect("an index on a multiple of 2^13");
    let mut mine: Vec<u32> = list(&window).iter().copied().step_by(3).collect();
    mine.retain(|&e| index(e) != index(t));
    mine.push(index(t) << 6 | (rank(t) % 40 + 1));
    mine.sort_unstable();
    let n = mine.len();
    assert!(n < 128);
    let sub = sparse(12, mine);
    let good = against(&sub, &window);
    assert_eq!(
        Hll::decode_against(&good, &window),
        Ok((sub.clone(), good.len()))
    );
    let bad = |b: &[u8]| Hll::decode_against(b, &window).expect_err(&format!("{b:x?}"));
    for cut in 1..good.len() {
        assert_eq!(bad(&good[..cut]), HllError::Truncated, "cut at {cut}");
    }
    let with = |i: usize, v: u8| {
        let mut b = good.clone();
        b[i] = v;
        b
    };
    assert_eq!(bad(&with(2, 2)), HllError::Flags(2));
    assert_eq!(bad(&with(3, 25)), HllError::Rice(25));
    // The own rank: one (count, ordinal, rank byte last). Its rank the same as the
    // reference's, above 40, above 63 (which would spill into the index) or 0; its ordinal
    // past the sketch.
    let last = good.len() - 1;
    assert_eq!(good[last - 2], 1, "one own rank");
    for r in [rank(t) as u8, 41, 64 + rank(t) as u8, 0] {
        assert!(
            matches!(bad(&with(last, r)), HllError::Entry(_)),
            "rank {r}"
        );
    }
    assert!(matches!(bad(&with(last - 1, n as u8)), HllError::Entry(_)));
    // Two own ranks, the second at a step of 0 from the first.
    let mut twice = good[..last - 2].to_vec();
    twice.extend_from_slice(&[2, good[last - 1], good[last], 0, good[last]]);
    assert!(matches!(bad(&twice), HllError::Entry(_)));
    // A count above the reference's; a position past it; a dense reference.
    assert!(matches!(
        Hll::decode_against(&good, &sparse(12, list(&window)[..5].to_vec())),
        Err(HllError::Size { .. })
    ));
    let short = sparse(12, list(&window)[..list(&window).len() / 2].to_vec());
    assert!(Hll::decode_against(&good, &short).is_err());
    assert!(matches!(
        Hll::decode_against(&good, &hll_of_many(20_000)),
        Err(HllError::Tag(_))
    ));
    // Against a reference of p = 14, an entry of p = 12 whose rank counts at 14 only: its
    // own rank is 1. Another own rank, or none (the reference's), is not how p = 12 keeps
    // it.
    let reference = sparse(14, vec![2048 << 6 | 5, 4096 << 6 | 1]);
    let sub = sparse(12, vec![2048 << 6 | 1]);
    let good = against(&sub, &reference);
    assert_eq!(good[good.len() - 3..], [1, 0, 1]);
    assert_eq!(
        Hll::decode_against(&good, &reference),
        Ok((sub, good.len()))
    );
    let mut other = good.clone();
    *other.last_mut().expect("a byte") = 7;
    let mut none = good[..good.len() - 3].to_vec();
    none.push(0);
    for b in [other, none] {
        let got = Hll::decode_against(&b, &reference);
        assert!(matches!(got, Err(HllError::Entry(_))), "{got:?}");
    }
}

#[test]
fn damaged_rice_forms_never_panic_and_decode_to_valid_sketches() {
    let mut rng = fastrand::Rng::with_seed(25);
    let window = sparse(14, random_list(&mut rng, 14, 600));
    let sub = subset(&mut rng, &window, 12, 0.4);
    let most = subset(&mut rng, &window, 14, 0.97);
    let forms = [
        rice_form(&window),
        against(&sub, &window),
        against(&most, &window),
    ];
    for _ in 0..4_000 {
        let mut b = forms[rng.usize(0..forms.len())].clone();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(0..b.len());
            b[i] = rng.u8(..);
        }
        b.truncate(rng.usize(0..=b.len()));
        if let Ok((h, used)) = Hll::decode_against(&b, &window) {
            assert!(used <= b.len());
            assert!(is_valid_sketch(&h), "{b:x?}");
        }
        if let Ok((h, used)) = Hll::decode(&b) {
            assert!(used <= b.len());
            assert!(is_valid_sketch(&h), "{b:x?}");
        }
    }
}
