//! Pure time helpers: RFC 3339 timestamps, durations and API time parameters.
//!
//! Contract:
//! - All instants are epoch milliseconds (`i64`, UTC, negative before 1970).
//! - [`parse_rfc3339_ms`] accepts `YYYY-MM-DD(T|t| )HH:MM:SS[.f{1,9}](Z|z|±HH:MM)`,
//!   rejects impossible calendar dates and truncates sub-millisecond digits
//!   towards negative infinity (so the result is always the floor in ms).
//! - [`format_rfc3339_ms`] always produces `YYYY-MM-DDTHH:MM:SS.mmmZ`;
//!   `parse_rfc3339_ms(&format_rfc3339_ms(ms)) == Some(ms)` for every instant in
//!   years 0000–9999.
//! - The civil-date maths is Howard Hinnant's days-from-civil algorithm; there is
//!   no clock access here (the crate is pure and wasm-compatible).

const MS_PER_SEC: i64 = 1_000;
const MS_PER_MIN: i64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: i64 = 60 * MS_PER_MIN;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d`
/// (`m` in 1..=12, `d` in 1..=31; not validated here).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)` for a day number.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses exactly `n` ASCII digits at `b[at..at + n]`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn expect_byte(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
///
/// Accepts `T`/`t`/space as the date-time separator, `Z`/`z` or a `±HH:MM`
/// offset, and 0–9 fractional second digits (digits beyond milliseconds are
/// truncated). Returns `None` for anything malformed or for impossible dates
/// (month 13, February 30, hour 24, leap second 60, ...).
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    expect_byte(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect_byte(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    expect_byte(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect_byte(b, 16, b':')?;
    let second = digits(b, 17, 2)?;
    let mut pos = 19;
    let mut frac_ms = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            if pos - start < 3 {
                frac_ms = frac_ms * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
    }
    let offset_ms = match b.get(pos) {
        Some(b'Z' | b'z') => {
            pos += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, pos + 1, 2)?;
            expect_byte(b, pos + 3, b':')?;
            let om = digits(b, pos + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            pos += 6;
            let off = oh * MS_PER_HOUR + om * MS_PER_MIN;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    if pos != b.len() {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(
        days * MS_PER_DAY
            + hour * MS_PER_HOUR
            + minute * MS_PER_MIN
            + second * MS_PER_SEC
            + frac_ms
            - offset_ms,
    )
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
///
/// Years outside 0000–9999 (only reachable with absurd inputs) are written in
/// the ISO 8601 expanded form `±YYYYYY`; such strings do not parse back.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (hh, rem) = (rem / MS_PER_HOUR, rem % MS_PER_HOUR);
    let (mm, rem) = (rem / MS_PER_MIN, rem % MS_PER_MIN);
    let (ss, milli) = (rem / MS_PER_SEC, rem % MS_PER_SEC);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y:+07}")
    };
    format!("{year}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z")
}

/// Parses a duration such as `500ms`, `10s`, `5m`, `24h`, `1d` or a compound
/// like `1h30m` into milliseconds.
///
/// The result must be greater than zero; the only zero duration accepted is
/// the literal `0s`. Errors are human-readable and describe the expected format.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let expected = || {
        format!(
            "invalid duration {s:?}: expected a number followed by a unit \
             (ms, s, m, h or d), optionally compound, e.g. 500ms, 10s, 5m, 24h, 1d or 1h30m"
        )
    };
    if t == "0s" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err(expected());
    }
    let b = t.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let num_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == num_start {
            return Err(expected());
        }
        let n: i64 = t[num_start..i].parse().map_err(|_| expected())?;
        let unit_start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &t[unit_start..i] {
            "ms" => 1,
            "s" => MS_PER_SEC,
            "m" => MS_PER_MIN,
            "h" => MS_PER_HOUR,
            "d" => MS_PER_DAY,
            _ => return Err(expected()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration {s:?}: too large"))?;
    }
    if total <= 0 {
        return Err(format!(
            "invalid duration {s:?}: must be greater than zero (use \"0s\" for an explicit zero)"
        ));
    }
    Ok(total)
}

/// Formats milliseconds as [`parse_duration_ms`] reads them, largest units first:
/// `300000` → `5m`, `5400000` → `1h30m`, `1500` → `1s500ms`, `0` → `0s`. Negative
/// durations are formatted as their absolute value with a leading `-`.
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, name) in [
        (MS_PER_DAY as u64, "d"),
        (MS_PER_HOUR as u64, "h"),
        (MS_PER_MIN as u64, "m"),
        (MS_PER_SEC as u64, "s"),
        (1, "ms"),
    ] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// Parses an API time parameter: all digits (optionally with a leading `-`)
/// is epoch milliseconds, anything else is tried as RFC 3339.
///
/// As a convenience for unencoded query strings, where `+` in an offset has
/// been decoded to a space (`...T10:00:00 02:00`), that space is read as `+`.
pub fn parse_time_param(s: &str) -> Option<i64> {
    let digits_part = s.strip_prefix('-').unwrap_or(s);
    if !digits_part.is_empty() && digits_part.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse().ok();
    }
    if let Some(ms) = parse_rfc3339_ms(s) {
        return Some(ms);
    }
    let b = s.as_bytes();
    if b.len() >= 25 && b[b.len() - 6] == b' ' {
        let fixed = format!("{}+{}", &s[..s.len() - 6], &s[s.len() - 5..]);
        return parse_rfc3339_ms(&fixed);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_as_they_parse() {
        for (ms, s) in [
            (300_000, "5m"),
            (5_400_000, "1h30m"),
            (1_500, "1s500ms"),
            (0, "0s"),
            (86_400_000, "1d"),
            (-10_000, "-10s"),
        ] {
            assert_eq!(format_duration_ms(ms), s);
            if ms >= 0 {
                assert_eq!(parse_duration_ms(s), Ok(ms));
            }
        }
    }

    #[test]
    fn rfc3339_parses_utc_with_millis() {
        assert_eq!(
            parse_rfc3339_ms("2026-11-24T10:15:30.123Z"),
            Some(1_795_515_330_123)
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2000-01-01T00:00:00Z"),
            Some(946_684_800_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2100-01-01T00:00:00Z"),
            Some(4_102_444_800_000)
        );
    }

    #[test]
    fn rfc3339_applies_offsets() {
        let utc = parse_rfc3339_ms("2026-11-24T08:15:30Z");
        assert_eq!(parse_rfc3339_ms("2026-11-24T10:15:30+02:00"), utc);
        assert_eq!(parse_rfc3339_ms("2026-11-24T03:45:30-04:30"), utc);
        assert_eq!(parse_rfc3339_ms("2026-11-24T08:15:30-00:00"), utc);
        assert_eq!(parse_rfc3339_ms("2026-11-24t08:15:30z"), utc);
        assert_eq!(parse_rfc3339_ms("2026-11-24 08:15:30Z"), utc);
    }

    #[test]
    fn rfc3339_fraction_of_zero_to_nine_digits_truncates_to_ms() {
        let base = parse_rfc3339_ms("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00.5Z"), Some(base + 500));
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T00:00:00.12Z"),
            Some(base + 120)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T00:00:00.123999999Z"),
            Some(base + 123)
        );
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00.1234567890Z"), None);
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn rfc3339_handles_pre_1970_as_negative() {
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(
            parse_rfc3339_ms("1900-01-01T00:00:00Z"),
            Some(-2_208_988_800_000)
        );
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rfc3339_rejects_invalid_dates_and_garbage() {
        for s in [
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+2:00",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00Zjunk",
            "2026-01-01",
            "2026-1-01T00:00:00Z",
            "yesterday",
            "",
            "２０２６-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
        assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339_ms("2000-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn rfc3339_format_parse_round_trips() {
        for ms in [
            0,
            -1,
            1,
            999,
            1_795_515_330_123,
            -62_167_219_200_000, // 0000-01-01
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            951_782_400_000,     // 2000-02-29
        ] {
            let s = format_rfc3339_ms(ms);
            assert_eq!(parse_rfc3339_ms(&s), Some(ms), "{s}");
        }
        let mut ms = -86_400_000 * 800;
        while ms < 86_400_000 * 20_000 {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
            ms += 86_400_000 * 7 + 3_723_456;
        }
    }

    #[test]
    fn format_writes_extreme_values_in_expanded_years() {
        // The same instants as java.time's Instant.ofEpochMilli(Long.MAX_VALUE / MIN_VALUE).
        assert_eq!(
            format_rfc3339_ms(i64::MAX),
            "+292278994-08-17T07:12:55.807Z"
        );
        assert_eq!(
            format_rfc3339_ms(i64::MIN),
            "-292275055-05-16T16:47:04.192Z"
        );
        assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(i64::MAX)), None);
    }

    #[test]
    fn civil_conversion_is_inverse() {
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn durations_parse_simple_and_compound() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("1m30s250ms"), Ok(90_250));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
    }

    #[test]
    fn durations_reject_zero_missing_units_and_garbage() {
        for s in [
            "", "0", "0ms", "0m", "10", "ms", "5x", "1.5s", "-5s", "5 s", "1h30", "h1",
        ] {
            let err = parse_duration_ms(s).expect_err(s);
            assert!(err.contains(s), "{err}");
        }
        let err = parse_duration_ms("abc").unwrap_err();
        assert!(err.contains("500ms") && err.contains("1h30m"), "{err}");
        assert!(parse_duration_ms("99999999999999999999d").is_err());
        assert!(parse_duration_ms("9999999999999999d").is_err());
    }

    #[test]
    fn time_param_accepts_epoch_ms_and_rfc3339() {
        assert_eq!(parse_time_param("1732443330123"), Some(1_732_443_330_123));
        assert_eq!(parse_time_param("-5"), Some(-5));
        assert_eq!(parse_time_param("0"), Some(0));
        assert_eq!(parse_time_param("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            parse_time_param("2026-11-24T10:15:30 02:00"),
            parse_rfc3339_ms("2026-11-24T10:15:30+02:00")
        );
        assert_eq!(parse_time_param("-"), None);
        assert_eq!(parse_time_param(""), None);
        assert_eq!(parse_time_param("12a"), None);
        assert_eq!(parse_time_param("99999999999999999999"), None);
    }
}
