//! The sled store: its directory, the checkpoint interval, and the ages of history
//! (retention, minute and hour buckets).

use std::path::PathBuf;

use super::windows::WindowArgs;
use std::time::Duration;

use clap::Args;

use super::{duration, invalid, millis, ConfigError};

/// The sled store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the sled store. Default: `./pulseboard-data` with `--brokers`,
    /// `./pulseboard-demo-data` for the embedded demo (a store holds one source's data and
    /// refuses another's).
    #[arg(long, env = "PULSEBOARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// How often window state and offsets are written to the store.
    #[arg(long, env = "PULSEBOARD_CHECKPOINT_INTERVAL", default_value = "1s", value_parser = duration)]
    pub checkpoint_interval: Duration,
    /// Windows older than this are rolled up into minute buckets (history): older than the
    /// watermark minus this, and never newer than wall-clock now minus this, whatever a
    /// watermark says.
    #[arg(long, env = "PULSEBOARD_RETENTION", default_value = "24h", value_parser = duration)]
    pub retention: Duration,
    /// Roll-up buckets of a minute are kept this long (counted like --retention), then
    /// merged per hour. The default keeps a comparison with one week earlier at minute
    /// resolution for ranges up to a day.
    #[arg(long, env = "PULSEBOARD_MINUTE_HISTORY", default_value = "8d", value_parser = duration)]
    pub minute_history: Duration,
    /// History (hour buckets) is kept this long, then deleted; so are annotations.
    #[arg(long, env = "PULSEBOARD_HISTORY", default_value = "35d", value_parser = duration)]
    pub history: Duration,
    /// How often the retention pass runs (the first runs at start).
    #[arg(long, env = "PULSEBOARD_RETENTION_INTERVAL", default_value = "1m", value_parser = duration)]
    pub retention_interval: Duration,
}

/// The store's directory with `--brokers` when `--data-dir` is not given.
pub const DATA_DIR: &str = "./pulseboard-data";
/// The embedded demo's, when `--data-dir` is not given.
pub const DEMO_DATA_DIR: &str = "./pulseboard-demo-data";

impl StoreArgs {
    /// The store's directory: `--data-dir`, else the default of the mode (`embedded`: the
    /// demo's own, so its data never lands in a real cluster's store).
    pub fn data_dir(&self, embedded: bool) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(if embedded { DEMO_DATA_DIR } else { DATA_DIR }))
    }

    pub fn validate(&self, windows: &WindowArgs) -> Result<(), ConfigError> {
        for (flag, d) in [
            ("checkpoint-interval", self.checkpoint_interval),
            ("retention-interval", self.retention_interval),
        ] {
            if d.is_zero() {
                return Err(invalid(flag, format!("{d:?}"), "must be longer than zero"));
            }
        }
        if windows.revision_horizon > self.retention {
            return Err(invalid(
                "revision-horizon",
                format!("{:?}", windows.revision_horizon),
                format!(
                    "must not exceed --retention ({:?}): a window past retention is gone",
                    self.retention
                ),
            ));
        }
        if self.minute_history < self.retention {
            return Err(invalid(
                "minute-history",
                format!("{:?}", self.minute_history),
                format!(
                    "must be at least --retention ({:?}): minute buckets begin where windows end",
                    self.retention
                ),
            ));
        }
        if self.history < self.minute_history {
            return Err(invalid(
                "history",
                format!("{:?}", self.history),
                format!(
                    "must be at least --minute-history ({:?})",
                    self.minute_history
                ),
            ));
        }
        if self.retention < windows.width {
            return Err(invalid(
                "retention",
                format!("{:?}", self.retention),
                format!("must be at least one window ({:?})", windows.width),
            ));
        }
        Ok(())
    }

    pub fn retention_ms(&self) -> i64 {
        millis(self.retention)
    }

    /// How long each resolution of history is kept.
    pub fn ages(&self) -> pulseboard_model::rollup::Ages {
        pulseboard_model::rollup::Ages {
            retention_ms: millis(self.retention),
            minutes_ms: millis(self.minute_history),
            history_ms: millis(self.history),
        }
    }
}
