//! Clients of a running cluster: topic creation (with configs, or on chosen brokers) and
//! deletion, each waiting until the cluster shows it; an idempotent producer.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
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
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for (k, v) in config {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = admin
        .create_topics([&topic], &opts)
        .await
        .context("create_topics")?;
    for r in res {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    wait_for_leaders(brokers, name, partitions).await
}

/// Create a topic whose partitions live on the given brokers: `replicas[p]` lists the node
/// ids of partition `p`'s replicas (for tests that take one broker's topics away).
pub async fn create_topic_assigned(brokers: &str, name: &str, replicas: &[&[i32]]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let topic = NewTopic::new(
        name,
        replicas.len() as i32,
        TopicReplication::Variable(replicas),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin
        .create_topics([&topic], &opts)
        .await
        .context("create_topics")?
    {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    wait_for_leaders(brokers, name, replicas.len() as i32).await
}

/// Delete a topic (and wait until the cluster no longer lists it).
pub async fn delete_topic(brokers: &str, name: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.delete_topics(&[name], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, e)) => bail!("deleting topic {t}: {e}"),
        }
    }
    let brokers = brokers.to_owned();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("log_level", "0")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let gone = client
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|m| m.topics().iter().all(|t| t.name() != name))
                .unwrap_or(false);
            if gone {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("topic {name} still listed 60 s after its deletion");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await?
}

/// Wait until every partition of `topic` has a leader.
async fn wait_for_leaders(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("log_level", "0")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map(|m| {
                    m.topics().iter().any(|t| {
                        t.name() == topic
                            && t.error().is_none()
                            && t.partitions().len() == partitions as usize
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
                })
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("topic {topic} has no leader for every partition after 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
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
