//! The payload decoder: one Kafka message value in, an [`Event`] or a [`DecodeError`] out.
//!
//! Contract:
//! - [`Decoder::decode`] turns one Kafka message value into an [`Event`] or a
//!   [`DecodeError`] whose [`DeadReason`] says why it goes to the dead-letter
//!   store. It never panics, whatever the bytes.
//! - Checks happen in this order: size ([`DeadReason::Oversized`] above
//!   [`MAX_VALUE_BYTES`]), UTF-8 and JSON syntax ([`DeadReason::NotJson`]), top
//!   level object ([`DeadReason::NotObject`]), field types
//!   ([`DeadReason::WrongType`], in [`Field`] order), then per field in the order
//!   type, visitor, session, url, referrer, country, device (missing required
//!   field, field longer than [`MAX_FIELD_BYTES`]) and finally the timestamp
//!   ([`DeadReason::BadTimestamp`]).
//! - The canonical schema without mapping rules uses a borrowed, allocation-light
//!   fast path; every other mapping (and any input the fast path rejects) goes
//!   through `serde_json::Value` and JSON pointers. Both paths give identical
//!   results for every input, with one exception: nesting deeper than
//!   serde_json's recursion limit (128) inside an *unknown* field is skipped
//!   by the fast path but is `NotJson` for the `Value` path.
//! - Fields are looked up through a list of JSON pointers; the first pointer
//!   whose value is present and not null (for string fields: and not the empty
//!   string) wins.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::event::{
    DeadReason, Event, MAX_EVENT_TS, MAX_FIELD_BYTES, MAX_VALUE_BYTES, MIN_EVENT_TS,
};
use crate::mapping::{Field, FieldMapping};
use crate::time::parse_rfc3339_ms;

/// A payload that could not be decoded into an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DecodeError {
    /// Classification for dead-letter accounting.
    pub reason: DeadReason,
    /// Human-readable explanation (names the offending field where relevant).
    pub detail: String,
}

impl DecodeError {
    fn new(reason: DeadReason, detail: impl Into<String>) -> Self {
        DecodeError {
            reason,
            detail: detail.into(),
        }
    }
}

/// Decodes message payloads into events according to a [`FieldMapping`].
#[derive(Debug, Clone)]
pub struct Decoder {
    mapping: FieldMapping,
    fast: bool,
}

// ---------------------------------------------------------------------------
// Fast path: borrowed deserialisation of the canonical schema.

/// A string borrowed from the payload when it has no escapes.
#[derive(Deserialize)]
struct BStr<'a>(#[serde(borrow)] Cow<'a, str>);

/// `ts` as found: epoch ms (integer or float) or a string. A hand-written visitor rather
/// than `#[serde(untagged)]`, which buffers the value and builds an error per variant that
/// does not match: that showed at the top of the pipeline's profile.
enum RawTs<'a> {
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawTs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds or an RFC 3339 string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTs::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(RawTs::Float(v as f64), RawTs::Int))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawTs::Float(v))
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(RawTs::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTs::Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(default, borrow)]
    ts: Option<RawTs<'a>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<BStr<'a>>,
    #[serde(default, borrow)]
    visitor: Option<BStr<'a>>,
    #[serde(default, borrow)]
    session: Option<BStr<'a>>,
    #[serde(default, borrow)]
    url: Option<BStr<'a>>,
    #[serde(default, borrow)]
    referrer: Option<BStr<'a>>,
    #[serde(default, borrow)]
    country: Option<BStr<'a>>,
    #[serde(default, borrow)]
    device: Option<BStr<'a>>,
}

fn bstr<'r>(v: &'r Option<BStr<'_>>) -> Option<&'r str> {
    v.as_ref().map(|s| s.0.as_ref())
}

// ---------------------------------------------------------------------------
// Shared validation.

enum TsIn<'a> {
    Missing,
    Int(i64),
    Float(f64),
    Str(&'a str),
}

struct Fields<'a> {
    ts: TsIn<'a>,
    kind: Option<Cow<'a, str>>,
    visitor: Option<&'a str>,
    session: Option<&'a str>,
    url: Option<&'a str>,
    referrer: Option<&'a str>,
    country: Option<&'a str>,
    device: Option<&'a str>,
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
fn finish_into(f: Fields<'_>, msg_ts: Option<i64>, out: &mut Event) -> Result<(), DecodeError> {
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
    out.ts = resolve_ts(f.ts, msg_ts)?;
    set(&mut out.kind, kind);
    set(&mut out.visitor, visitor);
    set_opt(&mut out.session, session);
    set(&mut out.url, url);
    set_opt(&mut out.referrer, referrer);
    set_opt(&mut out.country, country);
    set_opt(&mut out.device, device);
    Ok(())
}

// ---------------------------------------------------------------------------
// Mapped path: serde_json::Value + JSON pointers.

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(field: Field, what: &str, v: &Value) -> DecodeError {
    DecodeError::new(
        DeadReason::WrongType,
        format!("field \"{field}\" must be {what}, got {}", json_type(v)),
    )
}

/// First value present under `pointers` that is not null (and, for string
/// fields, not the empty string).
fn lookup<'v>(root: &'v Value, pointers: &[String], skip_empty: bool) -> Option<&'v Value> {
    pointers.iter().find_map(|p| match root.pointer(p) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if skip_empty && s.is_empty() => None,
        Some(v) => Some(v),
    })
}

fn lookup_str<'v>(
    root: &'v Value,
    mapping: &FieldMapping,
    field: Field,
) -> Result<Option<&'v str>, DecodeError> {
    match lookup(root, mapping.pointers(field), true) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(field, "a string", v)),
    }
}

fn lookup_ts<'v>(root: &'v Value, mapping: &FieldMapping) -> Result<TsIn<'v>, DecodeError> {
    match lookup(root, mapping.pointers(Field::Ts), false) {
        None => Ok(TsIn::Missing),
        Some(Value::String(s)) => Ok(TsIn::Str(s)),
        Some(Value::Number(n)) => Ok(match n.as_i64() {
            Some(i) => TsIn::Int(i),
            None => TsIn::Float(n.as_f64().unwrap_or(f64::INFINITY)),
        }),
        Some(v) => Err(wrong_type(
            Field::Ts,
            "epoch milliseconds or an RFC 3339 string",
            v,
        )),
    }
}

fn segment_kind<'v>(
    root: &'v Value,
    mapping: &FieldMapping,
) -> Result<Option<Cow<'v, str>>, DecodeError> {
    Ok(match lookup_str(root, mapping, Field::Type)? {
        None => None,
        Some("page") => Some(Cow::Borrowed("pageview")),
        Some("track") => match root.pointer("/event") {
            None | Some(Value::Null) => Some(Cow::Borrowed("track")),
            Some(Value::String(s)) if s.is_empty() => Some(Cow::Borrowed("track")),
            Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            Some(v) => {
                return Err(DecodeError::new(
                    DeadReason::WrongType,
                    format!(
                    "field \"type\" (Segment track event name at /event) must be a string, got {}",
                    json_type(v)
                ),
                ))
            }
        },
        Some(other) => Some(Cow::Borrowed(other)),
    })
}

impl Decoder {
    /// Creates a decoder for `mapping`.
    pub fn new(mapping: FieldMapping) -> Self {
        let fast = mapping.is_canonical();
        Decoder { mapping, fast }
    }

    /// The mapping in use.
    pub fn mapping(&self) -> &FieldMapping {
        &self.mapping
    }

    /// Decodes one message value. `msg_ts` is the Kafka message timestamp in
    /// epoch ms, used when the payload has no timestamp.
    pub fn decode(&self, payload: &[u8], msg_ts: Option<i64>) -> Result<Event, DecodeError> {
        let mut ev = Event::default();
        self.decode_into(payload, msg_ts, &mut ev)?;
        Ok(ev)
    }

    /// [`Decoder::decode`] into an existing event, reusing its strings' allocations: the
    /// pipeline's hot path. On error `out` is left unspecified.
    pub fn decode_into(
        &self,
        payload: &[u8],
        msg_ts: Option<i64>,
        out: &mut Event,
    ) -> Result<(), DecodeError> {
        if payload.len() > MAX_VALUE_BYTES {
            return Err(DecodeError::new(
                DeadReason::Oversized,
                format!(
                    "payload is {} bytes, limit {MAX_VALUE_BYTES}",
                    payload.len()
                ),
            ));
        }
        let text = std::str::from_utf8(payload).map_err(|e| {
            DecodeError::new(DeadReason::NotJson, format!("payload is not UTF-8: {e}"))
        })?;
        if self.fast {
            if let Ok(raw) = serde_json::from_str::<Raw<'_>>(text) {
                return Self::finish_raw(&raw, msg_ts, out);
            }
            // Fall through: the mapped path classifies the failure precisely.
        }
        self.decode_value(text, msg_ts, out)
    }

    fn finish_raw(raw: &Raw<'_>, msg_ts: Option<i64>, out: &mut Event) -> Result<(), DecodeError> {
        let ts = match &raw.ts {
            None => TsIn::Missing,
            Some(RawTs::Int(i)) => TsIn::Int(*i),
            Some(RawTs::Float(f)) => TsIn::Float(*f),
            Some(RawTs::Str(s)) => TsIn::Str(s),
        };
        finish_into(
            Fields {
                ts,
                kind: bstr(&raw.kind).map(Cow::Borrowed),
                visitor: bstr(&raw.visitor),
                session: bstr(&raw.session),
                url: bstr(&raw.url),
                referrer: bstr(&raw.referrer),
                country: bstr(&raw.country),
                device: bstr(&raw.device),
            },
            msg_ts,
            out,
        )
    }

    fn decode_value(
        &self,
        text: &str,
        msg_ts: Option<i64>,
        out: &mut Event,
    ) -> Result<(), DecodeError> {
        let root: Value = serde_json::from_str(text)
            .map_err(|e| DecodeError::new(DeadReason::NotJson, format!("invalid JSON: {e}")))?;
        if !root.is_object() {
            return Err(DecodeError::new(
                DeadReason::NotObject,
                format!("expected a JSON object, got {}", json_type(&root)),
            ));
        }
        let m = &self.mapping;
        let ts = lookup_ts(&root, m)?;
        let kind = if m.segment_type() {
            segment_kind(&root, m)?
        } else {
            lookup_str(&root, m, Field::Type)?.map(Cow::Borrowed)
        };
        let fields = Fields {
            ts,
            kind,
            visitor: lookup_str(&root, m, Field::Visitor)?,
            session: lookup_str(&root, m, Field::Session)?,
            url: lookup_str(&root, m, Field::Url)?,
            referrer: lookup_str(&root, m, Field::Referrer)?,
            country: lookup_str(&root, m, Field::Country)?,
            device: lookup_str(&root, m, Field::Device)?,
        };
        finish_into(fields, msg_ts, out)
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(FieldMapping::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{MapRule, Schema};
    use proptest::prelude::*;

    const NOW: i64 = 1_795_515_330_123; // 2026-11-24T10:15:30.123Z

    fn canonical() -> Decoder {
        Decoder::new(FieldMapping::new(Schema::Canonical, &[]))
    }

    fn reason(d: &Decoder, payload: &[u8]) -> DeadReason {
        match d.decode(payload, Some(NOW)) {
            Ok(ev) => panic!(
                "expected an error for {:?}, got {ev:?}",
                String::from_utf8_lossy(&payload[..payload.len().min(200)])
            ),
            Err(e) => e.reason,
        }
    }

    /// Decodes through the `Value` path regardless of the mapping, to compare
    /// it with the fast path.
    fn slow(d: &Decoder, payload: &str, msg_ts: Option<i64>) -> Result<Event, DecodeError> {
        let mut ev = Event::default();
        d.decode_value(payload, msg_ts, &mut ev)?;
        Ok(ev)
    }

    #[test]
    fn decode_into_reuses_the_event_and_matches_decode() {
        let d = Decoder::default();
        let mut ev = Event::default();
        let a = r#"{"ts":1700000000000,"type":"click","visitor":"v1","session":"s","url":"/a","referrer":"r","country":"DE","device":"mobile"}"#;
        let b = r#"{"ts":"2023-11-14T22:13:21Z","visitor":"v2","url":"/b"}"#;
        d.decode_into(a.as_bytes(), None, &mut ev).expect("a");
        assert_eq!(ev, d.decode(a.as_bytes(), None).expect("a"));
        d.decode_into(b.as_bytes(), None, &mut ev).expect("b");
        assert_eq!(
            ev,
            d.decode(b.as_bytes(), None).expect("b"),
            "optional fields of a are cleared"
        );
        assert_eq!(ev.kind, "pageview");
    }

    #[test]
    fn canonical_event_with_rfc3339_ts_decodes() {
        let p = br#"{"ts":"2026-11-24T10:15:30.123Z","type":"click","visitor":"v-1","session":"s-1","url":"/pricing","referrer":"https://www.google.com/","country":"DE","device":"mobile","extra":{"nested":[1,2,3]}}"#;
        let ev = canonical().decode(p, Some(NOW)).unwrap();
        assert_eq!(
            ev,
            Event {
                ts: NOW,
                kind: "click".into(),
                visitor: "v-1".into(),
                session: Some("s-1".into()),
                url: "/pricing".into(),
                referrer: Some("https://www.google.com/".into()),
                country: Some("DE".into()),
                device: Some("mobile".into()),
            }
        );
    }

    #[test]
    fn canonical_event_with_epoch_ms_ts_and_defaults_decodes() {
        let p = br#"{"ts":1795515330123,"visitor":"v-1","url":"/","session":null,"referrer":""}"#;
        let ev = canonical().decode(p, None).unwrap();
        assert_eq!(ev.ts, NOW);
        assert_eq!(ev.kind, "pageview");
        assert_eq!(ev.session, None);
        assert_eq!(ev.referrer, None);
        let p = br#"{"ts":1795515330123.0,"visitor":"v-1","url":"/"}"#;
        assert_eq!(canonical().decode(p, None).unwrap().ts, NOW);
    }

    #[test]
    fn canonical_event_with_escaped_strings_decodes() {
        let p = br#"{"ts":1795515330123,"visitor":"v\"1","url":"/caf\u00e9"}"#;
        let ev = canonical().decode(p, None).unwrap();
        assert_eq!(ev.visitor, "v\"1");
        assert_eq!(ev.url, "/café");
    }

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

    #[test]
    fn deep_nesting_does_not_crash_the_decoder() {
        let d = canonical();
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(reason(&d, deep.as_bytes()), DeadReason::NotJson);
        let seg = Decoder::new(FieldMapping::new(Schema::Segment, &[]));
        assert_eq!(reason(&seg, deep.as_bytes()), DeadReason::NotJson);
        let deep_obj = format!(
            r#"{{"visitor":"v","url":"/","x":{}1{}}}"#,
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        );
        // Inside an unknown field the fast path skips the nesting without
        // recursion and accepts the event; the Value path hits serde_json's
        // recursion limit. Neither crashes.
        assert!(d.decode(deep_obj.as_bytes(), Some(NOW)).is_ok());
        assert_eq!(reason(&seg, deep_obj.as_bytes()), DeadReason::NotJson);
        let deep_url = format!(
            r#"{{"visitor":"v","url":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(
            reason(&d, deep_url.as_bytes()),
            DeadReason::NotJson | DeadReason::WrongType
        ));
    }

    #[test]
    fn mapping_rules_redirect_fields() {
        let rules: Vec<MapRule> = ["url=/properties/path", "visitor=/anonymousId"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mapping = FieldMapping::new(Schema::Canonical, &rules);
        assert!(!mapping.is_canonical());
        let d = Decoder::new(mapping);
        let p = br#"{"ts":1795515330123,"anonymousId":"anon-1","properties":{"path":"/docs"},"type":"pageview","country":"FR"}"#;
        let ev = d.decode(p, None).unwrap();
        assert_eq!(ev.visitor, "anon-1");
        assert_eq!(ev.url, "/docs");
        assert_eq!(ev.country.as_deref(), Some("FR"));
        // the default pointer for a mapped field is no longer used
        let p = br#"{"ts":1795515330123,"visitor":"v","url":"/"}"#;
        assert_eq!(reason(&d, p), DeadReason::MissingField);
    }

    #[test]
    fn repeated_rules_for_a_field_form_a_fallback_list() {
        let rules: Vec<MapRule> = ["visitor=/user/id", "visitor=/anon"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let d = Decoder::new(FieldMapping::new(Schema::Canonical, &rules));
        let p = br#"{"ts":1795515330123,"user":{"id":null},"anon":"a-1","url":"/"}"#;
        assert_eq!(d.decode(p, None).unwrap().visitor, "a-1");
    }

    fn segment() -> Decoder {
        Decoder::new(FieldMapping::new(Schema::Segment, &[]))
    }

    #[test]
    fn segment_page_call_decodes() {
        let p = br#"{
          "anonymousId": "507f191e810c19729de860ea",
          "channel": "browser",
          "context": {
            "ip": "8.8.8.8",
            "library": {"name": "analytics.js", "version": "2.11.1"},
            "locale": "en-US",
            "location": {"country": "US", "city": "San Francisco"},
            "device": {"type": "desktop"},
            "page": {"path": "/academy/", "referrer": "", "search": "", "title": "Analytics Academy", "url": "https://segment.com/academy/"},
            "userAgent": "Mozilla/5.0"
          },
          "integrations": {},
          "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
          "name": "Home",
          "properties": {"title": "Welcome | Initech", "url": "http://www.initech.com", "path": "/", "referrer": "https://news.ycombinator.com/"},
          "receivedAt": "2026-11-24T10:15:31.000Z",
          "sentAt": "2026-11-24T10:15:30.200Z",
          "timestamp": "2026-11-24T10:15:30.123Z",
          "type": "page",
          "userId": "97980cfea0067",
          "version": 2
        }"#;
        let ev = segment().decode(p, Some(NOW)).unwrap();
        assert_eq!(ev.ts, NOW);
        assert_eq!(ev.kind, "pageview");
        assert_eq!(ev.visitor, "507f191e810c19729de860ea");
        assert_eq!(ev.url, "/");
        assert_eq!(
            ev.referrer.as_deref(),
            Some("https://news.ycombinator.com/")
        );
        assert_eq!(ev.country.as_deref(), Some("US"));
        assert_eq!(ev.device.as_deref(), Some("desktop"));
        assert_eq!(ev.session, None);
    }

    #[test]
    fn segment_track_call_uses_event_name_and_fallbacks() {
        let p = br#"{
          "type": "track",
          "event": "Signed Up",
          "userId": "u-42",
          "anonymousId": null,
          "context": {"sessionId": "sess-9", "page": {"path": "/signup", "referrer": "https://github.com/"}},
          "properties": {"plan": "Pro"},
          "sentAt": "2026-11-24T10:15:30.123Z",
          "messageId": "m-1"
        }"#;
        let ev = segment().decode(p, Some(NOW)).unwrap();
        assert_eq!(ev.kind, "Signed Up");
        assert_eq!(ev.visitor, "u-42");
        assert_eq!(ev.session.as_deref(), Some("sess-9"));
        assert_eq!(ev.url, "/signup");
        assert_eq!(ev.referrer.as_deref(), Some("https://github.com/"));
        assert_eq!(ev.ts, NOW);

        let p = br#"{"type":"track","anonymousId":"a","properties":{"path":"/x"},"timestamp":"2026-11-24T10:15:30Z"}"#;
        assert_eq!(segment().decode(p, Some(NOW)).unwrap().kind, "track");
        let p = br#"{"type":"identify","anonymousId":"a","context":{"page":{"path":"/x"}}}"#;
        assert_eq!(segment().decode(p, Some(NOW)).unwrap().kind, "identify");
        let p = br#"{"type":"track","event":5,"anonymousId":"a","properties":{"path":"/x"}}"#;
        assert_eq!(reason(&segment(), p), DeadReason::WrongType);
    }

    #[test]
    fn segment_type_rule_overrides_segment_semantics() {
        let rules = ["type=/event".parse::<MapRule>().unwrap()];
        let d = Decoder::new(FieldMapping::new(Schema::Segment, &rules));
        let p = br#"{"type":"page","event":"custom","anonymousId":"a","properties":{"path":"/"}}"#;
        assert_eq!(d.decode(p, Some(NOW)).unwrap().kind, "custom");
    }

    fn json_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"x\"".to_owned()),
            Just("\"a\\u0041\"".to_owned()),
            Just("\"2026-11-24T10:15:30Z\"".to_owned()),
            Just("1795515330123".to_owned()),
            Just("1795515330123.0".to_owned()),
            Just("1.5".to_owned()),
            Just("-3".to_owned()),
            Just("[]".to_owned()),
            Just("{\"k\":1}".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn fast_and_mapped_paths_agree(
            fields in proptest::collection::vec(
                (prop_oneof![
                    Just("ts"), Just("type"), Just("visitor"), Just("session"), Just("url"),
                    Just("referrer"), Just("country"), Just("device"), Just("other")
                ], json_value()),
                0..10,
            ),
            msg_ts in proptest::option::of(Just(NOW)),
        ) {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let payload = format!("{{{}}}", body.join(","));
            let d = canonical();
            prop_assert_eq!(d.decode(payload.as_bytes(), msg_ts), slow(&d, &payload, msg_ts));
        }
    }
}
