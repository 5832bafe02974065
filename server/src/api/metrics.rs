//! `GET /metrics`: the process's counters (see `telemetry`) and the figures of the status,
//! the hub and the socket pacer, in the Prometheus text format.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use pulseboard_model::proto;

use crate::api::ws::ConnectPacer;
use crate::hub::Hub;
use crate::progress::Progress;
use crate::telemetry;

/// The registry `/metrics` renders.
pub fn metrics_registry(
    progress: Arc<Progress>,
    hub: Arc<Hub>,
    pacer: Arc<ConnectPacer>,
) -> Registry {
    let mut r = Registry::with_prefix("pulseboard");
    telemetry::register(&mut r);
    r.register_collector(Box::new(StatusCollector {
        progress,
        hub,
        pacer,
    }));
    r
}

/// The figures of the status and the hub, read at each scrape.
struct StatusCollector {
    progress: Arc<Progress>,
    hub: Arc<Hub>,
    pacer: Arc<ConnectPacer>,
}

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusCollector")
    }
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let m = ConstCounter::new(value);
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let m = ConstGauge::new(value);
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for StatusCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.progress.status();
        counter(
            &mut e,
            "events",
            "Events folded into windows",
            s.events_total,
        )?;
        {
            let help = "Messages sent to the dead-letter topic, by reason (stored totals).";
            let mut m = e.encode_descriptor(
                "dead_letters",
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (reason, n) in &s.dead_letters_by_reason {
                let labels = vec![("reason", reason.clone())];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let help = "Custom properties not kept as sent, by reason: not_object (props is not \
                        an object: all dropped), bad_value (an object, an array, an empty string \
                        or a control character: dropped), cut (longer than 256 bytes: cut). \
                        The events are counted either way.";
            let mut m = e.encode_descriptor(
                "props_rejected",
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (reason, n) in self.progress.props_rejected.counts() {
                let labels = vec![("reason", reason.as_str().to_owned())];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "late_events",
            "Events for windows already closed",
            s.late_events_total,
        )?;
        gauge(
            &mut e,
            "events_per_second",
            "Recent ingest rate.",
            s.events_per_sec,
        )?;
        gauge(
            &mut e,
            "broker_reachable",
            "1 when the cluster answered the last metadata probe",
            i64::from(s.broker_reachable),
        )?;
        gauge(
            &mut e,
            "cluster_degraded",
            "1 when brokers holding input replicas are down, or partitions are under-replicated or offline",
            i64::from(s.cluster.degraded),
        )?;
        if let Some(w) = s.watermark {
            gauge(&mut e, "watermark_ms", "Global event-time watermark.", w)?;
        }
        {
            let mut m = e.encode_descriptor(
                "partition_next_offset",
                "Next offset to read, per partition",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for p in &s.partitions {
                let labels = vec![
                    ("topic", p.topic.clone()),
                    ("partition", p.partition.to_string()),
                ];
                ConstGauge::new(p.next_offset).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "partition_lag",
                "Messages behind the high watermark, per partition",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for p in &s.partitions {
                if let Some(lag) = p.lag {
                    let labels = vec![
                        ("topic", p.topic.clone()),
                        ("partition", p.partition.to_string()),
                    ];
                    ConstGauge::new(lag).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let hs = &self.hub.stats;
        gauge(
            &mut e,
            "ws_clients",
            "Connected WebSocket clients",
            hs.clients.load(Ordering::Relaxed) as i64,
        )?;
        counter(
            &mut e,
            "ws_connects",
            "WebSocket connections accepted",
            hs.connects_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "ws_resyncs",
            "Slow clients resynced with a snapshot",
            hs.resyncs_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "ws_messages",
            "Messages published to WebSocket clients",
            hs.messages_total.load(Ordering::Relaxed),
        )?;
        let pc = &self.pacer;
        counter(
            &mut e,
            "ws_connects_waited",
            "WebSocket sessions that waited for their turn under --ws-connect-rate",
            pc.waited_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "ws_connects_refused",
            "WebSocket sessions refused with 503 because their turn was beyond --ws-connect-max-wait",
            pc.refused_total.load(Ordering::Relaxed),
        )?;
        {
            let secs = pc.wait_ms_total.load(Ordering::Relaxed) as f64 / 1000.0;
            let m = ConstCounter::new(secs);
            m.encode(e.encode_descriptor(
                "ws_connect_wait_seconds",
                "Seconds WebSocket sessions waited for their turn, summed",
                None,
                m.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    description = "Prometheus text format (0.0.4).",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "No credential, or a wrong, revoked or expired one.", body = proto::ApiError,
            headers(("www-authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = "Encoding the metrics failed (logged); no body."),
    )
)]
pub(crate) async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    let mut out = String::new();
    match prometheus_text::encode(&mut out, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding the metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
