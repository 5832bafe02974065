//! The checks both decoding paths share: the fields as found ([`Fields`]) are validated
//! and written into the event.
//!
//! Contract: per field in the order type, visitor, session, url, referrer, country, device, site:
//! a required field (visitor, url) missing, null or empty is
//! [`DeadReason::MissingField`]; a field longer than [`MAX_FIELD_BYTES`] is
//! [`DeadReason::Oversized`]; an empty optional field is absent and an empty type is
//! `pageview`. Then the timestamp: epoch ms (a whole number) or RFC 3339, or the message
//! timestamp when the payload has none; one outside 2000-01-01..2100-01-01, unreadable or
//! missing altogether is [`DeadReason::BadTimestamp`].

use std::borrow::Cow;

use super::DecodeError;
use crate::event::{DeadReason, Event, MAX_EVENT_TS, MAX_FIELD_BYTES, MIN_EVENT_TS};
use crate::mapping::Field;
use crate::time::parse_rfc3339_ms;

/// The timestamp as found in a payload.
pub(super) enum TsIn<'a> {
    Missing,
    Int(i64),
    Float(f64),
    Str(&'a str),
}

/// A payload's fields as found (by either path), before validation.
pub(super) struct Fields<'a> {
    pub(super) ts: TsIn<'a>,
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) visitor: Option<&'a str>,
    pub(super) session: Option<&'a str>,
    pub(super) url: Option<&'a str>,
    pub(super) referrer: Option<&'a str>,
    pub(super) country: Option<&'a str>,
    pub(super) device: Option<&'a str>,
    pub(super) site: Option<&'a str>,
}

fn snippet(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn check_len(field: Field, s: &str) -> Result<(), DecodeError> {
    if s.len() > MAX_FIELD_BYTES {
        return Err(DecodeError::new(
            DeadReason::Oversized,
            format!(
                "field \"{field}\" is {} bytes, limit {MAX_FIELD_BYTES}",
                s.len()
            ),
        ));
    }
    Ok(())
}

fn required(field: Field, v: Option<&str>) -> Result<&str, DecodeError> {
    match v {
        None | Some("") => Err(DecodeError::new(
            DeadReason::MissingField,
            format!("required field \"{field}\" is missing, null or empty"),
        )),
        Some(s) => {
            check_len(field, s)?;
            Ok(s)
        }
    }
}

fn optional(field: Field, v: Option<&str>) -> Result<Option<&str>, DecodeError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => {
            check_len(field, s)?;
            Ok(Some(s))
        }
    }
}

/// Overwrite `dst` with `v`, reusing its allocation.
fn set(dst: &mut String, v: &str) {
    dst.clear();
    dst.push_str(v);
}

fn set_opt(dst: &mut Option<String>, v: Option<&str>) {
    match (dst.as_mut(), v) {
        (Some(d), Some(v)) => set(d, v),
        (None, Some(v)) => *dst = Some(v.to_owned()),
        (_, None) => *dst = None,
    }
}

fn bad_ts(detail: impl Into<String>) -> DecodeError {
    DecodeError::new(DeadReason::BadTimestamp, detail)
}

fn resolve_ts(ts: TsIn<'_>, msg_ts: Option<i64>) -> Result<i64, DecodeError> {
    let ts = match ts {
        TsIn::Missing => {
            msg_ts.ok_or_else(|| bad_ts("no \"ts\" in the event and no message timestamp"))?
        }
        TsIn::Int(v) => v,
        TsIn::Float(f) => {
            if !(MIN_EVENT_TS as f64..=MAX_EVENT_TS as f64).contains(&f) {
                return Err(bad_ts(format!(
                    "timestamp {f} is outside 2000-01-01..2100-01-01"
                )));
            }
            if f.fract() != 0.0 {
                return Err(bad_ts(format!(
                    "timestamp {f} is not a whole number of epoch milliseconds"
                )));
            }
            f as i64
        }
        TsIn::Str(s) => {
            check_len(Field::Ts, s)?;
            parse_rfc3339_ms(s).ok_or_else(|| {
                bad_ts(format!(
                    "timestamp {:?} is not RFC 3339 (e.g. 2026-11-24T10:15:30.123Z)",
                    snippet(s)
                ))
            })?
        }
    };
    if !(MIN_EVENT_TS..=MAX_EVENT_TS).contains(&ts) {
        return Err(bad_ts(format!(
            "timestamp {ts} is outside 2000-01-01..2100-01-01"
        )));
    }
    Ok(ts)
}

/// Validate the fields and write them into `out`, reusing its strings' allocations (the
/// hot path decodes every message into the same scratch event). On error `out` is left
/// unspecified.
pub(super) fn finish_into(
    f: Fields<'_>,
    msg_ts: Option<i64>,
    out: &mut Event,
) -> Result<(), DecodeError> {
    let kind: &str = match &f.kind {
        None => "pageview",
        Some(k) if k.is_empty() => "pageview",
        Some(k) => {
            check_len(Field::Type, k)?;
            k
        }
    };
    let visitor = required(Field::Visitor, f.visitor)?;
    let session = optional(Field::Session, f.session)?;
    let url = required(Field::Url, f.url)?;
    let referrer = optional(Field::Referrer, f.referrer)?;
    let country = optional(Field::Country, f.country)?;
    let device = optional(Field::Device, f.device)?;
    let site = optional(Field::Site, f.site)?;
    out.ts = resolve_ts(f.ts, msg_ts)?;
    set(&mut out.kind, kind);
    set(&mut out.visitor, visitor);
    set_opt(&mut out.session, session);
    set(&mut out.url, url);
    set_opt(&mut out.referrer, referrer);
    set_opt(&mut out.country, country);
    set_opt(&mut out.device, device);
    set_opt(&mut out.site, site);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::{canonical, reason, NOW};
    use crate::event::MAX_VALUE_BYTES;

    #[test]
    fn missing_ts_falls_back_to_message_timestamp() {
        let p = br#"{"visitor":"v-1","url":"/"}"#;
        assert_eq!(canonical().decode(p, Some(NOW)).unwrap().ts, NOW);
        let p = br#"{"ts":null,"visitor":"v-1","url":"/"}"#;
        assert_eq!(canonical().decode(p, Some(NOW)).unwrap().ts, NOW);
        let e = canonical().decode(p, None).unwrap_err();
        assert_eq!(e.reason, DeadReason::BadTimestamp);
    }

    #[test]
    fn every_dead_reason_except_late_is_produced_by_the_right_input() {
        let d = canonical();
        assert_eq!(reason(&d, b"hello world"), DeadReason::NotJson);
        assert_eq!(reason(&d, b"{\"visitor\":"), DeadReason::NotJson);
        assert_eq!(reason(&d, b""), DeadReason::NotJson);
        assert_eq!(
            reason(&d, b"{\"visitor\":\"v\xff\",\"url\":\"/\"}"),
            DeadReason::NotJson
        );
        assert_eq!(
            reason(&d, b"{\"visitor\":\"v\",\"url\":\"/\",\"x\":\"\xc3\"}"),
            DeadReason::NotJson
        );
        assert_eq!(
            reason(&d, br#"[{"visitor":"v","url":"/"}]"#),
            DeadReason::NotObject
        );
        assert_eq!(reason(&d, b"42"), DeadReason::NotObject);
        assert_eq!(reason(&d, b"\"str\""), DeadReason::NotObject);
        assert_eq!(reason(&d, b"null"), DeadReason::NotObject);
        assert_eq!(reason(&d, br#"{"visitor":"v"}"#), DeadReason::MissingField);
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":null}"#),
            DeadReason::MissingField
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"","url":"/"}"#),
            DeadReason::MissingField
        );
        assert_eq!(reason(&d, br#"{"url":"/"}"#), DeadReason::MissingField);
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":404}"#),
            DeadReason::WrongType
        );
        assert_eq!(
            reason(&d, br#"{"visitor":7,"url":"/"}"#),
            DeadReason::WrongType
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","country":["DE"]}"#),
            DeadReason::WrongType
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","type":{"a":1}}"#),
            DeadReason::WrongType
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","ts":true}"#),
            DeadReason::WrongType
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","ts":"yesterday"}"#),
            DeadReason::BadTimestamp
        );
        assert_eq!(
            reason(
                &d,
                br#"{"visitor":"v","url":"/","ts":"2026-02-30T00:00:00Z"}"#
            ),
            DeadReason::BadTimestamp
        );
        assert_eq!(
            reason(
                &d,
                br#"{"visitor":"v","url":"/","ts":"1999-12-31T23:59:59Z"}"#
            ),
            DeadReason::BadTimestamp
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","ts":4102444800001}"#),
            DeadReason::BadTimestamp
        );
        // Far ahead of the message is the pipeline's `future`, not a decoding error.
        let ahead = format!(r#"{{"visitor":"v","url":"/","ts":{}}}"#, NOW + 86_400_001);
        assert!(d.decode(ahead.as_bytes(), Some(NOW)).is_ok());
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","ts":1e300}"#),
            DeadReason::BadTimestamp
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","ts":-1e300}"#),
            DeadReason::BadTimestamp
        );
        assert_eq!(
            reason(
                &d,
                br#"{"visitor":"v","url":"/","ts":18446744073709551615}"#
            ),
            DeadReason::BadTimestamp
        );
        assert_eq!(
            reason(&d, br#"{"visitor":"v","url":"/","ts":1795515330123.5}"#),
            DeadReason::BadTimestamp
        );
        let big = format!(
            r#"{{"visitor":"v","url":"/","pad":"{}"}}"#,
            "x".repeat(MAX_VALUE_BYTES)
        );
        assert_eq!(reason(&d, big.as_bytes()), DeadReason::Oversized);
        let long_url = format!(
            r#"{{"visitor":"v","url":"/{}"}}"#,
            "x".repeat(MAX_FIELD_BYTES)
        );
        assert_eq!(reason(&d, long_url.as_bytes()), DeadReason::Oversized);
        let long_ref = format!(
            r#"{{"visitor":"v","url":"/","referrer":"{}"}}"#,
            "x".repeat(MAX_FIELD_BYTES + 1)
        );
        assert_eq!(reason(&d, long_ref.as_bytes()), DeadReason::Oversized);
        let ok_len = format!(
            r#"{{"visitor":"v","url":"{}"}}"#,
            "x".repeat(MAX_FIELD_BYTES)
        );
        assert!(d.decode(ok_len.as_bytes(), Some(NOW)).is_ok());
    }

    #[test]
    fn decode_error_details_name_the_field() {
        let d = canonical();
        let e = d.decode(br#"{"visitor":"v"}"#, Some(NOW)).unwrap_err();
        assert!(e.detail.contains("url"), "{e}");
        let e = d
            .decode(br#"{"visitor":"","url":"/"}"#, Some(NOW))
            .unwrap_err();
        assert!(e.detail.contains("visitor"), "{e}");
        let e = d
            .decode(br#"{"visitor":"v","url":3}"#, Some(NOW))
            .unwrap_err();
        assert!(
            e.detail.contains("url") && e.detail.contains("number"),
            "{e}"
        );
        assert!(e.to_string().starts_with("wrong_type: "), "{e}");
    }
}
