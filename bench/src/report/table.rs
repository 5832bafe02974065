//! The printed table: one row per measured number under its JSON name (`n/a` when not
//! measured), each target's threshold and whether it was met, then the peers' versions,
//! the broker and the machine.

use std::collections::HashMap;

use super::{PeerReport, Report, StormFigures, Target};

/// Pulseboard's job in `pipeline_eps_transactional`, beside the peers' (`PeerReport::job`).
const PULSEBOARD_JOB: &str = "10 s tumbling event-time windows, 5 s lateness, per partition: \
events, counts by type, distinct visitors and sessions (HyperLogLog), top URLs, referrers, \
countries and devices, segment tables (country, device, type, referrer); strict decoding with \
dead letters; every 1 s a checkpoint in one Kafka transaction (window and progress records to \
the state topic, the group's offsets) and in sled; the state topic's reader, the live hub and \
the HTTP server beside";

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

/// A peer's rows; `vs` is its ratio with the state topic and without it.
fn peer_rows(key: &str, p: &PeerReport, vs: [Option<f64>; 2]) -> Vec<(String, String)> {
    let count = |v: Option<u64>| v.map_or("n/a".into(), |v| group_thousands(v as i64));
    let heap = p.jvm_flags.as_ref().map_or_else(
        || "n/a".to_owned(),
        |f| {
            let heap: Vec<&str> = f
                .iter()
                .map(String::as_str)
                .filter(|f| f.starts_with("-Xm"))
                .collect();
            heap.join(" ")
        },
    );
    vec![
        (format!("{key}.events"), count(p.events)),
        (
            format!("{key}.share (of the topic)"),
            opt(p.share, |v| format!("{:.0} %", v * 100.0)),
        ),
        (format!("{key}.jvm_flags (heap)"), heap),
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
        (format!("vs_{key}"), opt(vs[0], one_decimal)),
        (format!("vs_{key}_no_state_topic"), opt(vs[1], one_decimal)),
    ]
}

/// Step 9's rows (history through the server, the live traffic and its kiosk).
fn history_rows(r: &Report) -> Vec<(String, String)> {
    let bytes = |v: Option<f64>| opt(v, int);
    let h = r.history.as_ref();
    let rows_of = |f: fn(&crate::history::HistoryFigures) -> &crate::history::Rows| {
        h.map_or("n/a".into(), |h| {
            let rows = f(h);
            format!("{} rows, {:.1} MB/day", rows.rows, rows.bytes_per_day / 1e6)
        })
    };
    vec![
        ("window_row_bytes".to_owned(), bytes(r.window_row_bytes)),
        ("  windows".to_owned(), rows_of(|h| &h.windows)),
        ("minute_row_bytes".to_owned(), bytes(r.minute_row_bytes)),
        ("  minute buckets".to_owned(), rows_of(|h| &h.minutes)),
        ("hour_row_bytes".to_owned(), bytes(r.hour_row_bytes)),
        ("  hour buckets".to_owned(), rows_of(|h| &h.hours)),
        (
            "history: on disk ÷ encoded rows".to_owned(),
            opt(h.map(|h| h.overhead), |v| format!("{v:.2}")),
        ),
        (
            "history_bytes_per_day (GB)".to_owned(),
            opt(r.history_bytes_per_day, |v| format!("{:.2}", v / 1e9)),
        ),
        (
            "state_topic_bytes_per_window".to_owned(),
            bytes(r.state_topic_bytes_per_window),
        ),
        (
            "  records per window".to_owned(),
            opt(
                h.map(|h| h.state_topic_live_windows.records_per_window),
                one_decimal,
            ),
        ),
        (
            "state_topic_record_bytes".to_owned(),
            bytes(r.state_topic_record_bytes),
        ),
        (
            "bytes_written_per_event_live".to_owned(),
            opt(r.bytes_written_per_event_live, one_decimal),
        ),
        (
            "ws_bytes_per_s_kiosk".to_owned(),
            bytes(r.ws_bytes_per_s_kiosk),
        ),
        (
            "ws_frames_per_s_kiosk".to_owned(),
            opt(r.ws_frames_per_s_kiosk, one_decimal),
        ),
        (
            "ws_bytes_per_s_kiosk_1000".to_owned(),
            bytes(r.ws_bytes_per_s_kiosk_1000),
        ),
        (
            "rss_peak_mb_history".to_owned(),
            opt(r.rss_peak_mb_history, one_decimal),
        ),
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
        ("raw_consume_eps_bare", int(r.raw_consume_eps_bare)),
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
            "bytes_written_per_event",
            opt(r.bytes_written_per_event, one_decimal),
        ),
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
            "sites: count µs/event, row bytes (1 → 2 sites)",
            format!(
                "{:.2} → {:.2}, {} → {}",
                r.sites.count_us_per_event_one_site,
                r.sites.count_us_per_event_two_sites,
                int(r.sites.row_bytes_one_site),
                int(r.sites.row_bytes_two_sites)
            ),
        ),
        (
            "window memory bytes (1 site → 2 sites; 1 site → with plan)",
            format!(
                "{} → {}; {} → {}",
                int(r.sites.memory_bytes_one_site),
                int(r.sites.memory_bytes_two_sites),
                int(r.sites.memory_bytes_one_site),
                int(r.sites.memory_bytes_one_property)
            ),
        ),
        (
            "property: count µs/event, row bytes, decode ns/event (none → plan)",
            format!(
                "{:.2} → {:.2}, {} → {}, {:.0} → {:.0}",
                r.sites.count_us_per_event_one_site,
                r.sites.count_us_per_event_one_property,
                int(r.sites.row_bytes_one_site),
                int(r.sites.row_bytes_one_property),
                r.sites.decode_ns_per_event,
                r.sites.decode_ns_per_event_one_property
            ),
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
    rows.extend(history_rows(r));
    rows.extend(peer_rows(
        "spark",
        &r.peers.spark,
        [r.vs_spark, r.vs_spark_no_state_topic],
    ));
    rows.extend(peer_rows(
        "kafka_streams",
        &r.peers.kafka_streams,
        [r.vs_kafka_streams, r.vs_kafka_streams_no_state_topic],
    ));
    rows.extend(peer_rows(
        "quix",
        &r.peers.quix,
        [r.vs_quix, r.vs_quix_no_state_topic],
    ));
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
    println!(
        "The jobs compared (vs_* = Pulseboard's pipeline_eps_transactional ÷ the peer's eps):"
    );
    println!("  pulseboard: {PULSEBOARD_JOB}");
    for (key, p) in [
        ("spark", &r.peers.spark),
        ("kafka_streams", &r.peers.kafka_streams),
        ("quix", &r.peers.quix),
    ] {
        println!("  {key}: {}", p.job);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(-1_000), "-1,000");
    }
}
