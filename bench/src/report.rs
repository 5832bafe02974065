//! The results of one run: the JSON document, the targets, and the printed table.
//!
//! Contract: every measured number has one field here and one row in the table under the
//! same name (peer numbers as `<peer>.<field>`); a number that was not measured is `null` in
//! the JSON and `n/a` in the table, never a made-up zero; a target with no value is neither
//! met nor missed.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::child::RssSample;
use crate::{now_ms, Plan};

#[derive(Debug, Default, Serialize)]
pub struct Machine {
    nproc: usize,
    cpu_model: String,
    mem_total_mb: u64,
    loadavg_at_start: String,
}

#[derive(Debug, Serialize)]
pub struct Target {
    metric: &'static str,
    op: &'static str,
    threshold: f64,
    value: Option<f64>,
    met: Option<bool>,
}

/// One peer's numbers. Throughput is from its first to its last message; start-up (process
/// start to first message) is apart; latency is from its own latency run.
#[derive(Debug, Default, Serialize)]
pub struct PeerReport {
    /// What ran: framework, version, how.
    pub version: String,
    /// Messages of the topic it processed, the malformed ones among them.
    pub events: Option<u64>,
    pub malformed: Option<u64>,
    /// `events / seconds`, first to last message.
    pub eps: Option<f64>,
    pub seconds: Option<f64>,
    /// Process (JVM) start to its first message.
    pub startup_ms: Option<f64>,
    /// VmHWM of the peer's process (the JVM, or python), sampled while it ran.
    pub peak_rss_mb: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub latency_probes: Option<usize>,
    pub latency_missed: Option<usize>,
    pub note: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Peers {
    pub spark: PeerReport,
    pub kafka_streams: PeerReport,
    pub quix: PeerReport,
}

impl Peers {
    /// The report of the peer with this key (`spark`, `kafka_streams`, else `quix`).
    pub fn get_mut(&mut self, key: &str) -> &mut PeerReport {
        match key {
            "spark" => &mut self.spark,
            "kafka_streams" => &mut self.kafka_streams,
            _ => &mut self.quix,
        }
    }
}

/// CPU time per event (user + system, µs) of each process in the raw and pipeline runs.
/// On a machine with C cores a run takes at least the sum of its processes' CPU / C.
#[derive(Debug, Default, Serialize)]
pub struct CpuBudget {
    pub cores: usize,
    pub raw_consumer_us_per_event: f64,
    pub raw_broker_us_per_event: f64,
    pub decode_us_per_event: f64,
    pub pipeline_us_per_event: f64,
    pub pipeline_broker_us_per_event: f64,
    /// The same two with the state topic (`pipeline_eps_transactional`).
    pub transactional_us_per_event: f64,
    pub transactional_broker_us_per_event: f64,
    /// The same two without segment tables (`pipeline_eps_same_job`).
    pub same_job_us_per_event: f64,
    pub same_job_broker_us_per_event: f64,
    /// The fastest the pipeline can run on `cores` cores at the CPU it spends per event
    /// (pulseboard + broker): cores / (pipeline + its broker µs per event).
    pub pipeline_eps_cpu_bound: f64,
    /// `pipeline_eps_cpu_bound / raw_consume_eps`: the best `pipeline_vs_raw` this CPU cost
    /// allows on this machine.
    pub cpu_bound_ratio: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub events: u64,
    pub timestamp: String,
    pub broker: String,
    pub child_kafka_options: Vec<String>,
    pub machine: Machine,
    pub payload_bytes_avg: f64,
    pub prefill_eps: f64,
    pub raw_consume_eps: f64,
    pub raw_consume_eps_default_fetch_wait: f64,
    pub decode_eps: f64,
    pub pipeline_eps: f64,
    pub pipeline_eps_wall: f64,
    pub pipeline_startup_secs: f64,
    pub pipeline_vs_raw: f64,
    /// `pipeline_eps` with the state topic (the default with a broker): a Kafka transaction
    /// per checkpoint, the state topic's reader beside; same topic, same measurement.
    pub pipeline_eps_transactional: f64,
    /// `pipeline_eps_transactional / pipeline_eps` (target >= 0.9).
    pub transactional_vs_pipeline: f64,
    pub rss_peak_mb_transactional: f64,
    /// `pipeline_eps` with `--segment-dimensions none`: the job the peers run (counts,
    /// uniques and top lists by window, no segment tables); same topic, same measurement.
    pub pipeline_eps_same_job: f64,
    pub rss_peak_mb_same_job: f64,
    /// One hour of history read by one instance; an instance with an empty data dir joins
    /// its group: milliseconds from its start until it serves every window and event.
    pub restore_empty_instance_ms: f64,
    pub restore_history_windows: u64,
    pub restore_history_events: u64,
    /// `pipeline_eps` again, measured the same way on the same topic, while
    /// `reconnect_storm_clients` WebSocket clients connect, read their snapshot and leave in
    /// a loop, with the server's default session pacing (`--ws-connect-rate`): what users
    /// run. The median of the rounds (`reconnect_storm.pipeline_eps`).
    pub pipeline_eps_reconnect_storm: f64,
    /// Storm ÷ the baseline run of the same round, the median of the rounds
    /// (`reconnect_storm.ratio`).
    pub reconnect_storm_ratio: f64,
    /// The same two with the pacing off (`--ws-connect-rate 0`).
    pub pipeline_eps_reconnect_storm_unpaced: f64,
    pub reconnect_storm_ratio_unpaced: f64,
    pub reconnect_storm_clients: usize,
    /// Events of the storm's topic (`bench_storm`), consumed by every run of step 4b.
    pub reconnect_storm_events: u64,
    /// Each round's pipeline events/s without clients, the baseline of its storm runs.
    pub reconnect_storm_baseline_eps: Vec<f64>,
    /// The storm run with the default pacing, in full.
    pub reconnect_storm: StormFigures,
    /// The same storm with the pacing off (`--ws-connect-rate 0`).
    pub reconnect_storm_unpaced: StormFigures,
    pub rss_peak_mb: f64,
    pub rss_sampled_max_mb: f64,
    pub pipeline_eps_high_cardinality: f64,
    pub rss_peak_mb_high_cardinality: f64,
    /// The same without segment tables (`--segment-dimensions none`).
    pub rss_peak_mb_high_cardinality_same_job: f64,
    pub rss_hc_samples: Vec<RssSample>,
    pub ws_clients: usize,
    pub ws_clients_dropped: usize,
    pub ws_probes: usize,
    pub ws_latency_p50_ms: f64,
    pub ws_latency_p99_ms: f64,
    pub ws_latency_max_ms: f64,
    pub ws_latency_missed: usize,
    pub rss_ws_mb: f64,
    pub rss_ws_before_clients_mb: f64,
    /// Where the CPU goes: what bounds `pipeline_vs_raw` on this machine.
    pub cpu: CpuBudget,
    pub peers: Peers,
    /// `pipeline_eps` / the peer's `eps`.
    pub vs_spark: Option<f64>,
    pub vs_kafka_streams: Option<f64>,
    pub vs_quix: Option<f64>,
    /// `pipeline_eps_same_job` / the peer's `eps`: like with like (the peers keep no
    /// segment tables).
    pub vs_spark_same_job: Option<f64>,
    pub vs_kafka_streams_same_job: Option<f64>,
    pub targets: Vec<Target>,
    /// Disk bytes per day of history at 1,000 events/s (`history`).
    pub history: crate::history::HistoryFigures,
    /// The same without segment tables (`--segment-dimensions none`).
    pub history_no_segments: crate::history::HistoryFigures,
}

/// One reconnect-storm run.
#[derive(Debug, Default, Serialize)]
pub struct StormFigures {
    /// The median of the rounds' events/s under the storm.
    pub pipeline_eps: f64,
    /// The median of the rounds' ratios (storm ÷ the baseline of its round), and each.
    pub ratio: f64,
    pub round_ratios: Vec<f64>,
    /// Snapshots the storm clients read, in all and per second (all rounds).
    pub snapshots: u64,
    pub snapshots_per_s: f64,
    /// Attempts that got no snapshot (a `503`, reset, timed out).
    pub failures: u64,
    /// Of the attempts that got a snapshot: connect to snapshot read, a paced session's wait
    /// for its turn included.
    pub attempt_p50_ms: f64,
    pub attempt_p99_ms: f64,
    /// CPU seconds of the pulseboard children during the runs (start-up included), and of
    /// the storm's clients (the bench process) meanwhile: where the storm's cost goes.
    pub server_cpu_s: f64,
    pub client_cpu_s: f64,
}

impl Report {
    pub fn new(plan: &Plan) -> Report {
        Report {
            mode: plan.mode,
            events: plan.events,
            timestamp: pulseboard_model::time::format_rfc3339_ms(now_ms()),
            broker: format!(
                "Apache Kafka {} (one KRaft node, 1 GiB heap, loopback)",
                pulseboard_testkit::kafka::kafka_version()
            ),
            machine: machine_info(),
            child_kafka_options: plan.child_kafka_options.clone(),
            ..Report::default()
        }
    }

    /// The ratios to the peers and the targets, once everything is measured.
    pub fn finish(&mut self) {
        self.cpu.cores = self.machine.nproc;
        let per_event = self.cpu.pipeline_us_per_event + self.cpu.pipeline_broker_us_per_event;
        if per_event > 0.0 {
            self.cpu.pipeline_eps_cpu_bound = self.cpu.cores as f64 * 1e6 / per_event;
            if self.raw_consume_eps > 0.0 {
                self.cpu.cpu_bound_ratio = self.cpu.pipeline_eps_cpu_bound / self.raw_consume_eps;
            }
        }
        if self.pipeline_eps > 0.0 {
            self.transactional_vs_pipeline = self.pipeline_eps_transactional / self.pipeline_eps;
        }
        self.pipeline_eps_reconnect_storm = self.reconnect_storm.pipeline_eps;
        self.reconnect_storm_ratio = self.reconnect_storm.ratio;
        self.pipeline_eps_reconnect_storm_unpaced = self.reconnect_storm_unpaced.pipeline_eps;
        self.reconnect_storm_ratio_unpaced = self.reconnect_storm_unpaced.ratio;
        let vs = |p: &PeerReport| p.eps.filter(|e| *e > 0.0).map(|e| self.pipeline_eps / e);
        self.vs_spark = vs(&self.peers.spark);
        self.vs_kafka_streams = vs(&self.peers.kafka_streams);
        self.vs_quix = vs(&self.peers.quix);
        let same = |p: &PeerReport| {
            p.eps
                .filter(|e| *e > 0.0 && self.pipeline_eps_same_job > 0.0)
                .map(|e| self.pipeline_eps_same_job / e)
        };
        self.vs_spark_same_job = same(&self.peers.spark);
        self.vs_kafka_streams_same_job = same(&self.peers.kafka_streams);
        self.targets = targets(self);
    }
}

fn targets(r: &Report) -> Vec<Target> {
    let t = |metric, op, threshold, value: Option<f64>| {
        let value = value.filter(|v| v.is_finite());
        let met = value.map(|v| {
            if op == ">=" {
                v >= threshold
            } else {
                v <= threshold
            }
        });
        Target {
            metric,
            op,
            threshold,
            value,
            met,
        }
    };
    vec![
        t("pipeline_vs_raw", ">=", 0.85, Some(r.pipeline_vs_raw)),
        t(
            "transactional_vs_pipeline",
            ">=",
            0.9,
            Some(r.transactional_vs_pipeline).filter(|_| r.pipeline_eps_transactional > 0.0),
        ),
        t(
            "reconnect_storm_ratio",
            ">=",
            0.9,
            Some(r.reconnect_storm_ratio).filter(|_| r.pipeline_eps_reconnect_storm > 0.0),
        ),
        t("vs_spark", ">=", 5.0, r.vs_spark),
        t("vs_kafka_streams", ">=", 3.0, r.vs_kafka_streams),
        t("ws_latency_p99_ms", "<=", 100.0, Some(r.ws_latency_p99_ms)),
        t(
            "rss_peak_mb_high_cardinality",
            "<=",
            300.0,
            Some(r.rss_peak_mb_high_cardinality),
        ),
    ]
}

fn int(v: f64) -> String {
    group_thousands(v.round() as i64)
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "n/a".into(), f)
}

fn ratios(rs: &[f64]) -> String {
    rs.iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_decimal(v: f64) -> String {
    format!("{v:.1}")
}

fn peer_rows(key: &str, p: &PeerReport, vs: Option<f64>) -> Vec<(String, String)> {
    let count = |v: Option<u64>| v.map_or("n/a".into(), |v| group_thousands(v as i64));
    vec![
        (format!("{key}.events"), count(p.events)),
        (format!("{key}.eps"), opt(p.eps, int)),
        (format!("{key}.startup_ms"), opt(p.startup_ms, int)),
        (
            format!("{key}.peak_rss_mb"),
            opt(p.peak_rss_mb, one_decimal),
        ),
        (
            format!("{key}.latency_p50_ms"),
            opt(p.latency_p50_ms, one_decimal),
        ),
        (
            format!("{key}.latency_p99_ms"),
            opt(p.latency_p99_ms, one_decimal),
        ),
        (format!("vs_{key}"), opt(vs, one_decimal)),
    ]
}

/// The rows of one storm figure set, keys prefixed with `key`.
fn storm_rows(key: &str, f: &StormFigures) -> Vec<(String, String)> {
    vec![
        (
            format!("{key}: ratio of each round"),
            ratios(&f.round_ratios),
        ),
        (
            format!("{key}: snapshots/s, failures"),
            format!("{}, {}", int(f.snapshots_per_s), f.failures),
        ),
        (
            format!("{key}: attempt ms p50, p99"),
            format!("{:.0}, {:.0}", f.attempt_p50_ms, f.attempt_p99_ms),
        ),
        (
            format!("{key} cpu s: server, clients"),
            format!("{:.1}, {:.1}", f.server_cpu_s, f.client_cpu_s),
        ),
    ]
}

fn rows(r: &Report) -> Vec<(String, String)> {
    let hc: Vec<String> = r
        .rss_hc_samples
        .iter()
        .map(|s| format!("{}%:{:.0}", s.progress_pct, s.rss_mb))
        .collect();
    let head: Vec<(&str, String)> = vec![
        ("mode", r.mode.to_string()),
        ("events", group_thousands(r.events as i64)),
        ("payload_bytes_avg", format!("{:.1}", r.payload_bytes_avg)),
        ("prefill_eps", int(r.prefill_eps)),
        ("raw_consume_eps", int(r.raw_consume_eps)),
        (
            "raw_consume_eps_default_fetch_wait",
            int(r.raw_consume_eps_default_fetch_wait),
        ),
        ("decode_eps", int(r.decode_eps)),
        ("pipeline_eps", int(r.pipeline_eps)),
        ("pipeline_eps_wall", int(r.pipeline_eps_wall)),
        (
            "pipeline_startup_secs",
            format!("{:.1}", r.pipeline_startup_secs),
        ),
        ("pipeline_vs_raw", format!("{:.2}", r.pipeline_vs_raw)),
        (
            "pipeline_eps_transactional",
            int(r.pipeline_eps_transactional),
        ),
        (
            "transactional_vs_pipeline",
            format!("{:.2}", r.transactional_vs_pipeline),
        ),
        (
            "cpu µs/event transactional: pipeline + broker",
            format!(
                "{:.2} + {:.2}",
                r.cpu.transactional_us_per_event, r.cpu.transactional_broker_us_per_event
            ),
        ),
        (
            "pipeline_eps_same_job (--segment-dimensions none)",
            int(r.pipeline_eps_same_job),
        ),
        (
            "cpu µs/event same job: pipeline + broker",
            format!(
                "{:.2} + {:.2}",
                r.cpu.same_job_us_per_event, r.cpu.same_job_broker_us_per_event
            ),
        ),
        ("rss_peak_mb_same_job", one_decimal(r.rss_peak_mb_same_job)),
        (
            "restore_empty_instance_ms",
            format!(
                "{} ({} windows, {} events of history)",
                int(r.restore_empty_instance_ms),
                group_thousands(r.restore_history_windows as i64),
                group_thousands(r.restore_history_events as i64)
            ),
        ),
    ];
    let mut rows: Vec<(String, String)> =
        head.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    rows.extend([
        (
            "pipeline_eps_reconnect_storm".to_owned(),
            int(r.pipeline_eps_reconnect_storm),
        ),
        (
            "reconnect_storm_ratio".to_owned(),
            format!("{:.2}", r.reconnect_storm_ratio),
        ),
        (
            "reconnect_storm: clients, events per run".to_owned(),
            format!(
                "{}, {}",
                r.reconnect_storm_clients,
                group_thousands(r.reconnect_storm_events as i64)
            ),
        ),
        (
            "reconnect_storm: baseline eps of each round".to_owned(),
            r.reconnect_storm_baseline_eps
                .iter()
                .map(|e| int(*e))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ]);
    rows.extend(storm_rows("reconnect_storm", &r.reconnect_storm));
    rows.extend([
        (
            "pipeline_eps_reconnect_storm_unpaced".to_owned(),
            int(r.pipeline_eps_reconnect_storm_unpaced),
        ),
        (
            "reconnect_storm_ratio_unpaced".to_owned(),
            format!("{:.2}", r.reconnect_storm_ratio_unpaced),
        ),
    ]);
    rows.extend(storm_rows(
        "reconnect_storm_unpaced",
        &r.reconnect_storm_unpaced,
    ));
    let tail: Vec<(&str, String)> = vec![
        (
            "cpu µs/event: raw consumer + broker",
            format!(
                "{:.2} + {:.2}",
                r.cpu.raw_consumer_us_per_event, r.cpu.raw_broker_us_per_event
            ),
        ),
        (
            "cpu µs/event: decode alone",
            format!("{:.2}", r.cpu.decode_us_per_event),
        ),
        (
            "cpu µs/event: pipeline + broker",
            format!(
                "{:.2} + {:.2}",
                r.cpu.pipeline_us_per_event, r.cpu.pipeline_broker_us_per_event
            ),
        ),
        ("pipeline_eps_cpu_bound", int(r.cpu.pipeline_eps_cpu_bound)),
        ("cpu_bound_ratio", format!("{:.2}", r.cpu.cpu_bound_ratio)),
        ("rss_peak_mb", one_decimal(r.rss_peak_mb)),
        ("rss_sampled_max_mb", one_decimal(r.rss_sampled_max_mb)),
        (
            "pipeline_eps_high_cardinality",
            int(r.pipeline_eps_high_cardinality),
        ),
        (
            "rss_peak_mb_high_cardinality",
            one_decimal(r.rss_peak_mb_high_cardinality),
        ),
        (
            "rss_peak_mb_high_cardinality_same_job",
            one_decimal(r.rss_peak_mb_high_cardinality_same_job),
        ),
        ("rss_hc_samples (MB)", hc.join(" ")),
        ("ws_clients", r.ws_clients.to_string()),
        ("ws_clients_dropped", r.ws_clients_dropped.to_string()),
        ("ws_probes", r.ws_probes.to_string()),
        ("ws_latency_p50_ms", one_decimal(r.ws_latency_p50_ms)),
        ("ws_latency_p99_ms", one_decimal(r.ws_latency_p99_ms)),
        ("ws_latency_max_ms", one_decimal(r.ws_latency_max_ms)),
        ("ws_latency_missed", r.ws_latency_missed.to_string()),
        ("rss_ws_mb", one_decimal(r.rss_ws_mb)),
        (
            "rss_ws_before_clients_mb",
            one_decimal(r.rss_ws_before_clients_mb),
        ),
    ];
    rows.extend(tail.into_iter().map(|(k, v)| (k.to_owned(), v)));
    rows.extend(peer_rows("spark", &r.peers.spark, r.vs_spark));
    rows.extend(peer_rows(
        "kafka_streams",
        &r.peers.kafka_streams,
        r.vs_kafka_streams,
    ));
    rows.extend(peer_rows("quix", &r.peers.quix, r.vs_quix));
    rows.extend([
        (
            "vs_spark_same_job".to_owned(),
            opt(r.vs_spark_same_job, |v| format!("{v:.1}")),
        ),
        (
            "vs_kafka_streams_same_job".to_owned(),
            opt(r.vs_kafka_streams_same_job, |v| format!("{v:.1}")),
        ),
    ]);
    rows
}

pub fn print_table(r: &Report) {
    let targets: HashMap<&str, &Target> = r.targets.iter().map(|t| (t.metric, t)).collect();
    let rows = rows(r);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0).min(40);
    println!();
    println!(
        "{:<width$}  {:>vwidth$}  {:<10}  met",
        "metric", "value", "target"
    );
    println!("{}", "-".repeat(width + vwidth + 19));
    for (k, v) in &rows {
        let (target, met) = match targets.get(k.as_str()) {
            Some(t) => (
                format!("{} {}", t.op, t.threshold),
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "n/a",
                },
            ),
            None => (String::new(), ""),
        };
        println!("{k:<width$}  {v:>vwidth$}  {target:<10}  {met}");
    }
    println!();
    for (key, p) in [
        ("spark", &r.peers.spark),
        ("kafka_streams", &r.peers.kafka_streams),
        ("quix", &r.peers.quix),
    ] {
        println!("{key}: {}", p.version);
        if let Some(note) = &p.note {
            println!("  {note}");
        }
        if let Some(error) = &p.error {
            println!("  FAILED: {error}");
        }
    }
    println!("broker: {}", r.broker);
    if !r.child_kafka_options.is_empty() {
        println!(
            "pulseboard children ran with --kafka-option {}",
            r.child_kafka_options.join(" --kafka-option ")
        );
    }
    println!(
        "machine: {} x {}, {} MB, load at start {}",
        r.machine.nproc, r.machine.cpu_model, r.machine.mem_total_mb, r.machine.loadavg_at_start
    );
}

fn group_thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        out.insert(0, '-');
    }
    out
}

pub fn write_json(path: &Path, report: &Report) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(report).context("serialising the results")?;
    fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

fn machine_info() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        mem_total_mb: field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024),
        loadavg_at_start: fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(-1_000), "-1,000");
    }

    #[test]
    fn a_missing_peer_has_no_ratio_and_its_target_is_open() {
        let mut r = Report {
            pipeline_eps: 100.0,
            ..Report::default()
        };
        r.peers.spark.eps = Some(10.0);
        r.finish();
        assert_eq!(r.vs_spark, Some(10.0));
        assert_eq!(r.vs_kafka_streams, None);
        let ks = r.targets.iter().find(|t| t.metric == "vs_kafka_streams");
        assert_eq!(ks.and_then(|t| t.met), None);
    }

    #[test]
    fn the_storm_figures_fill_the_report_keys_and_the_target() {
        let mut r = Report {
            pipeline_eps: 100_000.0,
            reconnect_storm: StormFigures {
                pipeline_eps: 95_000.0,
                ratio: 0.95,
                ..StormFigures::default()
            },
            reconnect_storm_unpaced: StormFigures {
                pipeline_eps: 70_000.0,
                ratio: 0.70,
                ..StormFigures::default()
            },
            ..Report::default()
        };
        r.finish();
        assert!((r.reconnect_storm_ratio - 0.95).abs() < 1e-9);
        assert!((r.pipeline_eps_reconnect_storm - 95_000.0).abs() < 1e-9);
        assert!((r.reconnect_storm_ratio_unpaced - 0.70).abs() < 1e-9);
        let t = r
            .targets
            .iter()
            .find(|t| t.metric == "reconnect_storm_ratio");
        assert_eq!(t.and_then(|t| t.met), Some(true));
        // Not measured: no ratio, the target open.
        let mut r = Report {
            pipeline_eps: 100_000.0,
            ..Report::default()
        };
        r.finish();
        let t = r
            .targets
            .iter()
            .find(|t| t.metric == "reconnect_storm_ratio");
        assert_eq!(t.and_then(|t| t.met), None);
    }
}
