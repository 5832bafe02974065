//! Step 2: the raw consume rate, the limit the pipeline is compared with.
//!
//! Contract: `raw_consume_eps` is a consumer made from the pipeline's own client
//! configuration ([`pulseboard::consumer_config`]: its group, cooperative rebalancing, fetch
//! and queue sizes, plus the run's `--child-kafka-option`s as every child gets them), which
//! joins a fresh consumer group as the pipeline does and reads every byte of every payload
//! (a checksum over them), so it does no less than the pipeline must. The one setting it
//! adds is `auto.offset.reset=earliest`: where a fresh group starts (the pipeline decides
//! that itself). `raw_consume_eps_bare` is the loop this bench had before: a consumer of
//! its own settings (10 ms fetch wait, 1 GB queues, 10 MB fetches) on manually assigned
//! partitions, counting payload lengths without reading them. Both time from their first
//! message to their N-th.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use crate::load::{CpuMeter, TOPIC};
use crate::report::Report;
use crate::{step, Plan, PARTITIONS};

/// `fetch.wait.max.ms` of the bare consumer.
const RAW_FETCH_WAIT_MS: u32 = 10;
/// librdkafka's default `fetch.wait.max.ms`, which Pulseboard keeps on a real broker.
///
/// On Tansu this mattered tenfold: it held a fetch for much of the wait even with data
/// waiting. Apache Kafka answers a fetch as soon as `fetch.min.bytes` (1) are there, so on a
/// prefilled topic both settings read at the same speed (seen: 1.05–1.41M/s with 500 ms
/// against 1.12–1.18M/s with 10 ms, alternating, three rounds each). The number stays as the
/// measured fact that Pulseboard's default costs nothing in throughput here.
const DEFAULT_FETCH_WAIT_MS: u32 = 500;

/// Step 2: an untimed warm-up read, then the loop with the pipeline's configuration (with
/// the CPU of this process and of the broker), then the bare loops. Returns the sum of the
/// partitions' next offsets (the pipeline's target).
pub fn measure_raw_consume(
    plan: &Plan,
    brokers: &str,
    broker_pid: Option<u32>,
    report: &mut Report,
) -> Result<i64> {
    let n = plan.events;
    // The broker's fetch path is cold after the prefill (JIT): the first read of a fresh
    // topic was seen ~2x slower than the next. Pulseboard and the peers read a warm broker,
    // so the limit they are compared with is measured on one too.
    step("raw consume: warm-up read (not timed)");
    raw_consume_bare(brokers, TOPIC, n, RAW_FETCH_WAIT_MS)?;
    step("raw consume with the pipeline's consumer configuration, reading every payload");
    let cpu = CpuMeter::start(&[Some(std::process::id()), broker_pid]);
    let raw = raw_consume_as_pipeline(plan, brokers, TOPIC, n)?;
    report.raw_consume_eps = n as f64 / raw.seconds;
    let [consumer, broker] = cpu.stop();
    report.cpu.raw_consumer_us_per_event = consumer * 1e6 / n as f64;
    report.cpu.raw_broker_us_per_event = broker * 1e6 / n as f64;
    step("raw consume, bare loop (the previous figure)");
    let bare = raw_consume_bare(brokers, TOPIC, n, RAW_FETCH_WAIT_MS)?;
    report.raw_consume_eps_bare = n as f64 / bare.seconds;
    step("raw consume, bare loop with the default fetch.wait.max.ms");
    let default_wait = raw_consume_bare(brokers, TOPIC, n, DEFAULT_FETCH_WAIT_MS)?;
    report.raw_consume_eps_default_fetch_wait = n as f64 / default_wait.seconds;
    let ends: i64 = raw.next_offsets.iter().sum();
    if ends != n as i64 {
        bail!(
            "offsets of `{TOPIC}` are not dense: next offsets {:?} add up to {ends}, not {n}; progress by offset would be wrong",
            raw.next_offsets
        );
    }
    Ok(ends)
}

pub struct RawConsume {
    pub seconds: f64,
    pub next_offsets: Vec<i64>,
}

/// `--child-kafka-option KEY=VALUE`s as the pipeline's configuration takes them.
fn kafka_options(plan: &Plan) -> Vec<(String, String)> {
    plan.child_kafka_options
        .iter()
        .filter_map(|o| o.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Read `n` messages of `topic` as the pipeline's consumer would: its configuration, a
/// fresh group joined by subscription, and every payload byte read.
pub fn raw_consume_as_pipeline(
    plan: &Plan,
    brokers: &str,
    topic: &str,
    n: u64,
) -> Result<RawConsume> {
    let group = format!("bench-raw-{:08x}", fastrand::u32(..));
    let mut cfg = pulseboard::consumer_config(brokers, &group, false, &kafka_options(plan));
    cfg.set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = cfg.create().context("creating the raw consumer")?;
    consumer
        .subscribe(&[topic])
        .context("subscribing the raw consumer")?;
    read_n(&consumer, topic, n, |p| {
        p.iter().fold(0u64, |a, b| a.wrapping_add(u64::from(*b)))
    })
}

/// Read `n` messages of every partition of `topic` from the beginning, without a group:
/// the bench's own settings, payload lengths counted.
pub fn raw_consume_bare(
    brokers: &str,
    topic: &str,
    n: u64,
    fetch_wait_ms: u32,
) -> Result<RawConsume> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-raw-{:08x}", fastrand::u32(..)))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "1048576")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()
        .context("creating the raw consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assigning partitions")?;
    read_n(&consumer, topic, n, |p| p.len() as u64)
}

/// Poll until `n` messages, `touch` applied to every payload; timed from the first.
fn read_n(
    consumer: &BaseConsumer,
    topic: &str,
    n: u64,
    touch: impl Fn(&[u8]) -> u64,
) -> Result<RawConsume> {
    let deadline = Instant::now() + Duration::from_secs(60 + n / 20_000);
    let mut next_offsets = vec![0i64; PARTITIONS as usize];
    let (mut read, mut touched) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    while read < n {
        if Instant::now() > deadline {
            bail!("raw consumer read only {read} of {n} messages of {topic} before its deadline");
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = match msg {
            // The pipeline's consumer says when a partition is read to its end (its idle
            // rule); the pipeline takes that as information, and so does this loop.
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => continue,
            other => other.context("raw consumer")?,
        };
        first.get_or_insert_with(Instant::now);
        touched = touched.wrapping_add(msg.payload().map_or(0, &touch));
        if let Some(slot) = next_offsets.get_mut(msg.partition() as usize) {
            *slot = (*slot).max(msg.offset() + 1);
        }
        read += 1;
    }
    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    std::hint::black_box(touched);
    Ok(RawConsume {
        seconds,
        next_offsets,
    })
}
