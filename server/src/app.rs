//! The composition root, wiring and supervision: [`run`] opens the store, starts the
//! embedded broker when no `--brokers` is given, loads what the store knows into the
//! published progress and the hub, and runs the parts as tasks of one `JoinSet`: ingest,
//! the hub's publisher, the HTTP server (HTTPS with `--tls-cert`, and then the task that
//! reloads the certificate), the throughput meter, retention, alerts and (embedded) the
//! demo generator; the demo history is generated off the runtime.
//!
//! Contract:
//! - A task that fails or panics is noticed at once (the set is polled in the supervisor's
//!   `select!`), logged, and stops everything: `run` returns an error, so the process never
//!   exits 0 after a failure. A task that ends early without being asked is a failure too.
//! - On shutdown every task is cancelled and awaited at most [`SHUTDOWN_TIMEOUT`]; ingest
//!   writes its last checkpoint before it returns; then the store is flushed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::hub::{Hub, HubConfig};
use crate::progress::Progress;
use crate::query::retention;
use crate::site::collect;
use crate::store::{OwnerRecord, Source, Store, StoreError};
use crate::{api as http, demo, ingest, now_ms};
use pulseboard_model::proto::InstanceRef;

/// How long the tasks have to stop once shutdown begins.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors that stop Pulseboard.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error(transparent)]
    Tls(#[from] http::tls::TlsError),
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    #[error("the {task} task panicked: {message}")]
    Panicked { task: &'static str, message: String },
    #[error("the {task} task stopped without being asked to")]
    Stopped { task: &'static str },
    #[error("{tasks} did not stop within {SHUTDOWN_TIMEOUT:?} of shutdown")]
    ShutdownTimeout { tasks: String },
}

type TaskResult = Result<(), RunError>;

/// The tasks of one run, by name.
struct Tasks {
    set: JoinSet<TaskResult>,
    names: HashMap<Id, &'static str>,
}

impl Tasks {
    fn new() -> Self {
        Tasks {
            set: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    fn spawn(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = TaskResult> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// The next task to end, as a result naming it.
    async fn next(&mut self) -> Option<(&'static str, TaskResult)> {
        let joined = self.set.join_next_with_id().await?;
        Some(match joined {
            Ok((id, r)) => (self.names.remove(&id).unwrap_or("unnamed"), r),
            Err(e) => {
                let task = self.names.remove(&e.id()).unwrap_or("unnamed");
                let message = if e.is_panic() {
                    crate::telemetry::panic_message(e.into_panic().as_ref())
                } else {
                    "cancelled".to_owned()
                };
                (task, Err(RunError::Panicked { task, message }))
            }
        })
    }
}

/// Check that the store was filled from what this run reads (see `store::source`): the
/// embedded demo, or the cluster (its id, asked of the brokers for up to 10 s) and topics.
/// A cluster that does not answer in time leaves the check to the next start (logged).
async fn claim_source(config: &Config, store: &Store, dir: &str) -> Result<(), StoreError> {
    let source = match &config.kafka.brokers {
        None => Source::EmbeddedDemo,
        Some(brokers) => {
            let brokers = brokers.clone();
            let id = tokio::task::spawn_blocking(move || {
                use rdkafka::consumer::Consumer;
                let consumer: rdkafka::consumer::BaseConsumer =
                    crate::ingest::client::client_config(&brokers)
                        .create()
                        .ok()?;
                consumer
                    .client()
                    .fetch_cluster_id(std::time::Duration::from_secs(10))
            })
            .await
            .ok()
            .flatten();
            match id {
                Some(id) => Source::cluster(&id, &config.kafka.topics),
                None => {
                    tracing::warn!(
                        "the cluster did not say its id within 10 s: which source this store holds is checked at the next start"
                    );
                    return Ok(());
                }
            }
        }
    };
    store.claim_source(&source, dir)
}

/// Run Pulseboard until `shutdown` is cancelled or a part fails. Every task checkpoints and
/// returns (or is given up on after [`SHUTDOWN_TIMEOUT`]) before this does.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let windows = config.windows.config();
    // A certificate that cannot serve stops the start before anything else is opened.
    let certificates = match config.tls.files() {
        Some((cert, key)) => Some(http::tls::Certificates::load(cert, key)?),
        None => None,
    };
    let data_dir = config.store.data_dir(config.embedded());
    let store = Store::open(&data_dir, windows.width_ms)?;
    claim_source(&config, &store, &data_dir.display().to_string()).await?;

    // Embedded default: an in-process Kafka with demo traffic.
    let embedded = if config.embedded() {
        Some(demo::start_embedded(&config, &store)?)
    } else {
        None
    };
    let brokers = match (&config.kafka.brokers, &embedded) {
        (Some(b), _) => b.clone(),
        (None, Some(k)) => k.bootstrap().to_owned(),
        (None, None) => String::new(),
    };
    let broker_label = if embedded.is_some() {
        "embedded".to_owned()
    } else {
        brokers.clone()
    };

    let progress = Arc::new(Progress::new(
        broker_label,
        embedded.is_some(),
        windows.width_ms,
        config.windows.idle_timeout,
    ));
    let state_topic = config.kafka.state_topic();
    let me = InstanceRef {
        id: store.instance_id()?,
        url: config.http.advertised_url.clone().unwrap_or_else(|| {
            listener
                .local_addr()
                .map(|a| {
                    let scheme = if config.tls.enabled() {
                        "https"
                    } else {
                        "http"
                    };
                    format!("{scheme}://{a}")
                })
                .unwrap_or_default()
        }),
    };
    progress.set_identity(me.clone(), state_topic.clone());
    let owners: HashMap<(String, i32), OwnerRecord> = store
        .owners()?
        .into_iter()
        .map(|(t, p, o)| ((t, p), o))
        .collect();
    for (topic, partition, cp) in store.partitions()? {
        let wm = cp.max_event_ts.map(|m| m - windows.lateness_ms);
        if state_topic.is_some() {
            // Every partition the store knows is in view, whoever reads it now.
            let owner = owners.get(&(topic.clone(), partition)).cloned();
            progress.restore_remote(&topic, partition, (&cp).into(), wm, owner);
        } else {
            progress.restore_partition(&topic, partition, (&cp).into(), wm);
        }
    }
    progress.mark_revised(store.revised_from(i64::MIN)?);
    let hub = Hub::new(
        HubConfig {
            goals: config.aggregate.goals.clone().into(),
            ..HubConfig::from_args(windows.width_ms, &config.hub)
        },
        progress.clone(),
        Some(store.clone()),
    );
    hub.seed(&store, now_ms())?;

    let committer = Arc::new(std::sync::OnceLock::new());
    // Embedded: generated history a day and a week back, off the runtime, once; the
    // shutdown waits for it (it stops between slices) before the store is closed.
    let demo_history = match (
        &embedded,
        config.kafka.topics.first(),
        config.demo.no_demo_history,
        config.demo.demo_rate,
    ) {
        (Some(_), Some(topic), false, 1..) => {
            let (store, topic) = (store.clone(), topic.clone());
            let (parts, rate, width) = (
                config.demo.embedded_partitions,
                config.demo.demo_rate,
                windows.width_ms,
            );
            let spec = config.aggregate.spec();
            let token = shutdown.child_token();
            Some(tokio::task::spawn_blocking(move || {
                let stop = || token.is_cancelled();
                let demo = crate::demo::history::DemoTraffic {
                    topic: &topic,
                    partitions: parts,
                    rate,
                    window_ms: width,
                    spec: &spec,
                };
                let seeded = crate::demo::history::seed(&store, &demo, now_ms(), &stop);
                match seeded {
                    Ok(n) => {
                        tracing::info!(events = n, "demo history generated (a day and a week back)")
                    }
                    Err(e) => tracing::warn!(error = %e, "demo history not generated"),
                }
            }))
        }
        _ => None,
    };

    let mut tasks = Tasks::new();
    {
        let (hub, token) = (hub.clone(), shutdown.child_token());
        tasks.spawn("hub", async move {
            hub.run_publisher(token).await;
            Ok(())
        });
    }
    {
        let params = ingest::IngestParams {
            kafka: config.kafka.clone(),
            brokers: brokers.clone(),
            embedded: embedded.is_some(),
            engine: ingest::engine::EngineConfig::of(&config),
            checkpoint_interval: config.store.checkpoint_interval,
            store: store.clone(),
            progress: progress.clone(),
            hub: hub.clone(),
            me,
            committer: committer.clone(),
            properties: config.aggregate.property_keys(),
        };
        let token = shutdown.child_token();
        tasks.spawn(
            "ingest",
            async move { Ok(ingest::run(params, token).await?) },
        );
    }
    if let (Some(_), Some(topic), 1..) = (
        &embedded,
        config.kafka.topics.first(),
        config.demo.demo_rate,
    ) {
        let generator = demo::run_generator(
            brokers.clone(),
            topic.clone(),
            config.demo.demo_rate,
            shutdown.child_token(),
        );
        tasks.spawn("demo generator", async move { Ok(generator.await?) });
    }
    {
        let (progress, token) = (progress.clone(), shutdown.child_token());
        tasks.spawn("throughput meter", async move {
            progress.run_rate_meter(token).await;
            Ok(())
        });
    }
    tasks.spawn(
        "retention",
        retention_task(
            retention::Retention {
                store: store.clone(),
                progress: progress.clone(),
                ages: config.store.ages(),
                state: state_topic.map(|_| retention::StateTopicRetention {
                    committer: committer.clone(),
                }),
            },
            config.store.retention_interval,
            shutdown.child_token(),
        ),
    );
    let alerts = crate::insight::alerts::Alerts::new(windows.width_ms, now_ms());
    {
        let source = match (&config.alerts.file, &embedded) {
            (Some(f), _) => crate::insight::alerts::RuleSource::File(f.clone()),
            (None, Some(_)) => crate::insight::alerts::RuleSource::Builtin(
                crate::insight::alerts::demo_rules(config.demo.demo_rate, windows.width_ms),
            ),
            (None, None) => crate::insight::alerts::RuleSource::None,
        };
        let cfg = crate::insight::alerts::AlertsConfig {
            source,
            interval: config.alerts.alerts_interval,
            window_ms: windows.width_ms,
            backoff: Duration::from_secs(1),
        };
        let run = crate::insight::alerts::run(
            alerts.clone(),
            cfg,
            store.clone(),
            hub.clone(),
            progress.clone(),
            shutdown.child_token(),
        );
        tasks.spawn("alerts", async move {
            run.await;
            Ok(())
        });
    }
    let collect = config.kafka.topics.first().and_then(|t| {
        collect::CollectProducer::new(&brokers, t)
            .map_err(
                |e| tracing::warn!(error = %e, "POST /collect disabled: cannot create a producer"),
            )
            .ok()
    });
    let app = http::router(
        http::AppState::new(
            &config,
            store.clone(),
            progress.clone(),
            hub.clone(),
            collect,
            shutdown.clone(),
        )
        .with_alerts(alerts),
    );
    if let Some(certificates) = &certificates {
        let (certificates, token) = (certificates.clone(), shutdown.child_token());
        tasks.spawn("tls reload", async move {
            certificates.watch(http::tls::RELOAD_INTERVAL, token).await;
            Ok(())
        });
    }
    {
        let token = shutdown.clone();
        tasks.spawn("http", async move {
            // The peer address reaches handlers (the per-client rate limit of `/collect`).
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let stop = async move { token.cancelled().await };
            match certificates {
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await
                }
                Some(certificates) => {
                    let listener = http::tls::TlsListener::new(listener, certificates);
                    axum::serve(listener.with_connect_info(), app)
                        .with_graceful_shutdown(stop)
                        .await
                }
            }
            .map_err(RunError::Http)
        });
    }

    // Supervise: the first failure (or an early end) stops everything.
    let mut outcome: Result<(), RunError> = Ok(());
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => {}
        next = tasks.next() => match next {
            Some((task, Err(e))) => {
                tracing::error!(task, error = %e, "a task failed; stopping");
                outcome = Err(e);
            }
            Some((task, Ok(()))) if !shutdown.is_cancelled() => {
                tracing::error!(task, "a task stopped without being asked to; stopping");
                outcome = Err(RunError::Stopped { task });
            }
            _ => {}
        },
    }

    // Whatever ended the run, stop everything and let each part flush, within a bound.
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        while let Some((task, r)) = tasks.next().await {
            if let Err(e) = r {
                tracing::error!(task, error = %e, "task failed while stopping");
                if outcome.is_ok() {
                    outcome = Err(e);
                }
            }
        }
    })
    .await;
    if drained.is_err() {
        let left: Vec<&str> = tasks.names.values().copied().collect();
        tasks.set.abort_all();
        let e = RunError::ShutdownTimeout {
            tasks: left.join(", "),
        };
        tracing::error!(error = %e, "giving up on the tasks still running");
        if outcome.is_ok() {
            outcome = Err(e);
        }
    }
    if let Some(seeding) = demo_history {
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, seeding)
            .await
            .is_err()
        {
            tracing::warn!("the demo history did not stop within the shutdown bound");
        }
    }
    store.flush()?;
    if let Some(k) = embedded {
        tokio::task::spawn_blocking(move || k.stop()).await.ok();
    }
    outcome
}

async fn retention_task(
    retention: retention::Retention,
    every: Duration,
    shutdown: CancellationToken,
) -> TaskResult {
    retention.run(every, shutdown).await;
    Ok(())
}
