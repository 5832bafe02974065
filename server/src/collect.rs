//! `POST /collect`: events over HTTP into Kafka (for the tracking snippet, and for anyone
//! without a Kafka client).
//!
//! Contract:
//! - Body: one JSON object, a JSON array of objects, or newline-delimited objects; at most
//!   [`MAX_BODY`] bytes and [`MAX_EVENTS`] events. Each object is produced unchanged (its
//!   bytes re-serialised) to the first input topic, keyed by its `visitor` when it has one;
//!   decoding and validation happen in the pipeline as for any Kafka message, so a bad
//!   event is dead-lettered there with its reason.
//! - A body that is not JSON objects gets `400` naming the problem, and nothing of it is
//!   produced. `202 {"accepted": n}` once every event is delivered to Kafka.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto::{Accepted, ApiError};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::kafka::client_config;

/// Largest accepted body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most events in one request.
pub const MAX_EVENTS: usize = 10_000;

/// Produces collected events to Kafka.
#[derive(Clone)]
pub struct Collector {
    producer: FutureProducer,
    topic: String,
}

impl Collector {
    pub fn new(brokers: &str, topic: &str) -> Result<Self, KafkaError> {
        let mut cfg = client_config(brokers);
        cfg.set("linger.ms", "5").set("message.timeout.ms", "10000");
        Ok(Collector {
            producer: cfg.create()?,
            topic: topic.to_owned(),
        })
    }
}

fn bad(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(ApiError::param("body", message)),
    )
        .into_response()
}

/// Split a body into JSON objects.
pub fn parse_body(body: &[u8]) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let trimmed = text.trim_start();
    let values: Vec<serde_json::Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed)
            .map_err(|e| format!("body is not a JSON array of events: {e}"))?
    } else {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(trimmed).into_iter::<serde_json::Value>() {
            out.push(v.map_err(|e| format!("body is not JSON events: {e}"))?);
        }
        out
    };
    if values.is_empty() {
        return Err("body holds no event".into());
    }
    if values.len() > MAX_EVENTS {
        return Err(format!("at most {MAX_EVENTS} events per request"));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::Object(m) => Ok(m),
            _ => Err(format!("event {i} is not a JSON object")),
        })
        .collect()
}

fn unavailable(e: KafkaError) -> Response {
    tracing::warn!(error = %e, "collected events not delivered");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ApiError::new(format!(
            "Kafka did not take the events ({e}); retry later"
        ))),
    )
        .into_response()
}

/// `POST /collect`.
pub async fn handler(State(c): State<Option<Collector>>, body: Bytes) -> Response {
    let Some(c) = c else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ApiError::new("collecting is not available on this server")),
        )
            .into_response();
    };
    if body.len() > MAX_BODY {
        return bad(format!("body over {MAX_BODY} bytes"));
    }
    let events = match parse_body(&body) {
        Ok(e) => e,
        Err(m) => return bad(m),
    };
    let mut pending = Vec::with_capacity(events.len());
    for ev in &events {
        let payload = serde_json::to_vec(ev).unwrap_or_default();
        let key = ev
            .get("visitor")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let record = FutureRecord::to(&c.topic).key(&key).payload(&payload);
        match c.producer.send_result(record) {
            Ok(f) => pending.push(f),
            Err((e, _)) => return unavailable(e),
        }
    }
    for r in futures::future::join_all(pending).await {
        match r {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return unavailable(e),
            Err(_) => return unavailable(KafkaError::Canceled),
        }
    }
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted: events.len() as u64,
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_forms_parse_and_bad_bodies_say_why() {
        assert_eq!(parse_body(br#"{"url":"/"}"#).map(|v| v.len()), Ok(1));
        assert_eq!(
            parse_body(br#"[{"url":"/"},{"url":"/a"}]"#).map(|v| v.len()),
            Ok(2)
        );
        assert_eq!(
            parse_body(b"{\"a\":1}\n{\"b\":2}\n").map(|v| v.len()),
            Ok(2)
        );
        for (body, says) in [
            (&b"[1]"[..], "not a JSON object"),
            (b"nope", "not JSON"),
            (b"", "no event"),
            (b"\xff", "UTF-8"),
        ] {
            let err = parse_body(body).expect_err("must fail");
            assert!(err.contains(says), "{err}");
        }
    }
}
