//! The share links' requests, for the admin's Share dialog: the list
//! (`GET /api/v1/links`, newest first), a new link (`POST /api/v1/links`) and a revocation
//! (`DELETE /api/v1/links/<key>`).
//!
//! Contract: the writes carry the session's CSRF token in `X-CSRF-Token` (the cookie goes by
//! itself; see `docs/access.md`). Each call answers what the dialog shows or, as `Err`, a
//! sentence for people: the server's `error` when it gave one (a `400` for a bad name, scope
//! or expiry; a `403`; a `404` for an unknown key). A `401` also moves the page's gate (the
//! session is over: the sign-in form), as every other fetch does.

use leptos::prelude::*;

use super::{
    fetch::send,
    session,
    urls::{link_url, links_url},
};
use crate::{
    access::{refusal, ApiError, CSRF_HEADER},
    share::{CreatedLink, SharedLink},
    state::AppState,
};

/// The share links, newest first.
pub async fn list_links(app: AppState) -> Result<Vec<SharedLink>, String> {
    let text = call(app, "GET", &links_url(), None).await?;
    serde_json::from_str(&text).map_err(|e| format!("Cannot read the list of links: {e}"))
}

/// Makes a link from `body` (see [`crate::share::ShareForm::body`]); the answer holds its
/// secret, this once.
pub async fn create_link(app: AppState, body: &str) -> Result<CreatedLink, String> {
    let text = call(app, "POST", &links_url(), Some(body)).await?;
    serde_json::from_str(&text).map_err(|e| format!("Cannot read the new link: {e}"))
}

/// Revokes the link `key`: its open pages end within seconds.
pub async fn revoke_link(app: AppState, key: &str) -> Result<(), String> {
    call(app, "DELETE", &link_url(key), None).await.map(drop)
}

/// Sends `method url` (with the CSRF token but for a `GET`) and answers the body of a
/// `2xx`, or why not.
async fn call(
    app: AppState,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<String, String> {
    let csrf = app
        .session
        .with_untracked(|s| s.as_ref().and_then(|s| s.csrf.clone()))
        .unwrap_or_default();
    let headers: &[(&str, &str)] = if method == "GET" {
        &[]
    } else {
        &[(CSRF_HEADER, &csrf)]
    };
    let (status, text) = send(method, url, body, headers)
        .await
        .map_err(|e| format!("The server did not answer ({e}). Try again."))?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    if let Some(r) = refusal(status, &text) {
        session::refuse(app, &r);
    }
    let e = ApiError::parse(&text);
    Err(if e.error.is_empty() {
        format!("The server refused it (HTTP {status}).")
    } else {
        e.error
    })
}
