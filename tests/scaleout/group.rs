//! The scale-out tests' harness: the instances of one consumer group as child processes,
//! each with its own data dir, started, stopped, killed and wiped by index; the waits on what
//! they report (partitions owned, the group's offsets); and the check that ends each test,
//! every live instance's API against the recomputation (with the store and the state topic
//! in the error when it differs).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::state_topic::state_topic_trace;
use super::{LATENESS, TOPIC, WIDTH};
use crate::backbone::EventSet;
use crate::util::*;

/// Instances of one consumer group, each a child `pulseboard` with its own data dir.
pub(super) struct Group {
    brokers: String,
    group: String,
    args: Vec<String>,
    dirs: Vec<tempfile::TempDir>,
    children: Vec<Option<ChildApp>>,
}

impl Group {
    /// `n` instances (none started) of group `group` on `brokers`.
    pub(super) fn new(brokers: &str, group: &str, n: usize, extra: &[&str]) -> Self {
        let mut args: Vec<String> = [
            "--public-dashboard",
            "--property",
            "plan",
            "--brokers",
            brokers,
            "--topics",
            TOPIC,
            "--group",
            group,
        ]
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

    pub(super) fn start(&mut self, i: usize) -> Result<()> {
        let mut args = self.args.clone();
        args.push("--data-dir".into());
        args.push(path_str(self.dirs[i].path()));
        let child = spawn_child(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// One instance more (not started).
    pub(super) fn add(&mut self) {
        self.dirs.push(data_dir());
        self.children.push(None);
    }

    /// Replace instance `i`'s data dir by an empty one (it must be stopped).
    pub(super) fn wipe(&mut self, i: usize) {
        self.dirs[i] = data_dir();
    }

    pub(super) fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(c) = self.children[i].take() {
            c.kill9()?;
        }
        Ok(())
    }

    pub(super) fn stop(&mut self, i: usize) -> Result<()> {
        if let Some(c) = self.children[i].take() {
            let status = c.terminate()?;
            if !status.success() {
                bail!("instance {i} exited with {status} on SIGTERM");
            }
        }
        Ok(())
    }

    pub(super) fn child(&self, i: usize) -> Result<&ChildApp> {
        self.children[i]
            .as_ref()
            .ok_or_else(|| anyhow!("instance {i} is not running"))
    }

    pub(super) fn running(&self) -> Vec<usize> {
        (0..self.children.len())
            .filter(|i| self.children[*i].is_some())
            .collect()
    }

    pub(super) async fn status(&self, i: usize) -> Option<Value> {
        get_json(self.children[i].as_ref()?.addr, "/api/v1/status").await
    }

    /// Poll until instance `i` reads at least one partition of its own.
    pub(super) async fn wait_owns_some(&self, i: usize) -> Result<()> {
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
    pub(super) async fn assert_all_exact(&mut self, set: &EventSet) -> Result<()> {
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
            let exact = match assert_api_matches(addr, &folded, WIDTH).await {
                // Each site on each instance too.
                Ok(()) => match assert_sites_match(addr, &folded, WIDTH).await {
                    Ok(()) => assert_props_match(addr, &folded, WIDTH).await,
                    e => e,
                },
                e => e,
            };
            if let Err(e) = exact {
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

/// Partitions the instance reads itself.
pub(super) fn local_partitions(status: &Value) -> usize {
    status["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["local"] == true).count())
        .unwrap_or(0)
}

/// `n` instances of group `name` (with `extra` arguments), started and each reading
/// partitions; then a producer writing `set` in `slices` slices (100 messages every
/// `every`), the first one started.
pub(super) async fn started(
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
pub(super) async fn cluster(partitions: i32) -> Result<(Kafka, String)> {
    let kafka = Kafka::start_cluster(3)?;
    let brokers = kafka.bootstrap();
    pulseboard_testkit::kafka::create_topic(&brokers, TOPIC, partitions, 3).await?;
    Ok((kafka, brokers))
}

/// Poll until the group's progress (the offsets every partition's owner checkpointed, as
/// instance `i` sees them) passes `after`; returns it.
pub(super) async fn progress_past(group: &Group, i: usize, after: i64, total: i64) -> Result<i64> {
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
