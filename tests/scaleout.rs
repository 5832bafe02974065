//! Scale-out: several instances in one consumer group, on a 3-broker Apache Kafka cluster.
//! Every instance shows the global numbers (every partition, whoever reads it), and they
//! stay exact when instances come, go, die, are expelled, or a broker dies mid-transaction.
//! Each test ends by comparing every live instance's API with an independent
//! recomputation of the produced events: nothing lost, nothing counted twice.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use crate::backbone::{event_set, EventSet};
use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;
const TOPIC: &str = "clicks";

/// SIGKILLs per multi-instance kill test in the suite (two such tests: 20 in all);
/// `cargo xtask soak` sets more with `PULSEBOARD_SOAK_KILLS` (half of it each).
fn kills_per_test() -> usize {
    std::env::var("PULSEBOARD_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(10, |k| k.div_ceil(2))
}

/// Instances of one consumer group, each a child `pulseboard` with its own data dir.
struct Group {
    brokers: String,
    group: String,
    args: Vec<String>,
    dirs: Vec<tempfile::TempDir>,
    children: Vec<Option<ChildApp>>,
}

impl Group {
    /// `n` instances (none started) of group `group` on `brokers`.
    fn new(brokers: &str, group: &str, n: usize, extra: &[&str]) -> Self {
        let mut args: Vec<String> = ["--brokers", brokers, "--topics", TOPIC, "--group", group]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // The data dir comes per instance, in `start`.
        args.extend(
            FAST_GROUP_OPTIONS
                .iter()
                .flat_map(|(k, v)| ["--kafka-option".to_owned(), format!("{k}={v}")]),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        Group {
            brokers: brokers.to_owned(),
            group: group.to_owned(),
            args,
            dirs: (0..n).map(|_| data_dir()).collect(),
            children: (0..n).map(|_| None).collect(),
        }
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let mut args = self.args.clone();
        args.push("--data-dir".into());
        args.push(path_str(self.dirs[i].path()));
        let child = spawn_child(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// One instance more (not started).
    fn add(&mut self) {
        self.dirs.push(data_dir());
        self.children.push(None);
    }

    /// Replace instance `i`'s data dir by an empty one (it must be stopped).
    fn wipe(&mut self, i: usize) {
        self.dirs[i] = data_dir();
    }

    fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(c) = self.children[i].take() {
            c.kill9()?;
        }
        Ok(())
    }

    fn stop(&mut self, i: usize) -> Result<()> {
        if let Some(c) = self.children[i].take() {
            let status = c.terminate()?;
            if !status.success() {
                bail!("instance {i} exited with {status} on SIGTERM");
            }
        }
        Ok(())
    }

    fn child(&self, i: usize) -> Result<&ChildApp> {
        self.children[i]
            .as_ref()
            .ok_or_else(|| anyhow!("instance {i} is not running"))
    }

    fn running(&self) -> Vec<usize> {
        (0..self.children.len())
            .filter(|i| self.children[*i].is_some())
            .collect()
    }

    async fn status(&self, i: usize) -> Option<Value> {
        get_json(self.children[i].as_ref()?.addr, "/api/v1/status").await
    }

    /// Poll until instance `i` reads at least one partition of its own.
    async fn wait_owns_some(&self, i: usize) -> Result<()> {
        poll_until(
            Duration::from_secs(90),
            &format!("instance {i} to read partitions"),
            || async { (local_partitions(&self.status(i).await?) > 0).then_some(()) },
        )
        .await
    }

    /// Poll until every running instance shows the set's events folded and its malformed
    /// messages dead-lettered, then compare each one's windows with the recomputation. On
    /// a mismatch the instance is stopped and its store compared partition by partition
    /// (in the error).
    async fn assert_all_exact(&mut self, set: &EventSet) -> Result<()> {
        let (folded, _) = expected_folded(&set.events, WIDTH, LATENESS);
        for i in self.running() {
            let addr = self.child(i)?.addr;
            wait_for_totals(
                addr,
                folded.len() as u64,
                set.malformed,
                Duration::from_secs(180),
            )
            .await
            .map_err(|e| anyhow!("instance {i}: {e:#}"))?;
            if let Err(e) = assert_api_matches(addr, &folded, WIDTH).await {
                let _ = self.stop(i);
                let detail = store_vs_truth(self.dirs[i].path(), &set.events)
                    .unwrap_or_else(|e| format!("(store not readable: {e:#})"));
                let trace = state_topic_trace(&self.brokers, &format!("{}-windows", self.group))
                    .unwrap_or_else(|e| format!("(state topic not readable: {e:#})"));
                bail!("instance {i}: {e:#}; its store, partition by partition: {detail}\nthe state topic:\n{trace}");
            }
        }
        Ok(())
    }
}

/// Where a stopped instance's store differs from the recomputation, per partition.
fn store_vs_truth(
    dir: &std::path::Path,
    events: &[(i32, pulseboard_model::event::Event)],
) -> Result<String> {
    let store = pulseboard::store::Store::open(dir, WIDTH)?;
    let rows = store.windows_in(i64::MIN, i64::MAX)?;
    let mut out = Vec::new();
    let partitions: std::collections::BTreeSet<i32> = events.iter().map(|(p, _)| *p).collect();
    for p in partitions {
        let mine: Vec<pulseboard_model::event::Event> = events
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, e)| e.clone())
            .collect();
        let stored: std::collections::BTreeMap<i64, u64> = rows
            .iter()
            .filter(|w| w.partition == p)
            .map(|w| (w.start, w.agg.events))
            .collect();
        for (start, t) in &recompute(&mine, WIDTH) {
            let got = stored.get(start).copied().unwrap_or(0);
            if got != t.events {
                out.push(format!(
                    "p{p} w{start}: stored {got}, expected {}",
                    t.events
                ));
            }
        }
        let cp = store.partition(TOPIC, p)?;
        out.push(format!(
            "p{p}: seq {:?} next_offset {:?} events {:?}",
            cp.as_ref().map(|c| c.seq),
            cp.as_ref().map(|c| c.next_offset),
            cp.as_ref().map(|c| c.events)
        ));
    }
    Ok(out.join("; "))
}

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
fn state_topic_trace(brokers: &str, topic: &str) -> Result<String> {
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
                w.0.events, w.0.seq
            ),
            Ok(other) => format!("{at} {other:?}").chars().take(120).collect(),
            Err(e) => format!("{at} unreadable: {e}"),
        });
    })?;
    Ok(lines.join("\n"))
}

/// Partitions the instance reads itself.
fn local_partitions(status: &Value) -> usize {
    status["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["local"] == true).count())
        .unwrap_or(0)
}

/// `n` instances of group `name` (with `extra` arguments), started and each reading
/// partitions; then a producer writing `set` in `slices` slices (100 messages every
/// `every`), the first one started.
async fn started(
    brokers: &str,
    name: &str,
    n: usize,
    extra: &[&str],
    set: &EventSet,
    slices: usize,
    every: Duration,
) -> Result<(Group, SlicedWriter, std::ops::Range<i64>)> {
    let mut group = Group::new(brokers, name, n, extra);
    for i in 0..n {
        group.start(i)?;
    }
    for i in 0..n {
        group.wait_owns_some(i).await?;
    }
    let mut writer = SlicedWriter::new(producer(brokers)?, TOPIC, &set.payloads, slices, every, 0);
    let first = writer.next_slice().await?;
    Ok((group, writer, first))
}

/// A 3-broker cluster with a `partitions`-partition input topic (replication 3).
async fn cluster(partitions: i32) -> Result<(Kafka, String)> {
    let kafka = Kafka::start_cluster(3)?;
    let brokers = kafka.bootstrap();
    pulseboard_testkit::kafka::create_topic(&brokers, TOPIC, partitions, 3).await?;
    Ok((kafka, brokers))
}

/// Poll until the group's progress (the offsets every partition's owner checkpointed, as
/// instance `i` sees them) passes `after`; returns it.
async fn progress_past(group: &Group, i: usize, after: i64, total: i64) -> Result<i64> {
    poll_until(
        Duration::from_secs(120),
        &format!("the group's progress past {after}, seen by instance {i}"),
        || async {
            let next = sum_next_offsets(&group.status(i).await?);
            (next > after || next >= total).then_some(next)
        },
    )
    .await
}

/// Kill a random instance `kills` times while a producer writes a known set, restarting it
/// at once with its data dir; then every instance must show exactly the recomputation.
async fn random_kills(instances: usize, kills: usize, seed: u64) -> Result<()> {
    let (_kafka, brokers) = cluster(6).await?;
    let set = event_set(
        seed,
        kills * 2_000,
        6,
        now_ms() - 40 * 60_000,
        kills as i64 * 20_000,
    );
    let total = set.payloads.len() as i64;
    // About 300 messages/s, in a slice per kill and the last after them: every kill lands
    // before the stream ends.
    let (mut group, mut writer, mut slice) = started(
        &brokers,
        &format!("kills-{instances}"),
        instances,
        &[],
        &set,
        kills + 1,
        Duration::from_millis(330),
    )
    .await?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let t0 = Instant::now();
    for kill in 0..kills {
        if kill > 0 {
            slice = writer.next_slice().await?;
        }
        let watcher = rng.usize(0..instances);
        // The group reads into the slice being written.
        let seen = progress_past(&group, watcher, slice.start + 300, total).await?;
        assert!(
            seen < total && writer.slices_left() > 0,
            "kill {} lands mid-stream: offsets {seen} of {total}",
            kill + 1
        );
        // Land the kill at an arbitrary instant relative to the checkpoint interval.
        tokio::time::sleep(Duration::from_millis(rng.u64(0..1_000))).await;
        let victim = rng.usize(0..instances);
        group.kill(victim)?;
        group.start(victim)?;
        eprintln!(
            "kill {} of {kills}: instance {victim} of {instances} after offset sum {seen} (slice {slice:?}) at {:?}",
            kill + 1,
            t0.elapsed()
        );
    }
    writer.finish().await?;
    group.assert_all_exact(&set).await?;
    // Every instance lists every partition, with its owner among the live instances.
    for i in group.running() {
        let s = group.status(i).await.ok_or_else(|| anyhow!("no status"))?;
        let parts = s["partitions"].as_array().cloned().unwrap_or_default();
        assert_eq!(parts.len(), 6, "instance {i} lists every partition: {s}");
        let alive: Vec<&str> = s["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str())
            .collect();
        for p in &parts {
            let owner = p["owner"]["id"].as_str().unwrap_or_default();
            assert!(
                alive.contains(&owner),
                "instance {i}: partition {} owned by {owner}, not among the alive {alive:?}",
                p["partition"]
            );
        }
    }
    for i in group.running() {
        group.stop(i)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_through_random_sigkills_both_show_exact_global_numbers() -> Result<()> {
    random_kills(2, kills_per_test(), 71).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_through_random_sigkills_all_show_exact_global_numbers() -> Result<()> {
    random_kills(3, kills_per_test(), 73).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_one_to_three_to_one_mid_stream_gracefully_and_by_sigkill_is_exact() -> Result<()> {
    let (_kafka, brokers) = cluster(6).await?;
    let set = event_set(79, 30_000, 6, now_ms() - 40 * 60_000, 300_000);
    let total = set.payloads.len() as i64;
    // Three instances' data dirs; one runs at first. The set is written in six slices: the
    // first now, one after each of the four scaling steps, the last after both rounds.
    let (mut group, mut writer, _) = started(
        &brokers,
        "scale",
        1,
        &[],
        &set,
        6,
        Duration::from_millis(200),
    )
    .await?;
    group.add();
    group.add();
    let mut seen = progress_past(&group, 0, 0, total).await?;
    for (round, by_sigkill) in [(1, false), (2, true)] {
        // 1 → 3.
        group.start(1)?;
        group.start(2)?;
        for i in 0..3 {
            group.wait_owns_some(i).await?;
        }
        // Any instance shows the whole group: every partition, three instances.
        let s = poll_until(
            Duration::from_secs(30),
            "instance 2 to list the three instances",
            || async {
                let s = group.status(2).await?;
                (s["instances"].as_array()?.len() == 3).then_some(s)
            },
        )
        .await?;
        assert_eq!(s["partitions"].as_array().map(Vec::len), Some(6), "{s}");
        // The three read on: the group's offsets pass into a slice written after the step.
        let slice = writer.next_slice().await?;
        seen = progress_past(&group, 1, slice.start + 500, total).await?;
        // 3 → 1.
        if by_sigkill {
            group.kill(1)?;
            group.kill(2)?;
        } else {
            group.stop(1)?;
            group.stop(2)?;
        }
        poll_until(
            Duration::from_secs(90),
            "instance 0 to read every partition again",
            || async { (local_partitions(&group.status(0).await?) == 6).then_some(()) },
        )
        .await?;
        eprintln!("round {round} (1 → 3 → 1, by SIGKILL: {by_sigkill}) done at offset sum {seen}");
        let slice = writer.next_slice().await?;
        seen = progress_past(&group, 0, slice.start + 500, total).await?;
    }
    assert!(
        seen < total && writer.slices_left() > 0,
        "both rounds ran mid-stream: offsets {seen} of {total}, the last slice still to write"
    );
    writer.finish().await?;
    group.assert_all_exact(&set).await?;
    group.stop(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_an_empty_data_dir_serves_the_full_history_restored_from_kafka(
) -> Result<()> {
    let (_kafka, brokers) = cluster(4).await?;
    // One hour of history: 360 windows of 10 s on each of 4 partitions.
    let set = event_set(83, 20_000, 4, now_ms() - 70 * 60_000, 3_600_000);
    produce(&producer(&brokers)?, TOPIC, &set.payloads).await?;
    let (folded, _) = expected_folded(&set.events, WIDTH, LATENESS);
    let mut group = Group::new(&brokers, "history", 2, &[]);
    group.start(0)?;
    group.assert_all_exact(&set).await?;
    // A new instance, its data dir empty, joins the busy group.
    group.wipe(1);
    let t = Instant::now();
    group.start(1)?;
    let c = group.child(1)?;
    wait_for_totals(
        c.addr,
        folded.len() as u64,
        set.malformed,
        Duration::from_secs(120),
    )
    .await?;
    assert_api_matches(c.addr, &folded, WIDTH).await?;
    eprintln!(
        "an empty instance served one hour of history ({} windows) {:?} after it started",
        crate::util::recompute(&folded, WIDTH).len(),
        t.elapsed()
    );
    let s = group.status(1).await.ok_or_else(|| anyhow!("no status"))?;
    assert_eq!(s["state_caught_up"], true, "{s}");
    // It took part of the partitions over, restored from the state topic; both stay exact.
    group.wait_owns_some(1).await?;
    group.assert_all_exact(&set).await?;
    group.stop(1)?;
    group.stop(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paused_past_its_session_is_fenced_and_nothing_is_counted_twice() -> Result<()> {
    let (_kafka, brokers) = cluster(4).await?;
    let set = event_set(89, 24_000, 4, now_ms() - 40 * 60_000, 240_000);
    let total = set.payloads.len() as i64;
    // Frequent checkpoints: once resumed, the frozen member most likely tries to commit
    // before it hears that it was expelled (the test holds either way).
    let (mut group, writer, _) = started(
        &brokers,
        "expelled",
        2,
        &["--checkpoint-interval", "100ms"],
        &set,
        1,
        Duration::from_millis(200),
    )
    .await?;
    let seen = progress_past(&group, 0, 1_000, total).await?;
    // Freeze instance 1 (SIGSTOP) mid-stream, between two of its checkpoints, until the
    // group expels it (its 3 s session runs out) and instance 0 reads every partition.
    group.child(1)?.pause()?;
    poll_until(
        Duration::from_secs(60),
        "instance 0 to take the frozen instance's partitions",
        || async { (local_partitions(&group.status(0).await?) == 4).then_some(()) },
    )
    .await?;
    progress_past(&group, 0, seen + 1_000, total).await?;
    // Resumed, it finds itself out of the group: what it read and did not commit is
    // dropped (its late commits are refused), and it rejoins.
    group.child(1)?.resume()?;
    let fenced = poll_until(
        Duration::from_secs(60),
        "the resumed instance to lose its partitions without a revoke",
        || async {
            let m = crate::util::http_get(group.child(1).ok()?.addr, "/metrics")
                .await
                .ok()?
                .1;
            let lost = metric(&m, "pulseboard_partitions_revoked_total{lost=\"true\"}");
            let aborted = metric(&m, "pulseboard_transactions_aborted_total");
            (lost + aborted > 0.0).then_some((lost, aborted))
        },
    )
    .await?;
    eprintln!(
        "the resumed member: partitions lost without a revoke {}, transactions aborted {}",
        fenced.0, fenced.1
    );
    group.wait_owns_some(1).await?;
    writer.finish().await?;
    group.assert_all_exact(&set).await?;
    group.stop(1)?;
    group.stop(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broker_of_three_killed_during_transactions_loses_nothing() -> Result<()> {
    let (mut kafka, brokers) = cluster(4).await?;
    let set = event_set(97, 30_000, 4, now_ms() - 40 * 60_000, 300_000);
    let total = set.payloads.len() as i64;
    let (mut group, writer, _) = started(
        &brokers,
        "broker-death",
        2,
        &[],
        &set,
        1,
        Duration::from_millis(150),
    )
    .await?;
    let mut seen = progress_past(&group, 0, 500, total).await?;
    // Checkpoint transactions run every second on both instances: each broker in turn
    // (the transaction coordinator, a state-topic leader and the group coordinator among
    // them) dies in the middle of some, and the group goes on while it is down.
    for node in 0..3 {
        kafka.kill(node)?;
        eprintln!("broker {node} killed at offset sum {seen}");
        seen = progress_past(&group, 0, seen + 500, total).await?;
        kafka.restart(node)?;
        seen = progress_past(&group, 1, seen + 200, total).await?;
    }
    writer.finish().await?;
    group.assert_all_exact(&set).await?;
    group.stop(1)?;
    group.stop(0)
}

/// A counter's value in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
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
