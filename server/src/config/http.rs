//! The HTTP surface: listen address, the frontend's files, the token, framing, the
//! `/collect` limits and origins, the advertised URL.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use std::time::Duration;

use super::{duration, invalid, ConfigError};

/// The HTTP surface.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address of the HTTP server.
    #[arg(long, env = "PULSEBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the built frontend (Trunk's output).
    #[arg(long, env = "PULSEBOARD_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,
    /// An admin token (as `Authorization: Bearer`, or signing in on the dashboard), kept
    /// for deployments that had one token; `pulseboard token create` makes more, of either
    /// role.
    #[arg(long, env = "PULSEBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Anyone who reaches the server reads what a viewer reads, without a credential:
    /// every figure, the status, the dead letters and the metrics (writes still need an
    /// admin). The embedded demo (no `--brokers`) is public unless `--token` is given.
    #[arg(long, env = "PULSEBOARD_PUBLIC_DASHBOARD")]
    pub public_dashboard: bool,
    /// Who may embed the pages in a frame (CSP `frame-ancestors`), e.g. `'self' https://intranet.example`.
    #[arg(long, env = "PULSEBOARD_FRAME_ANCESTORS", default_value = "'self'")]
    pub frame_ancestors: String,
    /// `POST /collect` requests per second allowed per client IP address (IPv6: per /64);
    /// more get `429` with `Retry-After`. 0 disables the limit.
    #[arg(long, env = "PULSEBOARD_COLLECT_RATE", default_value_t = 20)]
    pub collect_rate: u32,
    /// Requests a client may send at once above `--collect-rate` (the bucket's size).
    #[arg(long, env = "PULSEBOARD_COLLECT_BURST", default_value_t = 40)]
    pub collect_burst: u32,
    /// Take the client of `POST /collect` from the last address of `X-Forwarded-For`
    /// (the one added by the proxy in front). Only behind a proxy that sets it: otherwise
    /// any client can write the header and pick a fresh rate-limit bucket per request.
    #[arg(long, env = "PULSEBOARD_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// A site that may post to `/collect` from its pages (CORS), e.g. `https://example.com`
    /// (repeatable). A browser request from any other origin is refused with `403`. Without
    /// this flag every origin may post.
    #[arg(
        long = "site-origin",
        env = "PULSEBOARD_SITE_ORIGINS",
        value_delimiter = ',',
        value_parser = site_origin
    )]
    pub site_origins: Vec<String>,
    /// A browser visitor's visit (session) on `POST /collect` ends after this long without
    /// an event, as web analytics count visits; its next event starts a new session.
    #[arg(long, env = "PULSEBOARD_SESSION_TIMEOUT", default_value = "30m", value_parser = duration)]
    pub session_timeout: Duration,
    /// Browser visitors whose sessions `/collect` holds in a generation (of two; about 130
    /// bytes each); past it the visitors idle longest lose their open session (counted in
    /// `pulseboard_collect_sessions_evicted_total`).
    #[arg(long, env = "PULSEBOARD_SESSION_CAP", default_value_t = 100_000)]
    pub session_cap: usize,
    /// The URL other instances (and the status) give for this instance's dashboard.
    /// Default: `http://` and the address the server listens on.
    #[arg(long, env = "PULSEBOARD_ADVERTISED_URL")]
    pub advertised_url: Option<String>,
}

/// A `--site-origin`: `scheme://host[:port]` as a browser sends it in `Origin` (lower case,
/// no path, no trailing slash).
fn site_origin(s: &str) -> Result<String, String> {
    let o = s.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?}: expected an origin such as https://example.com"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '*']) {
        return Err(format!(
            "{s:?}: an origin is a scheme, a host and an optional port, such as https://example.com:8443 (no path, no wildcard)"
        ));
    }
    Ok(o)
}

impl HttpArgs {
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        if self.session_timeout < Duration::from_secs(1) {
            return Err(invalid(
                "session-timeout",
                format!("{:?}", self.session_timeout),
                "must be at least 1s (web analytics use 30m)",
            ));
        }
        if self.session_cap == 0 {
            return Err(invalid(
                "session-cap",
                self.session_cap.to_string(),
                "must be at least 1",
            ));
        }
        if self.frame_ancestors.contains([';', '\n', '\r']) {
            return Err(invalid(
                "frame-ancestors",
                &self.frame_ancestors,
                "a list of sources separated by spaces, without ';' or line breaks",
            ));
        }
        self.token = self.token.take().filter(|t| !t.is_empty());
        if self.collect_rate > 0 && self.collect_burst == 0 {
            return Err(invalid(
                "collect-burst",
                self.collect_burst,
                "must be at least 1 when --collect-rate is set (or give --collect-rate 0 to disable the limit)",
            ));
        }
        Ok(())
    }

    /// The frontend's files, when the directory exists: `--static-dir`, or for the default
    /// (`dist`, relative) when there is none here, the one `cargo xtask install` put beside
    /// the binary (`<prefix>/share/pulseboard/dist` for `<prefix>/bin/pulseboard`).
    pub fn static_dir(&self) -> Option<PathBuf> {
        if self.static_dir.is_dir() {
            return Some(self.static_dir.clone());
        }
        if self.static_dir != std::path::Path::new("dist") {
            return None;
        }
        let exe = std::env::current_exe().ok()?;
        let installed = exe.parent()?.parent()?.join("share/pulseboard/dist");
        installed.is_dir().then_some(installed)
    }
}
