//! Numbers and durations for people.
//!
//! Contract: pure functions of their arguments (no clock, no locale), so they are tested on
//! the host. Times of day are *not* formatted here: they depend on the viewer's time zone
//! and locale and are left to the browser (`Intl`, see `zone`).
//!
//! - [`compact`]: `950`, `1.2k`, `12.3k`, `123k`, `1.2M`, `3.4B` — at most three significant
//!   digits and never "1000k" (that is `1M`).
//! - [`grouped`]: `12,345,678` — the exact figure with thousands separators.
//! - [`rate`]: `0.4/s`, `12/s`, `1.5k/s`.
//! - [`ago`]: `3 s ago`, `2 min ago`, `5 h ago`, `2 d ago`.
//! - [`span`]: a length of time in its largest whole unit: `10 s`, `5 min`, `2 h`.
//! - [`share`]: a part of a whole as a percentage in `0..=100`, for bar widths.
//! - [`ellipsize`]: cut long keys (URLs, referrers) to a number of characters.
//! - [`percent`]: a rate in `0..=1` as `4.2%` (`0.05%`, `100%`).

/// A count in at most three significant digits with a `k`/`M`/`B`/`T` suffix.
pub fn compact(n: u64) -> String {
    if n < 1_000 {
        return n.to_string();
    }
    const UNITS: [(f64, &str); 4] = [(1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")];
    let mut i = 0;
    loop {
        let (unit, suffix) = UNITS[i];
        let v = n as f64 / unit;
        let last = i + 1 == UNITS.len();
        if v < 99.95 {
            let s = format!("{v:.1}");
            let s = s.strip_suffix(".0").unwrap_or(&s);
            return format!("{s}{suffix}");
        }
        let r = v.round();
        if r < 1000.0 || last {
            return format!("{r:.0}{suffix}");
        }
        i += 1;
    }
}

/// The exact count with `,` between groups of three digits.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A per-second rate: one decimal below 10, whole numbers below 1000, compact above.
pub fn rate(per_sec: f64) -> String {
    let v = if per_sec.is_finite() {
        per_sec.max(0.0)
    } else {
        0.0
    };
    if v < 9.95 {
        let s = format!("{v:.1}");
        let s = s.strip_suffix(".0").unwrap_or(&s).to_owned();
        format!("{s}/s")
    } else if v < 999.5 {
        format!("{v:.0}/s")
    } else {
        format!("{}/s", compact(v.round() as u64))
    }
}

/// How long ago something happened, from the elapsed milliseconds (negative counts as 0).
pub fn ago(elapsed_ms: f64) -> String {
    let secs = if elapsed_ms.is_finite() {
        (elapsed_ms.max(0.0) / 1000.0).floor() as u64
    } else {
        0
    };
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3_599 => format!("{} min ago", secs / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A length of time (a window, a bar) in the largest unit it is a whole number of:
/// `10 s`, `5 min`, `2 h`.
pub fn span(ms: i64) -> String {
    match ms {
        m if m % 3_600_000 == 0 => format!("{} h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{} min", m / 60_000),
        m => format!("{} s", m / 1000),
    }
}

/// `part / whole` as a percentage clamped to `0..=100` (0 when `whole` is 0).
pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A rate in `0..=1` as a percentage: one decimal from 1 %, two below, none at 100 %.
pub fn percent(rate: f64) -> String {
    let p = if rate.is_finite() {
        rate.clamp(0.0, 1.0) * 100.0
    } else {
        0.0
    };
    if p >= 99.95 {
        "100%".to_owned()
    } else if p >= 0.995 || p == 0.0 {
        let s = format!("{p:.1}");
        format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
    } else {
        format!("{p:.2}%")
    }
}

/// A percent change for people: `+12.5%`, `−3.0%` (a real minus sign), `±0%`.
pub fn percent_change(p: f64) -> String {
    if !p.is_finite() {
        return "—".to_owned();
    }
    if p.abs() < 0.05 {
        return "±0%".to_owned();
    }
    let sign = if p > 0.0 { "+" } else { "\u{2212}" };
    format!("{sign}{:.1}%", p.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_well() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0423), "4.2%");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(0.0005), "0.05%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(7.0), "100%");
        assert_eq!(percent(f64::NAN), "0%");
    }

    #[test]
    fn compact_keeps_three_significant_digits() {
        assert_eq!(compact(0), "0");
        assert_eq!(compact(950), "950");
        assert_eq!(compact(999), "999");
        assert_eq!(compact(1_000), "1k");
        assert_eq!(compact(1_234), "1.2k");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(123_456), "123k");
        assert_eq!(compact(1_234_567), "1.2M");
        assert_eq!(compact(3_400_000_000), "3.4B");
        assert_eq!(compact(7_000_000_000_000), "7T");
    }

    #[test]
    fn compact_rounds_up_into_the_next_unit_instead_of_showing_1000k() {
        assert_eq!(compact(99_960), "100k");
        assert_eq!(compact(999_499), "999k");
        assert_eq!(compact(999_999), "1M");
        assert_eq!(compact(999_999_999), "1B");
        assert_eq!(compact(u64::MAX), "18446744T");
    }

    #[test]
    fn grouped_separates_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(12_345_678), "12,345,678");
        assert_eq!(grouped(123_456), "123,456");
    }

    #[test]
    fn rate_scales_its_precision() {
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(rate(0.44), "0.4/s");
        assert_eq!(rate(3.0), "3/s");
        assert_eq!(rate(12.4), "12/s");
        assert_eq!(rate(999.0), "999/s");
        assert_eq!(rate(1_520.0), "1.5k/s");
        assert_eq!(rate(f64::NAN), "0/s");
        assert_eq!(rate(-5.0), "0/s");
    }

    #[test]
    fn ago_reads_naturally() {
        assert_eq!(ago(0.0), "0 s ago");
        assert_eq!(
            ago(-500.0),
            "0 s ago",
            "clock skew never shows a negative age"
        );
        assert_eq!(ago(3_400.0), "3 s ago");
        assert_eq!(ago(59_999.0), "59 s ago");
        assert_eq!(ago(60_000.0), "1 min ago");
        assert_eq!(ago(3_599_000.0), "59 min ago");
        assert_eq!(ago(7_200_000.0), "2 h ago");
        assert_eq!(ago(2.5 * 86_400_000.0), "2 d ago");
    }

    #[test]
    fn spans_use_the_largest_whole_unit() {
        assert_eq!(span(10_000), "10 s");
        assert_eq!(span(300_000), "5 min");
        assert_eq!(span(7_200_000), "2 h");
    }

    #[test]
    fn share_is_a_clamped_percentage() {
        assert_eq!(share(1, 4), 25.0);
        assert_eq!(share(5, 0), 0.0);
        assert_eq!(share(9, 3), 100.0);
    }

    #[test]
    fn ellipsize_counts_characters_not_bytes() {
        assert_eq!(ellipsize("/pricing", 20), "/pricing");
        assert_eq!(ellipsize("/abcdef", 4), "/ab…");
        assert_eq!(ellipsize("ääääää", 3), "ää…");
    }

    #[test]
    fn percent_changes_carry_their_sign() {
        assert_eq!(percent_change(12.46), "+12.5%");
        assert_eq!(percent_change(-3.0), "\u{2212}3.0%");
        assert_eq!(percent_change(0.01), "±0%");
        assert_eq!(percent_change(f64::NAN), "—");
    }
}
