//! `--alerts`, `--alerts-interval`: the alert rules file and how often it is evaluated.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{duration, invalid, ConfigError};

/// Alert rules.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Alert rules (TOML; see docs/alerts.md), read again every --alerts-interval. Without it,
    /// embedded mode runs built-in demo rules and a real cluster none.
    #[arg(long = "alerts", env = "PULSEBOARD_ALERTS")]
    pub file: Option<PathBuf>,
    /// How often the rules are evaluated (and the file checked for changes).
    #[arg(long, env = "PULSEBOARD_ALERTS_INTERVAL", default_value = "5s", value_parser = duration)]
    pub alerts_interval: Duration,
}

impl AlertArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.alerts_interval.is_zero() {
            return Err(invalid(
                "alerts-interval",
                format!("{:?}", self.alerts_interval),
                "must be longer than zero",
            ));
        }
        Ok(())
    }
}
