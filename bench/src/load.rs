//! Steps 1–3: fill a topic fast, read it back with a bare consumer, decode it in memory.
//!
//! Contract: [`produce_all`] returns only when every message is acknowledged by the broker
//! (any failed delivery is an error); [`raw_consume`] reads a topic from the beginning with
//! manual assignment (no group join) and times it from its first message to its N-th.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pulseboard_model::decode::Decoder;
use pulseboard_model::gen::{GenConfig, Generator};
use pulseboard_testkit::kafka::create_topic;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::report::Report;
use crate::{now_ms, step, PARTITIONS};

/// The topic every throughput measurement reads: Pulseboard, the raw consumer and the peers.
pub const TOPIC: &str = "bench";

/// `fetch.wait.max.ms` of the raw consumer.
const RAW_FETCH_WAIT_MS: u32 = 10;
/// librdkafka's default `fetch.wait.max.ms`, which Pulseboard keeps on a real broker.
///
/// On Tansu this mattered tenfold: it held a fetch for much of the wait even with data
/// waiting. Apache Kafka answers a fetch as soon as `fetch.min.bytes` (1) are there, so on a
/// prefilled topic both settings read at the same speed (seen: 1.05–1.41M/s with 500 ms
/// against 1.12–1.18M/s with 10 ms, alternating, three rounds each). The number stays as the
/// measured fact that Pulseboard's default costs nothing in throughput here.
const DEFAULT_FETCH_WAIT_MS: u32 = 500;

/// Step 1: topic `bench`, N canonical events keyed by visitor. Returns the payloads.
pub fn prefill_canonical(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    n: u64,
    report: &mut Report,
) -> Result<Vec<Vec<u8>>> {
    step(&format!("prefilling `{TOPIC}` with {n} events"));
    rt.block_on(create_topic(brokers, TOPIC, PARTITIONS, 1))?;
    let (keys, payloads) = canonical_messages(n);
    let stats = produce_all(brokers, TOPIC, n, |k, key, payload| {
        key.extend_from_slice(keys[k as usize].as_bytes());
        payload.extend_from_slice(&payloads[k as usize]);
    })?;
    report.payload_bytes_avg = stats.bytes as f64 / n as f64;
    report.prefill_eps = n as f64 / stats.seconds;
    Ok(payloads)
}

/// Step 2: a bare consumer, manual assignment, from the beginning, until N messages; then
/// the same with librdkafka's default `fetch.wait.max.ms`. Returns the sum of the
/// partitions' next offsets (the pipeline's target).
pub fn measure_raw_consume(
    brokers: &str,
    broker_pid: Option<u32>,
    n: u64,
    report: &mut Report,
) -> Result<i64> {
    // The broker's fetch path is cold after the prefill (JIT): the first read of a fresh
    // topic was seen ~2x slower than the next. Pulseboard and the peers read a warm broker,
    // so the limit they are compared with is measured on one too.
    step("raw consume: warm-up read (not timed)");
    raw_consume(brokers, TOPIC, n, RAW_FETCH_WAIT_MS)?;
    step("raw consume");
    let cpu = CpuMeter::start(&[Some(std::process::id()), broker_pid]);
    let raw = raw_consume(brokers, TOPIC, n, RAW_FETCH_WAIT_MS)?;
    report.raw_consume_eps = n as f64 / raw.seconds;
    let [consumer, broker] = cpu.stop();
    report.cpu.raw_consumer_us_per_event = consumer * 1e6 / n as f64;
    report.cpu.raw_broker_us_per_event = broker * 1e6 / n as f64;
    step("raw consume with the default fetch.wait.max.ms");
    let default_wait = raw_consume(brokers, TOPIC, n, DEFAULT_FETCH_WAIT_MS)?;
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

/// CPU time (user + system, seconds) two processes use between `start` and `stop`.
pub struct CpuMeter {
    pids: [Option<u32>; 2],
    at_start: [f64; 2],
}

impl CpuMeter {
    pub fn start(pids: &[Option<u32>; 2]) -> CpuMeter {
        CpuMeter {
            pids: *pids,
            at_start: pids.map(cpu_secs),
        }
    }

    pub fn stop(&self) -> [f64; 2] {
        let now = self.pids.map(cpu_secs);
        [now[0] - self.at_start[0], now[1] - self.at_start[1]]
    }
}

fn cpu_secs(pid: Option<u32>) -> f64 {
    pid.and_then(|p| pulseboard_testkit::process::cpu_time(p).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Step 3: decode the payloads in memory on one thread.
pub fn measure_decode(payloads: &[Vec<u8>], report: &mut Report) -> Result<()> {
    step("decode");
    let decoder = Decoder::default();
    let msg_ts = Some(now_ms());
    let start = Instant::now();
    let mut failed = 0u64;
    for p in payloads {
        if std::hint::black_box(decoder.decode(p, msg_ts)).is_err() {
            failed += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if failed > 0 {
        bail!("{failed} generated events failed to decode");
    }
    report.decode_eps = payloads.len() as f64 / secs;
    report.cpu.decode_us_per_event = secs * 1e6 / payloads.len() as f64;
    Ok(())
}

/// N canonical events, one per millisecond of event time, ending now: (keys, payloads).
fn canonical_messages(n: u64) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut gen = Generator::new(1, GenConfig::default());
    let base = now_ms() - n as i64;
    (0..n)
        .map(|k| {
            let ev = gen.next_event(base + k as i64);
            (ev.visitor.clone(), ev.to_json().into_bytes())
        })
        .unzip()
}

/// N canonical events as step 1 makes them (another seed), ending now, to `topic`, generated
/// as they are sent (nothing kept in memory).
pub fn prefill_canonical_stream(brokers: &str, topic: &str, n: u64) -> Result<()> {
    let mut gen = Generator::new(3, GenConfig::default());
    let base = now_ms() - n as i64;
    produce_all(brokers, topic, n, |k, key, payload| {
        let ev = gen.next_event(base + k as i64);
        key.extend_from_slice(ev.visitor.as_bytes());
        payload.extend_from_slice(ev.to_json().as_bytes());
    })?;
    Ok(())
}

/// N generated events spread evenly over `span_ms` of event time ending five minutes ago
/// (history, well behind any watermark), to `topic`.
pub fn prefill_history(brokers: &str, topic: &str, n: u64, span_ms: i64) -> Result<()> {
    let mut gen = Generator::new(4, GenConfig::default());
    let end = now_ms() - 5 * 60_000;
    let base = end - span_ms;
    produce_all(brokers, topic, n, |k, key, payload| {
        let ev = gen.next_event(base + (k as i64) * span_ms / n.max(1) as i64);
        key.extend_from_slice(ev.visitor.as_bytes());
        payload.extend_from_slice(ev.to_json().as_bytes());
    })?;
    Ok(())
}

/// N generated events whose URLs are all distinct (`/p/<k>`), ending now, to `topic`.
pub fn prefill_high_cardinality(brokers: &str, topic: &str, n: u64) -> Result<()> {
    let mut gen = Generator::new(2, GenConfig::default());
    let base = now_ms() - n as i64;
    produce_all(brokers, topic, n, |k, key, payload| {
        let mut ev = gen.next_event(base + k as i64);
        ev.url = format!("/p/{k}");
        key.extend_from_slice(ev.visitor.as_bytes());
        payload.extend_from_slice(ev.to_json().as_bytes());
    })?;
    Ok(())
}

/// Counts failed deliveries of the bulk producer.
#[derive(Default)]
struct DeliveryTally {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTally {}

impl ProducerContext for DeliveryTally {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub struct ProduceStats {
    pub bytes: u64,
    pub seconds: f64,
}

/// Produce `n` keyed messages (partition chosen by the producer from the key) and wait for
/// every delivery. `message(k, key, payload)` fills the (cleared) buffers of message `k`.
pub fn produce_all(
    brokers: &str,
    topic: &str,
    n: u64,
    mut message: impl FnMut(u64, &mut Vec<u8>, &mut Vec<u8>),
) -> Result<ProduceStats> {
    let producer: BaseProducer<DeliveryTally> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create_with_context(DeliveryTally::default())
        .context("creating the prefill producer")?;
    let start = Instant::now();
    let mut bytes = 0u64;
    let (mut key, mut payload) = (Vec::new(), Vec::new());
    for k in 0..n {
        key.clear();
        payload.clear();
        message(k, &mut key, &mut payload);
        bytes += payload.len() as u64;
        send_with_backpressure(&producer, topic, &key, &payload)?;
        if k % 1_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .with_context(|| format!("flushing {n} messages to {topic}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let tally = producer.context();
    let failed = tally.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = tally.first_error.lock().ok().and_then(|e| e.clone());
        bail!("{failed} of {n} messages to {topic} were not delivered (first error: {first:?})");
    }
    Ok(ProduceStats { bytes, seconds })
}

fn send_with_backpressure(
    producer: &BaseProducer<DeliveryTally>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
) -> Result<()> {
    loop {
        match producer.send(BaseRecord::to(topic).key(key).payload(payload)) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e).with_context(|| format!("producing to {topic}")),
        }
    }
}

pub struct RawConsume {
    pub seconds: f64,
    pub next_offsets: Vec<i64>,
}

/// Read `n` messages of every partition of `topic` from the beginning, without a group.
pub fn raw_consume(brokers: &str, topic: &str, n: u64, fetch_wait_ms: u32) -> Result<RawConsume> {
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
    let deadline = Instant::now() + Duration::from_secs(60 + n / 20_000);
    let mut next_offsets = vec![0i64; PARTITIONS as usize];
    let (mut read, mut touched) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    while read < n {
        if Instant::now() > deadline {
            bail!("raw consumer read only {read} of {n} messages before its deadline");
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.context("raw consumer")?;
        first.get_or_insert_with(Instant::now);
        touched += msg.payload().map_or(0, |p| p.len() as u64);
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
