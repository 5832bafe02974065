//! Embedded mode (no `--brokers`): demo traffic, demo history, partitions.

use clap::Args;

use super::{invalid, ConfigError};

/// Embedded mode (no `--brokers`).
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Events per second of the built-in generator (embedded mode only; 0 = none).
    #[arg(long, env = "PULSEBOARD_DEMO_RATE", default_value_t = 200)]
    pub demo_rate: u32,
    /// Do not fill the hour around the same time one day and one week earlier with
    /// generated traffic (embedded mode fills it once, so comparisons show something).
    #[arg(long, env = "PULSEBOARD_NO_DEMO_HISTORY")]
    pub no_demo_history: bool,
    /// Partitions of each topic created by the embedded Kafka.
    #[arg(long, env = "PULSEBOARD_EMBEDDED_PARTITIONS", default_value_t = 4)]
    pub embedded_partitions: i32,
}

impl DemoArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1024).contains(&self.embedded_partitions) {
            return Err(invalid(
                "embedded-partitions",
                self.embedded_partitions,
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}
