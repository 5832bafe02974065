//! Malformed payloads: what [`Generator::next_payload`] sends with probability
//! `malformed` instead of an event.
//!
//! Contract: every payload made here is rejected by the canonical decoder, and together
//! they cover each decoding failure: not JSON, not an object, a missing field, a field of
//! the wrong type, a bad timestamp.

use super::Generator;

impl Generator {
    pub(super) fn malformed(&mut self, now_ms: i64) -> Vec<u8> {
        let ev = self.next_event(now_ms);
        let json = ev.to_json();
        let text = match self.rng.u8(0..5) {
            0 => match self.rng.u8(0..3) {
                0 => "GET /index.html HTTP/1.1".to_owned(),
                1 => json[..json.len() / 2].to_owned(),
                _ => format!("visitor={}&url={}", ev.visitor, ev.url),
            },
            1 => format!("[{json}]"),
            2 => {
                let mut v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("url");
                }
                v.to_string()
            }
            3 => {
                let mut v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    if self.rng.bool() {
                        o.insert("url".into(), serde_json::Value::from(404));
                    } else {
                        o.insert("visitor".into(), serde_json::Value::from(true));
                    }
                }
                v.to_string()
            }
            _ => {
                let mut v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("ts".into(), serde_json::Value::from("yesterday at noon"));
                }
                v.to_string()
            }
        };
        text.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;
    use crate::event::DeadReason;
    use crate::gen::tests::NOW;
    use crate::gen::GenConfig;
    use std::collections::HashSet;

    #[test]
    fn malformed_payloads_all_fail_decoding() {
        let cfg = GenConfig {
            malformed: 1.0,
            ..GenConfig::default()
        };
        let mut g = Generator::new(1, cfg);
        let d = Decoder::default();
        let mut reasons = HashSet::new();
        for i in 0..500 {
            let (bytes, ev) = g.next_payload(NOW + i);
            assert!(ev.is_none());
            let err = d
                .decode(&bytes, Some(NOW + i))
                .expect_err(&String::from_utf8_lossy(&bytes));
            reasons.insert(err.reason);
        }
        for r in [
            DeadReason::NotJson,
            DeadReason::NotObject,
            DeadReason::MissingField,
            DeadReason::WrongType,
            DeadReason::BadTimestamp,
        ] {
            assert!(reasons.contains(&r), "{r} never generated");
        }
    }
}
