//! The Kafka side of `POST /collect`: the [`CollectProducer`] (the route's state: the
//! producer and what the HTTP flags and the field mapping configure) and the sending of a
//! request's events.
//!
//! Contract:
//! - Each object is produced to the first input topic, keyed by its visitor (where the
//!   field mapping reads `visitor`) when it has one, with the request's receive time as the record's timestamp; decoding and
//!   validation happen in the pipeline as for any Kafka message, so a bad event is
//!   dead-lettered there with its reason.
//! - [`CollectProducer::send`] returns once every event is delivered to Kafka, or with the
//!   first error (some may have been delivered: the client may retry, at the price of
//!   counting those twice); the handler answers that with `503`.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::mapping::{Field, FieldMapping};
use pulseboard_model::proto::ApiError;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value};

use super::body::str_at;
use super::limit::{RateLimiter, MAX_CLIENTS};
use super::sessions::Sessions;
use crate::config::HttpArgs;
use crate::ingest::client::client_config;
use crate::site::enrich::Salts;

/// A browser visit ends after this long without an event (`--session-timeout`'s default).
const SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// Browser visitors held (`--session-cap`'s default).
const SESSION_CAP: usize = 100_000;

/// Produces collected events to Kafka: the state of `POST /collect` (the producer, and
/// the rate limit, origins, pointers and salts the route applies before producing).
#[derive(Clone)]
pub struct CollectProducer {
    producer: FutureProducer,
    topic: String,
    /// Where the receive time is written (RFC 6901 pointer), `/ts` by default.
    pub(super) stamp_at: Arc<str>,
    pub(super) limiter: Option<Arc<RateLimiter>>,
    pub(super) trust_forwarded_for: bool,
    /// `--site-origin`: the origins allowed to post from browsers; `None`: any.
    pub(super) origins: Option<Arc<[String]>>,
    /// Where the mapping reads `visitor`, `country` and `device` from (the first pointer
    /// of each is where enrichment writes).
    pub(super) visitor_at: Arc<[String]>,
    pub(super) country_at: Arc<[String]>,
    pub(super) device_at: Arc<[String]>,
    /// Where the mapping reads `session` from (the first pointer is where a derived
    /// session is written).
    pub(super) session_at: Arc<[String]>,
    /// Where the mapping reads `site` from (the first pointer is where a browser event's
    /// site is written).
    pub(super) site_at: Arc<[String]>,
    /// The open sessions of browser visitors.
    pub(super) sessions: Arc<Sessions>,
    /// The daily salts of the cookieless visitor ids.
    pub(super) salts: Arc<Salts>,
}

impl CollectProducer {
    /// A producer into `topic`, stamping `/ts`, without a rate limit (see
    /// [`CollectProducer::configured`]).
    pub fn new(brokers: &str, topic: &str) -> Result<Self, KafkaError> {
        let mut cfg = client_config(brokers);
        cfg.set("linger.ms", "5").set("message.timeout.ms", "10000");
        Ok(CollectProducer {
            producer: cfg.create()?,
            topic: topic.to_owned(),
            stamp_at: Arc::from("/ts"),
            limiter: None,
            trust_forwarded_for: false,
            origins: None,
            visitor_at: Arc::from(vec!["/visitor".to_owned()]),
            country_at: Arc::from(vec!["/country".to_owned()]),
            device_at: Arc::from(vec!["/device".to_owned()]),
            session_at: Arc::from(vec!["/session".to_owned()]),
            site_at: Arc::from(vec!["/site".to_owned()]),
            sessions: Arc::new(Sessions::new(SESSION_TIMEOUT_MS, SESSION_CAP)),
            salts: Arc::new(Salts::new(None)),
        })
    }

    /// Keep the daily salts of the visitor ids in `salts` (by default in memory).
    pub fn with_salts(mut self, salts: Salts) -> Self {
        self.salts = Arc::new(salts);
        self
    }

    /// Apply the HTTP flags, and stamp the receive time where `mapping` reads `ts` from.
    pub fn configured(mut self, args: &HttpArgs, mapping: &FieldMapping) -> Self {
        if let Some(p) = mapping.pointers(Field::Ts).first() {
            self.stamp_at = Arc::from(p.as_str());
        }
        for (field, at) in [
            (Field::Visitor, &mut self.visitor_at),
            (Field::Country, &mut self.country_at),
            (Field::Device, &mut self.device_at),
            (Field::Session, &mut self.session_at),
            (Field::Site, &mut self.site_at),
        ] {
            if !mapping.pointers(field).is_empty() {
                *at = Arc::from(mapping.pointers(field).to_vec());
            }
        }
        self.origins =
            (!args.site_origins.is_empty()).then(|| Arc::from(args.site_origins.clone()));
        self.limiter = (args.collect_rate > 0).then(|| {
            Arc::new(RateLimiter::new(
                f64::from(args.collect_rate),
                f64::from(args.collect_burst.max(1)),
                MAX_CLIENTS,
            ))
        });
        self.trust_forwarded_for = args.trust_forwarded_for;
        let timeout_ms = i64::try_from(args.session_timeout.as_millis()).unwrap_or(i64::MAX);
        self.sessions = Arc::new(Sessions::new(timeout_ms, args.session_cap));
        self
    }

    /// Requests refused by the rate limit since start.
    pub fn refused_total(&self) -> u64 {
        self.limiter.as_ref().map_or(0, |l| l.refused_total())
    }

    /// Produce `events` (received at `now`) and wait for Kafka to take every one; the
    /// first error ends it.
    pub(super) async fn send(
        &self,
        events: &[Map<String, Value>],
        now: i64,
    ) -> Result<(), KafkaError> {
        let mut pending = Vec::with_capacity(events.len());
        for ev in events {
            let payload = serde_json::to_vec(ev).unwrap_or_default();
            // Keyed by visitor (where the mapping reads it), so a visitor's events, and
            // its sessions, stay in one partition.
            let key = str_at(ev, &self.visitor_at).unwrap_or("");
            let record = FutureRecord::to(&self.topic)
                .key(key)
                .payload(&payload)
                .timestamp(now);
            match self.producer.send_result(record) {
                Ok(f) => pending.push(f),
                Err((e, _)) => return Err(e),
            }
        }
        for r in futures::future::join_all(pending).await {
            match r {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e),
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        Ok(())
    }
}

/// The answer when Kafka did not take the events.
pub(super) fn unavailable(e: KafkaError) -> Response {
    tracing::warn!(error = %e, "collected events not delivered");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ApiError::new(format!(
            "Kafka did not take the events ({e}); retry later"
        ))),
    )
        .into_response()
}
