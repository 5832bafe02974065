//! HTTPS on the `--listen` address (`--tls-cert`, `--tls-key`): the same router, served
//! over rustls (ring) instead of plain TCP.
//!
//! Contract:
//! - [`TlsListener`] is an axum [`Listener`]: it accepts TCP connections and runs each TLS
//!   handshake in a task of its own, bounded by [`HANDSHAKE_TIMEOUT`], so a slow or silent
//!   client holds up no one; at most [`MAX_HANDSHAKES`] are under way at once (past that,
//!   new connections wait in the kernel's backlog). A failed handshake (plain HTTP, a
//!   client that refuses the certificate, a timeout) is counted and logged at debug, and
//!   the server goes on.
//! - [`TlsListener::with_connect_info`] gives handlers `ConnectInfo<SocketAddr>` (the peer
//!   of the TCP connection), as over plain HTTP.
//! - [`Certificates`] holds the rustls configuration of the handshakes to come.
//!   [`Certificates::load`] refuses a missing or bad pair, naming the flag and the file;
//!   [`Certificates::watch`] looks at both files' modification time and length every
//!   [`RELOAD_INTERVAL`], and once a change has stayed put for one interval (a renewal
//!   writes two files) loads the pair and swaps it in. Connections already open keep the
//!   certificate they were made with. A pair that does not load is logged as an error
//!   once per change, and the one in use stays.
//! - HTTP/1.1 only (ALPN `http/1.1`), as the plain server; WebSocket upgrades run over the
//!   TLS stream like any other request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::serve::{Listener, ListenerExt, TapIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::telemetry;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at once; past this, no new connection is accepted until one ends.
pub const MAX_HANDSHAKES: usize = 1024;

/// How often [`Certificates::watch`] looks at the files.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// How long accepting pauses after an error that is not the client's (out of file
/// descriptors, say), as axum's own listener does.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A certificate pair that cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--{flag} {}: cannot read the file: {source}", .path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--{flag} {}: not valid PEM: {source}", .path.display())]
    Pem {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error(
        "--tls-cert {}: no certificate in the file (expected PEM blocks `-----BEGIN CERTIFICATE-----`, the server's certificate first)",
        .path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "--tls-key {}: no private key in the file (expected PEM `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
        .path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "--tls-cert {} with --tls-key {}: {source} (is the key the certificate's, and the server's certificate first in the chain?)",
        .cert.display(),
        .key.display()
    )]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The certificate pair's files, and the rustls configuration new handshakes use.
#[derive(Clone)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<Arc<ServerConfig>>>,
    /// The files as they were when `current` was read from them.
    loaded: Stamp,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Read the pair (`--tls-cert`, `--tls-key`) for the server's start.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let loaded = Stamp::of(cert, key);
        let config = server_config(cert, key)?;
        telemetry::tls_certificate_loaded(cert, key, false);
        Ok(Certificates {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: Arc::new(RwLock::new(config)),
            loaded,
        })
    }

    /// The configuration the next handshake uses.
    fn current(&self) -> Arc<ServerConfig> {
        // A writer only swaps an `Arc`: a poisoned lock still holds a whole value.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, config: Arc<ServerConfig>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
    }

    /// Reload the pair when its files change, looking every `every`, until `shutdown`.
    /// A change is loaded once the files have looked the same for one look (a renewal
    /// replaces two files, rarely at once); a pair that does not load is reported once
    /// and tried again when the files change again.
    pub async fn watch(self, every: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        let mut files = self.watcher();
        loop {
            tokio::select! {
                biased;
                // Shutdown first: nothing is gained by a last look.
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.look(&mut files) {
                None => {}
                Some(Ok(())) => telemetry::tls_certificate_loaded(&self.cert, &self.key, true),
                Some(Err(e)) => telemetry::tls_certificate_refused(&e),
            }
        }
    }

    /// What [`Certificates::look`] starts from: the files as they were loaded.
    fn watcher(&self) -> Watcher {
        Watcher {
            tried: self.loaded.clone(),
            seen: self.loaded.clone(),
        }
    }

    /// One look at the files: `None` when there is nothing to load (they are as last
    /// tried, or changed since the last look), else the outcome of loading them, swapped in
    /// when it is good.
    fn look(&self, files: &mut Watcher) -> Option<Result<(), TlsError>> {
        let now = Stamp::of(&self.cert, &self.key);
        let settled = now == files.seen;
        files.seen = now.clone();
        if now == files.tried || !settled {
            return None;
        }
        files.tried = now;
        Some(server_config(&self.cert, &self.key).map(|config| self.replace(config)))
    }
}

/// What [`Certificates::watch`] has seen of the files.
#[derive(Debug)]
struct Watcher {
    /// As they were at the last load, good or bad.
    tried: Stamp,
    /// As they were at the last look.
    seen: Stamp,
}

/// What is looked at to see that a file changed: its modification time and length
/// (`None`: it cannot be read, say while it is being replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp([Option<(SystemTime, u64)>; 2]);

impl Stamp {
    fn of(cert: &Path, key: &Path) -> Stamp {
        let one = |p: &Path| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        Stamp([one(cert), one(key)])
    }
}

/// The rustls configuration serving the pair in these files.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |flag, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            flag,
            path: path.to_owned(),
            source,
        })
    };
    let pem = |flag, path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { flag, path, source }
    };
    let chain = CertificateDer::pem_slice_iter(&read("tls-cert", cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem("tls-cert", cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = match PrivateKeyDer::from_pem_slice(&read("tls-key", key)?) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: key.to_owned(),
            })
        }
        Err(e) => return Err(pem("tls-key", key)(e)),
    };
    let pair = |source| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(pair)?
        .with_no_client_auth()
        // Checks that the key is the certificate's.
        .with_single_cert(chain, private)
        .map_err(pair)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// rustls' *ring* provider. rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange, in favour of aws-lc-rs, which needs cmake and a C toolchain to build; the
/// classical key exchanges it offers are those of every browser's fallback.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A handshake's outcome: a stream ready for HTTP, or why not.
type Handshake = Result<(TlsStream<TcpStream>, SocketAddr), (SocketAddr, &'static str, String)>;

/// TCP connections, handed to axum once their TLS handshake is done.
pub struct TlsListener {
    tcp: TcpListener,
    certificates: Certificates,
    handshakes: JoinSet<Handshake>,
    timeout: Duration,
    /// Accepting is paused until then, after an error that is not the client's.
    paused_until: Option<Instant>,
}

/// A [`TlsListener`] that gives handlers `ConnectInfo<SocketAddr>`.
pub type TlsListenerWithConnectInfo = TapIo<TlsListener, fn(&mut TlsStream<TcpStream>)>;

impl TlsListener {
    pub fn new(tcp: TcpListener, certificates: Certificates) -> Self {
        TlsListener {
            tcp,
            certificates,
            handshakes: JoinSet::new(),
            timeout: HANDSHAKE_TIMEOUT,
            paused_until: None,
        }
    }

    /// The same listener, giving a handshake `timeout` instead of [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The listener for `into_make_service_with_connect_info::<SocketAddr>()`. axum
    /// implements `Connected` (what gives `ConnectInfo`) for the peer address of its own
    /// `TcpListener` and of any listener wrapped by `tap_io`; the orphan rule keeps us from
    /// adding ours, so this is `tap_io` with nothing to do.
    pub fn with_connect_info(self) -> TlsListenerWithConnectInfo {
        self.tap_io(|_| {})
    }

    fn start_handshake(&mut self, tcp: TcpStream, peer: SocketAddr) {
        let acceptor = TlsAcceptor::from(self.certificates.current());
        let timeout = self.timeout;
        self.handshakes.spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Ok((tls, peer)),
                Ok(Err(e)) => Err((peer, "error", e.to_string())),
                Err(_) => Err((peer, "timeout", format!("not done within {timeout:?}"))),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Cancel-safe (axum drops it at shutdown): every branch is, and the pause lives in
    // `self`.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if self.paused_until.is_some_and(|t| t <= Instant::now()) {
                self.paused_until = None;
            }
            let accepting = self.paused_until.is_none() && self.handshakes.len() < MAX_HANDSHAKES;
            let resume = self.paused_until.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                // Finished handshakes first: a client that is ready is served before more
                // are taken on.
                Some(done) = self.handshakes.join_next() => match done {
                    Ok(Ok(ready)) => return ready,
                    Ok(Err((peer, why, error))) => telemetry::tls_handshake_failed(peer, why, &error),
                    // Only a panic in rustls could get here; that connection is gone.
                    Err(e) => tracing::warn!(error = %e, "a TLS handshake task failed"),
                },
                accepted = self.tcp.accept(), if accepting => match accepted {
                    Ok((tcp, peer)) => self.start_handshake(tcp, peer),
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "cannot accept connections; trying again in 1 s");
                        self.paused_until = Some(Instant::now() + ACCEPT_ERROR_PAUSE);
                    }
                },
                _ = tokio::time::sleep_until(resume), if self.paused_until.is_some() => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An accept error that is the client's (it went away): accept the next at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[cfg(test)]
mod tests;
