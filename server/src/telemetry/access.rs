//! The events of access: requests refused (by reason) and credentials revoked.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Labels;

struct AccessCounters {
    refused: Family<Labels, Counter>,
    revoked: Family<Labels, Counter>,
}

static ACCESS: LazyLock<AccessCounters> = LazyLock::new(|| AccessCounters {
    refused: Family::default(),
    revoked: Family::default(),
});

/// Registers the counters of access.
pub(super) fn register(r: &mut Registry) {
    let k = &*ACCESS;
    r.register(
        "access_refused",
        "Requests refused for their credential, by reason (no_credential, wrong_token, token_revoked, session_over, unknown_link, link_revoked, link_expired: 401; forbidden, out_of_scope, csrf: 403; throttled: 429)",
        k.refused.clone(),
    );
    r.register(
        "access_revoked",
        "Tokens and share links revoked, by kind (token, link)",
        k.revoked.clone(),
    );
}

/// A request was refused for its credential (`reason`, see the counter). At debug: any
/// client can cause it; the credential itself is never logged.
pub fn access_refused(reason: &'static str, route: &str) {
    tracing::debug!(reason, route, "request refused");
    ACCESS
        .refused
        .get_or_create(&vec![("reason", reason.to_owned())])
        .inc();
}

/// A token or link was revoked (named by its key, never by its secret).
pub fn access_revoked(kind: &'static str, key: &str) {
    tracing::info!(
        kind,
        key,
        "revoked: it opens nothing from now on, and its sockets are closed"
    );
    ACCESS
        .revoked
        .get_or_create(&vec![("kind", kind.to_owned())])
        .inc();
}
