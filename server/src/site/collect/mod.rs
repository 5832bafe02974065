//! `POST /collect`: events over HTTP into Kafka (for the tracking snippet, and for anyone
//! without a Kafka client). It is open to the internet by design, so it trusts the client
//! with nothing it can get wrong or abuse.
//!
//! Contract:
//! - A request is judged in this order, and refused at the first step that fails, before
//!   anything of its body is produced: its origin (`403`, see `origin`), its client's rate
//!   (`429`, see `limit`), its body's size (`413`) and form (`400`, see `body`).
//! - Its events are then stamped with the server's receive time (`body`), its browser
//!   events enriched or, from a robot, dropped (`browser`), and every event produced
//!   (`producer`).
//! - `202 {"accepted": n}` once every event is delivered to Kafka; `503` when Kafka does
//!   not take them (some may have been delivered: the client may retry, at the price of
//!   counting those twice).
//!
//! # Layout
//! - this module: the handler ([`handler`]).
//! - `body`: reading, limits, parsing, the receive time ([`parse_body`], [`stamp`]).
//! - `origin`: CORS and the preflight ([`check_origin`], [`preflight`]).
//! - `limit`: the per-client rate limit ([`RateLimiter`]) and who the client is
//!   ([`client_ip`]).
//! - `browser`: enrichment of browser events, robots ([`enrich_events`]).
//! - `producer`: the route's state and the Kafka side ([`CollectProducer`]).
//! - `sessions`: the visits of browser visitors ([`Sessions`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto::{Accepted, ApiError};
use tokio::time::Instant;

mod body;
mod browser;
mod limit;
mod origin;
mod producer;
mod sessions;

pub use body::{parse_body, stamp, CLIENT_TS, MAX_BODY, MAX_EVENTS};
pub use browser::{enrich_events, Client};
pub use limit::{
    client_ip, client_key, ClientKey, RateLimiter, Refused, IDLE_BUCKET, MAX_CLIENTS,
    REFUSAL_LOG_EVERY,
};
pub use origin::{check_origin, preflight, OriginCheck};
pub use producer::CollectProducer;
pub use sessions::Sessions;

/// `POST /collect`.
pub async fn handler(State(c): State<Option<CollectProducer>>, req: Request) -> Response {
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
        return origin::forbidden_origin(origin.as_ref());
    }
    let mut resp = collect(c, req).await;
    check.decorate(&mut resp);
    resp
}

async fn collect(c: CollectProducer, req: Request) -> Response {
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
    // The host of the page that sent it: a browser event's site when it names none.
    let page_host = [header::ORIGIN, header::REFERER]
        .iter()
        .filter_map(|h| req.headers().get(h)?.to_str().ok())
        .find_map(browser::host_of);
    // Refused before the body is read: a client over its rate costs no buffering.
    if let Some(limiter) = &c.limiter {
        let key = ip.map_or(ClientKey::Shared, ClientKey::of);
        if let Err(r) = limiter.check(key, Instant::now()) {
            return limit::too_many(r);
        }
    }
    let body = match body::read(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let mut events = match parse_body(&body) {
        Ok(e) => e,
        Err(m) => return body::bad(m),
    };
    let now = crate::now_ms();
    stamp(&mut events, &c.stamp_at, now);
    let client = Client {
        ip,
        user_agent: user_agent.as_deref(),
        page_host: page_host.as_deref(),
    };
    if let Err(resp) = browser::enrich_browser_events(&c, &mut events, client, now).await {
        return resp;
    }
    // A robot's request may be left without events: sending none is done at once, and
    // the answer is `202 {"accepted": 0}`.
    if let Err(e) = c.send(&events, now).await {
        return producer::unavailable(e);
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
    use axum::http::HeaderMap;
    use axum::routing::post;
    use axum::Router;
    use serde_json::Value;
    use tower::ServiceExt;

    /// A producer configured by `flags`, that never connects.
    pub(super) fn producer(flags: &[&str]) -> CollectProducer {
        let mut argv = vec!["pulseboard"];
        argv.extend_from_slice(flags);
        let cfg = <crate::config::Config as clap::Parser>::try_parse_from(argv)
            .expect("flags")
            .validate()
            .expect("valid");
        CollectProducer::new("127.0.0.1:1", "clicks")
            .expect("producer")
            .configured(&cfg.http, &cfg.kafka.mapping())
    }

    /// The collect route as `http::router` mounts it, with a producer that never connects.
    pub(super) fn app_with(flags: &[&str]) -> Router {
        Router::new()
            .route(
                "/collect",
                post(handler)
                    .options(preflight)
                    .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY)),
            )
            .with_state(Some(producer(flags)))
    }

    pub(super) fn collect_app(rate: &str, burst: &str) -> Router {
        app_with(&["--collect-rate", rate, "--collect-burst", burst])
    }

    pub(super) async fn post_body(
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
}
