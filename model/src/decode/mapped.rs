//! The mapped path: the payload parsed into a `serde_json::Value`, each field looked up
//! through the JSON pointers of the [`FieldMapping`], with the Segment schema's rules for
//! the event type.
//!
//! Contract: checks JSON syntax ([`DeadReason::NotJson`]; UTF-8 is checked before either
//! path), a top-level object ([`DeadReason::NotObject`]) and the type of every field
//! ([`DeadReason::WrongType`], in field order) before the shared validation. The first
//! pointer whose value is present and not null (for string fields: and not the empty
//! string) wins. With the Segment schema, type `page` is `pageview` and type `track` takes
//! its name from `/event`.

use std::borrow::Cow;

use serde_json::Value;

use super::validate::{finish_into, Fields, TsIn};
use super::{DecodeError, Decoder};
use crate::event::{DeadReason, Event};
use crate::mapping::{Field, FieldMapping};

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
    pub(super) fn decode_value(
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
            site: lookup_str(&root, m, Field::Site)?,
        };
        finish_into(fields, msg_ts, out)?;
        if self.properties.is_empty() {
            out.props.clear();
        } else {
            self.props_into(lookup(&root, m.pointers(Field::Props), false), out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::{reason, NOW};
    use crate::mapping::{MapRule, Schema};

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
}
