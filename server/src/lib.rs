//! Pulseboard: a live clickstream dashboard on Kafka.
//!
//! [`run`] wires the parts together: Kafka ingest → per-partition engine (event-time
//! windows) → sled store, with the live state and the HTTP layer reading what the engine
//! publishes.
//!
//! # Layout
//! - [`config`]: command line and environment, validated into [`config::Settings`].
//! - [`ingest`]: the Kafka consumer group, partition tasks, dead letters, commits.
//! - [`engine`]: per-partition decode, windowing, counters and checkpoints (no Kafka types).
//! - [`store`]: the sled layout, atomic checkpoints, range reads, retention.
//! - [`live`]: published progress: offsets, lag, watermark, window states, throughput.
//! - [`hub`]: recent windows merged across partitions; the sequenced stream of changes.
//! - [`ws`]: the WebSocket `/ws`, one client fed from the hub.
//! - [`http`]: routes: JSON API, health, readiness, metrics, the frontend's files.
//! - [`demo`]: the embedded Kafka and the demo traffic generator.
//! - [`collect`]: `POST /collect`, events over HTTP into Kafka.

pub mod collect;
pub mod config;
pub mod demo;
pub mod engine;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod kafka;
pub mod live;
pub mod store;
pub mod ws;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pulseboard_model::event::Decoder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::live::Live;
use crate::store::{Store, StoreError};

/// Errors that stop Pulseboard.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// Run Pulseboard until `shutdown` is cancelled or a part fails. Every task checkpoints and
/// returns before this does.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let store = Store::open(&settings.data_dir, settings.windows.width_ms)?;
    let dead_letter_topics: HashMap<String, String> = settings
        .topics
        .iter()
        .map(|t| (t.clone(), settings.dead_letter_topic_for(t)))
        .collect();

    // Embedded default: an in-process Kafka with demo traffic.
    let embedded = match &settings.brokers {
        Some(_) => None,
        None => {
            let mut topics: Vec<(String, i32)> = settings
                .topics
                .iter()
                .map(|t| (t.clone(), settings.embedded_partitions))
                .collect();
            for d in dead_letter_topics.values() {
                if !topics.iter().any(|(t, _)| t == d) {
                    topics.push((d.clone(), 1));
                }
            }
            let kafka = demo::EmbeddedKafka::start(&topics)?;
            // The embedded broker starts empty every time: stored offsets refer to a log that
            // is gone. Windows stay; reading starts at the new log's beginning.
            for (topic, partition, _) in store.partitions()? {
                if settings.topics.contains(&topic) {
                    store.forget_partition(&topic, partition)?;
                }
            }
            tracing::info!(bootstrap = kafka.bootstrap(), "embedded Kafka started");
            println!(
                "Embedded Kafka at {} (topics: {}); produce events there, e.g. with any Kafka client.",
                kafka.bootstrap(),
                settings.topics.join(",")
            );
            Some(kafka)
        }
    };
    let brokers = settings
        .brokers
        .clone()
        .or_else(|| embedded.as_ref().map(|k| k.bootstrap().to_owned()))
        .unwrap_or_default();
    let broker_label = if embedded.is_some() {
        "embedded".to_owned()
    } else {
        brokers.clone()
    };

    let live = Arc::new(Live::new(
        broker_label,
        embedded.is_some(),
        settings.windows.width_ms,
        settings.idle_timeout,
    ));
    for (topic, partition, cp) in store.partitions()? {
        let wm = cp.max_event_ts.map(|m| m - settings.windows.lateness_ms);
        live.restore_partition(&topic, partition, cp, wm);
    }

    let hub = hub::Hub::new(
        hub::HubConfig::new(settings.windows.width_ms),
        live.clone(),
        Some(store.clone()),
    );
    hub.seed(&store, now_ms())?;

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(hub.clone().run_publisher(shutdown.child_token()));
    let ingest_done = CancellationToken::new();
    let ingest = {
        let params = ingest::IngestParams {
            brokers: brokers.clone(),
            group: settings.group.clone(),
            topics: settings.topics.clone(),
            dead_letter_topics,
            windows: settings.windows,
            checkpoint_interval: settings.checkpoint_interval,
            kafka_options: settings.kafka_options.clone(),
            store: store.clone(),
            live: live.clone(),
            hub: hub.clone(),
            decoder: Arc::new(Decoder::new(settings.mapping.clone())),
            embedded: embedded.is_some(),
            offset_reset: settings.offset_reset,
        };
        let token = shutdown.child_token();
        let done = ingest_done.clone();
        tokio::spawn(async move {
            let r = ingest::run(params, token).await;
            done.cancel();
            r
        })
    };

    if embedded.is_some() {
        if let Some(topic) = settings.topics.first() {
            let generator = demo::run_generator(
                brokers.clone(),
                topic.clone(),
                settings.demo_rate,
                shutdown.child_token(),
            );
            tasks.spawn(async move {
                if let Err(e) = generator.await {
                    tracing::error!(error = %e, "demo generator stopped");
                }
            });
        }
    }
    tasks.spawn(ticker(
        store.clone(),
        live.clone(),
        settings.retention_ms,
        shutdown.child_token(),
    ));

    let app = http::router(http::AppState {
        store: store.clone(),
        live: live.clone(),
        hub: hub.clone(),
        window_ms: settings.windows.width_ms,
        static_dir: settings.static_dir.clone(),
        shutdown: shutdown.clone(),
        security: http::Security {
            token: settings.token.as_deref().map(Arc::from),
            frame_ancestors: Arc::from(settings.frame_ancestors.as_str()),
        },
        collector: settings.topics.first().and_then(|t| {
            match collect::Collector::new(&brokers, t) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "POST /collect disabled: cannot create a producer");
                    None
                }
            }
        }),
    });
    let http_stop = shutdown.clone();
    let ingest_stopped = ingest_done.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        tokio::select! {
            _ = http_stop.cancelled() => {}
            _ = ingest_stopped.cancelled() => {}
        }
    });
    let served = server.await.map_err(RunError::Http);

    // Whatever ended the server, stop everything and let each part flush.
    shutdown.cancel();
    let ingested = match ingest.await {
        Ok(r) => r.map_err(RunError::from),
        Err(e) => {
            tracing::error!(error = %e, "ingest task panicked");
            Ok(())
        }
    };
    while tasks.join_next().await.is_some() {}
    store.flush()?;
    if let Some(k) = embedded {
        tokio::task::spawn_blocking(move || k.stop()).await.ok();
    }
    ingested?;
    served
}

/// Wall-clock time in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Once a second: throughput sample. Once a minute: retention.
async fn ticker(store: Store, live: Arc<Live>, retention_ms: i64, shutdown: CancellationToken) {
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = second.tick() => {
                live.sample_rate();
                n += 1;
                if n % 60 == 1 {
                    if let Some(wm) = live.watermark() {
                        let before = wm - retention_ms;
                        let s = store.clone();
                        match tokio::task::spawn_blocking(move || s.delete_windows_before(before)).await {
                            Ok(Ok(0)) => {}
                            Ok(Ok(n)) => tracing::info!(deleted = n, before, "retention removed old windows"),
                            Ok(Err(e)) => tracing::warn!(error = %e, "retention failed"),
                            Err(e) => tracing::warn!(error = %e, "retention task failed"),
                        }
                        live.forget_before(before);
                    }
                }
            }
        }
    }
}
