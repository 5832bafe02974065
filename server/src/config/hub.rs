//! The hub and its WebSocket clients: publish pacing, backlog, queues, keepalive,
//! connection pacing.
use std::time::Duration;

use clap::Args;

use super::{duration, invalid, ConfigError};

/// The live hub and its WebSocket clients.
#[derive(Debug, Clone, Args)]
pub struct HubArgs {
    /// Minimum time between two window messages to the sockets (changes are coalesced).
    #[arg(long, env = "PULSEBOARD_PUBLISH_INTERVAL", default_value = "50ms", value_parser = duration)]
    pub publish_interval: Duration,
    /// Minimum time between two hand-overs of a partition's open windows to the hub.
    #[arg(long, env = "PULSEBOARD_LIVE_INTERVAL", default_value = "20ms", value_parser = duration)]
    pub live_interval: Duration,
    /// Messages kept for clients that reconnect with `?since=`.
    #[arg(long, env = "PULSEBOARD_WS_BACKLOG", default_value_t = 1024)]
    pub ws_backlog: usize,
    /// Messages a client may fall behind before it is resynced with a snapshot.
    #[arg(long, env = "PULSEBOARD_WS_CLIENT_QUEUE", default_value_t = 256)]
    pub ws_client_queue: usize,
    /// How often a socket is pinged.
    #[arg(long, env = "PULSEBOARD_WS_PING_INTERVAL", default_value = "15s", value_parser = duration)]
    pub ws_ping_interval: Duration,
    /// A socket silent for this long is closed.
    #[arg(long, env = "PULSEBOARD_WS_IDLE_TIMEOUT", default_value = "45s", value_parser = duration)]
    pub ws_idle_timeout: Duration,
    /// A client that does not take a frame within this is dropped.
    #[arg(long, env = "PULSEBOARD_WS_SEND_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub ws_send_timeout: Duration,
    /// New WebSocket sessions per second, on average, the server opens (each costs a
    /// handshake and a snapshot); sessions above it wait their turn, in order of arrival.
    /// 0 = no limit.
    #[arg(long, env = "PULSEBOARD_WS_CONNECT_RATE", default_value_t = 200)]
    pub ws_connect_rate: u32,
    /// Sessions opened at once, without waiting, above `--ws-connect-rate`.
    #[arg(long, env = "PULSEBOARD_WS_CONNECT_BURST", default_value_t = 200)]
    pub ws_connect_burst: u32,
    /// A session whose turn is further away than this is refused with `503` and
    /// `Retry-After` (the dashboard retries with backoff).
    #[arg(long, env = "PULSEBOARD_WS_CONNECT_MAX_WAIT", default_value = "10s", value_parser = duration)]
    pub ws_connect_max_wait: Duration,
}

impl HubArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (flag, v) in [
            ("ws-backlog", self.ws_backlog),
            ("ws-client-queue", self.ws_client_queue),
            ("ws-connect-burst", self.ws_connect_burst as usize),
        ] {
            if v == 0 {
                return Err(invalid(flag, v, "must be at least 1"));
            }
        }
        if self.ws_ping_interval.is_zero() || self.ws_ping_interval >= self.ws_idle_timeout {
            return Err(invalid(
                "ws-ping-interval",
                format!("{:?}", self.ws_ping_interval),
                format!(
                    "must be above zero and below --ws-idle-timeout ({:?}), or live sockets are closed as idle",
                    self.ws_idle_timeout
                ),
            ));
        }
        Ok(())
    }
}
