//! The embedded default: an in-process Kafka (librdkafka's mock cluster, which speaks the
//! Kafka protocol on loopback) and a generator of realistic demo traffic producing into it.
//!
//! Contract:
//! - [`EmbeddedKafka::start`] creates the topics and returns once the bootstrap address is
//!   known; anyone can produce to that address while Pulseboard runs. The cluster lives on a
//!   thread of its own (the mock handle is not `Send`) until [`EmbeddedKafka::stop`] or drop.
//! - [`run_generator`] produces `rate` events per second, paced by wall-clock time, with the
//!   generator's mix of out-of-order, late and malformed messages, keyed by visitor; and the
//!   demo's traffic spike ([`pulseboard_model::gen::Spike::DEMO`]: 90 s after start, then
//!   every 10 minutes, a minute swelling to 5× the rate), so that a newcomer sees alerts and
//!   conversions (the signups the demo goal counts) on the first run.

pub mod history;

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use pulseboard_model::gen::{GenConfig, Generator};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, KafkaArgs};
use crate::now_ms;
use crate::store::{Store, StoreError};

/// Errors of the embedded mode.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the embedded Kafka: {0}")]
    Mock(#[source] KafkaError),
    #[error("the embedded Kafka thread stopped before it was ready")]
    Gone,
    #[error("cannot create the demo producer: {0}")]
    Producer(#[source] KafkaError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Embedded mode: start the in-process Kafka with the input topics (`--embedded-partitions`
/// each) and their dead-letter topics, and forget the stored offsets of the input topics
/// (the embedded broker starts empty every time, so they refer to a log that is gone;
/// windows stay, reading starts at the new log's beginning). Prints the bootstrap address.
pub fn start_embedded(config: &Config, store: &Store) -> Result<EmbeddedKafka, DemoError> {
    let kafka_args: &KafkaArgs = &config.kafka;
    let mut topics: Vec<(String, i32)> = kafka_args
        .topics
        .iter()
        .map(|t| (t.clone(), config.demo.embedded_partitions))
        .collect();
    for t in &kafka_args.topics {
        let d = kafka_args.dead_letter_topic_for(t);
        if !topics.iter().any(|(x, _)| *x == d) {
            topics.push((d, 1));
        }
    }
    let kafka = EmbeddedKafka::start(&topics)?;
    for (topic, partition, _) in store.partitions()? {
        if kafka_args.topics.contains(&topic) {
            store.forget_partition(&topic, partition)?;
        }
    }
    tracing::info!(bootstrap = kafka.bootstrap(), "embedded Kafka started");
    println!(
        "Embedded Kafka at {} (topics: {}); produce events there, e.g. with any Kafka client.",
        kafka.bootstrap(),
        kafka_args.topics.join(",")
    );
    Ok(kafka)
}

/// Commands for the thread that owns the mock cluster.
enum MockCmd {
    Stop,
    BrokerDown(std_mpsc::Sender<Result<(), KafkaError>>),
    BrokerUp(std_mpsc::Sender<Result<(), KafkaError>>),
}

/// An in-process Kafka cluster of one broker.
pub struct EmbeddedKafka {
    bootstrap: String,
    cmds: std_mpsc::Sender<MockCmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedKafka {
    /// Start the cluster and create `topics` with `partitions` partitions each.
    pub fn start(topics: &[(String, i32)]) -> Result<Self, DemoError> {
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (cmd_tx, cmd_rx) = std_mpsc::channel();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                let mock = match MockCluster::new(1) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for (t, p) in &topics {
                    if let Err(e) = mock.create_topic(t, *p, 1) {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(mock.bootstrap_servers()));
                while let Ok(cmd) = cmd_rx.recv() {
                    match cmd {
                        MockCmd::Stop => break,
                        MockCmd::BrokerDown(reply) => {
                            let _ = reply.send(mock.broker_down(1));
                        }
                        MockCmd::BrokerUp(reply) => {
                            let _ = reply.send(mock.broker_up(1));
                        }
                    }
                }
            })
            .map_err(|_| DemoError::Gone)?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| DemoError::Gone)?
            .map_err(DemoError::Mock)?;
        Ok(EmbeddedKafka {
            bootstrap,
            cmds: cmd_tx,
            thread: Some(thread),
        })
    }

    /// The bootstrap address (`127.0.0.1:PORT`).
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn call(
        &self,
        make: fn(std_mpsc::Sender<Result<(), KafkaError>>) -> MockCmd,
    ) -> Result<(), DemoError> {
        let (tx, rx) = std_mpsc::channel();
        self.cmds.send(make(tx)).map_err(|_| DemoError::Gone)?;
        rx.recv()
            .map_err(|_| DemoError::Gone)?
            .map_err(DemoError::Mock)
    }

    /// Take the broker down (fault injection).
    pub fn broker_down(&self) -> Result<(), DemoError> {
        self.call(MockCmd::BrokerDown)
    }

    /// Bring the broker back.
    pub fn broker_up(&self) -> Result<(), DemoError> {
        self.call(MockCmd::BrokerUp)
    }

    /// Stop the cluster and wait for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.cmds.send(MockCmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Produce demo traffic into `topic` at `rate` events/s until `shutdown`.
pub async fn run_generator(
    bootstrap: String,
    topic: String,
    rate: u32,
    shutdown: CancellationToken,
) -> Result<(), DemoError> {
    if rate == 0 {
        return Ok(());
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "20")
        .set("log_level", "4")
        .create()
        .map_err(DemoError::Producer)?;
    // The traffic starts now: none of it before (see `GenConfig::not_before`).
    let started = now_ms();
    let mut gen = Generator::new(
        started as u64,
        GenConfig {
            not_before: Some(started),
            ..GenConfig::demo()
        },
    );
    let tick = Duration::from_millis(50);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let per_tick = rate as f64 * tick.as_secs_f64();
    let mut owed = 0.0f64;
    let mut produced: u64 = 0;
    tracing::info!(topic, rate, "demo generator started");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {
                owed += per_tick * gen.rate_factor(now_ms());
                while owed >= 1.0 {
                    owed -= 1.0;
                    let (payload, event) = gen.next_payload(now_ms());
                    let key = event.map(|e| e.visitor).unwrap_or_default();
                    let record = BaseRecord::to(&topic).key(key.as_bytes()).payload(&payload);
                    match producer.send(record) {
                        Ok(()) => produced += 1,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            // Falling behind: drop this tick's rest rather than grow memory.
                            owed = 0.0;
                            break;
                        }
                        Err((e, _)) => {
                            tracing::warn!(error = %e, "demo event not produced");
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    tracing::info!(produced, "demo generator stopped");
    Ok(())
}
