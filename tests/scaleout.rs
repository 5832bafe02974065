//! Scale-out: several instances in one consumer group, on a 3-broker Apache Kafka cluster.
//! Every instance shows the global numbers (every partition, whoever reads it), and they
//! stay exact when instances come, go, die, are expelled, or a broker dies mid-transaction.
//! Each test ends by comparing every live instance's API with an independent
//! recomputation of the produced events: nothing lost, nothing counted twice.

mod group;
mod state_topic;

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::backbone::event_set;
use crate::util::*;
use group::{cluster, local_partitions, progress_past, started, Group};

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
        // Any instance shows the whole group: every partition (the others' once it read
        // the state topic), three instances.
        let s = poll_until(
            Duration::from_secs(30),
            "instance 2 to list the three instances and every partition",
            || async {
                let s = group.status(2).await?;
                (s["instances"].as_array()?.len() == 3 && s["partitions"].as_array()?.len() == 6)
                    .then_some(s)
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
