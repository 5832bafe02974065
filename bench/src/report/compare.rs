//! What is computed once everything is measured: the CPU bound, the ratios (transactional
//! and storm runs to the pipeline; to each peer, Pulseboard with the state topic, without
//! it, and without segment tables), and the targets.

use super::{PeerReport, Report, Target};

impl Report {
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
        // Pulseboard as users run it with a broker (state topic, transactions), and without
        // the state topic.
        let ratio =
            |ours: f64, p: &PeerReport| p.eps.filter(|e| *e > 0.0 && ours > 0.0).map(|e| ours / e);
        let vs = |p: &PeerReport| ratio(self.pipeline_eps_transactional, p);
        self.vs_spark = vs(&self.peers.spark);
        self.vs_kafka_streams = vs(&self.peers.kafka_streams);
        self.vs_quix = vs(&self.peers.quix);
        let vs = |p: &PeerReport| ratio(self.pipeline_eps, p);
        self.vs_spark_no_state_topic = vs(&self.peers.spark);
        self.vs_kafka_streams_no_state_topic = vs(&self.peers.kafka_streams);
        self.vs_quix_no_state_topic = vs(&self.peers.quix);
        let same = |p: &PeerReport| ratio(self.pipeline_eps_same_job, p);
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
        // A 10 s window row at realistic cardinality, ≤ 10 KB (10,000 bytes).
        t("window_row_bytes", "<=", 10_000.0, r.window_row_bytes),
        t(
            "restore_empty_instance_ms",
            "<=",
            1_000.0,
            Some(r.restore_empty_instance_ms).filter(|ms| *ms > 0.0),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::StormFigures;
    use super::*;

    #[test]
    fn a_missing_peer_has_no_ratio_and_its_target_is_open() {
        let mut r = Report {
            pipeline_eps: 100.0,
            pipeline_eps_transactional: 80.0,
            ..Report::default()
        };
        r.peers.spark.eps = Some(10.0);
        r.finish();
        // The targets are judged on the run with the state topic.
        assert_eq!(r.vs_spark, Some(8.0));
        assert_eq!(r.vs_spark_no_state_topic, Some(10.0));
        assert_eq!(r.vs_kafka_streams, None);
        let spark = r.targets.iter().find(|t| t.metric == "vs_spark");
        assert_eq!(spark.and_then(|t| t.value), Some(8.0));
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
