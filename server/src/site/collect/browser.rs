//! Browser events of `POST /collect`: enriched with a visitor, a country and a device, or
//! dropped when a robot sent them.
//!
//! Contract:
//! - Browser events: an event with no visitor (at none of the pointers the field mapping
//!   reads `visitor` from), as the tracking script `pb.js` sends them, is enriched by
//!   [`crate::site::enrich`]: its visitor is the day's cookieless id of (its `site` field, the
//!   client's IP address, the `User-Agent`), its country (when it has none) the one of the
//!   client's address, its device (when it has none) the class of the user agent refined
//!   by its `screen` field, its site (when it has none: the script sends its `data-site`,
//!   else its page's host name) the host of the request's `Origin` (else `Referer`), its
//!   session (when it has none) the visitor's current visit
//!   (`sessions`: a new one after `--session-timeout` without an event). The address is the one the rate limit uses (the peer, or with
//!   `--trust-forwarded-for` the last `X-Forwarded-For` entry) and is never produced.
//!   Events that carry a visitor (server-side senders) are left as they are.
//! - Robots: when the user agent is a robot's (or missing), the request's browser events
//!   are dropped, counted by why (`telemetry::collect_dropped`) and not counted in
//!   `accepted`; the answer is still `202`, so a robot learns nothing.
//! - The day's salt not ready (the first request of a day may write it to the store, and
//!   that failed): `503`.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto::ApiError;
use serde_json::{Map, Value};

use super::body::{has_any, put_at};
use super::CollectProducer;
use crate::site::enrich;

/// Who sent a request, as enrichment sees it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// See [`super::client_ip`]; never produced.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    /// The host of the page that sent the request (its `Origin`, else its `Referer`).
    pub page_host: Option<&'a str>,
}

/// The host name of an origin or a URL (`https://Shop.example:8443/x` → `shop.example`), if
/// it has one.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        &host_port[..=host_port.find(']')?]
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty() && host.len() <= 253).then(|| host.to_ascii_lowercase())
}

/// Enrich the browser events (those without a visitor) of `events` in place, or drop them
/// all when the client is a robot. `salt` is the day's. Returns how many were dropped and
/// why.
pub fn enrich_events(
    events: &mut Vec<Map<String, Value>>,
    client: Client<'_>,
    (salt, now): (&[u8; 32], i64),
    c: &CollectProducer,
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
        // The script's `data-site` (else its page's host name), else the page's host as
        // the request says; written where the mapping reads `site` from.
        let site = ev
            .get("site")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| client.page_host.map(str::to_owned));
        if let (Some(p), Some(s)) = (c.site_at.first(), &site) {
            if !has_any(ev, &c.site_at) {
                put_at(ev, p, s.clone());
            }
        }
        let site = site.unwrap_or_default();
        let visitor = enrich::visitor_id(salt, &site, client.ip, ua);
        let device = enrich::device(ua, ev.get("screen").and_then(Value::as_str));
        if let (Some(p), false) = (c.session_at.first(), has_any(ev, &c.session_at)) {
            put_at(ev, p, c.sessions.session(&visitor, now));
        }
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

/// Enrich the browser events of `events` (see [`enrich_events`]) with the salt of the day
/// of `now`, and count what a robot lost; `503` when the salt cannot be had.
pub(super) async fn enrich_browser_events(
    c: &CollectProducer,
    events: &mut Vec<Map<String, Value>>,
    client: Client<'_>,
    now: i64,
) -> Result<(), Response> {
    if !events.iter().any(|ev| !has_any(ev, &c.visitor_at)) {
        return Ok(());
    }
    let salt = match c.salts.cached(now) {
        Some(s) => s,
        // The first request of a day may write the day's salt to the store.
        None => {
            let salts = c.salts.clone();
            match tokio::task::spawn_blocking(move || salts.salt(now)).await {
                Ok(s) => s,
                Err(e) => return Err(unavailable_salt(&e)),
            }
        }
    };
    if let Some((n, why)) = enrich_events(events, client, (&salt, now), c) {
        crate::telemetry::collect_dropped(why, n);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::super::body::parse_body;
    use super::super::tests::producer;
    use super::*;
    use serde_json::json;

    const T0: i64 = 1_800_000_000_000;
    const FIREFOX: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0";

    #[test]
    fn browser_events_get_a_visitor_country_and_device_but_never_the_address() {
        let c = producer(&[]);
        let salt = [3u8; 32];
        let mut events = parse_body(
            br#"[{"type":"pageview","site":"example.com","url":"/","screen":"desktop"},
                 {"type":"signup","site":"example.com","url":"/","props":{"plan":"pro"}},
                 {"type":"pageview","site":"example.com","url":"/x","country":"FR","device":"tv"},
                 {"type":"pageview","visitor":"sdk-1","url":"/sdk"}]"#,
        )
        .expect("body");
        let client = Client {
            page_host: None,
            ip: "8.8.8.8".parse().ok(),
            user_agent: Some(FIREFOX),
        };
        assert_eq!(enrich_events(&mut events, client, (&salt, T0), &c), None);
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
        enrich_events(&mut other, client, (&salt, T0), &c);
        assert_ne!(other[0]["visitor"], json!(v));
    }

    #[test]
    fn a_browser_event_without_a_site_gets_its_pages_host() {
        let c = producer(&[]);
        let salt = [3u8; 32];
        let mut events = parse_body(
            br#"[{"url":"/"},{"site":"blog.example","url":"/"},{"visitor":"sdk","url":"/"}]"#,
        )
        .expect("body");
        let host = host_of("https://Shop.Example:8443");
        let client = Client {
            page_host: host.as_deref(),
            ip: "8.8.8.8".parse().ok(),
            user_agent: Some(FIREFOX),
        };
        enrich_events(&mut events, client, (&salt, T0), &c);
        assert_eq!(events[0]["site"], json!("shop.example"));
        assert_eq!(
            events[1]["site"],
            json!("blog.example"),
            "the script's data-site"
        );
        assert_eq!(
            events[2].get("site"),
            None,
            "a server-side sender's event is its own"
        );
        // The site salts the visitor: the same browser on two sites is two visitors.
        assert_ne!(events[0]["visitor"], events[1]["visitor"]);
        for (url, host) in [
            ("https://a.example/x?y#z", Some("a.example")),
            ("http://user@b.example:80/", Some("b.example")),
            ("http://[::1]:8080/", Some("[::1]")),
            ("null", None),
            ("https:///", None),
        ] {
            assert_eq!(host_of(url).as_deref(), host, "{url}");
        }
    }

    #[test]
    fn browser_events_get_the_visitors_session_and_keep_one_they_carry() {
        let c = producer(&[]);
        let salt = [5u8; 32];
        let client = Client {
            page_host: None,
            ip: "8.8.8.8".parse().ok(),
            user_agent: Some(FIREFOX),
        };
        let at = |now: i64, body: &[u8]| {
            let mut events = parse_body(body).expect("body");
            enrich_events(&mut events, client, (&salt, now), &c);
            events
        };
        let first = at(
            T0,
            br#"[{"site":"s","url":"/"},{"site":"s","url":"/pricing"}]"#,
        );
        let session = first[0]["session"].as_str().expect("a session").to_owned();
        assert_eq!(
            first[1]["session"],
            json!(session),
            "one request, one visit"
        );
        assert_ne!(session, first[0]["visitor"].as_str().unwrap_or(""));
        // 29 minutes later: the same visit; 30 minutes after that: a new one.
        let later = at(T0 + 29 * 60_000, br#"{"site":"s","url":"/signup"}"#);
        assert_eq!(later[0]["session"], json!(session));
        let next = at(T0 + 59 * 60_000, br#"{"site":"s","url":"/"}"#);
        assert_ne!(next[0]["session"], json!(session));
        // A session the page sends is kept; a server-side event gets none.
        let own = at(T0, br#"[{"site":"s","session":"mine"},{"visitor":"sdk"}]"#);
        assert_eq!(own[0]["session"], json!("mine"));
        assert_eq!(Value::Object(own[1].clone()), json!({"visitor": "sdk"}));
    }

    #[test]
    fn robots_lose_their_browser_events_and_server_side_events_stay() {
        let c = producer(&[]);
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
                page_host: None,
                ip: None,
                user_agent: ua,
            };
            assert_eq!(
                enrich_events(&mut events, client, (&[0; 32], T0), &c),
                Some((2, why))
            );
            assert_eq!(events.len(), 1);
            assert_eq!(events[0]["visitor"], json!("sdk"));
        }
    }
}
