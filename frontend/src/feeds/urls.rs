//! The server's URLs as the app calls them: the JSON API (`/api/v1/…`) and the socket
//! (`/ws`), each with the page's segment ([`with_filter`]); and the page's own query string
//! as the address bar shows it ([`with_query_param`]).
//!
//! Contract: pure string functions, tested on the host. Values are percent-encoded but for
//! the RFC 3986 unreserved characters ([`encode`]). No URL carries a credential: the
//! session cookie goes with every same-origin request and socket by itself (see
//! [`crate::access`]).

use pulseboard_model::{agg::Filter, proto::Compare};

use crate::route::Range;
use crate::state::ViewKey;

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with `filter=<filter>` appended as a query parameter, when there is a filter.
pub fn with_filter(url: String, filter: Option<&Filter>) -> String {
    match filter {
        Some(f) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}filter={}", encode(&f.to_string()))
        }
        None => url,
    }
}

/// `url` with the page's view: `site=<site>` and `filter=<filter>` appended as query
/// parameters, when there are.
pub fn with_view(url: String, (site, filter): &ViewKey) -> String {
    let url = match site {
        Some(s) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}site={}", encode(s))
        }
        None => url,
    };
    with_filter(url, filter.as_ref())
}

/// `/api/v1/export` of a range as CSV: a row per window up to an hour, per minute up to a
/// day, per hour beyond.
pub fn export_url(range: Range) -> String {
    let step = match range {
        Range::M5 | Range::M15 | Range::H1 => "window",
        Range::H24 => "minute",
        Range::D7 | Range::D30 => "hour",
    };
    format!(
        "/api/v1/export?range={}&step={step}&format=csv",
        range.label()
    )
}

/// `/api/v1/now`.
pub fn now_url(filter: Option<&Filter>) -> String {
    with_filter("/api/v1/now".to_owned(), filter)
}

/// `/api/v1/segments`.
pub fn segments_url() -> String {
    "/api/v1/segments".to_owned()
}

/// The socket URL for a page served over `page_protocol` (`http:`/`https:`) from `host`
/// (`name:port`), resuming after `since` when given, paced to one message per `every_ms`
/// when not 0.
pub fn socket_url(page_protocol: &str, host: &str, since: Option<u64>, every_ms: u64) -> String {
    let scheme = if page_protocol == "https:" {
        "wss"
    } else {
        "ws"
    };
    let mut params = Vec::new();
    if let Some(s) = since {
        params.push(format!("since={s}"));
    }
    if every_ms > 0 {
        params.push(format!("every={every_ms}"));
    }
    let mut url = format!("{scheme}://{host}/ws");
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    url
}

/// `/api/v1/windows` for `[from, to)`.
pub fn windows_url(from: i64, to: i64) -> String {
    format!("/api/v1/windows?from={from}&to={to}&limit=10000")
}

/// `/api/v1/windows` for `[from, to)` in steps of `step`, with the period `compare` earlier.
pub fn history_url(from: i64, to: i64, step: Option<&str>, compare: Option<Compare>) -> String {
    let mut url = format!("/api/v1/windows?from={from}&to={to}&limit=10000");
    if let Some(s) = step {
        url.push_str(&format!("&step={s}"));
    }
    if let Some(c) = compare {
        url.push_str(&format!("&compare={}", c.label()));
    }
    url
}

/// `/api/v1/summary` for a range, with its comparison when one is chosen.
pub fn summary_url(range: Range, compare: Option<Compare>) -> String {
    let mut url = format!("/api/v1/summary?range={}", range.label());
    if let Some(c) = compare {
        url.push_str(&format!("&compare={}", c.label()));
    }
    url
}

/// `/api/v1/annotations` for `[from, to)`.
pub fn annotations_url(from: i64, to: i64) -> String {
    format!("/api/v1/annotations?from={from}&to={to}&limit=1000")
}

/// The page's query string with `name` set to `value` (or removed for `None`), keeping
/// every other parameter: what the address bar shows so the view can be bookmarked.
pub fn with_query_param(search: &str, name: &str, value: Option<&str>) -> String {
    let q = search.strip_prefix('?').unwrap_or(search);
    let mut parts: Vec<String> = q
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        parts.push(format!("{name}={}", encode(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `/api/v1/status`.
pub fn status_url() -> String {
    "/api/v1/status".to_owned()
}

/// `/api/v1/links`: the share links (`GET` lists them, `POST` makes one; admins).
pub fn links_url() -> String {
    "/api/v1/links".to_owned()
}

/// `/api/v1/links/<key>`: one share link, by its key (`DELETE` revokes it).
pub fn link_url(key: &str) -> String {
    format!("/api/v1/links/{}", encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_follows_the_page_scheme_and_resumes() {
        assert_eq!(
            socket_url("http:", "localhost:8080", None, 0),
            "ws://localhost:8080/ws"
        );
        assert_eq!(
            socket_url("https:", "dash.example", Some(42), 0),
            "wss://dash.example/ws?since=42"
        );
        assert_eq!(
            socket_url("http:", "h:1", Some(3), 500),
            "ws://h:1/ws?since=3&every=500"
        );
        assert_eq!(
            socket_url("http:", "h:1", None, 500),
            "ws://h:1/ws?every=500"
        );
    }

    #[test]
    fn api_urls_name_what_they_ask_and_never_a_credential() {
        let de = Filter::parse("type:sign up").expect("filter");
        let all = [
            windows_url(1, 2),
            summary_url(Range::H24, None),
            summary_url(Range::M15, Some(Compare::Week)),
            history_url(1, 2, Some("30m"), Some(Compare::Day)),
            annotations_url(1, 2),
            status_url(),
            now_url(Some(&de)),
            now_url(None),
            segments_url(),
            with_filter(socket_url("http:", "h:1", Some(7), 500), Some(&de)),
        ];
        assert_eq!(
            all,
            [
                "/api/v1/windows?from=1&to=2&limit=10000",
                "/api/v1/summary?range=24h",
                "/api/v1/summary?range=15m&compare=7d",
                "/api/v1/windows?from=1&to=2&limit=10000&step=30m&compare=1d",
                "/api/v1/annotations?from=1&to=2&limit=1000",
                "/api/v1/status",
                "/api/v1/now?filter=type%3Asign%20up",
                "/api/v1/now",
                "/api/v1/segments",
                "ws://h:1/ws?since=7&every=500&filter=type%3Asign%20up",
            ]
        );
        for url in &all {
            assert!(!url.contains("token"), "{url}");
        }
        assert_eq!(
            with_filter(summary_url(Range::M5, None), Some(&de)),
            "/api/v1/summary?range=5m&filter=type%3Asign%20up"
        );
        // A site, alone or with a segment.
        assert_eq!(
            with_view(
                summary_url(Range::M5, None),
                &(Some("shop & co".into()), Some(de))
            ),
            "/api/v1/summary?range=5m&site=shop%20%26%20co&filter=type%3Asign%20up"
        );
        assert_eq!(
            with_view(now_url(None), &(Some("blog.example".into()), None)),
            "/api/v1/now?site=blog.example"
        );
        assert_eq!(with_view(now_url(None), &(None, None)), "/api/v1/now");
    }

    #[test]
    fn the_address_bar_keeps_other_parameters_when_one_changes() {
        assert_eq!(with_query_param("", "compare", Some("1d")), "?compare=1d");
        assert_eq!(
            with_query_param("?range=1h&compare=7d", "compare", Some("1d")),
            "?range=1h&compare=1d"
        );
        assert_eq!(with_query_param("?compare=7d", "compare", None), "");
        assert_eq!(
            with_query_param("?kiosk&range=1h", "range", Some("7d")),
            "?kiosk&range=7d"
        );
    }

    #[test]
    fn a_link_is_revoked_by_its_key_in_the_path() {
        assert_eq!(links_url(), "/api/v1/links");
        assert_eq!(
            link_url("0123456789abcdef"),
            "/api/v1/links/0123456789abcdef"
        );
        assert_eq!(link_url("a/b?c"), "/api/v1/links/a%2Fb%3Fc");
    }

    #[test]
    fn encode_keeps_unreserved_characters_only() {
        assert_eq!(encode("aZ0-_.~"), "aZ0-_.~");
        assert_eq!(encode("a/b?c=d é"), "a%2Fb%3Fc%3Dd%20%C3%A9");
    }
}
