//! Steps 1 and 3: fill a topic fast, decode its payloads in memory (step 2, reading it back,
//! is `raw`); the producers of the other steps' topics.
//!
//! Contract: [`produce_all`] returns only when every message is acknowledged by the broker
//! (any failed delivery is an error). [`measure_decode`] decodes as the pipeline's engine
//! does: into one reused event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pulseboard_model::decode::Decoder;
use pulseboard_model::event::Event;
use pulseboard_model::gen::{GenConfig, Generator};
use pulseboard_testkit::kafka::create_topic;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::report::Report;
use crate::{now_ms, step, PARTITIONS};

/// The topic every throughput measurement reads: Pulseboard, the raw consumer and the peers.
pub const TOPIC: &str = "bench";

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

/// Step 3: decode the payloads in memory on one thread, into one reused event (as the
/// pipeline's engine does: `Decoder::decode_into` with a scratch event).
pub fn measure_decode(payloads: &[Vec<u8>], report: &mut Report) -> Result<()> {
    step("decode");
    let decoder = Decoder::default();
    let msg_ts = Some(now_ms());
    let mut scratch = Event::default();
    let start = Instant::now();
    let mut failed = 0u64;
    for p in payloads {
        if decoder.decode_into(p, msg_ts, &mut scratch).is_err() {
            failed += 1;
        }
        std::hint::black_box(&scratch);
    }
    let secs = start.elapsed().as_secs_f64();
    if failed > 0 {
        bail!("{failed} generated events failed to decode");
    }
    report.decode_eps = payloads.len() as f64 / secs;
    report.cpu.decode_us_per_event = secs * 1e6 / payloads.len() as f64;
    Ok(())
}

/// Step 3b: what several sites cost ([`pulseboard_model::agg::site`]): the same realistic
/// traffic (N events, at most 400,000; 2,000 a second: 20,000 a 10 s window) counted into windows with the
/// server's default segments and the demo's goals, in memory on one thread, encoded as
/// stored rows (before compression); of one site, then of two (each event is counted into
/// its site too); then of one site whose events carry the property `plan` (the demo's four
/// values), kept as `--property plan` keeps it; and the decoding of those events' JSON
/// without, then with, the property kept.
pub fn measure_sites(n: u64, report: &mut Report) -> Result<()> {
    use pulseboard_model::agg::prop::PropKey;
    use pulseboard_model::agg::{AggSpec, Aggregate, Dimension, Goal, SegmentSpec};
    step("sites");
    let n = n.min(400_000);
    let goals = ["signup", "pricing=url:/pricing"]
        .iter()
        .map(|g| Goal::parse(g).context("goal"))
        .collect::<Result<Vec<_>>>()?;
    let spec = AggSpec {
        segments: SegmentSpec {
            dimensions: Dimension::ALL.to_vec(),
            top_n: 10,
        },
        goals,
        max_sites: 10,
    };
    let plan = PropKey::register("plan").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut with_plan = spec.clone();
    with_plan.segments.dimensions.push(Dimension::Prop(plan));
    let events_of = |sites: &[&str], props: bool| {
        let cfg = GenConfig {
            sites: sites.iter().map(|s| (*s).to_owned()).collect(),
            props,
            ..GenConfig::default()
        };
        let mut gen = Generator::new(9, cfg);
        let base = now_ms();
        (0..n)
            .map(|k| gen.next_event(base + k as i64 / 2))
            .collect::<Vec<Event>>()
    };
    let run = |events: &[Event], spec: &AggSpec| {
        let start = Instant::now();
        let (mut bytes, mut rows, mut memory) = (0usize, 0usize, 0usize);
        for window in events.chunks(20_000) {
            let mut a = Aggregate::new();
            for e in window {
                a.add_with(e, spec);
            }
            bytes += a.to_bytes().len();
            memory += a.memory_bytes();
            rows += 1;
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
        let per = |x: usize| x as f64 / rows.max(1) as f64;
        (us, per(bytes), per(memory))
    };
    let (one_us, one_bytes, one_mem) = run(&events_of(&["shop.example"], false), &spec);
    let (two_us, two_bytes, two_mem) =
        run(&events_of(&["shop.example", "blog.example"], false), &spec);
    let with_props = events_of(&["shop.example"], true);
    let (prop_us, prop_bytes, prop_mem) = run(&with_props, &with_plan);
    let payloads: Vec<Vec<u8>> = with_props
        .iter()
        .map(|e| e.to_json().into_bytes())
        .collect();
    let decode = |d: &Decoder| -> Result<f64> {
        let mut ev = Event::default();
        let start = Instant::now();
        for p in &payloads {
            d.decode_into(p, None, &mut ev).context("decode")?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e9 / payloads.len().max(1) as f64)
    };
    let decode_none = decode(&Decoder::default())?;
    let decode_plan = decode(&Decoder::default().with_properties(&["plan".to_owned()]))?;
    report.sites = crate::report::SitesCost {
        count_us_per_event_one_site: one_us,
        count_us_per_event_two_sites: two_us,
        row_bytes_one_site: one_bytes,
        row_bytes_two_sites: two_bytes,
        count_us_per_event_one_property: prop_us,
        row_bytes_one_property: prop_bytes,
        memory_bytes_one_site: one_mem,
        memory_bytes_two_sites: two_mem,
        memory_bytes_one_property: prop_mem,
        decode_ns_per_event: decode_none,
        decode_ns_per_event_one_property: decode_plan,
    };
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
