//! The per-client rate limit of `POST /collect`, and who the client is.
//!
//! Contract:
//! - A token bucket per client (`--collect-rate` requests per second, bursts of
//!   `--collect-burst`; rate 0 disables it). The client is the peer's IP address (an IPv6
//!   address by its /64, which one subscriber usually holds whole), or with
//!   `--trust-forwarded-for` the last address of `X-Forwarded-For` (the one the proxy in
//!   front added). A request without a peer address (an in-process test) shares one bucket.
//! - A refused request gets `429` with `Retry-After` (seconds) and a JSON [`ApiError`]
//!   before its body is read; refusals are counted ([`RateLimiter::refused_total`]) and
//!   logged at most once per [`REFUSAL_LOG_EVERY`].
//! - Memory is bounded: idle full buckets are evicted, and the map holds at most
//!   [`MAX_CLIENTS`] buckets (see [`RateLimiter`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto::ApiError;
use tokio::time::Instant;

use super::MAX_EVENTS;

/// Refusals are logged at most once per this.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

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

pub(super) fn too_many(r: Refused) -> Response {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{collect_app, post_body};
    use super::*;
    use axum::body::Body;

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
}
