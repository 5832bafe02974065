//! A pulseboard child's state topic, read back: the bytes of its records by kind, and what
//! its window records weigh per window.
//!
//! Contract: [`read`] reads every partition of a state topic from the beginning to its end
//! (`read_committed`, as the server's own reader; an aborted transaction's records are not
//! counted), after the child stopped. A record's bytes are its key and value as a consumer
//! gets them (JSON, the aggregate in base64), uncompressed: the producer sends them in lz4
//! batches, so the broker's disk holds less. Keys are classified with the server's own
//! record format (`pulseboard::store::record::Key`).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pulseboard::store::record::Key;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::probe::percentile;

/// One record of a state topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// The producer's timestamp (wall clock when it was produced), epoch ms.
    pub ts_ms: i64,
    /// `Some((input partition, window start))` for a window record.
    pub window: Option<(i32, i64)>,
    pub key_bytes: u64,
    /// `None`: a tombstone.
    pub value_bytes: Option<u64>,
}

impl Record {
    pub fn bytes(&self) -> u64 {
        self.key_bytes + self.value_bytes.unwrap_or(0)
    }
}

/// Every record of a state topic.
#[derive(Debug, Default)]
pub struct StateTopic {
    pub records: Vec<Record>,
}

/// What the window records of some windows weigh in the state topic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WindowRecords {
    /// Windows (input partition, start) with at least one record (tombstones aside).
    pub windows: u64,
    /// Their records (tombstones aside), and those records' bytes.
    pub records: u64,
    pub bytes: u64,
    /// `bytes / windows`: what one window costs in the topic, every rewrite included.
    pub bytes_per_window: f64,
    /// `records / windows`: how often a window is written (once per checkpoint it changed in).
    pub records_per_window: f64,
    /// The median over the windows of each one's last record: one window record, complete.
    pub last_record_bytes_p50: f64,
}

impl StateTopic {
    /// Bytes of the records `keep` keeps.
    pub fn bytes(&self, keep: impl Fn(&Record) -> bool) -> u64 {
        self.records
            .iter()
            .filter(|r| keep(r))
            .map(Record::bytes)
            .sum()
    }

    /// The window records (not tombstones) of windows starting in `starts`.
    pub fn windows(&self, starts: Range<i64>) -> WindowRecords {
        let mut by_window: HashMap<(i32, i64), (u64, u64, u64)> = HashMap::new();
        for r in &self.records {
            let Some(w) = r.window.filter(|(_, s)| starts.contains(s)) else {
                continue;
            };
            if r.value_bytes.is_none() {
                continue;
            }
            let e = by_window.entry(w).or_default();
            e.0 += 1;
            e.1 += r.bytes();
            // Records are kept in the topic's order, and a window's go to one partition.
            e.2 = r.bytes();
        }
        let windows = by_window.len() as u64;
        let records: u64 = by_window.values().map(|v| v.0).sum();
        let bytes: u64 = by_window.values().map(|v| v.1).sum();
        let mut last: Vec<f64> = by_window.values().map(|v| v.2 as f64).collect();
        last.sort_by(f64::total_cmp);
        let per = |x: u64| {
            if windows == 0 {
                0.0
            } else {
                x as f64 / windows as f64
            }
        };
        WindowRecords {
            windows,
            records,
            bytes,
            bytes_per_window: per(bytes),
            records_per_window: per(records),
            last_record_bytes_p50: percentile(&last, 50.0),
        }
    }
}

/// What a run wrote, to disk and to its state topic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Written {
    pub events: u64,
    /// `write_bytes` of the child's `/proc/<pid>/io` (sled's files and its log).
    pub disk_write_bytes: u64,
    /// Key and value bytes of every record of its state topic (uncompressed).
    pub state_topic_bytes: u64,
    pub state_topic_records: u64,
}

impl Written {
    /// (disk + state topic) bytes per event.
    pub fn per_event(&self) -> f64 {
        (self.disk_write_bytes + self.state_topic_bytes) as f64 / self.events.max(1) as f64
    }
}

/// Every record of `topic`, partition after partition, each in its order.
pub fn read(brokers: &str, topic: &str) -> Result<StateTopic> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-state-{:08x}", fastrand::u32(..)))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("receive.message.max.bytes", (128 * 1024 * 1024).to_string())
        .create()
        .context("creating the state topic's reader")?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("metadata of {topic}"))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("the state topic {topic} has no partitions");
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let mut at_end = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end < partitions.len() {
        if Instant::now() > deadline {
            bail!("reading the state topic {topic} took more than 2 minutes");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(e)) => return Err(e).with_context(|| format!("reading {topic}")),
            Some(Ok(m)) => {
                let key = m.key().unwrap_or_default();
                let window = match Key::decode(key) {
                    Ok(Key::Window {
                        partition, start, ..
                    }) => Some((partition, start)),
                    _ => None,
                };
                by_partition.entry(m.partition()).or_default().push(Record {
                    ts_ms: m.timestamp().to_millis().unwrap_or(0),
                    window,
                    key_bytes: key.len() as u64,
                    value_bytes: m.payload().map(|v| v.len() as u64),
                });
            }
        }
    }
    Ok(StateTopic {
        records: by_partition.into_values().flatten().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, start: i64, value: Option<u64>) -> Record {
        Record {
            ts_ms: 0,
            window: Some((partition, start)),
            key_bytes: 10,
            value_bytes: value,
        }
    }

    #[test]
    fn a_window_weighs_all_its_records_and_its_last_one_is_the_record() {
        let t = StateTopic {
            records: vec![
                rec(0, 0, Some(90)),
                rec(0, 0, Some(190)),
                rec(1, 0, Some(290)),
                rec(0, 10_000, Some(1_000)),
                rec(0, 0, None),
            ],
        };
        let w = t.windows(0..10_000);
        assert_eq!((w.windows, w.records, w.bytes), (2, 3, 600));
        assert!((w.bytes_per_window - 300.0).abs() < 1e-9);
        assert!((w.records_per_window - 1.5).abs() < 1e-9);
        assert!((w.last_record_bytes_p50 - 200.0).abs() < 1e-9); // nearest rank
        assert_eq!(t.bytes(|r| r.value_bytes.is_none()), 10);
    }
}
