//! Who may see and change what: roles, API tokens, share links and browser sessions.
//!
//! Contract:
//! - Two roles: admin (reads everything; writes annotations, creates and revokes tokens and
//!   share links) and viewer (reads). `--token` is an admin token that needs no store
//!   record. Tokens are made by [`Access::create_token`] (`pulseboard token create`, or
//!   `POST /api/v1/tokens`), shown once, and stored only as their SHA-256 (store tree
//!   `access`); a token is named by its key (16 hex digits of the hash) in lists and when
//!   revoked.
//! - A share link ([`Access::create_link`]) opens one view ([`Scope`]) and reads only what
//!   that view needs; its id is 256 random bits, stored only as its hash; it may expire.
//! - A browser session ([`Access::open_session`]) is what a link or a token is exchanged
//!   for: an HttpOnly cookie, stored as its hash, with the CSRF value writes must echo. A
//!   session lives as long as what it was opened with (a revoked token or link ends its
//!   sessions at their next request) and at most [`SESSION_TTL_MS`].
//! - Revoking a token or a link ends the sockets open on it: [`Access::ended`] hands each
//!   socket a token that the revocation cancels (and a link's expiry time), so the screen
//!   is told within the socket's next turn.
//! - Nothing here logs a secret: a credential is named by its key.

pub mod cli;
pub mod guesses;
mod listed;
mod scope;
pub mod secret;
mod sessions;

pub use guesses::Guesses;
pub use listed::Listed;
pub use scope::{Scope, View};

use listed::listed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::store::{AccessKind, AccessRecord, Store, StoreError};

/// How long a browser session lives at most (its cookie's `Max-Age`).
pub const SESSION_TTL_MS: i64 = 30 * 86_400_000;

/// Errors of access management.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error("no {0} has the key {1:?}: list them to see their keys")]
    Unknown(&'static str, String),
}

/// A role a token gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// A token of `role`; `key` names it (`flag` for `--token`).
    Token { role: Role, key: String },
    /// A share link.
    Link {
        key: String,
        scope: Scope,
        expires_ms: Option<i64>,
    },
    /// Anyone, on a server started with `--public-dashboard`.
    Public,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Principal::Token {
                role: Role::Admin,
                ..
            }
        )
    }

    /// Its name in the session's answer: `admin`, `viewer`, `link` or `public`.
    pub fn role_name(&self) -> &'static str {
        match self {
            Principal::Token { role, .. } => role.name(),
            Principal::Link { .. } => "link",
            Principal::Public => "public",
        }
    }

    /// The key revocation names, if it can be revoked.
    fn revocable_key(&self) -> Option<&str> {
        match self {
            Principal::Token { key, .. } if key != FLAG => Some(key),
            Principal::Link { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token matches.
    WrongToken,
    /// The token was revoked.
    TokenRevoked,
    /// No session has this cookie (signed out, or over).
    SessionOver,
    /// No link has this id.
    UnknownLink,
    LinkRevoked,
    LinkExpired,
}

impl Refusal {
    /// Its name in `pulseboard_access_refused_total`.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::WrongToken => "wrong_token",
            Refusal::TokenRevoked => "token_revoked",
            Refusal::SessionOver => "session_over",
            Refusal::UnknownLink => "unknown_link",
            Refusal::LinkRevoked => "link_revoked",
            Refusal::LinkExpired => "link_expired",
        }
    }
}

/// A session's token source: what `--token` sessions name.
const FLAG: &str = "flag";

/// What a socket watches to end when its access does.
#[derive(Clone, Default)]
pub struct Ended {
    /// Cancelled when the token or link is revoked.
    pub revoked: CancellationToken,
    /// When the link expires, epoch ms.
    pub expires_ms: Option<i64>,
    /// A link's (the close reason says "link …").
    pub link: bool,
}

impl Ended {
    /// The close reason once it fired at `now_ms`.
    pub fn reason(&self, now_ms: i64) -> &'static str {
        match (self.link, self.expires_ms) {
            (true, Some(e)) if now_ms >= e && !self.revoked.is_cancelled() => "link expired",
            (true, _) => "link revoked",
            (false, _) => "access revoked",
        }
    }
}

/// The access state of a run. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    store: Store,
    /// SHA-256 of `--token`, if given.
    flag: Option<[u8; 32]>,
    /// `--public-dashboard`: anyone reads the dashboard's data.
    pub public: bool,
    /// Cookies carry `Secure` (the server speaks TLS).
    pub secure: bool,
    watch: Arc<Mutex<HashMap<String, CancellationToken>>>,
    /// Wrong guesses per client.
    pub guesses: Arc<Guesses>,
}

impl Access {
    pub fn new(store: Store, flag_token: Option<&str>, public: bool, secure: bool) -> Self {
        Access {
            store,
            flag: flag_token.map(|t| secret::hash(t.as_bytes())),
            public,
            secure,
            watch: Arc::default(),
            guesses: Arc::default(),
        }
    }

    /// The same, allowing `limit` wrong guesses a minute per client.
    pub fn with_guess_limit(mut self, limit: u32) -> Self {
        self.guesses = Arc::new(Guesses::new(limit));
        self
    }

    /// At start: the sessions that are over are deleted, and the log says who can read:
    /// anyone (`--public-dashboard`), or who holds a credential, or, when none exists,
    /// how to make one.
    pub fn announce(&self, now_ms: i64) {
        if let Err(e) = self.purge_sessions(now_ms) {
            tracing::warn!(error = %e, "the sessions that are over could not be deleted");
        }
        let tokens = self
            .list(AccessKind::Token)
            .map(|l| l.iter().filter(|t| t.revoked_ms.is_none()).count())
            .unwrap_or(0);
        if self.public {
            tracing::info!(tokens, "anyone who reaches this server reads the dashboard (--public-dashboard, or the embedded demo without --token); writes need an admin token");
        } else if self.flag.is_none() && tokens == 0 {
            tracing::warn!("no credential exists, so nobody can read the dashboard: stop the server and run `pulseboard --data-dir DIR token create --role admin --name me`, or start it with --token SECRET (or --public-dashboard); see docs/access.md");
        } else {
            tracing::info!(
                tokens,
                flag = self.flag.is_some(),
                "the dashboard needs a token, a sign-in or a share link (docs/access.md)"
            );
        }
    }

    /// Who presents `token` (a bearer token, or `?token=`).
    pub fn token(&self, token: &str) -> Result<Principal, Refusal> {
        let h = secret::hash(token.as_bytes());
        if self.flag.is_some_and(|f| secret::same(&f, &h)) {
            return Ok(Principal::Token {
                role: Role::Admin,
                key: FLAG.into(),
            });
        }
        if !secret::plausible(token) {
            return Err(Refusal::WrongToken);
        }
        self.stored_token(&h)
    }

    fn stored_token(&self, h: &[u8; 32]) -> Result<Principal, Refusal> {
        match self.store.access_get(AccessKind::Token, h) {
            Ok(Some(AccessRecord::Token {
                role, revoked_ms, ..
            })) => match (revoked_ms, Role::parse(&role)) {
                (Some(_), _) => Err(Refusal::TokenRevoked),
                (None, Some(role)) => Ok(Principal::Token {
                    role,
                    key: secret::key_of(h),
                }),
                (None, None) => Err(Refusal::WrongToken),
            },
            Ok(_) => Err(Refusal::WrongToken),
            Err(e) => {
                tracing::error!(error = %e, "reading a token failed; refusing it");
                Err(Refusal::WrongToken)
            }
        }
    }

    /// The link a share-link id opens, at `now_ms`.
    pub fn link(&self, id: &str, now_ms: i64) -> Result<(Principal, [u8; 32]), Refusal> {
        if !secret::plausible(id) {
            return Err(Refusal::UnknownLink);
        }
        let h = secret::hash(id.as_bytes());
        self.stored_link(&h, now_ms).map(|p| (p, h))
    }

    fn stored_link(&self, h: &[u8; 32], now_ms: i64) -> Result<Principal, Refusal> {
        match self.store.access_get(AccessKind::Link, h) {
            Ok(Some(AccessRecord::Link {
                scope,
                expires_ms,
                revoked_ms,
                ..
            })) => {
                if revoked_ms.is_some() {
                    return Err(Refusal::LinkRevoked);
                }
                if expires_ms.is_some_and(|e| now_ms >= e) {
                    return Err(Refusal::LinkExpired);
                }
                let scope: Scope =
                    serde_json::from_value(scope).map_err(|_| Refusal::UnknownLink)?;
                Ok(Principal::Link {
                    key: secret::key_of(h),
                    scope,
                    expires_ms,
                })
            }
            Ok(_) => Err(Refusal::UnknownLink),
            Err(e) => {
                tracing::error!(error = %e, "reading a share link failed; refusing it");
                Err(Refusal::UnknownLink)
            }
        }
    }

    /// A new token of `role`: returns the secret (shown once) and how it is listed.
    pub fn create_token(
        &self,
        role: Role,
        name: &str,
        now_ms: i64,
    ) -> Result<(String, Listed), AccessError> {
        let name = check_name(name)?;
        let token = secret::fresh("pbt_")?;
        let h = secret::hash(token.as_bytes());
        let rec = AccessRecord::Token {
            name,
            role: role.name().into(),
            created_ms: now_ms,
            revoked_ms: None,
        };
        self.store.access_put(AccessKind::Token, &h, &rec)?;
        Ok((token, listed(&h, rec)))
    }

    /// A new share link for `scope`: returns its id (shown once) and how it is listed.
    pub fn create_link(
        &self,
        scope: &Scope,
        name: &str,
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(String, Listed), AccessError> {
        scope.validate()?;
        let name = check_name(name)?;
        if expires_ms.is_some_and(|e| e <= now_ms) {
            return Err(AccessError::Invalid(
                "expires",
                "must be in the future".into(),
            ));
        }
        let id = secret::fresh("")?;
        let h = secret::hash(id.as_bytes());
        let rec = AccessRecord::Link {
            name,
            scope: serde_json::to_value(scope)
                .map_err(|e| AccessError::Invalid("scope", e.to_string()))?,
            created_ms: now_ms,
            expires_ms,
            revoked_ms: None,
        };
        self.store.access_put(AccessKind::Link, &h, &rec)?;
        Ok((id, listed(&h, rec)))
    }

    /// The tokens (`AccessKind::Token`) or links, newest first.
    pub fn list(&self, kind: AccessKind) -> Result<Vec<Listed>, AccessError> {
        let mut out: Vec<Listed> = self
            .store
            .access_list(kind)?
            .into_iter()
            .map(|(h, rec)| listed(&h, rec))
            .collect();
        out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Revoke the token or link named `key`: it opens nothing from now on, and the sockets
    /// open on it are ended.
    pub fn revoke(&self, kind: AccessKind, key: &str, now_ms: i64) -> Result<Listed, AccessError> {
        let what = if kind == AccessKind::Link {
            "link"
        } else {
            "token"
        };
        let (h, mut rec) = self
            .store
            .access_list(kind)?
            .into_iter()
            .find(|(h, _)| secret::key_of(h) == key)
            .ok_or_else(|| AccessError::Unknown(what, key.to_owned()))?;
        match &mut rec {
            AccessRecord::Token { revoked_ms, .. } | AccessRecord::Link { revoked_ms, .. } => {
                revoked_ms.get_or_insert(now_ms);
            }
            AccessRecord::Session { .. } => {}
        }
        self.store.access_put(kind, &h, &rec)?;
        if let Some(t) = self
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
        {
            t.cancel();
        }
        crate::telemetry::access_revoked(what, key);
        Ok(listed(&h, rec))
    }

    /// What a socket of `principal` watches to end with its access.
    pub fn ended(&self, principal: &Principal) -> Ended {
        let Some(key) = principal.revocable_key() else {
            return Ended::default();
        };
        let token = self
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .child_token();
        match principal {
            Principal::Link { expires_ms, .. } => Ended {
                revoked: token,
                expires_ms: *expires_ms,
                link: true,
            },
            _ => Ended {
                revoked: token,
                expires_ms: None,
                link: false,
            },
        }
    }
}

fn check_name(name: &str) -> Result<String, AccessError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AccessError::Invalid(
            "name",
            "1 to 100 characters, no control characters (say where it is used, e.g. lobby-tv)"
                .into(),
        ));
    }
    Ok(name.to_owned())
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
