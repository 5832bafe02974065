//! HTTPS: the certificate chain and private key the server presents (`--tls-cert`,
//! `--tls-key`). Without them it serves plain HTTP.
//!
//! Contract: both flags or neither ([`TlsArgs::validate`]); the files themselves are read
//! when the server starts (a missing or unreadable pair stops it, naming the flag and the
//! file) and again whenever they change (`api::tls`). [`TlsArgs::enabled`] tells the rest
//! of the server that pages are served over HTTPS (cookies then carry `Secure`).

use std::path::{Path, PathBuf};

use clap::Args;

use super::{invalid, ConfigError};

/// HTTPS on the `--listen` address.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first, then
    /// its intermediates). Needs --tls-key. The pair is reloaded when either file changes.
    #[arg(long, env = "PULSEBOARD_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). Needs --tls-cert.
    #[arg(long, env = "PULSEBOARD_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Both flags or neither. (An empty value is refused by clap, naming the flag.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), None) => Err(invalid(
                "tls-cert",
                cert.display(),
                "needs --tls-key too (the certificate's private key, PEM): give both to serve HTTPS, or neither for plain HTTP",
            )),
            (None, Some(key)) => Err(invalid(
                "tls-key",
                key.display(),
                "needs --tls-cert too (the certificate chain, PEM): give both to serve HTTPS, or neither for plain HTTP",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the server speaks HTTPS (both files given).
    pub fn enabled(&self) -> bool {
        self.files().is_some()
    }

    /// The certificate chain and the key, when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}
