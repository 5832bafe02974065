//! Who is looking, and why the server may refuse them: the session the server describes at
//! `GET /api/v1/session` ([`Session`]), what the page shows instead of the dashboard when
//! access is missing or has ended ([`Gate`]), and how a refusal reads ([`refusal`],
//! [`socket_close`]).
//!
//! Contract: pure, tested on the host. The page never holds a secret: credentials travel in
//! the `pb_session` cookie (HttpOnly, set by the server when a page is opened with
//! `?token=`, through a share link `/s/<id>`, or by signing in), which same-origin fetches
//! and the socket send by themselves.
//!
//! - `401` with `"parameter":"link"`: the share link this page was opened with was revoked
//!   or expired ([`Gate::Ended`]); nothing the viewer can do but ask for a new link.
//! - any other `401`: no credential, or one that no longer counts ([`Gate::SignIn`]); but
//!   on a page opened through a share link it means the link's cookie ran out (after the
//!   server's 30 days; the server keeps a link's cookie past the link's expiry so that it
//!   can say "expired" itself): the link has ended ([`Refusal::gate_on`]), not a sign-in
//!   form on a wall.
//! - `403`: a request outside the credential's rights or the link's scope
//!   ([`Refusal::Forbidden`], naming the parameter at fault); the page hides what it would
//!   have shown, it does not end.
//! - a socket closed with code 1008 and reason `link revoked` / `link expired` ends the
//!   link's access; `access revoked` (or a socket refused at its handshake, which the
//!   browser only reports as a failed connection) is explained by `GET /api/v1/session`.

use serde::Deserialize;

use crate::route::Range;

/// The session endpoint: `GET` describes it, `POST {"token":…}` signs in, `DELETE` signs out.
pub const SESSION_URL: &str = "/api/v1/session";

/// The header a cookie session's writes (and its sign-out) carry its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The WebSocket close code the server ends a socket with when its access is withdrawn
/// (policy violation).
pub const CLOSE_POLICY: u16 = 1008;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including writes.
    Admin,
    /// Reads.
    Viewer,
    /// A share link: the one view it was made for.
    Link,
    /// A server without tokens: everyone reads.
    Public,
    /// A role this page does not know (a newer server): treated as a reader.
    #[serde(other)]
    Other,
}

/// The view a share link was made for (`GET /api/v1/session`'s `link`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LinkScope {
    /// The link's key (not its secret): what its owner revokes it by.
    pub key: String,
    /// Its name, as its owner gave it.
    pub name: String,
    /// `kiosk`, `dashboard` or `embed`.
    pub view: String,
    /// The embedded panel, for an `embed` link.
    pub panel: Option<String>,
    /// The segment the link is pinned to (`country:DE`), if any.
    pub filter: Option<String>,
    /// The site the link is pinned to, if any.
    pub site: Option<String>,
    /// The range the link is pinned to (`1h`), if any.
    pub range: Option<String>,
    /// When the link stops working, ms since the epoch; `None`: never.
    pub expires_ms: Option<i64>,
}

impl LinkScope {
    /// The range the link pins the page to, when it names one this page knows.
    pub fn pinned_range(&self) -> Option<Range> {
        self.range.as_deref().and_then(Range::from_label)
    }
}

/// `GET /api/v1/session`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    /// What the credential may do.
    pub role: Role,
    /// The token a cookie session's writes carry in [`CSRF_HEADER`]; `None` for a bearer
    /// token or no session.
    #[serde(default)]
    pub csrf: Option<String>,
    /// The share link's scope, for a link session.
    #[serde(default)]
    pub link: Option<LinkScope>,
}

impl Session {
    /// A share link's session: one view, no segment browser, no comparison.
    pub fn is_link(&self) -> bool {
        self.role == Role::Link || self.link.is_some()
    }

    /// A signed-in session the viewer can sign out of (a cookie with a CSRF token, not a
    /// link).
    pub fn can_sign_out(&self) -> bool {
        self.csrf.is_some() && !self.is_link() && self.role != Role::Public
    }

    /// An admin (not a link): the dashboard offers to make and revoke share links.
    pub fn can_share(&self) -> bool {
        self.role == Role::Admin && !self.is_link()
    }
}

/// Why a share link stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its owner revoked it.
    Revoked,
    /// It reached its expiry.
    Expired,
}

impl Ended {
    /// `revoked` or `expired` (the screen's `data-reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Revoked => "revoked",
            Ended::Expired => "expired",
        }
    }
}

/// What the page shows: the dashboard, or a full-page screen instead of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Asking the server who we are (nothing shown yet).
    Checking,
    /// The page (its feeds run only in this state).
    Open,
    /// No credential: the sign-in form.
    SignIn,
    /// The share link's access ended: a screen that says so, and no more requests.
    Ended(Ended),
}

impl Gate {
    /// The gate after a refusal that says `next`: an ended link stays ended (a later `401`
    /// for lack of a cookie does not turn it into a sign-in form), anything else follows.
    pub fn after(&self, next: Gate) -> Gate {
        match (self, next) {
            (Gate::Ended(e), _) => Gate::Ended(*e),
            (_, next) => next,
        }
    }
}

/// What a refused request means for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `401`: no valid credential; the page shows [`Gate::SignIn`].
    SignIn,
    /// `401` naming the link: the link's access ended; the page shows [`Gate::Ended`].
    Ended(Ended),
    /// `403`: outside the credential's rights or the link's scope; `parameter` is the one
    /// at fault (`filter`, `range`, `compare`…, empty when the server named none).
    Forbidden {
        /// The parameter at fault.
        parameter: String,
    },
}

impl Refusal {
    /// The gate this refusal leads to, if it ends the page.
    pub fn gate(&self) -> Option<Gate> {
        self.gate_on(false)
    }

    /// The gate this refusal leads to on a page opened through a share link
    /// (`link_page`) or not: on a link's page, a `401` without a credential is the link's
    /// cookie run out with the link, so the link has expired.
    pub fn gate_on(&self, link_page: bool) -> Option<Gate> {
        match self {
            Refusal::SignIn if link_page => Some(Gate::Ended(Ended::Expired)),
            Refusal::SignIn => Some(Gate::SignIn),
            Refusal::Ended(e) => Some(Gate::Ended(*e)),
            Refusal::Forbidden { .. } => None,
        }
    }
}

/// The server's JSON error body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ApiError {
    /// What went wrong, for people.
    pub error: String,
    /// The parameter at fault.
    pub parameter: Option<String>,
}

impl ApiError {
    /// The body's error, or the whole body when it is not the API's JSON.
    pub fn parse(body: &str) -> ApiError {
        serde_json::from_str(body).unwrap_or_else(|_| ApiError {
            error: body.trim().to_owned(),
            parameter: None,
        })
    }
}

/// What an answer with HTTP `status` and `body` means for the page; `None` when it is not
/// a refusal (`401`/`403`).
pub fn refusal(status: u16, body: &str) -> Option<Refusal> {
    match status {
        401 => {
            let e = ApiError::parse(body);
            if e.parameter.as_deref() == Some("link") {
                Some(Refusal::Ended(link_ended(&e.error)))
            } else {
                Some(Refusal::SignIn)
            }
        }
        403 => Some(Refusal::Forbidden {
            parameter: ApiError::parse(body).parameter.unwrap_or_default(),
        }),
        _ => None,
    }
}

/// Why a link ended, from the server's message (`this link expired …`; anything else,
/// `this link was revoked …` included, reads as revoked).
fn link_ended(message: &str) -> Ended {
    let m = message.trim().to_ascii_lowercase();
    if m.starts_with("this link expired") || m.contains("link expired") {
        Ended::Expired
    } else {
        Ended::Revoked
    }
}

/// What a socket's close means for its reconnect loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketClose {
    /// A network drop, a restart, a replaced socket: reconnect with backoff.
    Reconnect,
    /// The link's access ended: no reconnect, the page shows [`Gate::Ended`].
    Ended(Ended),
    /// The server withdrew the access (`access revoked`, or another 1008): ask
    /// `GET /api/v1/session` why before anything else.
    AskSession,
}

/// What a close with `code` and `reason` means (`reason` as the server sends it:
/// `link revoked`, `link expired`, `access revoked`).
pub fn socket_close(code: u16, reason: &str) -> SocketClose {
    if code != CLOSE_POLICY {
        return SocketClose::Reconnect;
    }
    match reason.trim().to_ascii_lowercase().as_str() {
        "link revoked" => SocketClose::Ended(Ended::Revoked),
        "link expired" => SocketClose::Ended(Ended::Expired),
        _ => SocketClose::AskSession,
    }
}

/// The sign-in request's body, `{"token":"…"}`.
pub fn sign_in_body(token: &str) -> String {
    serde_json::json!({ "token": token.trim() }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_session_reads_with_its_scope() {
        let s: Session = serde_json::from_str(
            r#"{"role":"link","csrf":null,"link":{"key":"k1","name":"lobby","view":"kiosk",
                "panel":null,"filter":"country:DE","range":"1h","expires_ms":null,"created_ms":5}}"#,
        )
        .expect("session");
        assert!(s.is_link());
        assert!(!s.can_sign_out());
        let link = s.link.expect("link");
        assert_eq!(link.filter.as_deref(), Some("country:DE"));
        assert_eq!(link.pinned_range(), Some(Range::H1));
        assert_eq!(link.view, "kiosk");
    }

    #[test]
    fn a_signed_in_session_can_sign_out_and_a_bearer_cannot() {
        let cookie: Session =
            serde_json::from_str(r#"{"role":"viewer","csrf":"c","link":null}"#).expect("s");
        assert!(!cookie.is_link());
        assert!(cookie.can_sign_out());
        let bearer: Session = serde_json::from_str(r#"{"role":"admin"}"#).expect("s");
        assert!(!bearer.can_sign_out());
        let public: Session = serde_json::from_str(r#"{"role":"public","csrf":null}"#).expect("s");
        assert!(!public.can_sign_out());
        let newer: Session = serde_json::from_str(r#"{"role":"auditor"}"#).expect("s");
        assert_eq!(newer.role, Role::Other);
    }

    #[test]
    fn only_an_admin_shares() {
        let admin: Session =
            serde_json::from_str(r#"{"role":"admin","csrf":"c","link":null}"#).expect("s");
        assert!(admin.can_share());
        for role in ["viewer", "link", "public", "auditor"] {
            let s: Session =
                serde_json::from_str(&format!(r#"{{"role":"{role}","csrf":"c"}}"#)).expect("s");
            assert!(!s.can_share(), "{role}");
        }
    }

    #[test]
    fn a_401_naming_the_link_ends_it_and_any_other_asks_to_sign_in() {
        let revoked = r#"{"error":"this link was revoked by its owner","parameter":"link"}"#;
        assert_eq!(refusal(401, revoked), Some(Refusal::Ended(Ended::Revoked)));
        let expired = r#"{"error":"this link expired at 12:00","parameter":"link"}"#;
        assert_eq!(refusal(401, expired), Some(Refusal::Ended(Ended::Expired)));
        let none = r#"{"error":"a token is required","parameter":"token"}"#;
        assert_eq!(refusal(401, none), Some(Refusal::SignIn));
        assert_eq!(refusal(401, "Unauthorized"), Some(Refusal::SignIn));
        assert_eq!(
            refusal(401, none).and_then(|r| r.gate()),
            Some(Gate::SignIn)
        );
    }

    #[test]
    fn a_403_names_its_parameter_and_does_not_end_the_page() {
        let r = refusal(403, r#"{"error":"not in this link","parameter":"compare"}"#);
        assert_eq!(
            r,
            Some(Refusal::Forbidden {
                parameter: "compare".into()
            })
        );
        assert_eq!(r.and_then(|r| r.gate()), None);
        assert_eq!(
            refusal(403, "nope"),
            Some(Refusal::Forbidden {
                parameter: String::new()
            })
        );
        assert_eq!(refusal(200, "{}"), None);
        assert_eq!(refusal(500, "{}"), None);
    }

    #[test]
    fn no_credential_on_a_link_page_is_the_link_run_out() {
        assert_eq!(
            Refusal::SignIn.gate_on(true),
            Some(Gate::Ended(Ended::Expired))
        );
        assert_eq!(Refusal::SignIn.gate_on(false), Some(Gate::SignIn));
        assert_eq!(
            Refusal::Ended(Ended::Revoked).gate_on(true),
            Some(Gate::Ended(Ended::Revoked))
        );
        let forbidden = Refusal::Forbidden {
            parameter: "range".into(),
        };
        assert_eq!(forbidden.gate_on(true), None);
    }

    #[test]
    fn an_ended_link_stays_ended() {
        let ended = Gate::Ended(Ended::Expired);
        assert_eq!(ended.after(Gate::SignIn), ended);
        assert_eq!(
            Gate::Open.after(Gate::Ended(Ended::Revoked)),
            Gate::Ended(Ended::Revoked)
        );
        assert_eq!(Gate::Open.after(Gate::SignIn), Gate::SignIn);
        assert_eq!(Ended::Revoked.as_str(), "revoked");
        assert_eq!(Ended::Expired.as_str(), "expired");
    }

    #[test]
    fn only_a_policy_close_stops_the_reconnects() {
        assert_eq!(socket_close(1006, ""), SocketClose::Reconnect);
        assert_eq!(socket_close(1000, "link revoked"), SocketClose::Reconnect);
        assert_eq!(
            socket_close(1008, "link revoked"),
            SocketClose::Ended(Ended::Revoked)
        );
        assert_eq!(
            socket_close(1008, "link expired"),
            SocketClose::Ended(Ended::Expired)
        );
        assert_eq!(
            socket_close(1008, "access revoked"),
            SocketClose::AskSession
        );
        assert_eq!(socket_close(1008, ""), SocketClose::AskSession);
    }

    #[test]
    fn the_sign_in_body_is_json() {
        assert_eq!(sign_in_body(" a\"b "), r#"{"token":"a\"b"}"#);
    }
}
