//! A token or a link as an admin lists it: its key, name, role or scope, and dates; never
//! its secret.

use super::{secret, Scope};
use crate::store::AccessRecord;

/// A token or link as an admin lists it (no secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Listed {
    /// Names it in `DELETE` paths and in logs.
    pub key: String,
    pub name: String,
    /// `admin` or `viewer` (tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// What it opens (links).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<i64>,
}

/// How the record under hash `h` is listed.
pub(super) fn listed(h: &[u8; 32], rec: AccessRecord) -> Listed {
    let key = secret::key_of(h);
    match rec {
        AccessRecord::Token {
            name,
            role,
            created_ms,
            revoked_ms,
        } => Listed {
            key,
            name,
            role: Some(role),
            scope: None,
            created_ms,
            expires_ms: None,
            revoked_ms,
        },
        AccessRecord::Link {
            name,
            scope,
            created_ms,
            expires_ms,
            revoked_ms,
        } => Listed {
            key,
            name,
            role: None,
            scope: serde_json::from_value(scope).ok(),
            created_ms,
            expires_ms,
            revoked_ms,
        },
        AccessRecord::Session {
            created_ms,
            expires_ms,
            ..
        } => Listed {
            key,
            name: String::new(),
            role: None,
            scope: None,
            created_ms,
            expires_ms: Some(expires_ms),
            revoked_ms: None,
        },
    }
}
