//! Access to the routes, and the security headers.
//!
//! Contract:
//! - [`authorize`] runs on every route the router matched, with the route's pattern (so a
//!   path trick reaches no other route's rights): what the route needs is [`rights::need`];
//!   who calls is an `Authorization: Bearer` token, else the `pb_session` cookie, else a
//!   `?token=` (kept for scripts; the pages never put one in a URL), else, with
//!   `--public-dashboard`, anyone as a reader. A missing, wrong or revoked credential is
//!   `401` (`WWW-Authenticate: Bearer`, JSON naming `token`, or `link` for a share link that
//!   was revoked or expired); a credential without the right is `403`.
//! - A write made with the cookie needs `X-CSRF-Token` equal to its session's value and,
//!   when the browser sends `Origin`, the server's own origin (`403` otherwise). A write
//!   with a bearer token needs neither (another origin cannot send that header without a
//!   CORS preflight, which only `/collect` answers).
//! - A share link's requests are confined to its scope ([`scope::confine`]).
//! - A page opened with `?token=` is answered `303` to the same page without it, with a
//!   session cookie when the token is right: no secret stays in the page's URL.
//! - A client that presents more than [`crate::access::guesses`]' allowance of wrong
//!   tokens, cookies or link ids in a minute gets `429` until the minute is over.
//! - Every response carries `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//!   no-referrer` and a `Content-Security-Policy` with `frame-ancestors` from
//!   `--frame-ancestors` ([`headers`]). Nothing here logs a secret.

pub mod rights;
pub mod scope;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pulseboard_model::proto;

use crate::access::{Access, Principal, Refusal};
use crate::api::params::percent_decode;
use crate::now_ms;
use rights::Need;

/// The session cookie's name.
pub const COOKIE: &str = "pb_session";

/// Access and the CSP `frame-ancestors` sent with every response.
#[derive(Clone)]
pub struct Security {
    pub access: Access,
    pub frame_ancestors: Arc<str>,
}

/// Who a request is from, for the handlers that ask (the session, the socket).
#[derive(Clone, Debug)]
pub struct Authed {
    pub principal: Principal,
    /// The session cookie and its CSRF value, when it came with one.
    pub session: Option<(String, String)>,
}

/// A credential as presented.
enum Presented {
    Bearer(String),
    Cookie(String),
    Query(String),
    Nothing,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

/// The session cookie of a request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_owned())
        })
}

/// `?token=` of a query, percent-decoded.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(|t| String::from_utf8_lossy(&percent_decode(t)).into_owned())
}

fn presented(req: &Request) -> Presented {
    if let Some(t) = bearer(req.headers()) {
        return Presented::Bearer(t);
    }
    if let Some(c) = cookie(req.headers()) {
        return Presented::Cookie(c);
    }
    match query_token(req.uri().query()) {
        Some(t) => Presented::Query(t),
        None => Presented::Nothing,
    }
}

/// The client's address, for the limit on guesses (unspecified in tests without one).
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// The answer to a refused credential.
pub fn refused(r: Refusal) -> Response {
    let (parameter, error) = match r {
        Refusal::WrongToken => (
            "token",
            "missing or wrong credential: send `Authorization: Bearer <token>`, or sign in on the dashboard",
        ),
        Refusal::TokenRevoked => ("token", "this token was revoked: ask an admin for a new one"),
        Refusal::SessionOver => ("token", "your session is over: sign in again, or open your share link again"),
        Refusal::UnknownLink => ("link", "no such share link: check the link, or ask the dashboard's owner for a new one"),
        Refusal::LinkRevoked => ("link", "this link was revoked: ask the dashboard's owner for a new one"),
        Refusal::LinkExpired => ("link", "this link expired: ask the dashboard's owner for a new one"),
    };
    let body = proto::ApiError {
        error: error.into(),
        parameter: Some(parameter.into()),
    };
    let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn forbidden(parameter: &str, error: String) -> Response {
    let body = proto::ApiError {
        error,
        parameter: Some(parameter.into()),
    };
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// `429` for a client that guessed too often.
pub fn too_many_guesses(retry_secs: u64) -> Response {
    let body = proto::ApiError::new(format!(
        "too many wrong credentials or link ids from this address: retry in {retry_secs} s"
    ));
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_secs));
    resp
}

/// Whether a refusal counts as a guess (a wrong secret, not an ended one).
pub fn is_guess(r: Refusal) -> bool {
    matches!(
        r,
        Refusal::WrongToken | Refusal::UnknownLink | Refusal::SessionOver
    )
}

/// Who calls, and whether the route allows it (see the module's contract).
pub(super) async fn authorize(
    State(sec): State<Security>,
    mut req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let need = rights::need(req.method(), &route);
    if need == Need::Open {
        if rights::is_page(&route) && query_token(req.uri().query()).is_some() {
            return crate::api::access::page_with_token(&sec.access, &req);
        }
        return next.run(req).await;
    }
    let now = now_ms();
    let ip = client_ip(&req);
    if let Some(retry) = sec.access.guesses.refused(ip, now) {
        return too_many_guesses(retry);
    }
    let found = match presented(&req) {
        Presented::Bearer(t) | Presented::Query(t) => sec.access.token(&t).map(|p| Authed {
            principal: p,
            session: None,
        }),
        Presented::Cookie(c) => sec.access.session(&c, now).map(|(p, csrf)| Authed {
            principal: p,
            session: Some((c, csrf)),
        }),
        Presented::Nothing if sec.access.public => Ok(Authed {
            principal: Principal::Public,
            session: None,
        }),
        // Nothing presented is no guess: the sign-in screen asks for it.
        Presented::Nothing => return refused(Refusal::WrongToken),
    };
    let authed = match found {
        Ok(a) => a,
        Err(r) => {
            if is_guess(r) {
                sec.access.guesses.wrong(ip, now);
            }
            return refused(r);
        }
    };
    let p = &authed.principal;
    let allowed = match need {
        Need::Open | Need::Session => true,
        Need::LinkRead => true,
        Need::Read => !matches!(p, Principal::Link { .. }),
        Need::Admin => p.is_admin(),
    };
    if !allowed {
        let why = match p {
            Principal::Link { .. } => format!("a share link does not open {route}"),
            _ => format!("{} {route} needs an admin token", req.method()),
        };
        return forbidden("token", why);
    }
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some((_, csrf))) = (writes, &authed.session) {
        if let Err((parameter, why)) = csrf_check(req.headers(), csrf) {
            return forbidden(parameter, why.into());
        }
    }
    if let Principal::Link { scope, .. } = p {
        match scope::confine(req.uri(), &route, scope, now) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(e) => return e.into_response(),
        }
    }
    req.extensions_mut().insert(authed);
    next.run(req).await
}

/// A cookie's write must echo the session's CSRF value and come from this origin.
fn csrf_check(headers: &HeaderMap, csrf: &str) -> Result<(), (&'static str, &'static str)> {
    let echoed = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::access::secret::same(echoed.as_bytes(), csrf.as_bytes()) {
        return Err((
            "x-csrf-token",
            "a write with the session cookie needs the header X-CSRF-Token (from GET /api/v1/session)",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let own = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
        if !own {
            return Err((
                "origin",
                "a write with the session cookie must come from this server's own pages",
            ));
        }
    }
    Ok(())
}

/// Security headers on every response.
pub(super) async fn headers(State(sec): State<Security>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let csp = format!(
        "frame-ancestors {}; base-uri 'self'; object-src 'none'",
        sec.frame_ancestors
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

#[cfg(test)]
mod tests;
