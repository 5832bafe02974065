//! The state topic: its records read back (for a failure's message and the tombstones), a
//! checkpoint too large for it stopping the instance with a clear error, and windows past
//! retention tombstoned in it while every instance's history keeps them.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::group::Group;
use super::{LATENESS, TOPIC, WIDTH};
use crate::backbone::event_set;
use crate::util::*;

/// Every committed record of the state topic `topic`, from its beginning to its end
/// (bounded by `within`), each given to `visit` with its "partition@offset".
fn read_state_topic(
    brokers: &str,
    topic: &str,
    within: Duration,
    mut visit: impl FnMut(String, Result<pulseboard::store::record::StateRecord, String>),
) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "scaleout-state-topic-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..n as i32 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut ended = std::collections::HashSet::new();
    let deadline = Instant::now() + within;
    while ended.len() < n {
        if Instant::now() >= deadline {
            bail!("the state topic {topic} was not read to its end within {within:?}");
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let at = format!("{}@{}", m.partition(), m.offset());
                let record = pulseboard::store::record::decode_record(
                    m.key().unwrap_or_default(),
                    m.payload(),
                )
                .map_err(|e| e.to_string());
                visit(at, record);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The state topic's records (committed ones), one line each, for a failure's message.
pub(super) fn state_topic_trace(brokers: &str, topic: &str) -> Result<String> {
    use pulseboard::store::record::StateRecord;
    let mut lines = Vec::new();
    read_state_topic(brokers, topic, Duration::from_secs(30), |at, record| {
        lines.push(match record {
            Ok(StateRecord::Progress {
                topic,
                partition,
                value: Some(v),
            }) => format!(
                "{at} progress {topic}/{partition} seq {} next {} events {} by {}",
                v.checkpoint.seq, v.checkpoint.next_offset, v.checkpoint.events, v.owner.id
            ),
            Ok(StateRecord::Window {
                partition,
                start,
                value: Some(w),
                ..
            }) => format!(
                "{at} window p{partition} {start}: {} (seq {})",
                w.value.events, w.value.seq
            ),
            Ok(other) => format!("{at} {other:?}").chars().take(120).collect(),
            Err(e) => format!("{at} unreadable: {e}"),
        });
    })?;
    Ok(lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_larger_than_the_state_topic_takes_stops_with_a_clear_error() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, TOPIC, 1).await?;
    // A state topic made by hand that takes records of 2,000 bytes at most.
    pulseboard_testkit::kafka::create_topic_with(
        &brokers,
        "tiny-windows",
        1,
        1,
        &[("cleanup.policy", "compact"), ("max.message.bytes", "2000")],
    )
    .await?;
    let set = event_set(101, 500, 1, now_ms() - 10 * 60_000, 60_000);
    produce(&producer(&brokers)?, TOPIC, &set.payloads).await?;
    let dir = data_dir();
    let mut args = broker_args(&brokers, TOPIC, "tiny", dir.path());
    args.extend(["--state-topic".to_owned(), "tiny-windows".to_owned()]);
    let (child, _) = crate::faults::spawn_child_stderr(&args)?;
    // Never an endless loop of aborted transactions: it stops, non-zero, saying what to do.
    let (status, stderr) = child.wait_with_stderr(Duration::from_secs(120)).await?;
    assert!(!status.success(), "exits non-zero: {status}");
    assert!(
        stderr.contains("does not fit the state topic tiny-windows")
            && stderr.contains("max.message.bytes"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_past_retention_are_tombstoned_in_the_state_topic_and_stay_in_every_history(
) -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, TOPIC, 2).await?;
    // Half an hour of events ending 5 minutes ago; retention 10 minutes: the older
    // windows roll up into history while both instances run.
    let end = now_ms() - 5 * 60_000;
    let set = event_set(103, 6_000, 2, end - 30 * 60_000, 30 * 60_000);
    let (folded, _) = expected_folded(&set.events, WIDTH, LATENESS);
    produce(&producer(&brokers)?, TOPIC, &set.payloads).await?;
    let retention = [
        "--retention",
        "10m",
        "--revision-horizon",
        "5m",
        "--retention-interval",
        "300ms",
    ];
    let mut group = Group::new(&brokers, "retention", 2, &retention);
    group.start(0)?;
    group.start(1)?;
    group.wait_owns_some(0).await?;
    group.wait_owns_some(1).await?;
    // Every window that starts more than 16 minutes before the newest event is past
    // retention (10 minutes before the watermark, a minute of margin for the buckets).
    let old: std::collections::BTreeSet<(i32, i64)> = set
        .events
        .iter()
        .map(|(p, e)| (*p, e.ts - e.ts.rem_euclid(WIDTH)))
        .filter(|(_, start)| *start < end - 16 * 60_000)
        .collect();
    let topic = "retention-windows";
    let tombstoned = poll_until(
        Duration::from_secs(120),
        "the owners to tombstone the windows past retention",
        || async {
            let t = tombstones(&brokers, topic).ok()?;
            old.iter().all(|k| t.contains(k)).then_some(t.len())
        },
    )
    .await?;
    eprintln!(
        "{tombstoned} windows tombstoned in the state topic ({} past retention)",
        old.len()
    );
    // Rolled up, not lost: every instance's history still holds every event.
    for i in 0..2 {
        let addr = group.child(i)?.addr;
        poll_until(
            Duration::from_secs(60),
            &format!("instance {i}'s history to hold every event"),
            || async {
                let s = get_json(addr, "/api/v1/summary?from=0").await?;
                (s["events"].as_u64()? == folded.len() as u64).then_some(())
            },
        )
        .await?;
        let w = get_json(addr, "/api/v1/windows?from=0&limit=10000")
            .await
            .ok_or_else(|| anyhow!("no windows"))?;
        let minutes = w["windows"]
            .as_array()
            .map(|ws| ws.iter().filter(|w| w["resolution"] == "minute").count())
            .unwrap_or(0);
        assert!(minutes > 0, "instance {i} has minute buckets: {w}");
    }
    group.stop(1)?;
    group.stop(0)
}

/// The (partition, window start) of every window tombstone in the state topic.
fn tombstones(brokers: &str, topic: &str) -> Result<std::collections::BTreeSet<(i32, i64)>> {
    use pulseboard::store::record::StateRecord;
    let mut out = std::collections::BTreeSet::new();
    read_state_topic(brokers, topic, Duration::from_secs(20), |_, record| {
        if let Ok(StateRecord::Window {
            partition,
            start,
            value: None,
            ..
        }) = record
        {
            out.insert((partition, start));
        }
    })?;
    Ok(out)
}
