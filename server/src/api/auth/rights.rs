//! Who may call which route: [`need`], one table for the whole router.

use axum::http::Method;

/// What a route asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: the tracking path, health, the pages (which hold no data), the share-link
    /// exchange and signing in.
    Open,
    /// Any credential: the session itself (who am I, sign out).
    Session,
    /// A reader, a share link included: what a page shows.
    LinkRead,
    /// A reader (viewer, admin, or anyone with `--public-dashboard`), not a share link:
    /// the operator's views (dead letters, metrics, alert rules).
    Read,
    /// An admin: every write, and the tokens and links.
    Admin,
}

/// What `route` (the router's pattern, e.g. `/embed/{panel}`) asks of a `method` request.
/// Anything not listed needs an admin, so a route added without a line here is closed.
pub fn need(method: &Method, route: &str) -> Need {
    let reading = *method == Method::GET || *method == Method::HEAD;
    match route {
        "/" | "/kiosk" | "/embed/{panel}" | "/collect" | "/pb.js" | "/healthz" | "/readyz"
        | "/s/{id}" => Need::Open,
        "/api/v1/session" if *method == Method::POST => Need::Open,
        "/api/v1/session" => Need::Session,
        "/ws"
        | "/api/v1/windows"
        | "/api/v1/summary"
        | "/api/v1/export"
        | "/api/v1/now"
        | "/api/v1/segments"
        | "/api/v1/status"
        | "/api/v1/annotations"
        | "/api/v1/openapi.json"
            if reading =>
        {
            Need::LinkRead
        }
        "/api/v1/dead-letters" | "/metrics" | "/api/v1/alerts" if reading => Need::Read,
        _ => Need::Admin,
    }
}

/// The pages, whose `?token=` is exchanged for a session cookie.
pub fn is_page(route: &str) -> bool {
    matches!(route, "/" | "/kiosk" | "/embed/{panel}")
}
