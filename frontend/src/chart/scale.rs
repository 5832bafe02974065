//! Scales and count ticks: the linear map from data onto the box ([`Linear`]) and "nice"
//! ticks of 1, 2 or 5 × 10^k for a count axis from 0 ([`nice_ticks`]).
//!
//! Contract: pure functions of plain numbers, tested on the host.

/// A linear map from a domain interval onto a range interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Linear {
    /// Maps `domain.0 → range.0` and `domain.1 → range.1`. An empty domain maps everything
    /// to `range.0`.
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Linear {
            d0: domain.0,
            d1: domain.1,
            r0: range.0,
            r1: range.1,
        }
    }

    /// The image of `v` (not clamped: values outside the domain land outside the range).
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 || !span.is_finite() {
            return self.r0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }

    /// The domain value whose image is `r`.
    pub fn invert(&self, r: f64) -> f64 {
        let span = self.r1 - self.r0;
        if span == 0.0 || !span.is_finite() {
            return self.d0;
        }
        self.d0 + (r - self.r0) / span * (self.d1 - self.d0)
    }
}

/// A step of 1, 2 or 5 × 10^k that cuts `span` into about `target` pieces.
pub fn nice_step(span: f64, target: usize) -> f64 {
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powi(raw.log10().floor() as i32);
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks for a count axis starting at 0: `0, step, 2·step, …` up to the first tick at or
/// above `max`, with about `target` intervals. Counts are whole, so the step is at least 1.
/// The last tick is the axis maximum.
pub fn nice_ticks(max: f64, target: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = nice_step(max, target).max(1.0);
    let n = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::close;

    #[test]
    fn linear_maps_and_inverts() {
        let s = Linear::new((0.0, 100.0), (300.0, 0.0));
        assert!(close(s.map(0.0), 300.0));
        assert!(close(s.map(100.0), 0.0));
        assert!(close(s.map(25.0), 225.0));
        assert!(close(s.invert(225.0), 25.0));
        let flat = Linear::new((5.0, 5.0), (0.0, 10.0));
        assert_eq!(
            flat.map(7.0),
            0.0,
            "an empty domain does not divide by zero"
        );
    }

    #[test]
    fn nice_step_uses_1_2_5() {
        assert!(close(nice_step(100.0, 5), 20.0));
        assert!(close(nice_step(1234.0, 4), 500.0));
        assert!(close(nice_step(9.0, 10), 1.0));
        assert!(close(nice_step(0.7, 5), 0.2));
        assert!(close(nice_step(0.0, 5), 1.0));
    }

    #[test]
    fn nice_ticks_cover_the_maximum_from_zero() {
        assert_eq!(nice_ticks(95.0, 4), vec![0.0, 50.0, 100.0]);
        assert_eq!(
            nice_ticks(100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(nice_ticks(1234.0, 4), vec![0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(
            nice_ticks(0.0, 4),
            vec![0.0, 1.0],
            "an empty chart still has an axis"
        );
        assert_eq!(
            nice_ticks(3.0, 10),
            vec![0.0, 1.0, 2.0, 3.0],
            "counts tick by whole numbers"
        );
    }
}
