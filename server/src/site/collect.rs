//! `POST /collect`: events over HTTP into Kafka (for the tracking snippet, and for anyone
//! without a Kafka client). It is open to the internet by design, so it trusts the client
//! with nothing it can get wrong or abuse.
//!
//! Contract:
//! - Body: one JSON object, a JSON array of objects, or newline-delimited objects; at most
//!   [`MAX_BODY`] bytes and [`MAX_EVENTS`] events. Each object is produced to the first
//!   input topic, keyed by its `visitor` when it has one; decoding and validation happen in
//!   the pipeline as for any Kafka message, so a bad event is dead-lettered there with its
//!   reason.
//! - Server receive time: the event time is the server's clock, never the client's. Each
//!   object's `ts` (more exactly: the first JSON pointer the field mapping reads `ts` from,
//!   `/ts` for the canonical schema) is set to the time the request was received, in epoch
//!   milliseconds, one value for all events of a request; the Kafka record's timestamp is
//!   the same value. What the client sent there, whatever its type, is kept as the
//!   top-level field `client_ts` (the decoder ignores unknown fields); `client_ts` is
//!   reserved: a client's own `client_ts` is dropped when it sent no `ts`.
//! - Body limit: a `Content-Length` over [`MAX_BODY`] is refused before the body is read; a
//!   body without one is read at most [`MAX_BODY`] bytes. Both get `413` with a JSON
//!   [`ApiError`], and nothing of the body is produced.
//! - Rate limit: a token bucket per client (`--collect-rate` requests per second, bursts of
//!   `--collect-burst`; rate 0 disables it). The client is the peer's IP address (an IPv6
//!   address by its /64, which one subscriber usually holds whole), or with
//!   `--trust-forwarded-for` the last address of `X-Forwarded-For` (the one the proxy in
//!   front added). A request without a peer address (an in-process test) shares one bucket.
//!   A refused request gets `429` with `Retry-After` (seconds) and a JSON [`ApiError`]
//!   before its body is read; refusals are counted ([`Collector::refused_total`]) and
//!   logged at most once per [`REFUSAL_LOG_EVERY`].
//! - A body that is not JSON objects gets `400` naming the problem, and nothing of it is
//!   produced. `202 {"accepted": n}` once every event is delivered to Kafka; `503` when
//!   Kafka does not take them (some may have been delivered: the client may retry, at the
//!   price of counting those twice).
//! - Browser events: an event with no visitor (at none of the pointers the field mapping
//!   reads `visitor` from), as the tracking script `pb.js` sends them, is enriched by
//!   [`crate::site::enrich`]: its visitor is the day's cookieless id of (its `site` field, the
//!   client's IP address, the `User-Agent`), its country (when it has none) the one of the
//!   client's address, its device (when it has none) the class of the user agent refined
//!   by its `screen` field. The address is the one the rate limit uses (the peer, or with
//!   `--trust-forwarded-for` the last `X-Forwarded-For` entry) and is never produced.
//!   Events that carry a visitor (server-side senders) are left as they are.
//! - Robots: when the user agent is a robot's (or missing), the request's browser events
//!   are dropped, counted by why (`telemetry::collect_dropped`) and not counted in
//!   `accepted`; the answer is still `202`, so a robot learns nothing.
//! - Origins (CORS): with `--site-origin` flags, a request whose `Origin` is one of them
//!   gets `Access-Control-Allow-Origin: <that origin>` (and `Vary: Origin`), a preflight
//!   (`OPTIONS /collect`) from it `204` with the allowed method and header; a request or
//!   preflight from any other origin gets `403` with no CORS header, before the rate limit
//!   and the body (counted as refused, why `origin`). A request without `Origin` (not a
//!   browser) is not judged by origin. Without the flag every origin may post
//!   (`Access-Control-Allow-Origin: *`). The body may be sent as `text/plain` (what
//!   `navigator.sendBeacon` sends, a CORS "simple" request without preflight): the
//!   content type is not looked at.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::mapping::{Field, FieldMapping};
use pulseboard_model::proto::{Accepted, ApiError};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::config::HttpArgs;
use crate::ingest::client::client_config;
use crate::site::enrich::{self, Salts};

/// Largest accepted body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most events in one request.
pub const MAX_EVENTS: usize = 10_000;
/// The field that keeps what a client sent as the event time.
pub const CLIENT_TS: &str = "client_ts";
/// Refusals are logged at most once per this.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Produces collected events to Kafka.
#[derive(Clone)]
pub struct Collector {
    producer: FutureProducer,
    topic: String,
    /// Where the receive time is written (RFC 6901 pointer), `/ts` by default.
    stamp_at: Arc<str>,
    limiter: Option<Arc<RateLimiter>>,
    trust_forwarded_for: bool,
    /// `--site-origin`: the origins allowed to post from browsers; `None`: any.
    origins: Option<Arc<[String]>>,
    /// Where the mapping reads `visitor`, `country` and `device` from (the first pointer
    /// of each is where enrichment writes).
    visitor_at: Arc<[String]>,
    country_at: Arc<[String]>,
    device_at: Arc<[String]>,
    /// The daily salts of the cookieless visitor ids.
    salts: Arc<Salts>,
}

impl Collector {
    /// A collector into `topic`, stamping `/ts`, without a rate limit (see [`Collector::configured`]).
    pub fn new(brokers: &str, topic: &str) -> Result<Self, KafkaError> {
        let mut cfg = client_config(brokers);
        cfg.set("linger.ms", "5").set("message.timeout.ms", "10000");
        Ok(Collector {
            producer: cfg.create()?,
            topic: topic.to_owned(),
            stamp_at: Arc::from("/ts"),
            limiter: None,
            trust_forwarded_for: false,
            origins: None,
            visitor_at: Arc::from(vec!["/visitor".to_owned()]),
            country_at: Arc::from(vec!["/country".to_owned()]),
            device_at: Arc::from(vec!["/device".to_owned()]),
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
        self
    }

    /// Requests refused by the rate limit since start.
    pub fn refused_total(&self) -> u64 {
        self.limiter.as_ref().map_or(0, |l| l.refused_total())
    }
}

// ---------------------------------------------------------------------------
// Rate limit.

/// Most clients with a bucket of their own; clients beyond it share one bucket until idle
/// buckets are evicted.
pub const MAX_CLIENTS: usize = 100_000;
/// A bucket unseen for this long (and full by then) is evicted.
pub const IDLE_BUCKET: Duration = Duration::from_secs(60);
/// Idle buckets are looked for at most this often (a sweep walks the whole map).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Who a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address, or the /64 prefix of an IPv6 address.
    Ip(IpAddr),
    /// No peer address known (in-process tests), or over [`MAX_CLIENTS`]: one shared bucket.
    Shared,
}

impl ClientKey {
    /// The key of `ip`: IPv6 by its /64 (a subscriber gets a /64 and could otherwise take a
    /// new bucket per request), IPv4-mapped IPv6 as IPv4.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => ClientKey::Ip(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<ClientKey, Bucket>,
    last_sweep: Instant,
    last_log: Option<Instant>,
    refused_since_log: u64,
}

/// Token buckets per client, with memory bounded by eviction and a cap.
///
/// Time is a parameter ([`RateLimiter::check`] takes `now`), so tests drive it with plain
/// values. Memory: a bucket full and unseen for [`IDLE_BUCKET`] is the same as no bucket,
/// so sweeps (at most every [`SWEEP_EVERY`], O(buckets)) drop those; and the map never
/// holds more than `max_clients` buckets: a new client beyond that shares the
/// [`ClientKey::Shared`] bucket until a sweep makes room.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    max_clients: usize,
    buckets: Mutex<Buckets>,
    refused: AtomicU64,
}

/// What a refused request is told: wait this long before the next try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
}

impl RateLimiter {
    /// `rate` requests per second (> 0), bursts of `burst` (>= 1).
    pub fn new(rate: f64, burst: f64, max_clients: usize) -> Self {
        RateLimiter {
            rate,
            burst,
            max_clients: max_clients.max(1),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                last_sweep: Instant::now(),
                last_log: None,
                refused_since_log: 0,
            }),
            refused: AtomicU64::new(0),
        }
    }

    /// Take a token of `key`'s bucket at `now`, or say how long to wait.
    pub fn check(&self, key: ClientKey, now: Instant) -> Result<(), Refused> {
        let mut guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = &mut *guard;
        if now.saturating_duration_since(b.last_sweep) >= SWEEP_EVERY {
            self.sweep(&mut b.map, now);
            b.last_sweep = now;
        }
        let key = if b.map.len() >= self.max_clients && !b.map.contains_key(&key) {
            ClientKey::Shared
        } else {
            key
        };
        let bucket = b.map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate);
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        crate::telemetry::collect_refused("rate");
        b.refused_since_log += 1;
        if b.last_log
            .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                client = ?key,
                refused = b.refused_since_log,
                refused_total = total,
                "POST /collect: requests over the per-client rate refused with 429"
            );
            b.last_log = Some(now);
            b.refused_since_log = 0;
        }
        Err(Refused { retry_after: wait })
    }

    /// Drop the buckets that are full again and were unseen for [`IDLE_BUCKET`].
    fn sweep(&self, map: &mut HashMap<ClientKey, Bucket>, now: Instant) {
        map.retain(|_, b| {
            let idle = now.saturating_duration_since(b.last);
            idle < IDLE_BUCKET || b.tokens + idle.as_secs_f64() * self.rate < self.burst
        });
    }

    /// Buckets held now.
    pub fn clients(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// Requests refused since start.
    pub fn refused_total(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The address of a request's client: when trusted, the last entry of `X-Forwarded-For`
/// (the proxy in front appends the address it saw; earlier entries are the client's to
/// write), else (and when that entry is not an address) the peer's.
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

/// The rate-limit bucket of a request's client ([`client_ip`], IPv6 by its /64).
pub fn client_key(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> ClientKey {
    client_ip(peer, headers, trust_forwarded_for).map_or(ClientKey::Shared, ClientKey::of)
}

// ---------------------------------------------------------------------------
// Origins (CORS).

/// What the `Origin` of a request is to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header: not a browser's cross-origin request.
    Absent,
    /// No `--site-origin` given: any origin may post.
    Any,
    /// One of the `--site-origin`s (the header's value).
    Allowed(HeaderValue),
    /// Not one of them.
    Refused,
}

/// Judge `origin` against the `--site-origin`s (`None`: none given).
pub fn check_origin(allowed: Option<&[String]>, origin: Option<&HeaderValue>) -> OriginCheck {
    let Some(origin) = origin else {
        return OriginCheck::Absent;
    };
    let Some(allowed) = allowed else {
        return OriginCheck::Any;
    };
    let o = origin.to_str().unwrap_or("").to_ascii_lowercase();
    if allowed.contains(&o) {
        OriginCheck::Allowed(origin.clone())
    } else {
        OriginCheck::Refused
    }
}

impl OriginCheck {
    /// Add the CORS headers of this verdict to a response.
    fn decorate(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        match self {
            OriginCheck::Allowed(o) => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
            OriginCheck::Any => {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            OriginCheck::Absent | OriginCheck::Refused => {}
        }
    }
}

fn forbidden_origin(origin: Option<&HeaderValue>) -> Response {
    crate::telemetry::collect_refused("origin");
    let shown = origin.and_then(|o| o.to_str().ok()).unwrap_or("?");
    (
        StatusCode::FORBIDDEN,
        Json(ApiError::new(format!(
            "origin {shown} may not post here: start Pulseboard with --site-origin {shown} to allow it"
        ))),
    )
        .into_response()
}

/// `OPTIONS /collect`: the CORS preflight (only a `Content-Type` other than the simple
/// ones needs it; the tracking script sends `text/plain` and never does).
pub async fn preflight(State(c): State<Option<Collector>>, headers: HeaderMap) -> Response {
    let origins = c.as_ref().and_then(|c| c.origins.clone());
    let origin = headers.get(header::ORIGIN);
    let check = check_origin(origins.as_deref(), origin);
    if check == OriginCheck::Refused {
        return forbidden_origin(origin);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    check.decorate(&mut resp);
    let h = resp.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    if check != OriginCheck::Absent {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    resp
}

fn too_many(r: Refused) -> Response {
    let secs = r.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(ApiError::new(format!(
            "too many requests from this address: retry after {secs} s, and send events in \
             batches (a JSON array of up to {MAX_EVENTS} per request) rather than one per request"
        ))),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(ApiError::param(
            "body",
            format!("body over {MAX_BODY} bytes: split the events over several requests"),
        )),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Receive time.

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Set the value at `pointer` (RFC 6901; `""` or a bad pointer means `/ts`) to `now`,
/// creating objects on the way, and return what was there.
fn put_at(obj: &mut Map<String, Value>, pointer: &str, now: impl Into<Value>) -> Option<Value> {
    let tokens: Vec<String> = match pointer.strip_prefix('/') {
        Some(rest) => rest.split('/').map(unescape).collect(),
        None => vec!["ts".to_owned()],
    };
    let (last, path) = tokens.split_last()?;
    let mut here = obj;
    for t in path {
        let slot = here
            .entry(t.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        here = slot.as_object_mut()?;
    }
    here.insert(last.clone(), now.into())
}

/// The value at `pointer` (RFC 6901), if any.
fn get_at<'a>(obj: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    let mut tokens = rest.split('/').map(unescape);
    let mut here = obj.get(&tokens.next()?)?;
    for t in tokens {
        here = match here {
            Value::Object(m) => m.get(&t)?,
            Value::Array(a) => a.get(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(here)
}

/// Whether any of `pointers` holds a value, as the decoder takes one (not null, not "").
fn has_any(obj: &Map<String, Value>, pointers: &[String]) -> bool {
    pointers
        .iter()
        .filter_map(|p| get_at(obj, p))
        .any(|v| !v.is_null() && v.as_str() != Some(""))
}

/// Who sent a request, as enrichment sees it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// See [`client_ip`]; never produced.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

/// Enrich the browser events (those without a visitor) of `events` in place, or drop them
/// all when the client is a robot. `salt` is the day's. Returns how many were dropped and
/// why.
pub fn enrich_events(
    events: &mut Vec<Map<String, Value>>,
    client: Client<'_>,
    salt: &[u8; 32],
    c: &Collector,
) -> Option<(usize, &'static str)> {
    let anonymous = |ev: &Map<String, Value>| !has_any(ev, &c.visitor_at);
    if let Some(why) = enrich::robot(client.user_agent) {
        let before = events.len();
        events.retain(|ev| !anonymous(ev));
        let dropped = before - events.len();
        return (dropped > 0).then_some((dropped, why));
    }
    let ua = client.user_agent.unwrap_or("");
    let country = client.ip.and_then(enrich::country);
    for ev in events.iter_mut().filter(|ev| anonymous(ev)) {
        let site = ev.get("site").and_then(Value::as_str).unwrap_or("");
        let visitor = enrich::visitor_id(salt, site, client.ip, ua);
        let device = enrich::device(ua, ev.get("screen").and_then(Value::as_str));
        if let Some(p) = c.visitor_at.first() {
            put_at(ev, p, visitor);
        }
        for (at, value) in [(&c.country_at, country), (&c.device_at, device)] {
            if let (Some(p), Some(v), false) = (at.first(), value, has_any(ev, at)) {
                put_at(ev, p, v);
            }
        }
    }
    None
}

/// Stamp each event with the receive time `now` at `pointer`, keeping the client's value
/// as [`CLIENT_TS`].
pub fn stamp(events: &mut [Map<String, Value>], pointer: &str, now: i64) {
    for ev in events {
        let client = put_at(ev, pointer, now);
        match client {
            Some(v) => ev.insert(CLIENT_TS.to_owned(), v),
            None => ev.remove(CLIENT_TS),
        };
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

fn unavailable_salt(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the visitor salt could not be read");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ApiError::new(
            "the server could not prepare visitor ids; retry later",
        )),
    )
        .into_response()
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
pub async fn handler(State(c): State<Option<Collector>>, req: Request) -> Response {
    let Some(c) = c else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ApiError::new("collecting is not available on this server")),
        )
            .into_response();
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let check = check_origin(c.origins.as_deref(), origin.as_ref());
    if check == OriginCheck::Refused {
        return forbidden_origin(origin.as_ref());
    }
    let mut resp = collect(c, req).await;
    check.decorate(&mut resp);
    resp
}

async fn collect(c: Collector, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0);
    let ip = client_ip(peer, req.headers(), c.trust_forwarded_for);
    let user_agent: Option<String> = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Refused before the body is read: a client over its rate costs no buffering.
    if let Some(limiter) = &c.limiter {
        let key = ip.map_or(ClientKey::Shared, ClientKey::of);
        if let Err(r) = limiter.check(key, Instant::now()) {
            return too_many(r);
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    // `DefaultBodyLimit` on the route bounds what this reads to `MAX_BODY`.
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(e) => return bad(format!("body could not be read: {e}")),
    };
    if body.len() > MAX_BODY {
        return too_large();
    }
    let mut events = match parse_body(&body) {
        Ok(e) => e,
        Err(m) => return bad(m),
    };
    let now = crate::now_ms();
    stamp(&mut events, &c.stamp_at, now);
    if events.iter().any(|ev| !has_any(ev, &c.visitor_at)) {
        let salt = match c.salts.cached(now) {
            Some(s) => s,
            // The first request of a day may write the day's salt to the store.
            None => {
                let salts = c.salts.clone();
                match tokio::task::spawn_blocking(move || salts.salt(now)).await {
                    Ok(s) => s,
                    Err(e) => return unavailable_salt(&e),
                }
            }
        };
        let client = Client {
            ip,
            user_agent: user_agent.as_deref(),
        };
        if let Some((n, why)) = enrich_events(&mut events, client, &salt, &c) {
            crate::telemetry::collect_dropped(why, n);
        }
        if events.is_empty() {
            return (StatusCode::ACCEPTED, Json(Accepted { accepted: 0 })).into_response();
        }
    }
    let mut pending = Vec::with_capacity(events.len());
    for ev in &events {
        let payload = serde_json::to_vec(ev).unwrap_or_default();
        let key = ev
            .get("visitor")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let record = FutureRecord::to(&c.topic)
            .key(&key)
            .payload(&payload)
            .timestamp(now);
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
    use axum::body::Body;
    use axum::routing::post;
    use axum::Router;
    use serde_json::json;
    use tower::ServiceExt;

    fn ip(s: &str) -> ClientKey {
        ClientKey::of(s.parse().expect("ip"))
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_and_says_when_to_retry() {
        let l = RateLimiter::new(2.0, 3.0, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()));
        }
        let r = l.check(a, t0).expect_err("over the burst");
        assert_eq!(r.retry_after, Duration::from_millis(500));
        // Another client has its own bucket.
        assert_eq!(l.check(ip("192.0.2.2"), t0), Ok(()));
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.check(a, t1), Ok(()));
        assert!(l.check(a, t1).is_err());
        assert_eq!(l.refused_total(), 2);
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check(a, t2), Ok(()));
        }
        assert!(l.check(a, t2).is_err());
    }

    #[test]
    fn idle_full_buckets_are_evicted_and_the_map_is_capped() {
        let l = RateLimiter::new(1.0, 1.0, 3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(l.check(ip(&format!("198.51.100.{i}")), t0), Ok(()));
        }
        assert_eq!(l.clients(), 3);
        // Over the cap, a new client shares the one overflow bucket (and is limited there).
        let newcomer = ip("203.0.113.9");
        assert_eq!(l.check(newcomer, t0), Ok(()));
        assert!(l.check(ip("203.0.113.10"), t0).is_err());
        assert_eq!(l.clients(), 4, "three clients and the shared bucket");
        // Active clients are kept; a bucket full and unseen for a minute is dropped.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(l.check(ip("198.51.100.0"), t1), Ok(()));
        assert_eq!(l.clients(), 4);
        let t2 = t0 + IDLE_BUCKET + Duration::from_secs(1);
        assert_eq!(l.check(ip("198.51.100.0"), t2), Ok(()));
        assert_eq!(
            l.clients(),
            1,
            "only the client seen within the minute is left"
        );
        assert_eq!(l.check(newcomer, t2), Ok(()));
        assert_eq!(l.clients(), 2);
    }

    #[test]
    fn the_client_is_the_peer_unless_forwarded_for_is_trusted() {
        let peer: SocketAddr = "192.0.2.7:5555".parse().expect("addr");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.9.9.9, 198.51.100.4"),
        );
        assert_eq!(client_key(Some(peer), &h, false), ip("192.0.2.7"));
        assert_eq!(client_key(Some(peer), &h, true), ip("198.51.100.4"));
        assert_eq!(client_key(None, &HeaderMap::new(), true), ClientKey::Shared);
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_key(Some(peer), &h, true), ip("192.0.2.7"));
        // IPv6 by /64; IPv4-mapped as IPv4.
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
    }

    #[test]
    fn events_carry_the_receive_time_and_keep_the_clients_as_client_ts() {
        let mut events = parse_body(
            br#"[{"ts":"2001-01-01T00:00:00Z","url":"/a"},{"ts":{"weird":1},"url":"/b"},
                {"url":"/c","client_ts":"forged"},{"ts":null,"url":"/d"},{"ts":99}]"#,
        )
        .expect("body");
        stamp(&mut events, "/ts", 1_700_000_000_000);
        for ev in &events {
            assert_eq!(ev["ts"], json!(1_700_000_000_000i64));
        }
        assert_eq!(events[0][CLIENT_TS], json!("2001-01-01T00:00:00Z"));
        assert_eq!(events[0]["url"], json!("/a"));
        assert_eq!(events[1][CLIENT_TS], json!({"weird": 1}));
        assert_eq!(events[2].get(CLIENT_TS), None, "client_ts is reserved");
        assert_eq!(events[3][CLIENT_TS], Value::Null);
        assert_eq!(events[4][CLIENT_TS], json!(99));
        // Where the mapping reads `ts` from elsewhere, that is where the stamp goes.
        let mut seg =
            parse_body(br#"{"timestamp":"2001-01-01T00:00:00Z","x":{"t":1}}"#).expect("body");
        stamp(&mut seg, "/timestamp", 5);
        assert_eq!(seg[0]["timestamp"], json!(5));
        assert_eq!(seg[0][CLIENT_TS], json!("2001-01-01T00:00:00Z"));
        stamp(&mut seg, "/x/t", 6);
        assert_eq!(seg[0]["x"]["t"], json!(6));
        stamp(&mut seg, "/p/a~1b", 7);
        assert_eq!(seg[0]["p"]["a/b"], json!(7));
    }

    #[test]
    fn the_receive_time_decodes_as_the_event_time() {
        let decoder = pulseboard_model::decode::Decoder::new(FieldMapping::default());
        let mut events =
            parse_body(br#"{"ts":"2099-01-01T00:00:00Z","visitor":"v","url":"/"}"#).expect("b");
        stamp(&mut events, "/ts", 1_700_000_000_000);
        let payload = serde_json::to_vec(&events[0]).expect("json");
        let ev = decoder
            .decode(&payload, Some(1_700_000_000_000))
            .expect("decodes with client_ts in it");
        assert_eq!(ev.ts, 1_700_000_000_000);
    }

    #[test]
    fn a_rate_without_a_burst_is_refused_at_start() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["pulseboard"];
            argv.extend_from_slice(args);
            <crate::config::Config as clap::Parser>::try_parse_from(argv)
                .expect("flags")
                .validate()
        };
        let e = parse(&["--collect-burst", "0"]).expect_err("burst 0 with a rate");
        assert!(e.to_string().contains("collect-burst"), "{e}");
        assert!(parse(&["--collect-rate", "0", "--collect-burst", "0"]).is_ok());
        let c = parse(&[]).expect("defaults");
        assert_eq!((c.http.collect_rate, c.http.collect_burst), (20, 40));
        assert!(!c.http.trust_forwarded_for);
    }

    /// A collector configured by `flags`, with a producer that never connects.
    fn collector(flags: &[&str]) -> Collector {
        let mut argv = vec!["pulseboard"];
        argv.extend_from_slice(flags);
        let cfg = <crate::config::Config as clap::Parser>::try_parse_from(argv)
            .expect("flags")
            .validate()
            .expect("valid");
        Collector::new("127.0.0.1:1", "clicks")
            .expect("producer")
            .configured(&cfg.http, &cfg.kafka.mapping())
    }

    /// The collect route as `http::router` mounts it, with a producer that never connects.
    fn app_with(flags: &[&str]) -> Router {
        Router::new()
            .route(
                "/collect",
                post(handler)
                    .options(preflight)
                    .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY)),
            )
            .with_state(Some(collector(flags)))
    }

    fn collect_app(rate: &str, burst: &str) -> Router {
        app_with(&["--collect-rate", rate, "--collect-burst", burst])
    }

    const FIREFOX: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0";

    #[test]
    fn browser_events_get_a_visitor_country_and_device_but_never_the_address() {
        let c = collector(&[]);
        let salt = [3u8; 32];
        let mut events = parse_body(
            br#"[{"type":"pageview","site":"example.com","url":"/","screen":"desktop"},
                 {"type":"signup","site":"example.com","url":"/","props":{"plan":"pro"}},
                 {"type":"pageview","site":"example.com","url":"/x","country":"FR","device":"tv"},
                 {"type":"pageview","visitor":"sdk-1","url":"/sdk"}]"#,
        )
        .expect("body");
        let client = Client {
            ip: "8.8.8.8".parse().ok(),
            user_agent: Some(FIREFOX),
        };
        assert_eq!(enrich_events(&mut events, client, &salt, &c), None);
        let v = events[0]["visitor"].as_str().expect("a visitor").to_owned();
        assert_eq!(
            events[1]["visitor"],
            json!(v),
            "one visitor per browser and day"
        );
        assert_eq!(events[2]["visitor"], json!(v));
        assert_eq!(events[0]["country"], json!("US"));
        assert_eq!(events[0]["device"], json!("desktop"));
        assert_eq!(events[1]["props"], json!({"plan": "pro"}));
        // What the event says is kept.
        assert_eq!(events[2]["country"], json!("FR"));
        assert_eq!(events[2]["device"], json!("tv"));
        // A server-side sender's event is left alone.
        assert_eq!(
            Value::Object(events[3].clone()),
            json!({"type":"pageview","visitor":"sdk-1","url":"/sdk"})
        );
        let text = serde_json::to_string(&events).expect("json");
        assert!(!text.contains("8.8.8.8"), "{text}");
        // Another site: another visitor.
        let mut other = parse_body(br#"{"site":"example.org","url":"/"}"#).expect("body");
        enrich_events(&mut other, client, &salt, &c);
        assert_ne!(other[0]["visitor"], json!(v));
    }

    #[test]
    fn robots_lose_their_browser_events_and_server_side_events_stay() {
        let c = collector(&[]);
        let body =
            br#"[{"site":"s","url":"/a"},{"visitor":"sdk","url":"/b"},{"site":"s","url":"/c"}]"#;
        for (ua, why) in [
            (
                Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
                "bot",
            ),
            (None, "no_user_agent"),
        ] {
            let mut events = parse_body(body).expect("body");
            let client = Client {
                ip: None,
                user_agent: ua,
            };
            assert_eq!(
                enrich_events(&mut events, client, &[0; 32], &c),
                Some((2, why))
            );
            assert_eq!(events.len(), 1);
            assert_eq!(events[0]["visitor"], json!("sdk"));
        }
    }

    async fn call(app: &Router, req: Request) -> (StatusCode, HeaderMap) {
        let resp = app.clone().oneshot(req).await.expect("response");
        (resp.status(), resp.headers().clone())
    }

    fn with_origin(method: &str, origin: Option<&str>, body: &'static str) -> Request {
        let mut r = Request::builder()
            .method(method)
            .uri("/collect")
            .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(Body::from(body)).expect("request")
    }

    #[tokio::test]
    async fn only_the_site_origins_may_post_from_a_browser() {
        let app = app_with(&[
            "--site-origin",
            "https://Example.com/",
            "--site-origin",
            "http://localhost:3000",
        ]);
        let acao = |h: &HeaderMap| {
            h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(|v| v.to_str().unwrap_or("").to_owned())
        };
        // Preflight from a site: allowed, with the method and header.
        let (status, h) = call(
            &app,
            with_origin("OPTIONS", Some("https://example.com"), ""),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(acao(&h).as_deref(), Some("https://example.com"));
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_METHODS)
                .map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
        assert!(h.get_all(header::VARY).iter().any(|v| v == "Origin"));
        // From elsewhere: 403 without CORS headers, for the preflight and the post alike.
        for method in ["OPTIONS", "POST"] {
            let (status, h) = call(
                &app,
                with_origin(method, Some("https://evil.example"), "[1]"),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
            assert_eq!(acao(&h), None, "{method}");
        }
        // A site's post (text/plain, as sendBeacon sends it) is read; its answer is readable.
        let (status, h) = call(
            &app,
            with_origin("POST", Some("http://localhost:3000"), "[1]"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "past the origin check, the body is judged"
        );
        assert_eq!(acao(&h).as_deref(), Some("http://localhost:3000"));
        // No Origin: not a browser, not judged by origin.
        let (status, h) = call(&app, with_origin("POST", None, "[1]")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(acao(&h), None);
        // Without --site-origin, any origin may post.
        let open = app_with(&[]);
        let (status, h) = call(
            &open,
            with_origin("POST", Some("https://any.example"), "[1]"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(acao(&h).as_deref(), Some("*"));
    }

    #[test]
    fn site_origins_must_be_origins() {
        let parse = |o: &str| {
            <crate::config::Config as clap::Parser>::try_parse_from([
                "pulseboard",
                "--site-origin",
                o,
            ])
            .map(|c| c.http.site_origins)
        };
        assert_eq!(
            parse("HTTPS://Example.COM:8443/").expect("origin"),
            vec!["https://example.com:8443".to_owned()]
        );
        for bad in [
            "example.com",
            "https://example.com/path",
            "https://*.example.com",
            "ftp://x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    async fn post_body(
        app: &Router,
        body: Body,
        len: Option<usize>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::post("/collect");
        if let Some(n) = len {
            req = req.header(header::CONTENT_LENGTH, n);
        }
        let resp = app
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("response");
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn over_its_rate_a_client_gets_429_with_retry_after_and_a_json_reason() {
        let app = collect_app("1", "2");
        // Within the burst: past the limiter (a bad body, so nothing waits on Kafka).
        for _ in 0..2 {
            let (status, _, body) = post_body(&app, Body::from("[1]"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        }
        let (status, headers, body) = post_body(&app, Body::from("[1]"), None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("retry after")),
            "{body}"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let (status, _, _) = post_body(&app, Body::from("[1]"), None).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "a token is back after a second"
        );
        // Rate 0: no limit.
        let open = collect_app("0", "0");
        for _ in 0..50 {
            assert_eq!(
                post_body(&open, Body::from("[1]"), None).await.0,
                StatusCode::BAD_REQUEST
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_body_gets_413_with_a_json_reason() {
        let app = collect_app("0", "0");
        // Declared too large: refused before a byte of it is read.
        let (status, _, body) = post_body(&app, Body::empty(), Some(MAX_BODY + 1)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["parameter"], "body");
        // Streamed without a length: cut at the limit.
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..20)
            .map(|_| Ok(Bytes::from(vec![b' '; 128 * 1024])))
            .collect();
        let streamed = Body::from_stream(futures::stream::iter(chunks));
        let (status, _, body) = post_body(&app, streamed, None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("split")),
            "{body}"
        );
    }

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
