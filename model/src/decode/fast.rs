//! The fast path: borrowed deserialisation of the canonical schema (no mapping rules).
//!
//! Contract: strings without escapes are borrowed from the payload and `ts` is read by a
//! hand-written visitor, so a good event costs no intermediate `Value`. Whatever this path
//! rejects goes to the mapped path, which classifies the failure; for every input both
//! paths give the same result (see the module docs of `decode` for the one exception).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use super::validate::{finish_into, Fields, TsIn};
use super::{DecodeError, Decoder};
use crate::event::Event;

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
pub(super) struct Raw<'a> {
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
    #[serde(default, borrow)]
    site: Option<BStr<'a>>,
    /// Read only when the decoder keeps properties.
    #[serde(default, borrow)]
    props: Option<&'a serde_json::value::RawValue>,
}

fn bstr<'r>(v: &'r Option<BStr<'_>>) -> Option<&'r str> {
    v.as_ref().map(|s| s.0.as_ref())
}

impl Decoder {
    pub(super) fn finish_raw(
        &self,
        raw: &Raw<'_>,
        msg_ts: Option<i64>,
        out: &mut Event,
    ) -> Result<(), DecodeError> {
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
                site: bstr(&raw.site),
            },
            msg_ts,
            out,
        )?;
        if self.properties.is_empty() {
            out.props.clear();
        } else {
            // `null` is no properties, as in the mapped path.
            let props = raw
                .props
                .map(|p| serde_json::from_str(p.get()).unwrap_or(serde_json::Value::Bool(false)))
                .filter(|v| !v.is_null());
            self.props_into(props.as_ref(), out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::{canonical, NOW};

    #[test]
    fn canonical_event_with_rfc3339_ts_decodes() {
        let p = br#"{"ts":"2026-11-24T10:15:30.123Z","type":"click","visitor":"v-1","session":"s-1","url":"/pricing","referrer":"https://www.google.com/","country":"DE","device":"mobile","extra":{"nested":[1,2,3]}}"#;
        let ev = canonical().decode(p, Some(NOW)).unwrap();
        assert_eq!(
            ev,
            Event {
                props: Vec::new(),
                site: None,
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
}
