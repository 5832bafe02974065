//! Configuration: the command line of DESIGN.md, one clap argument struct per component,
//! every flag also read from `PULSEBOARD_*`.
//!
//! Contract: [`Config::parse`] (clap) parses each value at its flag (durations, mappings,
//! `key=value` options), so a bad value is refused with the flag's name; each component's
//! `validate` checks the rules across its own fields, and [`Config::validate`] those across
//! components. Each component receives its struct whole: [`KafkaArgs`] (ingest),
//! [`WindowArgs`] (the engine), [`StoreArgs`] (sled, retention), [`HttpArgs`] (the HTTP
//! surface), [`LiveArgs`] (the hub and its sockets), [`DemoArgs`] (embedded mode),
//! [`AggregateArgs`] (segments, goals, visitors now).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser};
use pulseboard_model::agg::segment::{DEFAULT_SEGMENT_TOP, MAX_SEGMENT_TOP};
use pulseboard_model::agg::{check_goals, AggSpec, Dimension, Goal, SegmentSpec};
use pulseboard_model::mapping::{FieldMapping, MapRule, Schema};
use pulseboard_model::time::parse_duration_ms;
use pulseboard_model::window::WindowConfig;

use crate::ingest::client::OffsetReset;
use crate::ingest::engine::EngineConfig;

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
    pub live: LiveArgs,
    #[command(flatten)]
    pub demo: DemoArgs,
    #[command(flatten)]
    pub aggregate: AggregateArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
}

/// Alert rules.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Alert rules (TOML; see README), read again every --alerts-interval. Without it,
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

/// The Kafka side: where events come from, and how they are read.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers. Without it, an embedded Kafka with demo traffic is started.
    #[arg(long, env = "PULSEBOARD_BROKERS")]
    pub brokers: Option<String>,
    /// Topics to consume, comma-separated.
    #[arg(
        long,
        env = "PULSEBOARD_TOPICS",
        default_value = "clicks",
        value_delimiter = ','
    )]
    pub topics: Vec<String>,
    /// Kafka consumer group.
    #[arg(long, env = "PULSEBOARD_GROUP", default_value = "pulseboard")]
    pub group: String,
    /// Dead-letter topic for messages that cannot be counted. Default: `<topic>-dlq`.
    #[arg(long, env = "PULSEBOARD_DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// What to do when a stored offset is outside the log: earliest, latest or fail.
    #[arg(
        long,
        env = "PULSEBOARD_OFFSET_RESET",
        value_enum,
        default_value = "earliest"
    )]
    pub offset_reset: OffsetReset,
    /// Input schema preset: `canonical` or `segment` (Segment page/track events).
    #[arg(long, env = "PULSEBOARD_SCHEMA", default_value = "canonical")]
    pub schema: Schema,
    /// Take a field from a JSON pointer, e.g. `url=/properties/path` (repeatable).
    #[arg(long = "map", env = "PULSEBOARD_MAP", value_delimiter = ',')]
    pub map: Vec<MapRule>,
    /// Extra librdkafka consumer properties, `key=value` (repeatable).
    #[arg(
        long = "kafka-option",
        env = "PULSEBOARD_KAFKA_OPTIONS",
        value_delimiter = ',',
        value_parser = kafka_option
    )]
    pub kafka_options: Vec<(String, String)>,
    /// Compacted topic holding every partition's windows and progress, written in Kafka
    /// transactions: the changelog several instances share, and Pulseboard's output for
    /// other systems. Default: `<group>-windows`. Created (compacted) when missing.
    #[arg(long, env = "PULSEBOARD_STATE_TOPIC")]
    pub state_topic: Option<String>,
    /// Run without a state topic: one instance, sled alone holds the state and the offset
    /// commit is advisory. Several instances in one group then each show only their own
    /// partitions. (Embedded mode always runs so: its in-process broker has no
    /// transactions.)
    #[arg(long, env = "PULSEBOARD_NO_STATE_TOPIC")]
    pub no_state_topic: bool,
    /// A transaction left open by a process that died is aborted by the broker after this
    /// (readers of the state topic wait behind it until then).
    #[arg(long, env = "PULSEBOARD_TRANSACTION_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub transaction_timeout: Duration,
    /// How long a newly assigned partition may wait for its committed offset and for the
    /// state topic to bring this store up to that checkpoint, before Pulseboard stops with
    /// an error.
    #[arg(long, env = "PULSEBOARD_RESTORE_TIMEOUT", default_value = "2m", value_parser = duration)]
    pub restore_timeout: Duration,
    /// Partitions of the state topic when Pulseboard creates it (default: the input topics'
    /// partitions, at most 64). Never change it afterwards.
    #[arg(long, env = "PULSEBOARD_STATE_PARTITIONS")]
    pub state_partitions: Option<i32>,
}

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

/// The sled store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the sled store.
    #[arg(long, env = "PULSEBOARD_DATA_DIR", default_value = "./pulseboard-data")]
    pub data_dir: PathBuf,
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

/// The HTTP surface.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address of the HTTP server.
    #[arg(long, env = "PULSEBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the built frontend (Trunk's output).
    #[arg(long, env = "PULSEBOARD_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,
    /// Require this bearer token (or `?token=`) for the API, the socket and the metrics.
    #[arg(long, env = "PULSEBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    /// The URL other instances (and the status) give for this instance's dashboard.
    /// Default: `http://` and the address the server listens on.
    #[arg(long, env = "PULSEBOARD_ADVERTISED_URL")]
    pub advertised_url: Option<String>,
}

/// The live hub and its WebSocket clients.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
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

/// What each window counts beyond the basics (segments, goals), and "visitors now".
#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// Dimensions whose values get per-window sub-aggregates, so that every view can be
    /// filtered by one (`filter=country:DE`): country, device, type, referrer (the
    /// referrer's domain), comma-separated; `none` for no segments.
    #[arg(
        long,
        env = "PULSEBOARD_SEGMENT_DIMENSIONS",
        value_delimiter = ',',
        default_value = "country,device,type,referrer",
        value_parser = segment_dimension
    )]
    pub segment_dimensions: Vec<Option<Dimension>>,
    /// Values per window and dimension with a sub-aggregate of their own (the first ones
    /// seen); the others share the window's "other" bucket. 1 to 100.
    #[arg(long, env = "PULSEBOARD_SEGMENT_TOP", default_value_t = DEFAULT_SEGMENT_TOP)]
    pub segment_top: usize,
    /// A goal (repeatable; `;`-separated in the variable): `signup` (an event type),
    /// `NAME=TYPE`, or `NAME=type:TYPE,url:/path*` (a URL goal without `type:` counts page
    /// views). Embedded mode without any: `signup` and `pricing=url:/pricing`.
    #[arg(long = "goal", env = "PULSEBOARD_GOALS", value_delimiter = ';', value_parser = goal)]
    pub goals: Vec<Goal>,
    /// How far back "visitors now" reaches from wall-clock now (one window to 1 h).
    #[arg(long, env = "PULSEBOARD_NOW_WINDOW", default_value = "5m", value_parser = duration)]
    pub now_window: Duration,
}

/// A `--segment-dimensions` entry: a dimension's name, or `none`.
fn segment_dimension(s: &str) -> Result<Option<Dimension>, String> {
    match s.trim() {
        "none" => Ok(None),
        name => Dimension::from_name(name).map(Some).ok_or_else(|| {
            format!("{name:?} is not a dimension: use country, device, type, referrer or none")
        }),
    }
}

/// A `--goal`.
fn goal(s: &str) -> Result<Goal, String> {
    Goal::parse(s).map_err(|e| e.to_string())
}

impl AggregateArgs {
    /// The goals of embedded mode when none are given.
    pub const DEMO_GOALS: [&'static str; 2] = ["signup", "pricing=url:/pricing"];

    pub fn validate(&mut self, windows: &WindowArgs, embedded: bool) -> Result<(), ConfigError> {
        let names: Vec<&str> = self
            .segment_dimensions
            .iter()
            .map(|d| d.map_or("none", Dimension::name))
            .collect();
        if self.segment_dimensions.contains(&None) && self.segment_dimensions.len() > 1 {
            return Err(invalid(
                "segment-dimensions",
                names.join(","),
                "`none` stands alone",
            ));
        }
        let mut seen = Vec::new();
        for d in self.segment_dimensions.iter().flatten() {
            if seen.contains(d) {
                return Err(invalid(
                    "segment-dimensions",
                    names.join(","),
                    format!("{d} is given twice"),
                ));
            }
            seen.push(*d);
        }
        if !(1..=MAX_SEGMENT_TOP).contains(&self.segment_top) {
            return Err(invalid(
                "segment-top",
                self.segment_top,
                format!("must be between 1 and {MAX_SEGMENT_TOP}"),
            ));
        }
        if embedded && self.goals.is_empty() {
            self.goals = Self::DEMO_GOALS
                .iter()
                .filter_map(|g| Goal::parse(g).ok())
                .collect();
        }
        check_goals(&self.goals).map_err(|e| invalid("goal", &e.spec, e.reason))?;
        if self.now_window < windows.width || self.now_window > Duration::from_secs(3600) {
            return Err(invalid(
                "now-window",
                format!("{:?}", self.now_window),
                format!(
                    "must be between one window (--window {:?}) and 1h",
                    windows.width
                ),
            ));
        }
        Ok(())
    }

    /// The dimensions with sub-aggregates.
    pub fn dimensions(&self) -> Vec<Dimension> {
        self.segment_dimensions.iter().flatten().copied().collect()
    }

    /// What every window counts: these segments and goals.
    pub fn spec(&self) -> AggSpec {
        AggSpec {
            segments: SegmentSpec {
                dimensions: self.dimensions(),
                top_n: self.segment_top,
            },
            goals: self.goals.clone(),
        }
    }

    pub fn now_window_ms(&self) -> i64 {
        millis(self.now_window)
    }
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
fn duration(s: &str) -> Result<Duration, String> {
    let ms = parse_duration_ms(s)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("{s:?} is negative"))
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

/// A `--kafka-option`: `key=value`.
fn kafka_option(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected key=value, e.g. fetch.max.bytes=1048576"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl KafkaArgs {
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.brokers = self.brokers.take().filter(|b| !b.trim().is_empty());
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if topics.is_empty() {
            return Err(invalid(
                "topics",
                self.topics.join(","),
                "name at least one topic",
            ));
        }
        self.topics = topics;
        if let Some(dlq) = &self.dead_letter_topic {
            if self.topics.contains(dlq) {
                return Err(invalid(
                    "dead-letter-topic",
                    dlq,
                    "must differ from the input topics",
                ));
            }
        }
        if let Some(t) = &self.state_topic {
            if t.trim().is_empty() || self.topics.contains(t) {
                return Err(invalid(
                    "state-topic",
                    t,
                    "name a topic of its own (not an input topic), or give --no-state-topic",
                ));
            }
        }
        if self.transaction_timeout < Duration::from_secs(1)
            || self.transaction_timeout > Duration::from_secs(900)
        {
            return Err(invalid(
                "transaction-timeout",
                format!("{:?}", self.transaction_timeout),
                "must be between 1s and 15m (the broker's transaction.max.timeout.ms)",
            ));
        }
        if self.restore_timeout < self.transaction_timeout {
            return Err(invalid(
                "restore-timeout",
                format!("{:?}", self.restore_timeout),
                format!(
                    "must be at least --transaction-timeout ({:?}): a partition may wait that long for a dead owner's transaction",
                    self.transaction_timeout
                ),
            ));
        }
        if let Some(n) = self.state_partitions {
            if !(1..=1024).contains(&n) {
                return Err(invalid("state-partitions", n, "must be between 1 and 1024"));
            }
        }
        for (k, v) in &self.kafka_options {
            if k == "partition.assignment.strategy" && v != "cooperative-sticky" {
                return Err(invalid(
                    "kafka-option",
                    format!("{k}={v}"),
                    "Pulseboard needs cooperative-sticky: it restarts a single partition after an offset reset, which the eager strategies cannot",
                ));
            }
        }
        Ok(())
    }

    /// The dead-letter topic of an input topic.
    pub fn dead_letter_topic_for(&self, topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}-dlq"))
    }

    /// The state topic to use: `None` in embedded mode and with `--no-state-topic`.
    pub fn state_topic(&self) -> Option<String> {
        if self.brokers.is_none() || self.no_state_topic {
            return None;
        }
        Some(
            self.state_topic
                .clone()
                .unwrap_or_else(|| format!("{}-windows", self.group)),
        )
    }

    /// The decoder's field mapping.
    pub fn mapping(&self) -> FieldMapping {
        FieldMapping::new(self.schema, &self.map)
    }
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

    /// How a partition judges time (windows counting nothing beyond the basics: see
    /// [`Config::engine`]).
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            windows: self.config(),
            max_clock_skew_ms: millis(self.max_clock_skew),
            revision_horizon_ms: millis(self.revision_horizon),
            spec: Arc::default(),
        }
    }
}

impl StoreArgs {
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

impl HttpArgs {
    pub fn validate(&mut self) -> Result<(), ConfigError> {
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

    /// The frontend's files, when the directory exists.
    pub fn static_dir(&self) -> Option<PathBuf> {
        Some(self.static_dir.clone()).filter(|d| d.is_dir())
    }
}

impl LiveArgs {
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

impl Config {
    /// Check every component and the rules across them.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        self.kafka.validate()?;
        self.windows.validate()?;
        self.store.validate(&self.windows)?;
        self.http.validate()?;
        self.live.validate()?;
        self.demo.validate()?;
        let embedded = self.embedded();
        self.aggregate.validate(&self.windows, embedded)?;
        self.alerts.validate()?;
        Ok(self)
    }

    /// How a partition judges time and what its windows count.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            spec: Arc::new(self.aggregate.spec()),
            ..self.windows.engine()
        }
    }

    /// Embedded mode: no `--brokers` given.
    pub fn embedded(&self) -> bool {
        self.kafka.brokers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.live.publish_interval, Duration::from_millis(50));
        assert_eq!(c.live.ws_client_queue, 256);
        assert_eq!(c.live.ws_connect_rate, 200);
        assert_eq!(c.live.ws_connect_burst, 200);
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
        assert_eq!(c.aggregate.dimensions(), Dimension::ALL.to_vec());
        assert_eq!(c.aggregate.segment_top, 10);
        assert_eq!(c.aggregate.now_window_ms(), 300_000);
        let goals: Vec<String> = c.aggregate.goals.iter().map(|g| g.rule()).collect();
        assert_eq!(
            goals,
            vec!["type:signup", "type:pageview,url:/pricing"],
            "demo goals"
        );
        assert_eq!(c.engine().spec.goals.len(), 2);
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
            c.engine().spec.segments,
            SegmentSpec {
                dimensions: vec![Dimension::Country, Dimension::Referrer],
                top_n: 3
            }
        );
        let none = Config::try_parse_from(["pulseboard", "--segment-dimensions", "none"])
            .expect("parse")
            .validate()
            .expect("valid");
        assert!(none.aggregate.dimensions().is_empty());
        for (args, flag) in [
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
}
