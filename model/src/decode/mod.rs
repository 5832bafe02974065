//! The payload decoder: one Kafka message value in, an [`Event`] or a [`DecodeError`] out.
//!
//! Contract:
//! - [`Decoder::decode`] turns one Kafka message value into an [`Event`] or a
//!   [`DecodeError`] whose [`DeadReason`] says why it goes to the dead-letter
//!   store. It never panics, whatever the bytes.
//! - Checks happen in this order: size ([`DeadReason::Oversized`] above
//!   [`MAX_VALUE_BYTES`]), UTF-8 and JSON syntax ([`DeadReason::NotJson`]), top
//!   level object ([`DeadReason::NotObject`]), field types
//!   ([`DeadReason::WrongType`], in [`Field`](crate::mapping::Field) order), then per
//!   field in the order type, visitor, session, url, referrer, country, device (missing
//!   required field, field longer than [`MAX_FIELD_BYTES`](crate::event::MAX_FIELD_BYTES))
//!   and finally the timestamp ([`DeadReason::BadTimestamp`]).
//! - The canonical schema without mapping rules uses a borrowed, allocation-light
//!   fast path; every other mapping (and any input the fast path rejects) goes
//!   through `serde_json::Value` and JSON pointers. Both paths give identical
//!   results for every input, with one exception: nesting deeper than
//!   serde_json's recursion limit (128) inside an *unknown* field is skipped
//!   by the fast path but is `NotJson` for the `Value` path (inside `props`, the fast
//!   path drops the event's properties as not an object).
//! - Properties (`props`, [`Field::Props`](crate::mapping::Field)) are read only for the
//!   keys the decoder was given ([`Decoder::with_properties`]; none: `props` is skipped
//!   unread), each value as [`prop_value`] keeps it. A bad `props` or value never rejects
//!   the event: it is dropped (or cut) and counted by reason ([`Decoder::props_rejected`]).
//! - Fields are looked up through a list of JSON pointers; the first pointer
//!   whose value is present and not null (for string fields: and not the empty
//!   string) wins.
//!
//! Files: the decoder and its entry points here; `fast` (the borrowed path of the canonical
//! schema), `mapped` (the `serde_json::Value` + JSON pointer path) and `validate` (the
//! checks both paths share: required fields, field sizes, the timestamp).

mod fast;
mod mapped;
mod validate;

use std::sync::Arc;

use crate::agg::prop::{prop_value, PropRejected, PropRejections};
use crate::event::{DeadReason, Event, MAX_VALUE_BYTES};
use crate::mapping::FieldMapping;
use fast::Raw;

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
    /// The property keys kept, in order.
    properties: Arc<[String]>,
    /// Properties not kept as sent (shared by the clones, and by whoever reports them).
    rejected: Arc<PropRejections>,
}

impl Decoder {
    /// Creates a decoder for `mapping` (that keeps no property).
    pub fn new(mapping: FieldMapping) -> Self {
        let fast = mapping.is_canonical();
        Decoder {
            mapping,
            fast,
            properties: Arc::new([]),
            rejected: Arc::default(),
        }
    }

    /// The decoder keeping the properties `keys` (`--property`; checked by the caller).
    pub fn with_properties(mut self, keys: &[String]) -> Self {
        self.properties = keys.into();
        self
    }

    /// The decoder counting the properties it does not keep as sent into `counts`.
    pub fn counting_into(mut self, counts: Arc<PropRejections>) -> Self {
        self.rejected = counts;
        self
    }

    /// Properties not kept as sent, by reason (see [`Decoder::counting_into`]).
    pub fn props_rejected(&self) -> [(PropRejected, u64); 3] {
        self.rejected.counts()
    }

    fn reject(&self, r: PropRejected) {
        self.rejected.add(r);
    }

    /// Sets `out.props` from the event's `props` value (see the module docs).
    fn props_into(&self, props: Option<&serde_json::Value>, out: &mut Event) {
        out.props.clear();
        let Some(props) = props else { return };
        let Some(obj) = props.as_object() else {
            self.reject(PropRejected::NotObject);
            return;
        };
        for key in self.properties.iter() {
            let Some(v) = obj.get(key) else { continue };
            match prop_value(v) {
                Ok(None) => {}
                Ok(Some((value, cut))) => {
                    if cut {
                        self.reject(PropRejected::Cut);
                    }
                    out.props.push((key.clone(), value));
                }
                Err(r) => self.reject(r),
            }
        }
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
                return self.finish_raw(&raw, msg_ts, out);
            }
            // Fall through: the mapped path classifies the failure precisely.
        }
        self.decode_value(text, msg_ts, out)
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
    use crate::mapping::Schema;
    use proptest::prelude::*;

    pub(super) const NOW: i64 = 1_795_515_330_123; // 2026-11-24T10:15:30.123Z

    pub(super) fn canonical() -> Decoder {
        Decoder::new(FieldMapping::new(Schema::Canonical, &[]))
    }

    pub(super) fn reason(d: &Decoder, payload: &[u8]) -> DeadReason {
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

    #[test]
    fn properties_are_kept_for_the_configured_keys_and_bad_ones_never_lose_the_event() {
        use crate::mapping::Schema;
        let keys = ["plan".to_owned(), "n".to_owned()];
        let fast = canonical().with_properties(&keys);
        let p = br#"{"visitor":"v","url":"/","props":{"plan":"pro","n":3,"other":"x"}}"#;
        let ev = fast.decode(p, Some(NOW)).expect("event");
        assert_eq!(
            ev.props,
            vec![("plan".into(), "pro".into()), ("n".into(), "3".into())]
        );
        assert_eq!(
            ev,
            slow(&fast, std::str::from_utf8(p).expect("utf8"), Some(NOW)).expect("same")
        );
        let none = canonical();
        assert!(
            none.decode(p, Some(NOW)).expect("event").props.is_empty(),
            "no key: none kept"
        );
        // Bad props: the event stays, the properties are dropped and counted.
        for (p, reason) in [
            (
                r#"{"visitor":"v","url":"/","props":"pro"}"#,
                PropRejected::NotObject,
            ),
            (
                r#"{"visitor":"v","url":"/","props":{"plan":{"a":1}}}"#,
                PropRejected::BadValue,
            ),
            (
                r#"{"visitor":"v","url":"/","props":{"plan":""}}"#,
                PropRejected::BadValue,
            ),
        ] {
            let d = canonical().with_properties(&keys);
            let ev = d
                .decode(p.as_bytes(), Some(NOW))
                .expect("the event is kept");
            assert!(ev.props.is_empty(), "{p}");
            assert_eq!(ev, slow(&d, p, Some(NOW)).expect("same"), "{p}");
            let counts = d.props_rejected();
            let n = counts.iter().find(|(r, _)| *r == reason).map(|(_, n)| *n);
            assert_eq!(n, Some(2), "{p}: counted once by each path");
        }
        let long = format!(
            r#"{{"visitor":"v","url":"/","props":{{"plan":"{}"}}}}"#,
            "x".repeat(300)
        );
        let ev = fast.decode(long.as_bytes(), Some(NOW)).expect("kept");
        assert_eq!(ev.props[0].1.len(), 256, "cut");
        // The canonical JSON carries them back.
        let back = fast
            .decode(ev.to_json().as_bytes(), None)
            .expect("round trip");
        assert_eq!(back, ev);
        // The Segment preset reads a track call's properties.
        let seg = Decoder::new(FieldMapping::new(Schema::Segment, &[])).with_properties(&keys);
        let p = br#"{"type":"track","event":"Signed Up","anonymousId":"a","properties":{"path":"/s","plan":"team"}}"#;
        assert_eq!(
            seg.decode(p, Some(NOW)).expect("event").prop("plan"),
            Some("team")
        );
    }
}
