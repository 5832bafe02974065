//! Configuration: `pulseboard`'s command line (docs/cli.md), one clap argument struct per
//! component in a file of its own, every flag also read from `PULSEBOARD_*`; and the
//! commands it runs instead of serving ([`Command`]).
//!
//! Contract: [`Config::parse`] (clap) parses each value at its flag (durations, mappings,
//! `key=value` options), so a bad value is refused with the flag's name; each component's
//! `validate` checks the rules across its own fields, and [`Config::validate`] those across
//! components. Each component receives its struct whole: [`KafkaArgs`] (ingest),
//! [`WindowArgs`] (the engine), [`StoreArgs`] (sled, retention), [`HttpArgs`] (the HTTP
//! surface), [`HubArgs`] (the hub and its sockets), [`DemoArgs`] (embedded mode),
//! [`AggregateArgs`] (segments, goals, visitors now), [`TlsArgs`] (HTTPS).

use std::time::Duration;

use clap::Parser;
use pulseboard_model::time::parse_duration_ms;

mod aggregate;
mod alerts;
mod demo;
mod http;
mod hub;
mod kafka;
mod store;
mod tls;
mod windows;

pub use aggregate::AggregateArgs;
pub use alerts::AlertArgs;
pub use demo::DemoArgs;
pub use http::HttpArgs;
pub use hub::HubArgs;
pub use kafka::{KafkaArgs, OffsetReset};
pub use store::StoreArgs;
pub use tls::TlsArgs;
pub use windows::WindowArgs;

/// Live clickstream dashboard on Kafka.
#[derive(Debug, Clone, Parser)]
#[command(name = "pulseboard", version, about)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub windows: WindowArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub demo: DemoArgs,
    #[command(flatten)]
    pub aggregate: AggregateArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// What to do instead of serving (nothing: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands `pulseboard` runs instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print the OpenAPI description of the HTTP API (with its security schemes) and exit;
    /// `cargo xtask openapi` writes it to a file.
    Openapi,
    /// API tokens in the store of `--data-dir` (stop the server first: the store is
    /// locked while it runs; or use `/api/v1/tokens` with an admin token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Share links in the store of `--data-dir` (as `token`; or `/api/v1/links`).
    #[command(subcommand)]
    Link(LinkCommand),
}

/// `pulseboard token …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        /// `admin` (reads, writes annotations, manages tokens and links) or `viewer` (reads).
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: String,
        /// Where it is used, e.g. `lobby-tv`.
        #[arg(long)]
        name: String,
    },
    /// List the tokens (key, role, name, created, revoked).
    List,
    /// Revoke the token of this key (from `list`).
    Revoke { key: String },
}

/// `pulseboard link …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LinkCommand {
    /// Make a share link and print its path `/s/<id>` (once: only its hash is kept).
    Create {
        /// The page it opens: `kiosk`, `dashboard` or `embed`.
        #[arg(long, value_parser = ["kiosk", "dashboard", "embed"])]
        view: String,
        /// An embed's panel (events, totals, now, goals, pages, referrers, countries,
        /// devices, types, status).
        #[arg(long)]
        panel: Option<String>,
        /// The segment it shows, as the API's `filter` (`DIMENSION:VALUE`); none: all.
        #[arg(long)]
        filter: Option<String>,
        /// The site it shows, as the API's `site`; none: every site.
        #[arg(long)]
        site: Option<String>,
        /// How far back it may look, e.g. `1h`.
        #[arg(long, default_value = "1h")]
        range: String,
        /// It expires this long after now, e.g. `30d` (none: until revoked).
        #[arg(long)]
        expires_in: Option<String>,
        /// Where it is used, e.g. `lobby`.
        #[arg(long)]
        name: String,
    },
    /// List the links (key, name, scope, created, expires, revoked).
    List,
    /// Revoke the link of this key (from `list`): open pages show "revoked" within seconds.
    Revoke { key: String },
}

/// Errors in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag} {value:?}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

fn invalid(flag: &'static str, value: impl ToString, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// A duration flag: a number and a unit (`500ms`, `10s`, `5m`, `24h`, `1d`, `1h30m`).
/// A duration flag: a number and a unit (`500ms`, `10s`, `5m`, `24h`, `1d`, `1h30m`).
fn duration(s: &str) -> Result<Duration, String> {
    let ms = parse_duration_ms(s)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("{s:?} is negative"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Config {
    /// Check every component and the rules across them.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        self.kafka.validate()?;
        self.windows.validate()?;
        self.store.validate(&self.windows)?;
        self.http.validate()?;
        self.tls.validate()?;
        self.hub.validate()?;
        self.demo.validate()?;
        let embedded = self.embedded();
        self.aggregate.validate(&self.windows, embedded)?;
        self.alerts.validate()?;
        Ok(self)
    }

    /// Whether anyone reads without a credential: `--public-dashboard`, or the embedded
    /// demo without `--token` (its data is made up).
    pub fn public_dashboard(&self) -> bool {
        self.http.public_dashboard || (self.embedded() && self.http.token.is_none())
    }

    /// Embedded mode: no `--brokers` given.
    pub fn embedded(&self) -> bool {
        self.kafka.brokers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::{Dimension, SegmentSpec};
    use std::path::{Path, PathBuf};

    #[test]
    fn defaults_match_design() {
        let c = Config::try_parse_from(["pulseboard"])
            .expect("parse")
            .validate()
            .expect("valid");
        assert_eq!(c.windows.config().width_ms, 10_000);
        assert_eq!(c.windows.config().lateness_ms, 5_000);
        assert_eq!(c.windows.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.store.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(c.store.retention_ms(), 24 * 3600 * 1000);
        assert_eq!(c.store.ages().minutes_ms, 8 * 24 * 3600 * 1000);
        assert_eq!(c.store.ages().history_ms, 35 * 24 * 3600 * 1000);
        let err = Config::try_parse_from(["pulseboard", "--history", "2d"])
            .expect("parse")
            .validate()
            .expect_err("history below minute history")
            .to_string();
        assert!(err.contains("--history"), "{err}");
        assert_eq!(c.kafka.topics, vec!["clicks".to_owned()]);
        assert_eq!(c.kafka.dead_letter_topic_for("clicks"), "clicks-dlq");
        assert!(c.kafka.brokers.is_none() && c.embedded());
        // The demo keeps its own store; a cluster's is another; --data-dir names either.
        let dir = |args: &[&str]| {
            let c = Config::try_parse_from(args).expect("parse");
            c.store.data_dir(c.embedded())
        };
        assert_eq!(
            dir(&["pulseboard"]),
            PathBuf::from("./pulseboard-demo-data")
        );
        assert_eq!(
            dir(&["pulseboard", "--brokers", "k:9092"]),
            PathBuf::from("./pulseboard-data")
        );
        assert_eq!(
            dir(&["pulseboard", "--data-dir", "/x"]),
            PathBuf::from("/x")
        );
        assert_eq!(c.hub.publish_interval, Duration::from_millis(50));
        assert_eq!(c.hub.ws_client_queue, 256);
        assert_eq!(c.hub.ws_connect_rate, 200);
        assert_eq!(c.hub.ws_connect_burst, 200);
    }

    #[test]
    fn openapi_is_a_command_and_serving_is_the_default() {
        let c = Config::try_parse_from(["pulseboard", "openapi"]).expect("parse");
        assert!(matches!(c.command, Some(Command::Openapi)));
        let c = Config::try_parse_from(["pulseboard", "--window", "1m"]).expect("parse");
        assert!(c.command.is_none());
        assert!(Config::try_parse_from(["pulseboard", "nonsense"]).is_err());
    }

    #[test]
    fn bad_duration_names_the_flag() {
        let err = Config::try_parse_from(["pulseboard", "--window", "ten"])
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("--window"), "{err}");
        let err = Config::try_parse_from(["pulseboard", "--window", "0s"])
            .expect("parse")
            .validate()
            .expect_err("zero width")
            .to_string();
        assert!(err.contains("--window"), "{err}");
    }

    #[test]
    fn map_rules_and_schema_parse() {
        let c = Config::try_parse_from([
            "pulseboard",
            "--schema",
            "segment",
            "--map",
            "url=/properties/path",
            "--map",
            "visitor=/anonymousId",
        ])
        .expect("parse");
        assert_eq!(c.kafka.map.len(), 2);
        assert!(Config::try_parse_from(["pulseboard", "--map", "nope=/x"]).is_err());
    }

    #[test]
    fn kafka_options_are_key_value_and_keep_cooperative_rebalancing() {
        assert!(Config::try_parse_from(["pulseboard", "--kafka-option", "fetch"]).is_err());
        let c = Config::try_parse_from(["pulseboard", "--kafka-option", "a.b = 1"])
            .expect("parse")
            .validate()
            .expect("valid");
        assert_eq!(c.kafka.kafka_options, vec![("a.b".into(), "1".into())]);
        let err = Config::try_parse_from([
            "pulseboard",
            "--kafka-option",
            "partition.assignment.strategy=range",
        ])
        .expect("parse")
        .validate()
        .expect_err("eager refused")
        .to_string();
        assert!(err.contains("cooperative-sticky"), "{err}");
    }

    #[test]
    fn the_state_topic_is_the_groups_unless_embedded_or_switched_off() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["pulseboard"];
            argv.extend_from_slice(args);
            Config::try_parse_from(argv).expect("parse").validate()
        };
        assert_eq!(parse(&[]).expect("valid").kafka.state_topic(), None);
        let c = parse(&["--brokers", "k:9092", "--group", "g"]).expect("valid");
        assert_eq!(c.kafka.state_topic().as_deref(), Some("g-windows"));
        let c = parse(&["--brokers", "k:9092", "--state-topic", "s"]).expect("valid");
        assert_eq!(c.kafka.state_topic().as_deref(), Some("s"));
        let c = parse(&["--brokers", "k:9092", "--no-state-topic"]).expect("valid");
        assert_eq!(c.kafka.state_topic(), None);
        let err = parse(&["--brokers", "k", "--state-topic", "clicks"])
            .expect_err("input topic")
            .to_string();
        assert!(err.contains("--state-topic"), "{err}");
        let err = parse(&["--brokers", "k", "--restore-timeout", "1s"])
            .expect_err("shorter than a transaction")
            .to_string();
        assert!(err.contains("--restore-timeout"), "{err}");
    }

    #[test]
    fn segments_and_goals_parse_validate_and_default_in_embedded_mode() {
        let c = Config::try_parse_from(["pulseboard"])
            .expect("parse")
            .validate()
            .expect("valid");
        let plan = Dimension::from_name("prop.plan").expect("the demo's property");
        let mut dims = Dimension::ALL.to_vec();
        dims.push(plan);
        assert_eq!(
            c.aggregate.dimensions(),
            dims,
            "segments, then the demo's property"
        );
        assert_eq!(c.aggregate.property_keys(), vec!["plan"]);
        assert_eq!(c.aggregate.segment_top, 10);
        assert_eq!(c.aggregate.now_window_ms(), 300_000);
        let goals: Vec<String> = c.aggregate.goals.iter().map(|g| g.rule()).collect();
        assert_eq!(
            goals,
            vec!["type:signup", "type:pageview,url:/pricing"],
            "demo goals"
        );
        assert_eq!(c.aggregate.spec().goals.len(), 2);
        // Against a broker, no goal unless given.
        let c = Config::try_parse_from(["pulseboard", "--brokers", "k:9092"])
            .expect("parse")
            .validate()
            .expect("valid");
        assert!(c.aggregate.goals.is_empty());
        let c = Config::try_parse_from([
            "pulseboard",
            "--goal",
            "signup",
            "--goal",
            "buy=type:click,url:/checkout*",
            "--segment-dimensions",
            "country,referrer",
            "--segment-top",
            "3",
            "--now-window",
            "1m",
        ])
        .expect("parse")
        .validate()
        .expect("valid");
        assert_eq!(c.aggregate.goals.len(), 2);
        assert_eq!(
            c.aggregate.spec().segments,
            SegmentSpec {
                // Embedded mode: the demo's property too.
                dimensions: vec![
                    Dimension::Country,
                    Dimension::Referrer,
                    Dimension::from_name("prop.plan").expect("plan")
                ],
                top_n: 3
            }
        );
        let none = Config::try_parse_from(["pulseboard", "--segment-dimensions", "none"])
            .expect("parse")
            .validate()
            .expect("valid");
        let plan = Dimension::from_name("prop.plan").expect("plan");
        assert_eq!(
            none.aggregate.dimensions(),
            vec![plan],
            "no segment: the property only"
        );
        for (args, flag) in [
            (&["--property", "a b"][..], "--property"),
            (&["--property", "a:b"][..], "--property"),
            (
                &["--property", "plan", "--property", "plan"][..],
                "--property",
            ),
            (&["--goal", "a b"][..], "--goal"),
            (&["--goal", "x=type:a,host:b"][..], "--goal"),
            (&["--goal", "a", "--goal", "a=b"][..], "--goal"),
            (
                &["--segment-dimensions", "city"][..],
                "--segment-dimensions",
            ),
            (
                &["--segment-dimensions", "none,country"][..],
                "--segment-dimensions",
            ),
            (
                &["--segment-dimensions", "country,country"][..],
                "--segment-dimensions",
            ),
            (&["--segment-top", "0"][..], "--segment-top"),
            (&["--segment-top", "101"][..], "--segment-top"),
            (&["--now-window", "1s"][..], "--now-window"),
            (&["--now-window", "2h"][..], "--now-window"),
        ] {
            let argv: Vec<&str> = std::iter::once("pulseboard")
                .chain(args.iter().copied())
                .collect();
            let err = match Config::try_parse_from(argv) {
                Err(e) => e.to_string(),
                Ok(c) => c.validate().expect_err(flag).to_string(),
            };
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn socket_ping_must_come_before_the_idle_timeout() {
        let err = Config::try_parse_from(["pulseboard", "--ws-ping-interval", "1m"])
            .expect("parse")
            .validate()
            .expect_err("ping after idle")
            .to_string();
        assert!(err.contains("--ws-ping-interval"), "{err}");
    }

    #[test]
    fn tls_needs_both_files_and_names_the_missing_flag() {
        let parse = |args: &[&str]| {
            let argv: Vec<&str> = std::iter::once("pulseboard")
                .chain(args.iter().copied())
                .collect();
            Config::try_parse_from(argv).expect("parse").validate()
        };
        let plain = parse(&[]).expect("valid");
        assert!(!plain.tls.enabled());
        let tls = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).expect("valid");
        assert!(tls.tls.enabled());
        assert_eq!(
            tls.tls.files(),
            Some((Path::new("c.pem"), Path::new("k.pem")))
        );
        let err = parse(&["--tls-cert", "c.pem"])
            .expect_err("no key")
            .to_string();
        assert!(
            err.contains("--tls-cert") && err.contains("--tls-key"),
            "{err}"
        );
        let err = parse(&["--tls-key", "k.pem"])
            .expect_err("no cert")
            .to_string();
        assert!(
            err.starts_with("--tls-key") && err.contains("--tls-cert"),
            "{err}"
        );
        assert!(
            Config::try_parse_from(["pulseboard", "--tls-cert", "", "--tls-key", "k"]).is_err()
        );
    }
}
