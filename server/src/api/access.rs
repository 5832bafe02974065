//! The routes of access: share links (`/s/<id>`, `/api/v1/links`), API tokens
//! (`/api/v1/tokens`) and the browser session (`/api/v1/session`).
//!
//! Contract:
//! - `GET /s/<id>` exchanges a share link's id for a session cookie and answers `303` to
//!   the link's page (its filter and range in the query, no secret); a revoked or expired
//!   link gets a page that says so (`410`), an unknown id `404` (a guess, counted).
//! - `GET /api/v1/session`: who the caller is (role, CSRF value for writes, a link's scope);
//!   `POST` signs in with a token (a cookie for it); `DELETE` signs out.
//! - Tokens and links: admins list, create (the secret is in the answer, once) and revoke
//!   them; a revocation ends the sockets open on them.
//! - The session cookie is `HttpOnly; SameSite=Strict; Path=/`, `Secure` over TLS.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pulseboard_model::time::parse_duration_ms;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Access, AccessError, Listed, Principal, Refusal, Role, Scope};
use crate::api::auth::{self, Authed, Security, COOKIE};
use crate::api::error::ApiError;
use crate::now_ms;
use crate::store::AccessKind;

fn api_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Store(s) => ApiError::Store(s),
        AccessError::Random(m) => ApiError::Refused {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            parameter: None,
            message: format!("no random secret could be made: {m}"),
        },
        AccessError::Invalid(field, m) => ApiError::Refused {
            status: StatusCode::BAD_REQUEST,
            parameter: Some(field),
            message: format!("{field}: {m}"),
        },
        e @ AccessError::Unknown(..) => ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            parameter: Some("key"),
            message: e.to_string(),
        },
    }
}

/// `Set-Cookie` for a session `value` that lasts until `until_ms`.
fn session_cookie(value: &str, until_ms: i64, secure: bool) -> Option<HeaderValue> {
    let max_age = ((until_ms - now_ms()) / 1000).max(0);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Some(c) = cookie {
        h.insert(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A page asked with `?token=`: the same page without it, signed in when the token is right.
pub(crate) fn page_with_token(access: &Access, req: &Request) -> Response {
    let now = now_ms();
    let ip = auth::client_ip(req);
    let token = auth::query_token(req.uri().query()).unwrap_or_default();
    let rest: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("token="))
        .collect();
    let location = if rest.is_empty() {
        req.uri().path().to_owned()
    } else {
        format!("{}?{}", req.uri().path(), rest.join("&"))
    };
    if access.guesses.refused(ip, now).is_some() {
        return see_other(&location, None);
    }
    let cookie = match signed_in(access, &token, ip, now) {
        Ok(c) => c,
        Err(Err(e)) => {
            tracing::error!(error = %e, "a session could not be opened");
            None
        }
        Err(Ok(_)) => None,
    };
    see_other(&location, cookie)
}

/// A session for `token`, presented by `ip`: its cookie, or why not (a refusal, a wrong
/// guess counted; or the store's failure).
fn signed_in(
    access: &Access,
    token: &str,
    ip: std::net::IpAddr,
    now: i64,
) -> Result<Option<HeaderValue>, Result<Refusal, AccessError>> {
    let p = access.token(token).map_err(|r| {
        if auth::is_guess(r) {
            access.guesses.wrong(ip, now);
        }
        Ok(r)
    })?;
    let (c, _, until) = access
        .open_session(&p, None, Some(token), now)
        .map_err(Err)?;
    Ok(session_cookie(&c, until, access.secure))
}

fn ended_page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{title} · Pulseboard</title>\
         <body style=\"font:1.5rem system-ui;background:#0f172a;color:#e2e8f0;display:grid;place-items:center;height:100vh;margin:0\">\
         <main data-testid=access-ended><h1>{title}</h1><p>{text}</p></main>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// Open a share link: its session cookie, and `303` to its page.
#[utoipa::path(
    get,
    path = "/s/{id}",
    tag = "access",
    params(("id" = String, Path, description = "The share link's id (as created; 43 characters).")),
    responses(
        (status = 303, description = "A session cookie for the link, and its page (`Location`).",
            headers(("set-cookie" = String, description = "`pb_session`, HttpOnly, SameSite=Strict"),
                    ("location" = String, description = "The link's page, e.g. `/kiosk?range=1h`"))),
        (status = 404, description = "No such link (counted as a guess).", content_type = "text/html", body = String),
        (status = 410, description = "The link was revoked or expired.", content_type = "text/html", body = String),
        (status = 429, description = "Too many wrong guesses from this address.", body = pulseboard_model::proto::ApiError),
    )
)]
pub(crate) async fn share(
    State(sec): State<Security>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let now = now_ms();
    let ip = auth::client_ip(&req);
    if let Some(retry) = sec.access.guesses.refused(ip, now) {
        return auth::too_many_guesses(retry);
    }
    match sec.access.link(&id, now) {
        Ok((p, h)) => {
            let Principal::Link { scope, .. } = &p else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            match sec.access.open_session(&p, Some(&h), None, now) {
                Ok((c, _, until)) => {
                    see_other(&scope.page(), session_cookie(&c, until, sec.access.secure))
                }
                Err(e) => api_error(e).into_response(),
            }
        }
        Err(Refusal::LinkRevoked) => ended_page(
            StatusCode::GONE,
            "This link was revoked",
            "Ask the dashboard's owner for a new link.",
        ),
        Err(Refusal::LinkExpired) => ended_page(
            StatusCode::GONE,
            "This link has expired",
            "Ask the dashboard's owner for a new link.",
        ),
        Err(_) => {
            sec.access.guesses.wrong(ip, now);
            ended_page(
                StatusCode::NOT_FOUND,
                "No such link",
                "Check the link, or ask the dashboard's owner for a new one.",
            )
        }
    }
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// `admin`, `viewer`, `link` or `public`.
    pub role: String,
    /// The value a write with the session cookie sends as `X-CSRF-Token` (none without a
    /// cookie).
    pub csrf: Option<String>,
    /// A share link's key, scope and expiry.
    pub link: Option<LinkInfo>,
}

/// A share link as its own page sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkInfo {
    pub key: String,
    #[serde(flatten)]
    pub scope: Scope,
    pub expires_ms: Option<i64>,
}

/// Who the caller is: role, CSRF value, a link's scope.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "access",
    responses(
        (status = 200, description = "The caller.", body = SessionInfo),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = pulseboard_model::proto::ApiError),
    )
)]
pub(crate) async fn session(Extension(a): Extension<Authed>) -> Json<SessionInfo> {
    let link = match &a.principal {
        Principal::Link {
            key,
            scope,
            expires_ms,
        } => Some(LinkInfo {
            key: key.clone(),
            scope: scope.clone(),
            expires_ms: *expires_ms,
        }),
        _ => None,
    };
    Json(SessionInfo {
        role: a.principal.role_name().into(),
        csrf: a.session.map(|(_, csrf)| csrf),
        link,
    })
}

/// Signing in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    /// An admin or viewer token.
    pub token: String,
}

/// Sign in with a token: a session cookie for it.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "access",
    request_body = SignIn,
    responses(
        (status = 204, description = "Signed in: a session cookie.",
            headers(("set-cookie" = String, description = "`pb_session`, HttpOnly, SameSite=Strict"))),
        (status = 400, description = "The body is not `{\"token\": ...}`.", body = pulseboard_model::proto::ApiError),
        (status = 401, description = "A wrong or revoked token.", body = pulseboard_model::proto::ApiError),
        (status = 429, description = "Too many wrong guesses from this address.", body = pulseboard_model::proto::ApiError),
    )
)]
pub(crate) async fn sign_in(State(sec): State<Security>, req: Request) -> Response {
    let now = now_ms();
    let ip = auth::client_ip(&req);
    if let Some(retry) = sec.access.guesses.refused(ip, now) {
        return auth::too_many_guesses(retry);
    }
    let body = match axum::body::to_bytes(req.into_body(), 4096).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::BadParam {
                parameter: "token",
                message: "the body must be {\"token\": \"...\"}, at most 4 KiB".into(),
            }
            .into_response()
        }
    };
    let Ok(SignIn { token }) = serde_json::from_slice::<SignIn>(&body) else {
        return ApiError::BadParam {
            parameter: "token",
            message: "the body must be {\"token\": \"...\"}".into(),
        }
        .into_response();
    };
    match signed_in(&sec.access, &token, ip, now) {
        Ok(cookie) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if let Some(v) = cookie {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(Ok(r)) => auth::refused(r),
        Err(Err(e)) => api_error(e).into_response(),
    }
}

/// Sign out: the session ends and its cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "access",
    params(("x-csrf-token" = Option<String>, Header, description = "The session's CSRF value (with the cookie).")),
    responses(
        (status = 204, description = "Signed out."),
        (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
        (status = 403, description = "A cookie without its CSRF value.", body = pulseboard_model::proto::ApiError),
    )
)]
pub(crate) async fn sign_out(
    State(sec): State<Security>,
    Extension(a): Extension<Authed>,
) -> Result<Response, ApiError> {
    if let Some((cookie, _)) = &a.session {
        sec.access.close_session(cookie).map_err(api_error)?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("pb_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// A new share link.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewLink {
    /// Where it is used, e.g. `lobby`.
    pub name: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// It expires this long after now, e.g. `7d` (none: until revoked).
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A token or link just made, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The secret: the token, or the link's id.
    pub id: String,
    /// A link's URL path (`/s/<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    pub listed: Listed,
}

/// The share links (no ids: those were shown once).
#[utoipa::path(get, path = "/api/v1/links", tag = "access",
    responses((status = 200, description = "Newest first.", body = [Listed]),
              (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
              (status = 403, description = "Not an admin.", body = pulseboard_model::proto::ApiError)))]
pub(crate) async fn links(State(sec): State<Security>) -> Result<Json<Vec<Listed>>, ApiError> {
    list(&sec, AccessKind::Link)
}

fn list(sec: &Security, kind: AccessKind) -> Result<Json<Vec<Listed>>, ApiError> {
    sec.access.list(kind).map(Json).map_err(api_error)
}

fn revoke(sec: &Security, kind: AccessKind, key: &str) -> Result<Json<Listed>, ApiError> {
    sec.access
        .revoke(kind, key, now_ms())
        .map(Json)
        .map_err(api_error)
}

/// Create a share link.
#[utoipa::path(post, path = "/api/v1/links", tag = "access", request_body = NewLink,
    responses((status = 201, description = "The link, with its id (shown once).", body = Created),
              (status = 400, description = "A bad scope, name or expiry.", body = pulseboard_model::proto::ApiError),
              (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
              (status = 403, description = "Not an admin, or a cookie without its CSRF value.", body = pulseboard_model::proto::ApiError)))]
pub(crate) async fn create_link(
    State(sec): State<Security>,
    State(segments): State<crate::query::segments::SegmentsState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let new: NewLink = serde_json::from_slice(&body).map_err(|e| ApiError::BadParam {
        parameter: "body",
        message: format!(
            "the body must be {{\"name\", \"view\" (kiosk|dashboard|embed), \"panel\"?, \"filter\"?, \"site\"?, \"range\", \"expires_in\"?}}: {e}"
        ),
    })?;
    // The filter must be one the API reads.
    segments.filter(new.scope.filter.as_deref())?;
    let now = now_ms();
    let expires = match new.expires_in.as_deref() {
        None | Some("") => None,
        Some(s) => match parse_duration_ms(s) {
            Ok(ms) if ms > 0 => Some(now.saturating_add(ms)),
            _ => {
                return Err(ApiError::BadParam {
                    parameter: "expires_in",
                    message: format!("expires_in={s:?}: a duration such as 8h or 30d"),
                })
            }
        },
    };
    let (id, listed) = sec
        .access
        .create_link(&new.scope, &new.name, expires, now)
        .map_err(api_error)?;
    tracing::info!(key = %listed.key, "share link created");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            url: Some(format!("/s/{id}")),
            id,
            listed,
        }),
    ))
}

/// Revoke a share link (its open pages are told within seconds).
#[utoipa::path(delete, path = "/api/v1/links/{key}", tag = "access",
    params(("key" = String, Path, description = "The link's key (from the list).")),
    responses((status = 200, description = "Revoked.", body = Listed),
              (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
              (status = 403, description = "Not an admin, or a cookie without its CSRF value.", body = pulseboard_model::proto::ApiError),
              (status = 404, description = "No link has this key.", body = pulseboard_model::proto::ApiError)))]
pub(crate) async fn revoke_link(
    State(sec): State<Security>,
    Path(key): Path<String>,
) -> Result<Json<Listed>, ApiError> {
    revoke(&sec, AccessKind::Link, &key)
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// Where it is used, e.g. `lobby-tv`.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
}

/// The API tokens (no secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "access",
    responses((status = 200, description = "Newest first.", body = [Listed]),
              (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
              (status = 403, description = "Not an admin.", body = pulseboard_model::proto::ApiError)))]
pub(crate) async fn tokens(State(sec): State<Security>) -> Result<Json<Vec<Listed>>, ApiError> {
    list(&sec, AccessKind::Token)
}

/// Create an API token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "access", request_body = NewToken,
    responses((status = 201, description = "The token (shown once).", body = Created),
              (status = 400, description = "A bad role or name.", body = pulseboard_model::proto::ApiError),
              (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
              (status = 403, description = "Not an admin, or a cookie without its CSRF value.", body = pulseboard_model::proto::ApiError)))]
pub(crate) async fn create_token(
    State(sec): State<Security>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let new: NewToken = serde_json::from_slice(&body).map_err(|e| ApiError::BadParam {
        parameter: "body",
        message: format!("the body must be {{\"name\": ..., \"role\": \"admin\"|\"viewer\"}}: {e}"),
    })?;
    let role = Role::parse(&new.role).ok_or_else(|| ApiError::BadParam {
        parameter: "role",
        message: format!("role={:?}: admin or viewer", new.role),
    })?;
    let (id, listed) = sec
        .access
        .create_token(role, &new.name, now_ms())
        .map_err(api_error)?;
    tracing::info!(key = %listed.key, role = role.name(), "token created");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id,
            url: None,
            listed,
        }),
    ))
}

/// Revoke an API token (its sockets are closed within seconds).
#[utoipa::path(delete, path = "/api/v1/tokens/{key}", tag = "access",
    params(("key" = String, Path, description = "The token's key (from the list).")),
    responses((status = 200, description = "Revoked.", body = Listed),
              (status = 401, description = "No credential.", body = pulseboard_model::proto::ApiError),
              (status = 403, description = "Not an admin, or a cookie without its CSRF value.", body = pulseboard_model::proto::ApiError),
              (status = 404, description = "No token has this key.", body = pulseboard_model::proto::ApiError)))]
pub(crate) async fn revoke_token(
    State(sec): State<Security>,
    Path(key): Path<String>,
) -> Result<Json<Listed>, ApiError> {
    revoke(&sec, AccessKind::Token, &key)
}
