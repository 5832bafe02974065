//! Clients of a running cluster: topic creation (with configs, or on chosen brokers) and
//! deletion, each waiting until the cluster shows it; an idempotent producer.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

/// Create a topic with `partitions` partitions and replication factor `replication`.
pub async fn create_topic(
    brokers: &str,
    name: &str,
    partitions: i32,
    replication: i32,
) -> Result<()> {
    create_topic_with(brokers, name, partitions, replication, &[]).await
}

/// Create a topic with extra topic configs (e.g. `cleanup.policy=compact`).
pub async fn create_topic_with(
    brokers: &str,
    name: &str,
    partitions: i32,
    replication: i32,
    config: &[(&str, &str)],
) -> Result<()> {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for (k, v) in config {
        topic = topic.set(k, v);
    }
    create(brokers, &topic).await
}

/// Create a topic whose partitions live on the given brokers: `replicas[p]` lists the node
/// ids of partition `p`'s replicas (for tests that take one broker's topics away).
pub async fn create_topic_assigned(brokers: &str, name: &str, replicas: &[&[i32]]) -> Result<()> {
    let topic = NewTopic::new(
        name,
        replicas.len() as i32,
        TopicReplication::Variable(replicas),
    );
    create(brokers, &topic).await
}

/// Delete a topic (and wait until the cluster no longer lists it).
pub async fn delete_topic(brokers: &str, name: &str) -> Result<()> {
    let (admin, opts) = admin(brokers)?;
    for r in admin.delete_topics(&[name], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, e)) => bail!("deleting topic {t}: {e}"),
        }
    }
    let deleted = name.to_owned();
    poll_metadata(
        brokers,
        None,
        Duration::from_millis(100),
        move |m| m.topics().iter().all(|t| t.name() != deleted),
        format!("topic {name} still listed 60 s after its deletion"),
    )
    .await
}

/// An admin client of `brokers`, and the options of its calls (30 s per operation).
fn admin(brokers: &str) -> Result<(AdminClient<DefaultClientContext>, AdminOptions)> {
    let admin = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    Ok((admin, opts))
}

/// Create `topic`, then wait until each of its partitions has a leader.
async fn create(brokers: &str, topic: &NewTopic<'_>) -> Result<()> {
    let (admin, opts) = admin(brokers)?;
    for r in admin
        .create_topics([topic], &opts)
        .await
        .context("create_topics")?
    {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    wait_for_leaders(brokers, topic.name, topic.num_partitions).await
}

/// Wait until every partition of `topic` has a leader.
async fn wait_for_leaders(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let name = topic.to_owned();
    poll_metadata(
        brokers,
        Some(topic),
        Duration::from_millis(50),
        move |m| {
            m.topics().iter().any(|t| {
                t.name() == name
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            })
        },
        format!("topic {topic} has no leader for every partition after 60 s"),
    )
    .await
}

/// Fetch the metadata of `topic` (of every topic with `None`) every `every` until `done`
/// says yes, for at most 60 s; then fail with `late`.
async fn poll_metadata(
    brokers: &str,
    topic: Option<&str>,
    every: Duration,
    done: impl Fn(&Metadata) -> bool + Send + 'static,
    late: String,
) -> Result<()> {
    let brokers = brokers.to_owned();
    let topic = topic.map(str::to_owned);
    tokio::task::spawn_blocking(move || -> Result<()> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("log_level", "0")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .fetch_metadata(topic.as_deref(), Duration::from_secs(2))
                .map(|m| done(&m))
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{late}");
            }
            std::thread::sleep(every);
        }
    })
    .await?
}

/// An idempotent producer that waits for all in-sync replicas: a broker failing under it
/// neither loses nor duplicates a message.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .set("log_level", "3")
        .create()?)
}

/// Produce `(partition, payload)` pairs and wait for every delivery.
pub async fn produce(p: &FutureProducer, topic: &str, msgs: &[(i32, Vec<u8>)]) -> Result<()> {
    let mut futs = Vec::with_capacity(msgs.len());
    for (part, payload) in msgs {
        let mut rec: FutureRecord<'_, (), [u8]> =
            FutureRecord::to(topic).partition(*part).payload(payload);
        loop {
            match p.send_result(rec) {
                Ok(f) => {
                    futs.push(f);
                    break;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => bail!("enqueue failed: {e}"),
            }
        }
    }
    for f in futs {
        f.await
            .map_err(|_| anyhow!("delivery cancelled"))?
            .map_err(|(e, _)| anyhow!("delivery failed: {e}"))?;
    }
    let p = p.clone();
    tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(30))).await??;
    Ok(())
}
