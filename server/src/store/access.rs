//! Tree `access`: who may read and change what (see `crate::access`).
//!
//! Contract: key `kind byte ‖ SHA-256 of the secret` → [`AccessRecord`] (JSON), kind `t` an
//! API token, `l` a share link, `s` a browser session. The secrets themselves (tokens, link
//! ids, session cookies) are never stored: a presented secret is hashed and looked up. A
//! revoked token or link keeps its record (marked `revoked_ms`) so that a page still open
//! on it is told "revoked" rather than "unknown"; sessions are deleted when they end.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// What a key of the tree is the hash of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Token,
    Link,
    Session,
}

impl AccessKind {
    fn byte(self) -> u8 {
        match self {
            AccessKind::Token => b't',
            AccessKind::Link => b'l',
            AccessKind::Session => b's',
        }
    }
}

/// A stored credential: a token, a share link or a session (JSON, so a field added later
/// reads old records with its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessRecord {
    Token {
        name: String,
        /// `admin` or `viewer`.
        role: String,
        created_ms: i64,
        #[serde(default)]
        revoked_ms: Option<i64>,
    },
    Link {
        name: String,
        /// The view it opens and what it may read, as `crate::access::Scope` (JSON).
        scope: serde_json::Value,
        created_ms: i64,
        #[serde(default)]
        expires_ms: Option<i64>,
        #[serde(default)]
        revoked_ms: Option<i64>,
    },
    Session {
        /// The hash (hex) of the token or link the session was opened with, or `flag` for
        /// `--token`.
        of: String,
        /// `token`, `link` or `flag`.
        of_kind: String,
        /// The value writes from this session must echo in `X-CSRF-Token`.
        csrf: String,
        created_ms: i64,
        expires_ms: i64,
    },
}

fn key(kind: AccessKind, hash: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = kind.byte();
    k[1..].copy_from_slice(hash);
    k
}

fn decode(v: &[u8]) -> Result<AccessRecord, StoreError> {
    serde_json::from_slice(v).map_err(|e| {
        StoreError::Io(sled::Error::Unsupported(format!(
            "an access record is unreadable: {e}"
        )))
    })
}

impl Store {
    /// The record stored under `hash`, if any.
    pub fn access_get(
        &self,
        kind: AccessKind,
        hash: &[u8; 32],
    ) -> Result<Option<AccessRecord>, StoreError> {
        self.access
            .get(key(kind, hash))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Store (or replace) the record under `hash`, flushed before it returns.
    pub fn access_put(
        &self,
        kind: AccessKind,
        hash: &[u8; 32],
        rec: &AccessRecord,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_vec(rec).map_err(|e| {
            StoreError::Io(sled::Error::Unsupported(format!(
                "an access record cannot be written: {e}"
            )))
        })?;
        self.access.insert(key(kind, hash), v)?;
        self.access.flush()?;
        Ok(())
    }

    /// Delete the record under `hash`; whether there was one.
    pub fn access_remove(&self, kind: AccessKind, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let had = self.access.remove(key(kind, hash))?.is_some();
        self.access.flush()?;
        Ok(had)
    }

    /// Every record of `kind`, with its hash, in hash order.
    pub fn access_list(
        &self,
        kind: AccessKind,
    ) -> Result<Vec<([u8; 32], AccessRecord)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.access.scan_prefix([kind.byte()]) {
            let (k, v) = kv?;
            let Ok(hash) = <[u8; 32]>::try_from(&k[1..]) else {
                continue;
            };
            out.push((hash, decode(&v)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_kept_by_kind_and_hash_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = AccessRecord::Token {
            name: "lobby-tv".into(),
            role: "viewer".into(),
            created_ms: 5,
            revoked_ms: None,
        };
        let session = AccessRecord::Session {
            of: "ab".into(),
            of_kind: "token".into(),
            csrf: "c".into(),
            created_ms: 6,
            expires_ms: 7,
        };
        {
            let store = Store::open(dir.path(), 10_000).expect("open");
            store
                .access_put(AccessKind::Token, &[1; 32], &token)
                .expect("put");
            store
                .access_put(AccessKind::Session, &[1; 32], &session)
                .expect("put");
        }
        let store = Store::open(dir.path(), 10_000).expect("reopen");
        assert_eq!(
            store.access_get(AccessKind::Token, &[1; 32]).expect("get"),
            Some(token.clone())
        );
        assert_eq!(
            store.access_get(AccessKind::Link, &[1; 32]).expect("get"),
            None
        );
        assert_eq!(
            store.access_list(AccessKind::Token).expect("list"),
            vec![([1; 32], token)]
        );
        assert!(store
            .access_remove(AccessKind::Session, &[1; 32])
            .expect("rm"));
        assert!(store
            .access_list(AccessKind::Session)
            .expect("list")
            .is_empty());
    }
}
