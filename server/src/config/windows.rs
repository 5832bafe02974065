//! Event-time windows: width, allowed lateness, idle timeout, clock skew, revision horizon.

use pulseboard_model::window::WindowConfig;

use std::time::Duration;

use clap::Args;

use super::{duration, invalid, millis, ConfigError};

/// Event-time windows.
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Tumbling window size (e.g. 10s, 1m).
    #[arg(long = "window", env = "PULSEBOARD_WINDOW", default_value = "10s", value_parser = duration)]
    pub width: Duration,
    /// How far behind the max event time a partition's watermark trails.
    #[arg(long, env = "PULSEBOARD_ALLOWED_LATENESS", default_value = "5s", value_parser = duration)]
    pub allowed_lateness: Duration,
    /// A partition without messages for this long does not hold the global watermark back.
    #[arg(long, env = "PULSEBOARD_IDLE_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// An event stamped more than this ahead of both the wall clock and its message
    /// timestamp is dead-lettered (`future`) and never moves a watermark.
    #[arg(long, env = "PULSEBOARD_MAX_CLOCK_SKEW", default_value = "5m", value_parser = duration)]
    pub max_clock_skew: Duration,
    /// How long after its window closed a late event is still counted (the window becomes
    /// `revised`); older ones are dead-lettered (`too_late`). At most `--retention`.
    #[arg(long, env = "PULSEBOARD_REVISION_HORIZON", default_value = "24h", value_parser = duration)]
    pub revision_horizon: Duration,
}

impl WindowArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.width.is_zero() {
            return Err(invalid(
                "window",
                format!("{:?}", self.width),
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// Width and lateness in milliseconds, as the windows take them.
    pub fn config(&self) -> WindowConfig {
        WindowConfig {
            width_ms: millis(self.width),
            lateness_ms: millis(self.allowed_lateness),
        }
    }

    pub fn max_clock_skew_ms(&self) -> i64 {
        millis(self.max_clock_skew)
    }

    pub fn revision_horizon_ms(&self) -> i64 {
        millis(self.revision_horizon)
    }
}
