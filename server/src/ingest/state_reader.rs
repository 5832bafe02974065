//! The state topic's reader: the global view. Every instance reads the whole state topic
//! (`read_committed`, every partition assigned, outside the consumer group) and applies what
//! any instance checkpointed to its store, its hub and its status.
//!
//! Contract:
//! - A checkpoint is applied whole: the window and dead-letter records of an input
//!   partition are held until that partition's progress record arrives, then written with
//!   it in one sled transaction ([`Store::apply_remote`]), together with the state-topic
//!   position. The position recorded is never past a record still held, so a restart reads
//!   a held checkpoint again from its start. After compaction a partition's records are its
//!   latest window values followed by its latest progress record: still a whole state.
//! - A checkpoint is applied only when its `seq` is above the stored one: this instance's
//!   own checkpoints (already written by its committer) and older ones are skipped, without
//!   decoding their windows.
//! - Another instance's checkpoint goes to the hub ([`Hub::update`]) and, for partitions
//!   this instance does not read, to the status ([`Progress::publish_remote`]), so any instance
//!   shows every partition within moments of its owner's checkpoint. This instance's own
//!   checkpoints are published by its partition tasks.
//! - After every applied checkpoint the `applied` watch is bumped: a partition task waiting
//!   for its committed checkpoint ([`super::partition`]) looks again.
//! - Once every partition of the state topic reported its end, the reader has caught up
//!   ([`Progress::set_state_caught_up`]; `/readyz` waits for it).
//! - Every [`MEMBERS_INTERVAL`] it lists the consumer group's members: the instances alive.
//! - Held records are bounded by one checkpoint per input partition, and, while reading a
//!   compacted log from its start, by the windows within retention of one partition.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulseboard_model::agg::Aggregate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::IngestError;
use crate::hub::Hub;
use crate::ingest::client;
use crate::progress::{PartitionCounts, Progress};
use crate::store::record::{self, StateRecord};
use crate::store::{DeadLetterRecord, PartitionWrite, Store};
use crate::telemetry;

/// How often the consumer group's members are listed.
pub const MEMBERS_INTERVAL: Duration = Duration::from_secs(2);

/// Prefix of the `client.id` of an instance's group consumer; the rest is its id.
pub const CLIENT_ID_PREFIX: &str = "pulseboard-";

/// What the reader needs.
pub struct ReaderParams {
    pub brokers: String,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub instance_id: String,
    pub lateness_ms: i64,
    pub store: Store,
    pub live: Arc<Progress>,
    pub hub: Arc<Hub>,
}

/// Start the reader on a thread of its own (its sled writes and client calls block).
/// Returns the thread and the `applied` watch.
pub fn spawn(
    params: ReaderParams,
    shutdown: CancellationToken,
) -> Result<(std::thread::JoinHandle<()>, watch::Receiver<u64>), IngestError> {
    let consumer: BaseConsumer = client::changelog_consumer_config(
        &params.brokers,
        &format!("{CLIENT_ID_PREFIX}{}-state", params.instance_id),
    )
    .create()
    .map_err(IngestError::Client)?;
    let positions = params
        .store
        .state_topic_positions()
        .map_err(|source| IngestError::Changelog(source.to_string()))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..params.partitions {
        let at = positions
            .get(&p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(&params.topic, p, at)
            .map_err(IngestError::Client)?;
    }
    consumer.assign(&tpl).map_err(IngestError::Client)?;
    let (tx, rx) = watch::channel(0u64);
    let thread = std::thread::Builder::new()
        .name("state-topic-reader".into())
        .spawn(move || Reader::new(params, consumer, tx).run(shutdown))
        .map_err(|e| IngestError::Changelog(format!("cannot start its thread: {e}")))?;
    Ok((thread, rx))
}

/// Records of one input partition held until its progress record.
struct Held {
    /// State partition, and the offset of the first record held.
    state_partition: i32,
    first: i64,
    /// Window start → the record's value, undecoded.
    windows: BTreeMap<i64, Vec<u8>>,
    dead: Vec<DeadLetterRecord>,
}

struct Reader {
    p: ReaderParams,
    consumer: BaseConsumer,
    applied: watch::Sender<u64>,
    held: HashMap<(String, i32), Held>,
    at_end: HashSet<i32>,
    caught_up: bool,
    started: Instant,
    records: u64,
    members_at: Option<Instant>,
}

impl Reader {
    fn new(p: ReaderParams, consumer: BaseConsumer, applied: watch::Sender<u64>) -> Self {
        Reader {
            p,
            consumer,
            applied,
            held: HashMap::new(),
            at_end: HashSet::new(),
            caught_up: false,
            started: Instant::now(),
            records: 0,
            members_at: None,
        }
    }

    fn run(mut self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self
                .members_at
                .is_none_or(|t| t.elapsed() >= MEMBERS_INTERVAL)
            {
                self.members_at = Some(Instant::now());
                self.list_members();
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    self.records += 1;
                    let m = m.detach();
                    let (sp, offset) = (m.partition(), m.offset());
                    if let Err(e) = self.on_record(sp, offset, m.key(), m.payload()) {
                        // The store failing is fatal for ingest too; say it and stop reading.
                        tracing::error!(error = %e, "cannot apply the state topic to the store; the global view stops here");
                        telemetry::state_record_unreadable("store");
                        return;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.at_end(p),
                Some(Err(e)) => tracing::debug!(error = %e, "state topic reader"),
            }
        }
    }

    fn at_end(&mut self, p: i32) {
        self.at_end.insert(p);
        if !self.caught_up && self.at_end.len() as i32 >= self.p.partitions {
            self.caught_up = true;
            self.p.live.set_state_caught_up();
            telemetry::state_topic_caught_up(self.records, self.started.elapsed());
        }
    }

    /// The state-topic position that can be recorded for `sp` after a record at `offset`:
    /// never past a record still held.
    fn safe_position(&self, sp: i32, offset: i64) -> i64 {
        self.held
            .values()
            .filter(|h| h.state_partition == sp)
            .map(|h| h.first)
            .fold(offset + 1, i64::min)
    }

    fn hold(&mut self, sp: i32, offset: i64, topic: String, partition: i32) -> &mut Held {
        self.held.entry((topic, partition)).or_insert_with(|| Held {
            state_partition: sp,
            first: offset,
            windows: BTreeMap::new(),
            dead: Vec::new(),
        })
    }

    fn on_record(
        &mut self,
        sp: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), crate::store::StoreError> {
        let Some(key) = key else {
            telemetry::state_record_unreadable("no key");
            let at = self.safe_position(sp, offset);
            return self.p.store.set_state_topic_position(sp, at);
        };
        // Window values are decoded only when their checkpoint is applied.
        let record = match record::Key::decode(key) {
            Ok(record::Key::Window {
                topic,
                partition,
                start,
            }) => match value {
                Some(v) => {
                    self.hold(sp, offset, topic, partition)
                        .windows
                        .insert(start, v.to_vec());
                    return Ok(());
                }
                None => StateRecord::Window {
                    topic,
                    partition,
                    start,
                    value: None,
                },
            },
            Ok(_) => match record::decode_record(key, value) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(partition = sp, offset, error = %e, "unreadable state record skipped");
                    telemetry::state_record_unreadable("value");
                    let at = self.safe_position(sp, offset);
                    return self.p.store.set_state_topic_position(sp, at);
                }
            },
            Err(e) => {
                tracing::warn!(partition = sp, offset, error = %e, "unreadable state record skipped");
                telemetry::state_record_unreadable("key");
                let at = self.safe_position(sp, offset);
                return self.p.store.set_state_topic_position(sp, at);
            }
        };
        match record {
            StateRecord::Window {
                topic,
                partition,
                start,
                ..
            } => {
                // A tombstone: the owner's retention rolled the window up. This store's own
                // retention pass rolls it up here (a window past retention cannot change),
                // so the row stays until then: deleting it would lose it from this
                // instance's history.
                if let Some(h) = self.held.get_mut(&(topic.clone(), partition)) {
                    h.windows.remove(&start);
                }
                let at = self.safe_position(sp, offset);
                self.p.store.set_state_topic_position(sp, at)
            }
            StateRecord::DeadLetter(Some(d)) => {
                let (topic, partition) = (d.topic.clone(), d.partition);
                self.hold(sp, offset, topic, partition).dead.push(d);
                Ok(())
            }
            StateRecord::DeadLetter(None) | StateRecord::Progress { value: None, .. } => {
                let at = self.safe_position(sp, offset);
                self.p.store.set_state_topic_position(sp, at)
            }
            StateRecord::Instance { id, value } => {
                self.p
                    .live
                    .set_instance_url(&id, value.as_ref().map(|v| v.url.as_str()));
                let at = self.safe_position(sp, offset);
                self.p.store.set_state_topic_position(sp, at)
            }
            StateRecord::Progress {
                topic,
                partition,
                value: Some(progress),
            } => self.apply(sp, offset, topic, partition, progress),
        }
    }

    /// A partition's progress record: apply its checkpoint with the records held for it.
    fn apply(
        &mut self,
        sp: i32,
        offset: i64,
        topic: String,
        partition: i32,
        progress: record::ProgressValue,
    ) -> Result<(), crate::store::StoreError> {
        let held = self.held.remove(&(topic.clone(), partition));
        let at = self.safe_position(sp, offset);
        let stored_seq = self
            .p
            .store
            .partition(&topic, partition)?
            .map_or(0, |cp| cp.seq);
        let seq = progress.checkpoint.seq;
        let mut write = PartitionWrite {
            topic: topic.clone(),
            partition,
            checkpoint: progress.checkpoint.clone(),
            owner: Some(progress.owner_record()),
            ..Default::default()
        };
        if seq > stored_seq {
            if let Some(h) = held {
                write.undelivered = h.dead;
                for (start, raw) in h.windows {
                    match record::decode_window(&raw) {
                        Ok((v, agg)) => {
                            if v.revised {
                                write.revised.push(start);
                            }
                            write.rows.push((start, agg));
                        }
                        Err(e) => {
                            tracing::warn!(topic, partition, start, error = %e, "unreadable window record skipped");
                            telemetry::state_record_unreadable("window");
                        }
                    }
                }
            }
        }
        let applied = self.p.store.apply_remote(&write, (sp, at))?;
        if applied {
            self.publish(&write);
            self.applied.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Show another instance's checkpoint: status, revised marks, hub. The hub takes its
    /// windows also when the partition was just assigned here (its task restores from
    /// this very checkpoint and publishes only what it changes afterwards); the status
    /// is left to the partition's task then.
    fn publish(&self, write: &PartitionWrite) {
        let (topic, partition) = (write.topic.as_str(), write.partition);
        let Some(owner) = write.owner.clone() else {
            return;
        };
        let local = self.p.live.is_local(topic, partition);
        if owner.id == self.p.instance_id && local {
            // This instance's own checkpoint, read back before its committer stored it:
            // its partition task publishes it (and fresher open windows than these).
            return;
        }
        // Another instance's checkpoint, or one of an earlier run of this instance that
        // was committed but not stored before it stopped (a SIGKILL): the hub loaded the
        // store before it came.
        let rows: Vec<(i64, Aggregate)> = write.rows.clone();
        self.p.hub.update(topic, partition, rows);
        if local {
            return;
        }
        let cp = &write.checkpoint;
        let written: Vec<i64> = write.rows.iter().map(|(s, _)| *s).collect();
        self.p.live.mark_revised(write.revised.iter().copied());
        let newly = self.p.live.publish_remote(
            topic,
            partition,
            PartitionCounts::from(cp),
            cp.max_event_ts
                .map(|m| m.saturating_sub(self.p.lateness_ms)),
            owner,
            &written,
        );
        if !newly.is_empty() {
            if let Err(e) = self.p.store.mark_revised(&newly) {
                tracing::error!(error = %e, "cannot mark windows revised");
            }
        }
    }

    /// The consumer group's members, by instance id.
    fn list_members(&self) {
        match self
            .consumer
            .fetch_group_list(Some(&self.p.group), Duration::from_secs(1))
        {
            Ok(list) => {
                let ids: Vec<String> = list
                    .groups()
                    .iter()
                    .filter(|g| g.name() == self.p.group)
                    .flat_map(|g| g.members())
                    .filter_map(|m| m.client_id().strip_prefix(CLIENT_ID_PREFIX))
                    .map(str::to_owned)
                    .collect();
                self.p.live.set_members(ids);
            }
            Err(e) => tracing::debug!(error = %e, "cannot list the group's members"),
        }
    }
}
