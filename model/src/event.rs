//! Clickstream events: the [`Event`] type, why a message is dead-lettered
//! ([`DeadReason`]) and the limits every accepted event respects.
//!
//! Contract:
//! - Every [`Event`] the decoder ([`crate::decode`]) accepts has a non-empty `visitor`
//!   and `url`, a `kind` (default `pageview`) and a time in epoch milliseconds within
//!   [`MIN_EVENT_TS`]..=[`MAX_EVENT_TS`] (how far ahead of the clocks an event may be is
//!   the pipeline's `--max-clock-skew`, reason `future`); no string field is longer than [`MAX_FIELD_BYTES`], no payload longer than
//!   [`MAX_VALUE_BYTES`].
//! - [`Event::to_json`] is the canonical wire JSON, which the canonical decoder reads back
//!   to the same event.
//! - [`DeadReason::as_str`] names are stable: they are API fields and storage keys.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::format_rfc3339_ms;

/// Largest accepted message value in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest accepted string field in bytes.
pub const MAX_FIELD_BYTES: usize = 2048;

/// Earliest plausible event time: 2000-01-01T00:00:00Z.
pub const MIN_EVENT_TS: i64 = 946_684_800_000;
/// Latest plausible event time: 2100-01-01T00:00:00Z.
pub const MAX_EVENT_TS: i64 = 4_102_444_800_000;

/// One decoded clickstream event.
///
/// The derived serde representation uses `"type"` for [`Event::kind`] and
/// epoch milliseconds for `ts`; [`Event::to_json`] gives the canonical wire
/// JSON with an RFC 3339 timestamp instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event time in epoch milliseconds.
    pub ts: i64,
    /// Event type, e.g. `pageview`, `click`, `signup` (`"type"` in JSON).
    #[serde(rename = "type")]
    pub kind: String,
    /// Visitor identifier (required, non-empty).
    pub visitor: String,
    /// Session identifier.
    #[serde(default)]
    pub session: Option<String>,
    /// Page URL or path (required, non-empty).
    pub url: String,
    /// Referrer URL.
    #[serde(default)]
    pub referrer: Option<String>,
    /// Country code.
    #[serde(default)]
    pub country: Option<String>,
    /// Device class, e.g. `desktop`, `mobile`, `tablet`.
    #[serde(default)]
    pub device: Option<String>,
    /// The site the event belongs to (a host name such as `shop.example`): every figure can
    /// be shown for one site ([`crate::agg::Sites`]).
    #[serde(default)]
    pub site: Option<String>,
    /// Custom properties: the values of the keys of `--property` the event carries (as
    /// [`crate::agg::prop::prop_value`] keeps them), by key in the order configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "props_map")]
    pub props: Vec<(String, String)>,
}

/// Properties as a JSON object (`{"plan":"pro"}`): numbers and booleans read as their text,
/// other values skipped, as the decoder keeps them.
mod props_map {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(v: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        let m = std::collections::BTreeMap::<String, Value>::deserialize(d)?;
        Ok(m.into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Number(n) => Some((k, n.to_string())),
                Value::Bool(b) => Some((k, b.to_string())),
                _ => None,
            })
            .collect())
    }
}

#[derive(Serialize)]
struct CanonicalOut<'a> {
    ts: String,
    #[serde(rename = "type")]
    kind: &'a str,
    visitor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<&'a str>,
    #[serde(skip_serializing_if = "Props::is_empty")]
    props: Props<'a>,
}

/// Properties as a JSON object.
struct Props<'a>(&'a [(String, String)]);

impl Props<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Props<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl Event {
    /// Canonical JSON: `{"ts":"<rfc3339>","type":..,"visitor":..,"session":..,
    /// "url":..,"referrer":..,"country":..,"device":..,"site":..,"props":{..}}` with `None`
    /// fields (and no properties) omitted.
    pub fn to_json(&self) -> String {
        let out = CanonicalOut {
            ts: format_rfc3339_ms(self.ts),
            kind: &self.kind,
            visitor: &self.visitor,
            session: self.session.as_deref(),
            url: &self.url,
            referrer: self.referrer.as_deref(),
            country: self.country.as_deref(),
            device: self.device.as_deref(),
            site: self.site.as_deref(),
            props: Props(&self.props),
        };
        // Serialising a struct of plain strings to a String cannot fail.
        serde_json::to_string(&out).expect("serialising strings to JSON is infallible")
    }
}

impl Event {
    /// The value of property `key`, if the event has one.
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a message was sent to the dead-letter store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadReason {
    /// Not valid UTF-8 / not JSON.
    NotJson,
    /// Valid JSON but not an object.
    NotObject,
    /// A required field (url, visitor) is missing, null or empty.
    MissingField,
    /// A known field has the wrong JSON type.
    WrongType,
    /// Timestamp missing, unparseable or implausible.
    BadTimestamp,
    /// Payload or a string field is too large.
    Oversized,
    /// Stamped more than `--max-clock-skew` ahead of both the wall clock and its message
    /// timestamp: a wrong clock; it never moves a watermark.
    Future,
    /// Its window closed more than `--revision-horizon` before the partition's watermark
    /// (later late events are folded in as revisions).
    TooLate,
}

impl DeadReason {
    /// Every reason, in declaration order.
    pub const ALL: [DeadReason; 8] = [
        DeadReason::NotJson,
        DeadReason::NotObject,
        DeadReason::MissingField,
        DeadReason::WrongType,
        DeadReason::BadTimestamp,
        DeadReason::Oversized,
        DeadReason::Future,
        DeadReason::TooLate,
    ];

    /// Stable snake_case name used in APIs and storage keys.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::NotJson => "not_json",
            DeadReason::NotObject => "not_object",
            DeadReason::MissingField => "missing_field",
            DeadReason::WrongType => "wrong_type",
            DeadReason::BadTimestamp => "bad_timestamp",
            DeadReason::Oversized => "oversized",
            DeadReason::Future => "future",
            DeadReason::TooLate => "too_late",
        }
    }

    /// Inverse of [`DeadReason::as_str`].
    pub fn from_str_opt(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;

    const NOW: i64 = 1_795_515_330_123; // 2026-11-24T10:15:30.123Z

    #[test]
    fn dead_reason_names_round_trip() {
        for r in DeadReason::ALL {
            assert_eq!(DeadReason::from_str_opt(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(DeadReason::from_str_opt("nope"), None);
        assert_eq!(DeadReason::Future.as_str(), "future");
        assert_eq!(DeadReason::TooLate.as_str(), "too_late");
    }

    #[test]
    fn to_json_is_canonical_and_decodes_back() {
        let ev = Event {
            props: Vec::new(),
            site: None,
            ts: NOW,
            kind: "pageview".into(),
            visitor: "v-1".into(),
            session: None,
            url: "/a\"b".into(),
            referrer: Some("https://x/".into()),
            country: None,
            device: Some("tablet".into()),
        };
        let json = ev.to_json();
        assert_eq!(
            json,
            r#"{"ts":"2026-11-24T10:15:30.123Z","type":"pageview","visitor":"v-1","url":"/a\"b","referrer":"https://x/","device":"tablet"}"#
        );
        assert_eq!(
            Decoder::default().decode(json.as_bytes(), None).unwrap(),
            ev
        );
    }
}
