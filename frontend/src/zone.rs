//! Times of day in the viewer's time zone and locale.
//!
//! Contract: in the browser, times are formatted by `Intl.DateTimeFormat` (the viewer's
//! locale and zone) and the zone offset comes from `Date`; on the host (tests) the offset
//! is 0 and times are [`clock_time`] at that offset (24-hour `HH:MM[:SS]`). Pure maths that
//! needs the zone (time ticks, [`clock_time`]) takes the offset as an argument (see
//! `chart`), so only this module asks the browser.

/// One day, ms.
const DAY_MS: i64 = 86_400_000;

/// `ms` (epoch ms) as a 24-hour time of day (`14:05` or `14:05:30`) on a clock
/// `offset_ms` ahead of UTC (+3 600 000 for UTC+1, negative west of Greenwich). Pure:
/// what [`time_of_day`] shows off the browser; any `ms` and offset, without overflow.
pub fn clock_time(ms: i64, offset_ms: i64, seconds: bool) -> String {
    let s = (ms.rem_euclid(DAY_MS) + offset_ms.rem_euclid(DAY_MS)).rem_euclid(DAY_MS) / 1000;
    if seconds {
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 3600, s / 60 % 60)
    }
}

/// `ms` (epoch ms) as a date on a clock `offset_ms` ahead of UTC: `Mon 7` (weekday and day
/// of the month) when `with_weekday`, else `7 Dec` (day and month). Pure (English names),
/// so the axis of a week or a month reads the same on the host and in every browser.
pub fn calendar_day(ms: i64, offset_ms: i64, with_weekday: bool) -> String {
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.saturating_add(offset_ms).div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = WEEKDAYS[(days + 3).rem_euclid(7) as usize];
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    if with_weekday {
        format!("{weekday} {day}")
    } else {
        format!("{day} {}", MONTHS[(month - 1) as usize])
    }
}

/// `ms` as a local time of day (`14:05` or `14:05:30`), in the viewer's locale.
pub fn time_of_day(ms: i64, seconds: bool) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsValue;
        fn formatter(seconds: bool) -> js_sys::Intl::DateTimeFormat {
            let opts = js_sys::Object::new();
            let set = |k: &str, v: &str| {
                let _ = js_sys::Reflect::set(&opts, &JsValue::from_str(k), &JsValue::from_str(v));
            };
            set("hour", "2-digit");
            set("minute", "2-digit");
            if seconds {
                set("second", "2-digit");
            }
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &opts)
        }
        thread_local! {
            static HM: js_sys::Function = formatter(false).format();
            static HMS: js_sys::Function = formatter(true).format();
        }
        let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
        let f = |f: &js_sys::Function| {
            f.call1(&JsValue::NULL, &date)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
        };
        if seconds {
            HMS.with(f)
        } else {
            HM.with(f)
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        clock_time(ms, offset_ms(), seconds)
    }
}

/// Local time minus UTC, ms.
pub fn offset_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        -(js_sys::Date::new_0().get_timezone_offset() * 60_000.0) as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    #[test]
    fn clock_time_shifts_by_the_offset() {
        let t = 1_795_515_330_123; // 2026-11-24T10:15:30.123Z
        assert_eq!(clock_time(t, 0, false), "10:15");
        assert_eq!(
            clock_time(t, 0, true),
            "10:15:30",
            "milliseconds are cut, not rounded"
        );
        assert_eq!(clock_time(t, H, true), "11:15:30", "UTC+1");
        assert_eq!(clock_time(t, -5 * H, true), "05:15:30", "UTC-5");
        assert_eq!(clock_time(t, 5 * H + 30 * M, true), "15:45:30", "UTC+5:30");
        assert_eq!(clock_time(t, 5 * H + 45 * M, false), "16:00", "UTC+5:45");
        assert_eq!(
            clock_time(t, -(3 * H + 30 * M), true),
            "06:45:30",
            "UTC-3:30"
        );
    }

    #[test]
    fn calendar_days_name_the_weekday_and_the_date_in_the_zone() {
        let t = 1_796_212_800_000; // 2026-12-02T12:00:00Z, a Wednesday
        assert_eq!(calendar_day(t, 0, true), "Wed 2");
        assert_eq!(calendar_day(t, 0, false), "2 Dec");
        assert_eq!(
            calendar_day(t, 13 * H, true),
            "Thu 3",
            "UTC+13 is past midnight"
        );
        assert_eq!(
            calendar_day(t, -13 * H, false),
            "1 Dec",
            "UTC-13 is the day before"
        );
        assert_eq!(calendar_day(0, 0, true), "Thu 1");
        assert_eq!(
            calendar_day(951_782_400_000, 0, false),
            "29 Feb",
            "2000 was a leap year"
        );
        assert_eq!(calendar_day(-1, 0, false), "31 Dec");
    }

    #[test]
    fn clock_time_wraps_across_midnight() {
        let late = 1_795_563_000_000; // 2026-11-24T23:30:00Z
        assert_eq!(clock_time(late, H, true), "00:30:00");
        assert_eq!(clock_time(late, 14 * H, false), "13:30", "UTC+14");
        let early = 1_795_478_400_000 + 20 * M; // 2026-11-24T00:20:00Z
        assert_eq!(clock_time(early, -H, true), "23:20:00");
        assert_eq!(
            clock_time(early, -(9 * H + 30 * M), false),
            "14:50",
            "UTC-9:30"
        );
        assert_eq!(clock_time(-1_000, 0, true), "23:59:59", "before the epoch");
        assert_eq!(clock_time(-1_000, 2 * H, true), "01:59:59");
        assert_eq!(
            clock_time(i64::MAX, 14 * H, true),
            "21:12:55",
            "no overflow"
        );
        assert_eq!(clock_time(i64::MIN, -12 * H, true), "04:47:04");
    }
}
