//! The events of HTTPS: handshakes that failed, certificate pairs loaded or refused.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Labels;

/// Counters of HTTPS.
struct TlsCounters {
    handshakes_failed: Family<Labels, Counter>,
    certificate_loads: Family<Labels, Counter>,
}

static TLS: LazyLock<TlsCounters> = LazyLock::new(|| TlsCounters {
    handshakes_failed: Family::default(),
    certificate_loads: Family::default(),
});

/// Registers the counters of HTTPS.
pub(super) fn register(r: &mut Registry) {
    let k = &*TLS;
    r.register(
        "tls_handshakes_failed",
        "TLS handshakes that failed, by reason (error: plain HTTP, a client that refused the certificate, a broken connection; timeout: not finished in time)",
        k.handshakes_failed.clone(),
    );
    r.register(
        "tls_certificate_loads",
        "Loads of the --tls-cert and --tls-key pair (at start and when they change), by outcome (ok, error)",
        k.certificate_loads.clone(),
    );
}

/// A TLS handshake failed (`why`: `error` or `timeout`): that connection is closed, the
/// server goes on. At debug: any client can cause it.
pub fn tls_handshake_failed(peer: SocketAddr, why: &'static str, error: &dyn std::fmt::Display) {
    tracing::debug!(%peer, why, error = %error, "TLS handshake failed");
    TLS.handshakes_failed
        .get_or_create(&vec![("reason", why.to_owned())])
        .inc();
}

/// The certificate pair was loaded: new handshakes present it.
pub fn tls_certificate_loaded(cert: &Path, key: &Path, reloaded: bool) {
    let (cert, key) = (cert.display(), key.display());
    if reloaded {
        tracing::info!(%cert, %key, "TLS certificate reloaded: new connections get the new one");
    } else {
        tracing::info!(%cert, %key, "TLS certificate loaded");
    }
    TLS.certificate_loads
        .get_or_create(&vec![("outcome", "ok".to_owned())])
        .inc();
}

/// The changed certificate pair was refused: the one in use stays.
pub fn tls_certificate_refused(error: &dyn std::fmt::Display) {
    tracing::error!(
        error = %error,
        "the changed TLS certificate was refused; the one in use is still served. Put a matching certificate chain and private key (PEM) in place: they are read again when they change"
    );
    TLS.certificate_loads
        .get_or_create(&vec![("outcome", "error".to_owned())])
        .inc();
}
