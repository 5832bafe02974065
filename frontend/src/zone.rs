//! Times of day in the viewer's time zone and locale.
//!
//! Contract: in the browser, times are formatted by `Intl.DateTimeFormat` (the viewer's
//! locale and zone) and the zone offset comes from `Date`; on the host (tests) times are
//! UTC and the offset is 0. Pure maths that needs the zone (time ticks) takes the offset
//! as an argument (see `chart`), so only this module asks the browser.

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
        let s = ms.rem_euclid(86_400_000) / 1000;
        if seconds {
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        } else {
            format!("{:02}:{:02}", s / 3600, s / 60 % 60)
        }
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

    #[test]
    fn host_times_of_day_are_utc() {
        let t = 1_795_515_330_123; // 2026-11-24T10:15:30.123Z
        assert_eq!(time_of_day(t, false), "10:15");
        assert_eq!(time_of_day(t, true), "10:15:30");
        assert_eq!(time_of_day(-1_000, true), "23:59:59");
        assert_eq!(offset_ms(), 0);
    }
}
