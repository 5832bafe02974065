//! A peer's end-to-end latency: event produced → its count visible in the peer's output.
//!
//! Contract: the peer runs in latency mode (`--events 0`) on a fresh 4-partition topic, with
//! a fresh 1-partition output topic. A warm-up event (a minute old, another window) must come
//! out first: then the peer is running and assigned. Then paced probes, as in the WebSocket
//! step ([`crate::probe`]). A reader consumes the output topic from the beginning; for every
//! output record (window start, bucket, events) it keeps the latest count per (start,
//! bucket), sums the buckets of that start, and notes when that sum grew: the k-th probe of a
//! window became visible when the sum first reached k. Spark and Quix write whole windows (no
//! bucket); Kafka Streams writes one partial per key bucket.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::process;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use super::{spawn, state_dir, Launch, Peer, RunArgs};
use crate::probe::{self, Probe, WindowSteps};
use crate::{step, PARTITIONS};

/// How long a peer may take from its start to its first output (Spark's start-up included).
const FIRST_OUTPUT_WITHIN: Duration = Duration::from_secs(180);
/// How long after the last probe the last window count may take to come out.
const DRAIN_WITHIN: Duration = Duration::from_secs(30);

pub struct LatencyRun {
    /// Sorted.
    pub latencies_ms: Vec<f64>,
    pub missed: usize,
    pub probes: usize,
}

pub fn measure(
    rt: &tokio::runtime::Runtime,
    peer: &Peer,
    launch: &Launch,
    brokers: &str,
    probe_for: Duration,
) -> Result<LatencyRun> {
    let input = format!("lat_{}", peer.key);
    let output = format!("lat_{}_out", peer.key);
    rt.block_on(async {
        create_topic(brokers, &input, PARTITIONS, 1).await?;
        create_topic(brokers, &output, 1, 1).await
    })?;
    let dir = state_dir(peer.key)?;
    let log = dir.path().join("peer.log");
    let run = RunArgs {
        brokers,
        topic: &input,
        output: &output,
        events: 0,
    };
    let stdout = File::create(dir.path().join("peer.stdout")).context("creating a log")?;
    let mut child = spawn(launch, &run, peer.key, dir.path(), &log, stdout.into())?;
    let reader = OutputReader::start(brokers, &output)?;
    let result = probe_through(rt, &mut child, &reader, brokers, &input, probe_for)
        .map_err(|e| anyhow!("{e:#}{}", process::log_tail(&log, 15)));
    // SIGTERM, then SIGKILL if it has not stopped within 30 s.
    let stopped = process::terminate(&mut child, Duration::from_secs(30));
    let seen = reader.stop()?;
    let probes = result?;
    stopped?;
    if seen.bad > 0 {
        bail!("{} output records were not window JSON", seen.bad);
    }
    let (latencies_ms, missed) = probe::latencies([&seen.steps], &probes);
    Ok(LatencyRun {
        latencies_ms,
        missed,
        probes: probes.len(),
    })
}

/// Warm up, probe, and wait until every probe's count came out (or [`DRAIN_WITHIN`]).
fn probe_through(
    rt: &tokio::runtime::Runtime,
    child: &mut std::process::Child,
    reader: &OutputReader,
    brokers: &str,
    input: &str,
    probe_for: Duration,
) -> Result<Vec<Probe>> {
    let producer = probe::producer(brokers)?;
    rt.block_on(probe::send_warm_up(&producer, input))?;
    wait_for(
        child,
        FIRST_OUTPUT_WITHIN,
        "its first output record",
        || reader.records() > 0,
    )?;
    step(&format!(
        "probing every {:?} for {probe_for:?}",
        probe::PROBE_EVERY
    ));
    let probes = rt.block_on(probe::send_probes(&producer, input, probe_for))?;
    // The last probe of each window: once each is visible, every probe is.
    let mut last_of_window: HashMap<i64, u64> = HashMap::new();
    for p in &probes {
        let last = last_of_window.entry(p.window).or_default();
        *last = (*last).max(p.index);
    }
    let all_out = || {
        let (all, _) = reader.with_steps(|steps| {
            last_of_window
                .iter()
                .all(|(w, k)| steps.first_at_least(*w, *k).is_some())
        });
        all
    };
    // A peer that never shows some probes is reported (`latency_missed`), not an error.
    let _ = wait_for(child, DRAIN_WITHIN, "the last probes", all_out);
    Ok(probes)
}

/// Poll `done` every 50 ms for at most `within`; an error if the peer exits meanwhile.
fn wait_for(
    child: &mut std::process::Child,
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the peer exited ({status}) while the bench waited for {what}");
        }
        if Instant::now() > deadline {
            bail!("no {what} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One output record: a window's (partial) count.
#[derive(Deserialize)]
struct WindowUpdate {
    start: i64,
    events: u64,
    #[serde(default)]
    bucket: Option<i64>,
}

/// What the reader saw of the output topic.
#[derive(Default)]
struct Seen {
    records: u64,
    bad: u64,
    /// Latest count per (window start, bucket).
    partials: HashMap<(i64, Option<i64>), u64>,
    steps: WindowSteps,
}

impl Seen {
    fn record(&mut self, payload: &[u8], at: Instant) {
        self.records += 1;
        let Ok(u) = serde_json::from_slice::<WindowUpdate>(payload) else {
            self.bad += 1;
            return;
        };
        self.partials.insert((u.start, u.bucket), u.events);
        let total = self
            .partials
            .iter()
            .filter(|((start, _), _)| *start == u.start)
            .map(|(_, events)| events)
            .sum();
        self.steps.observe(u.start, total, at);
    }
}

/// A thread consuming the output topic from the beginning (manual assignment, no group).
struct OutputReader {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl OutputReader {
    fn start(brokers: &str, topic: &str) -> Result<OutputReader> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set(
                "group.id",
                format!("bench-latency-{:08x}", fastrand::u32(..)),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .context("creating the output reader")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
        consumer
            .assign(&tpl)
            .context("assigning the output topic")?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || -> Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    let Some(msg) = consumer.poll(Duration::from_millis(50)) else {
                        continue;
                    };
                    let at = Instant::now();
                    let msg = msg.context("reading the output topic")?;
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.record(msg.payload().unwrap_or_default(), at);
                }
                Ok(())
            })
        };
        Ok(OutputReader { seen, stop, thread })
    }

    fn records(&self) -> u64 {
        self.with_steps(|_| ()).1
    }

    /// `f` of the steps seen so far, and the number of records.
    fn with_steps<T>(&self, f: impl FnOnce(&WindowSteps) -> T) -> (T, u64) {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (f(&seen.steps), seen.records)
    }

    fn stop(self) -> Result<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("the output reader panicked"))??;
        let seen =
            Arc::try_unwrap(self.seen).map_err(|_| anyhow!("the output reader is still shared"))?;
        Ok(seen.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_partials_add_up_per_window_taking_each_buckets_latest() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut seen = Seen::default();
        seen.record(br#"{"start":0,"end":10000,"events":2,"bucket":0}"#, at(1));
        seen.record(br#"{"start":0,"end":10000,"events":1,"bucket":3}"#, at(2));
        seen.record(br#"{"start":0,"end":10000,"events":4,"bucket":0}"#, at(3));
        seen.record(br#"{"start":10000,"end":20000,"events":7}"#, at(4));
        seen.record(b"not json", at(5));
        assert_eq!(seen.steps.first_at_least(0, 3), Some(at(2)));
        assert_eq!(seen.steps.first_at_least(0, 5), Some(at(3)));
        assert_eq!(seen.steps.first_at_least(0, 6), None);
        assert_eq!(seen.steps.first_at_least(10_000, 7), Some(at(4)));
        assert_eq!((seen.records, seen.bad), (5, 1));
    }
}
