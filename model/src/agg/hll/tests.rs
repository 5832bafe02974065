//! The guarantees of [`Hll`]: exact small counts, accuracy against exact counts, merge as
//! one pass (also across precisions), sparse and dense agreeing, bounded memory, and a
//! compact codec that refuses corrupt input.

use std::collections::HashSet;

use proptest::prelude::*;

use super::dense::dense_bytes;
use super::*;

fn hll_at(p: u8, range: std::ops::Range<u64>) -> Hll {
    let mut h = Hll::with_precision(p);
    for i in range {
        h.insert(&format!("visitor-{i}"));
    }
    h
}

fn hll_of(range: std::ops::Range<u64>) -> Hll {
    hll_at(HLL_PRECISION, range)
}

/// Relative standard error at precision `p`.
fn sigma(p: u8) -> f64 {
    1.04 / f64::from(1u32 << p).sqrt()
}

#[test]
fn hll_estimate_is_within_1_5_percent_from_1k_to_100k() {
    let mut h = Hll::new();
    let mut n = 0u64;
    for target in [
        1_000u64, 2_000, 3_000, 5_000, 7_500, 10_000, 20_000, 30_000, 50_000, 75_000, 100_000,
    ] {
        while n < target {
            h.insert(&format!("visitor-{n}"));
            n += 1;
        }
        let est = h.estimate() as f64;
        let err = (est - n as f64).abs() / n as f64;
        assert!(err <= 0.015, "n={n} est={est} err={err}");
    }
}

#[test]
fn hll_is_accurate_for_small_cardinalities() {
    for p in [HLL_PRECISION, HLL_SUB_PRECISION] {
        let mut h = Hll::with_precision(p);
        assert_eq!(h.estimate(), 0);
        assert!(h.is_empty());
        for n in 1..=2_000u64 {
            h.insert(&format!("u{n}"));
            h.insert(&format!("u{n}")); // duplicates do not count
            let est = h.estimate();
            // 1.5 % at p = 14 (as before); 3σ (4.9 %) at p = 12, once dense from 769.
            let rel = if p == HLL_PRECISION {
                0.015
            } else {
                3.0 * sigma(p)
            };
            let tol = ((n as f64) * rel).max(1.0);
            assert!(
                (est as f64 - n as f64).abs() <= tol,
                "p={p} n={n} est={est}"
            );
        }
        assert!(!h.is_empty());
    }
}

#[test]
fn hll_counts_small_sets_exactly() {
    // Register collisions made 38 visitors read as 37 (a 2.6 % error) in a window; the
    // sparse form counts small sets exactly, at every precision.
    for seed in 0..200u64 {
        let mut h = Hll::with_precision(if seed % 2 == 0 { 14 } else { 12 });
        for n in 1..=60u64 {
            h.insert(&format!("v-{seed}-{n}"));
            assert_eq!(h.estimate(), n, "seed={seed}");
        }
    }
    // And within one of exact up to the sparse limit of p = 14 (3,072 entries).
    for seed in 0..4u64 {
        let mut h = Hll::new();
        for n in 1..=3_072u64 {
            h.insert(&format!("w-{seed}-{n}"));
            assert!(h.estimate().abs_diff(n) <= 1, "seed={seed} n={n}");
        }
        assert!(h.is_sparse());
    }
}

#[test]
fn hll_is_within_4_sigma_of_an_exact_count_up_to_200k() {
    for p in [HLL_PRECISION, HLL_SUB_PRECISION] {
        for seed in 0..3u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut h = Hll::with_precision(p);
            let mut exact = HashSet::new();
            for target in [10usize, 100, 1_000, 5_000, 20_000, 60_000, 200_000] {
                while exact.len() < target {
                    // A third are repeats of earlier items.
                    let id = rng.u64(0..(target as u64 * 3 / 2));
                    h.insert(&format!("s{seed}-{id}"));
                    exact.insert(id);
                }
                let n = exact.len() as f64;
                let err = (h.estimate() as f64 - n).abs() / n;
                assert!(err <= 4.0 * sigma(p), "p={p} seed={seed} n={n} err={err}");
            }
        }
    }
}

#[test]
fn hll_merge_equals_inserting_everything() {
    for p in [HLL_PRECISION, HLL_SUB_PRECISION] {
        for (a, b) in [
            (0..100, 50..300),
            (0..2_000, 1_000..2_500),
            (0..5_000, 2_000..40_000),
            (0..10, 0..20_000),
        ] {
            let mut m = hll_at(p, a.clone());
            m.merge(&hll_at(p, b.clone()));
            let all = hll_at(p, a.start.min(b.start)..a.end.max(b.end));
            assert_eq!(m, all);
            assert_eq!(m.is_sparse(), all.is_sparse());
            assert_eq!(m.estimate(), all.estimate());
            let mut m2 = hll_at(p, b);
            m2.merge(&hll_at(p, a));
            assert_eq!(m2, all);
        }
    }
}

#[test]
fn hll_sparse_holds_the_same_registers_as_dense() {
    for n in [0u64, 1, 10, 100, 400, 512, 3_072] {
        let sparse = hll_of(0..n);
        assert!(sparse.is_sparse(), "n={n}");
        let mut dense = sparse.clone();
        dense.densify();
        assert!(!dense.is_sparse());
        let tol = ((n as f64) * 0.015).max(1.0);
        for h in [&sparse, &dense] {
            let est = h.estimate() as f64;
            assert!((est - n as f64).abs() <= tol, "n={n} {est}");
        }
        assert_eq!(sparse, dense);
        assert_eq!(dense, sparse);
        // merging sparse into dense and dense into sparse agree too
        let mut a = hll_of(n..2 * n + 5);
        a.merge(&dense);
        let mut b = hll_of(n..2 * n + 5);
        b.densify();
        b.merge(&sparse);
        assert_eq!(a, b);
        assert_eq!(a.estimate(), b.estimate());
        // and so do the sketches folded to a lower precision
        let (mut s12, mut d12) = (sparse.clone(), dense.clone());
        s12.fold_to(12);
        d12.fold_to(12);
        assert_eq!(s12, d12);
        assert_eq!(s12, hll_at(12, 0..n));
    }
    assert!(!hll_of(0..3_200).is_sparse());
    assert!(!hll_at(12, 0..800).is_sparse());
}

#[test]
fn hll_memory_is_bounded_by_the_dense_registers() {
    for p in [4u8, 10, HLL_SUB_PRECISION, HLL_PRECISION] {
        let mut h = Hll::with_precision(p);
        for i in 0..(1u64 << p) * 8 {
            h.insert(&format!("m{i}"));
            assert!(h.heap_bytes() <= dense_bytes(p), "p={p} i={i}");
        }
        assert_eq!(h.heap_bytes(), dense_bytes(p));
        let mut merged = hll_at(p, 0..(1 << p));
        merged.merge(&h);
        assert_eq!(merged.heap_bytes(), dense_bytes(p));
    }
    assert_eq!(std::mem::size_of::<Hll>(), 32, "inline: as before");
    assert_eq!(dense_bytes(14), 12_288);
    assert_eq!(dense_bytes(12), 3_072);
    assert_eq!(Hll::new().heap_bytes(), 0);
}

#[test]
fn hll_encodes_compactly_and_round_trips() {
    for p in [HLL_SUB_PRECISION, HLL_PRECISION] {
        for n in [0u64, 1, 7, 30, 100, 300, 700, 1_000, 3_000, 10_000, 100_000] {
            let h = hll_at(p, 0..n);
            let mut bytes = Vec::new();
            h.encode(&mut bytes);
            assert_eq!(Hll::decode(&bytes), Ok((h.clone(), bytes.len())));
            // Self-delimiting: what follows is left alone.
            bytes.extend_from_slice(&[1, 2, 3]);
            assert_eq!(Hll::decode(&bytes).map(|d| d.1), Ok(bytes.len() - 3));
            let post = postcard::to_allocvec(&h).expect("postcard");
            let back: Hll = postcard::from_bytes(&post).expect("postcard");
            assert_eq!(back, h);
            assert_eq!(back.is_sparse(), h.is_sparse());
            assert_eq!(back.precision(), p);
            // Sparse: at most 4 bytes an entry, 2.6 from 100 on (Rice-coded steps, the
            // ranks that do not count left out; the steps shrink as the list grows; by index
            // it was 3); dense: a byte a register, for the compression what is stored goes
            // through (the old form took ~5 bytes a hash, and 16,384 bytes dense).
            let len = bytes.len() - 3;
            if h.is_sparse() {
                let tenths = if n >= 100 { 26 } else { 40 };
                assert!(10 * len <= 20 + tenths * n as usize, "p={p} n={n}: {len}");
            } else {
                assert_eq!(len, 1 + (1 << p), "p={p} n={n}");
            }
            assert!(post.len() <= len + 3, "p={p} n={n}: {}", post.len());
            assert!(h.heap_bytes() <= (4 * n as usize).next_power_of_two().max(16));
        }
    }
    assert_eq!(
        postcard::to_allocvec(&Hll::new()).expect("postcard").len(),
        2
    );
}

#[test]
fn hll_decoding_refuses_corrupt_input() {
    let sparse = hll_of(0..100);
    let dense = hll_of(0..5_000);
    let enc = |h: &Hll| {
        let mut b = Vec::new();
        h.encode(&mut b);
        b
    };
    let (s, d) = (enc(&sparse), enc(&dense));
    let bad = |b: &[u8]| Hll::decode(b).expect_err(&format!("{:x?}", &b[..b.len().min(8)]));
    assert_eq!(bad(&[]), HllError::Truncated);
    assert_eq!(bad(&[0xe0 | 14]), HllError::Tag(0xe0 | 14));
    assert_eq!(bad(&[0x80 | 14]), HllError::Truncated);
    assert_eq!(bad(&[0x60 | 14]), HllError::Tag(0x60 | 14));
    assert_eq!(bad(&[3]), HllError::Precision(3));
    assert_eq!(bad(&[19]), HllError::Precision(19));
    assert_eq!(bad(&s[..s.len() - 1]), HllError::Truncated);
    assert_eq!(bad(&d[..d.len() - 1]), HllError::Truncated);
    assert!(matches!(
        bad(&[0x20 | 14, 0]),
        HllError::Size { count: 0, .. }
    ));
    assert!(matches!(
        bad(&[0x20 | 4, 4, 0x41, 0x40, 0x40, 0x40]),
        HllError::Size { .. }
    ));
    // rank 0, rank 41, a repeated index, an index going back (a delta of 2^32 − 64)
    assert!(matches!(bad(&[0x20 | 14, 1, 0x40]), HllError::Entry(0x40)));
    assert!(matches!(bad(&[0x20 | 14, 1, 41]), HllError::Entry(41)));
    assert!(matches!(
        bad(&[0x20 | 14, 2, 0x41, 1]),
        HllError::Entry(0x42)
    ));
    assert!(matches!(
        bad(&[0x20 | 14, 2, 0xc1, 0, 0xc0, 0xff, 0xff, 0xff, 0x0f]),
        HllError::Entry(_)
    ));
    assert_eq!(
        bad(&[0x20 | 14, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        HllError::Varint
    );
    let mut high = d.clone();
    high[1] = 0x3f; // register 0 = 63 > 51
    assert_eq!(
        bad(&high),
        HllError::Register {
            index: 0,
            value: 63
        }
    );
    // Trailing bytes inside a serde value are an error too.
    let mut post = postcard::to_allocvec(&sparse).expect("postcard");
    post[0] += 1;
    post.push(0);
    assert!(postcard::from_bytes::<Hll>(&post).is_err());
    // Arbitrary damage never panics, and whatever decodes is a valid sketch.
    let mut rng = fastrand::Rng::with_seed(9);
    for _ in 0..3_000 {
        let mut b = if rng.bool() { s.clone() } else { d.clone() };
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(0..b.len());
            b[i] = rng.u8(..);
        }
        b.truncate(rng.usize(0..=b.len()));
        if let Ok((h, used)) = Hll::decode(&b) {
            assert!(used <= b.len());
            assert!(h.heap_bytes() <= dense_bytes(h.precision()));
            let _ = h.estimate();
            assert_eq!(Hll::decode(&enc(&h)), Ok((h.clone(), enc(&h).len())));
        }
    }
}

/// Items as hashes (any u64), split at `cuts`.
fn parts(items: &[u64], cuts: &[usize], p: u8) -> Vec<Hll> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (items.len() + 1)).collect();
    cuts.sort_unstable();
    let mut prev = 0;
    cuts.into_iter()
        .chain([items.len()])
        .map(|c| {
            let mut h = Hll::with_precision(p);
            items[prev..c].iter().for_each(|&x| h.insert_hash(x));
            prev = c;
            h
        })
        .collect()
}

fn one_pass(items: &[u64], p: u8) -> Hll {
    parts(items, &[], p).remove(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_of_any_split_is_one_pass(
        items in prop::collection::vec(any::<u64>(), 0..1_500),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        p in 4u8..=12,
        seed in any::<u64>(),
    ) {
        let mut ps = parts(&items, &cuts, p);
        let mut rng = fastrand::Rng::with_seed(seed);
        while ps.len() > 1 {
            let b = ps.swap_remove(rng.usize(0..ps.len()));
            let j = rng.usize(0..ps.len());
            ps[j].merge(&b);
        }
        let all = one_pass(&items, p);
        prop_assert_eq!(&ps[0], &all);
        prop_assert_eq!(ps[0].is_sparse(), all.is_sparse());
        prop_assert_eq!(ps[0].estimate(), all.estimate());
    }

    #[test]
    fn merge_is_commutative_and_associative_across_precisions(
        a in prop::collection::vec(any::<u64>(), 0..800),
        b in prop::collection::vec(any::<u64>(), 0..800),
        c in prop::collection::vec(any::<u64>(), 0..800),
        pa in 4u8..=14, pb in 4u8..=14, pc in 4u8..=14,
    ) {
        let (x, y, z) = (one_pass(&a, pa), one_pass(&b, pb), one_pass(&c, pc));
        let m = |l: &Hll, r: &Hll| {
            let mut o = l.clone();
            o.merge(r);
            o
        };
        prop_assert_eq!(m(&x, &y), m(&y, &x));
        let left = m(&m(&x, &y), &z);
        prop_assert_eq!(&left, &m(&x, &m(&y, &z)));
        // What the same items give in one pass at the lowest precision, in the same form.
        let all = one_pass(&[a, b, c].concat(), pa.min(pb).min(pc));
        prop_assert_eq!(left.is_sparse(), all.is_sparse());
        prop_assert_eq!(left.estimate(), all.estimate());
        prop_assert_eq!(left, all);
    }

    #[test]
    fn sparse_into_dense_and_dense_into_sparse_agree(
        a in prop::collection::vec(any::<u64>(), 0..300),
        b in prop::collection::vec(any::<u64>(), 0..300),
        pa in 4u8..=14, pb in 4u8..=14,
    ) {
        let (x, y) = (one_pass(&a, pa), one_pass(&b, pb));
        let (mut xd, mut yd) = (x.clone(), y.clone());
        xd.densify();
        yd.densify();
        let mut one = xd.clone();
        one.merge(&y);
        let mut two = x.clone();
        two.merge(&yd);
        let mut three = xd;
        three.merge(&yd);
        prop_assert_eq!(&one, &two);
        prop_assert_eq!(&one, &three);
        prop_assert_eq!(one.estimate(), three.estimate());
    }

}

proptest! {
    // A statistical bound (beyond 4σ about once in 16,000 cases): a fixed seed keeps the
    // cases, so the test cannot flake.
    #![proptest_config(ProptestConfig {
        cases: 16,
        rng_seed: proptest::test_runner::RngSeed::Fixed(14),
        ..ProptestConfig::default()
    })]

    #[test]
    fn estimate_is_within_4_sigma_of_an_exact_count(
        n in 1usize..200_000,
        seed in any::<u64>(),
        sub in any::<bool>(),
    ) {
        let p = if sub { HLL_SUB_PRECISION } else { HLL_PRECISION };
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut h = Hll::with_precision(p);
        let mut exact = HashSet::new();
        while exact.len() < n {
            let x = rng.u64(..) >> 20; // repeats are unlikely, but counted right
            h.insert_hash(xxhash_rust::xxh3::xxh3_64(&x.to_le_bytes()));
            exact.insert(x);
        }
        let err = (h.estimate() as f64 - n as f64).abs() / n as f64;
        prop_assert!(err <= 4.0 * sigma(p), "p={} n={} err={}", p, n, err);
    }
}

/// Measures the relative error against exact counts at p = 10..=14 (the table of the
/// module docs): `cargo test -p pulseboard-model --release --lib -- --ignored --nocapture
/// accuracy`.
#[test]
#[ignore = "a measurement: about a minute in release"]
fn accuracy() {
    const SEEDS: u64 = 1_000;
    let ps = [10u8, 11, 12, 13, 14];
    let ns = [10usize, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000];
    // Sums of squared relative errors, and the largest error seen, by (p, n).
    let mut sq = vec![vec![0.0f64; ns.len()]; ps.len()];
    let mut worst = vec![vec![0.0f64; ns.len()]; ps.len()];
    for seed in 0..SEEDS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut sketches: Vec<Hll> = ps.iter().map(|&p| Hll::with_precision(p)).collect();
        let mut exact = HashSet::new();
        let mut seen = Vec::new();
        for (j, &n) in ns.iter().enumerate() {
            while exact.len() < n {
                // One in four is a repeat of an earlier item.
                let id = match seen.len() {
                    l if l > 0 && rng.u8(0..4) == 0 => seen[rng.usize(0..l)],
                    _ => rng.u64(..),
                };
                let h = xxhash_rust::xxh3::xxh3_64(&id.to_le_bytes());
                sketches.iter_mut().for_each(|s| s.insert_hash(h));
                if exact.insert(id) {
                    seen.push(id);
                }
            }
            for (i, s) in sketches.iter().enumerate() {
                let e = (s.estimate() as f64 - n as f64) / n as f64;
                sq[i][j] += e * e;
                worst[i][j] = f64::max(worst[i][j], e.abs());
            }
        }
    }
    println!("| p | σ theory | n = 100 | 300 | 1,000 | 3,000 | 10,000 | 30,000 | 100,000 | largest | sparse up to | dense bytes |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, &p) in ps.iter().enumerate() {
        let rms: Vec<String> = sq[i][2..]
            .iter()
            .map(|s| format!("{:.2} %", 100.0 * (s / SEEDS as f64).sqrt()))
            .collect();
        println!(
            "| {p} | {:.2} % | {} | {:.1} % | {} | {} |",
            100.0 * sigma(p),
            rms.join(" | "),
            100.0 * worst[i].iter().copied().fold(0.0, f64::max),
            max_sparse(p),
            dense_bytes(p)
        );
    }
}
