//! The results of one run: the JSON document (this file: its fields, the machine, writing
//! it), the ratios and targets computed once everything is measured (`compare`), and the
//! printed table (`table`).
//!
//! Contract: every measured number has one field here and one row in the table under the
//! same name (peer numbers as `<peer>.<field>`); a number that was not measured is `null` in
//! the JSON and `n/a` in the table, never a made-up zero; a target with no value is neither
//! met nor missed.

mod compare;
mod table;

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::child::RssSample;
use crate::{now_ms, Plan};

pub use table::print_table;

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
    /// The job it ran, in words (beside Pulseboard's in the table).
    pub job: String,
    /// The JVM's flags (`-Xms`/`-Xmx`: the smallest heap at which it keeps its rate, see
    /// docs/performance.md); `None` for a peer that is not a JVM.
    pub jvm_flags: Option<Vec<String>>,
    /// Messages of the topic it processed, the malformed ones among them.
    pub events: Option<u64>,
    /// `events` ÷ the messages of the topic (Quix reads only the first ones).
    pub share: Option<f64>,
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

/// Step 3b: counting and encoding windows of one site, then of two, then of one with a
/// property kept (in memory).
#[derive(Debug, Default, Serialize)]
pub struct SitesCost {
    /// µs per event to count it into its window (default segments, two goals) and encode
    /// the rows, traffic of one site.
    pub count_us_per_event_one_site: f64,
    /// The same, traffic of two sites.
    pub count_us_per_event_two_sites: f64,
    /// Bytes of a window's row (20,000 events, before compression), one site.
    pub row_bytes_one_site: f64,
    /// The same, two sites.
    pub row_bytes_two_sites: f64,
    /// The traffic of one site with a property (`plan`, four values) on every event, kept
    /// (`--property plan`): µs per event to count and encode.
    pub count_us_per_event_one_property: f64,
    /// Its window's row bytes.
    pub row_bytes_one_property: f64,
    /// Memory of a window's aggregate (20,000 events), one site, two sites, one site with
    /// the property ([`Aggregate::memory_bytes`](pulseboard_model::agg::Aggregate::memory_bytes)).
    pub memory_bytes_one_site: f64,
    pub memory_bytes_two_sites: f64,
    pub memory_bytes_one_property: f64,
    /// Decoding alone, ns per event, without a property kept, then keeping `plan`.
    pub decode_ns_per_event: f64,
    pub decode_ns_per_event_one_property: f64,
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
    /// A consumer with the pipeline's configuration, reading every payload (`raw`).
    pub raw_consume_eps: f64,
    /// The bench's own bare consumer loop (the previous `raw_consume_eps`).
    pub raw_consume_eps_bare: f64,
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
    /// (The child's disk writes + its state topic's record bytes) ÷ events, over the
    /// `pipeline_eps_transactional` run; `bytes_written` has the parts.
    pub bytes_written_per_event: Option<f64>,
    pub bytes_written: Option<crate::state_topic::Written>,
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
    /// What several sites cost (step 3b).
    pub sites: SitesCost,
    pub peers: Peers,
    /// `pipeline_eps_transactional` (state topic and transactions on, as users run it with
    /// a broker) / the peer's `eps`.
    pub vs_spark: Option<f64>,
    pub vs_kafka_streams: Option<f64>,
    pub vs_quix: Option<f64>,
    /// `pipeline_eps` (`--no-state-topic`) / the peer's `eps`.
    pub vs_spark_no_state_topic: Option<f64>,
    pub vs_kafka_streams_no_state_topic: Option<f64>,
    pub vs_quix_no_state_topic: Option<f64>,
    /// `pipeline_eps_same_job` / the peer's `eps`: like with like (the peers keep no
    /// segment tables).
    pub vs_spark_same_job: Option<f64>,
    pub vs_kafka_streams_same_job: Option<f64>,
    pub targets: Vec<Target>,
    /// History through the real server at 1,000 events/s of realistic traffic (step 9,
    /// `history`): the medians of the encoded rows of each resolution, bytes.
    pub window_row_bytes: Option<f64>,
    pub minute_row_bytes: Option<f64>,
    pub hour_row_bytes: Option<f64>,
    /// The store at the default ages at that rate, on disk (the formula: `history`).
    pub history_bytes_per_day: Option<f64>,
    /// The state topic's window records per window, every rewrite included, and one
    /// window's last record; over the windows of the live traffic.
    pub state_topic_bytes_per_window: Option<f64>,
    pub state_topic_record_bytes: Option<f64>,
    /// `bytes_written_per_event` of the live traffic (1,000 events/s in real time).
    pub bytes_written_per_event_live: Option<f64>,
    /// What one kiosk's WebSocket receives per second at the demo's rate, 200 events/s
    /// (after its snapshot; bytes on the wire), and during the live traffic at 1,000.
    pub ws_bytes_per_s_kiosk: Option<f64>,
    pub ws_frames_per_s_kiosk: Option<f64>,
    pub ws_bytes_per_s_kiosk_1000: Option<f64>,
    pub rss_peak_mb_history: Option<f64>,
    /// Everything step 9 measured.
    pub history: Option<crate::history::HistoryFigures>,
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
    /// Step 9's figures, and the keys taken from them.
    pub fn set_history(&mut self, f: crate::history::HistoryFigures) {
        let some = |v: f64| Some(v).filter(|v| v.is_finite());
        self.window_row_bytes = some(f.windows.bytes_p50);
        self.minute_row_bytes = some(f.minutes.bytes_p50);
        self.hour_row_bytes = some(f.hours.bytes_p50);
        self.history_bytes_per_day = some(f.history_bytes_per_day);
        let w = &f.state_topic_live_windows;
        self.state_topic_bytes_per_window = some(w.bytes_per_window).filter(|_| w.windows > 0);
        self.state_topic_record_bytes = some(w.last_record_bytes_p50);
        self.bytes_written_per_event_live = some(f.written_live.per_event());
        self.ws_bytes_per_s_kiosk = some(f.kiosk.bytes_per_s);
        self.ws_frames_per_s_kiosk = some(f.kiosk.frames_per_s);
        self.ws_bytes_per_s_kiosk_1000 = some(f.kiosk_busy.bytes_per_s);
        self.rss_peak_mb_history = some(f.rss_peak_mb);
        self.history = Some(f);
    }

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
