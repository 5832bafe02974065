//! Cardinality estimators of a [`super::Hll`]: linear counting over the 2^25 buckets of
//! the sparse form, and Ertl's improved estimator over dense registers.

use super::sparse::SPARSE_BITS;

/// Linear counting of `k` occupied out of 2^25 buckets: `m ln(m / (m − k))`. Exact in
/// practice for small sets (two items share a bucket with probability n²/2^26, and the
/// formula expects as many shared buckets as the set's size makes likely).
pub(super) fn linear_counting(k: usize) -> f64 {
    let m = f64::from(1u32 << SPARSE_BITS);
    -m * (-(k as f64) / m).ln_1p()
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_old = z;
        z += x * y;
        y += y;
        if z_old == z {
            return z;
        }
    }
}

/// Ertl's τ function (2017, Algorithm 6).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_old = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z_old == z {
            return z / 3.0;
        }
    }
}

/// Improved raw estimator from Ertl, "New cardinality estimation algorithms for
/// HyperLogLog sketches" (2017), given the histogram of the register values of 2^p
/// registers (`counts[k]`: registers of value k, for k in 0..=q + 1 with q = 64 − p).
pub(super) fn ertl_estimate(counts: &[u32], p: u8) -> f64 {
    let m = f64::from(1u32 << p);
    let q = 64 - usize::from(p);
    debug_assert_eq!(counts.len(), q + 2);
    let mut z = m * tau(1.0 - f64::from(counts[q + 1]) / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + f64::from(counts[k]));
    }
    z += m * sigma(f64::from(counts[0]) / m);
    if z.is_infinite() {
        return 0.0;
    }
    let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
    alpha_inf * m * m / z
}
