//! Browser sessions: what a token or a share link is exchanged for (an HttpOnly cookie),
//! stored as the cookie's hash with the CSRF value writes must echo; a session lives as
//! long as what it was opened with, and at most [`SESSION_TTL_MS`].

use super::{secret, unhex, Access, AccessError, Principal, Refusal, Role, FLAG, SESSION_TTL_MS};
use crate::store::{AccessKind, AccessRecord};

impl Access {
    /// Who holds the session cookie `cookie`, with the session's CSRF value.
    pub fn session(&self, cookie: &str, now_ms: i64) -> Result<(Principal, String), Refusal> {
        if !secret::plausible(cookie) {
            return Err(Refusal::SessionOver);
        }
        let h = secret::hash(cookie.as_bytes());
        let rec = match self.store.access_get(AccessKind::Session, &h) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Refusal::SessionOver),
            Err(e) => {
                tracing::error!(error = %e, "reading a session failed; refusing it");
                return Err(Refusal::SessionOver);
            }
        };
        let AccessRecord::Session {
            of,
            of_kind,
            csrf,
            expires_ms,
            ..
        } = rec
        else {
            return Err(Refusal::SessionOver);
        };
        if now_ms >= expires_ms {
            let _ = self.store.access_remove(AccessKind::Session, &h);
            return Err(Refusal::SessionOver);
        }
        let of_hash = unhex(&of).ok_or(Refusal::SessionOver)?;
        let principal = match of_kind.as_str() {
            FLAG if self.flag.is_some_and(|f| f == of_hash) => Principal::Token {
                role: Role::Admin,
                key: FLAG.into(),
            },
            "token" => self.stored_token(&of_hash)?,
            "link" => self.stored_link(&of_hash, now_ms)?,
            _ => return Err(Refusal::SessionOver),
        };
        Ok((principal, csrf))
    }

    /// Open a browser session for `principal` (a token's, or a link's of hash `link`):
    /// returns the cookie's secret, the session's CSRF value and its end, epoch ms.
    pub fn open_session(
        &self,
        principal: &Principal,
        link: Option<&[u8; 32]>,
        token: Option<&str>,
        now_ms: i64,
    ) -> Result<(String, String, i64), AccessError> {
        let (of, of_kind, until) = match (principal, link, token) {
            // The cookie outlives the link's expiry, so that the page is told "expired"
            // (every request checks the link) rather than "no credential".
            (Principal::Link { .. }, Some(h), _) => {
                (secret::hex(h), "link", now_ms + SESSION_TTL_MS)
            }
            (Principal::Token { key, .. }, _, Some(t)) => (
                secret::hex(&secret::hash(t.as_bytes())),
                if key == FLAG { FLAG } else { "token" },
                now_ms + SESSION_TTL_MS,
            ),
            _ => {
                return Err(AccessError::Invalid(
                    "session",
                    "nothing to open it with".into(),
                ))
            }
        };
        let cookie = secret::fresh("")?;
        let csrf = secret::fresh("")?;
        self.store.access_put(
            AccessKind::Session,
            &secret::hash(cookie.as_bytes()),
            &AccessRecord::Session {
                of,
                of_kind: of_kind.into(),
                csrf: csrf.clone(),
                created_ms: now_ms,
                expires_ms: until,
            },
        )?;
        Ok((cookie, csrf, until))
    }

    /// End the session of `cookie` (signing out).
    pub fn close_session(&self, cookie: &str) -> Result<(), AccessError> {
        self.store
            .access_remove(AccessKind::Session, &secret::hash(cookie.as_bytes()))?;
        Ok(())
    }

    /// Delete the sessions that are over (at start).
    pub fn purge_sessions(&self, now_ms: i64) -> Result<usize, AccessError> {
        let mut n = 0;
        for (h, rec) in self.store.access_list(AccessKind::Session)? {
            if matches!(rec, AccessRecord::Session { expires_ms, .. } if expires_ms <= now_ms) {
                self.store.access_remove(AccessKind::Session, &h)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
