//! Faults where a partition's offsets or owner move under Pulseboard: the stored offset is
//! outside the log (reset by `--offset-reset`, and reported), the topic is deleted and
//! recreated under a running instance, and partitions move between two instances without a
//! state topic. Each ends with the API (or the stores) equal to the recomputation.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use pulseboard::store::Store;
use pulseboard_model::agg::Aggregate;
use pulseboard_model::proto::Figures;

use super::{run_to_exit, spawn_child_stderr, LATENESS, WIDTH};
use crate::backbone::{event_set, EventSet};
use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_outside_the_log_is_reset_by_policy_and_reported() -> Result<()> {
    // First life of the topic: 200 messages, all read and stored.
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 1).await?;
    let old = event_set(51, 200, 1, now_ms() - 30 * 60_000, 20_000);
    produce(&producer(&brokers)?, "clicks", &old.payloads).await?;
    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "reset", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let (old_folded, _) = expected_folded(&old.events, WIDTH, LATENESS);
    wait_for_totals(
        app.addr,
        old_folded.len() as u64,
        old.malformed,
        Duration::from_secs(60),
    )
    .await?;
    app.stop().await?;

    // While Pulseboard is stopped the topic is recreated: 30 new messages, offsets 0..30,
    // below the stored one.
    recreate_topic(&brokers, "clicks", 1).await?;
    let new = event_set(52, 30, 1, now_ms() - 5 * 60_000, 3_000);
    produce(&producer(&brokers)?, "clicks", &new.payloads).await?;

    // --offset-reset fail: a clear error and a non-zero exit.
    let mut fail_args = broker_args(&brokers, "clicks", "reset", dir.path());
    fail_args.extend([
        "--offset-reset".into(),
        "fail".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ]);
    let out = run_to_exit(&fail_args, Duration::from_secs(60)).await?;
    assert!(!out.0.success(), "--offset-reset fail exits non-zero");
    assert!(
        out.1.contains("outside the log") && out.1.contains("--offset-reset"),
        "stderr: {}",
        out.1
    );

    // --offset-reset earliest (default): the new log is read, reported, and nothing doubles.
    let args = broker_args(&brokers, "clicks", "reset", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let (new_folded, _) = expected_folded(&new.events, WIDTH, LATENESS);
    // The partitions keep their watermarks across the reset: lateness is judged over both.
    let (_, late) = expected_folded(
        &[old.events.clone(), new.events.clone()].concat(),
        WIDTH,
        LATENESS,
    );
    let s = wait_for_totals(
        app.addr,
        (old_folded.len() + new_folded.len()) as u64,
        old.malformed + new.malformed,
        Duration::from_secs(60),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows"
    );
    let resets = s["offset_resets"].as_array().cloned().unwrap_or_default();
    assert_eq!(resets.len(), 1, "{s}");
    assert_eq!(resets[0]["policy"], "earliest");
    assert_eq!(
        resets[0]["stored"].as_i64(),
        Some(old.payloads.len() as i64)
    );
    assert_eq!(s["partitions"][0]["offset_resets"], 1);
    let mut all = old_folded.clone();
    all.extend(new_folded);
    assert_api_matches(app.addr, &all, WIDTH).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_recreated_under_a_running_pulseboard_applies_the_offset_reset_policy() -> Result<()>
{
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let old = event_set(53, 400, 2, now_ms() - 30 * 60_000, 20_000);
    produce(&producer(&brokers)?, "clicks", &old.payloads).await?;
    let (old_folded, _) = expected_folded(&old.events, WIDTH, LATENESS);

    // Two instances on the same topic, in different groups: one resets to the earliest
    // offset, one is told to fail.
    let (dir_e, dir_f) = (data_dir(), data_dir());
    let args_e = broker_args(&brokers, "clicks", "recreate-earliest", dir_e.path());
    let mut args_f = broker_args(&brokers, "clicks", "recreate-fail", dir_f.path());
    args_f.extend(["--offset-reset".into(), "fail".into()]);
    let app = App::start(&args_e.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let failing = spawn_child_stderr(&args_f)?;
    let failing_addr = failing.1;
    for addr in [app.addr, failing_addr] {
        wait_for_totals(
            addr,
            old_folded.len() as u64,
            old.malformed,
            Duration::from_secs(60),
        )
        .await?;
    }

    // Deleted and created again while both run; the new log is shorter than what was read.
    recreate_topic(&brokers, "clicks", 2).await?;
    let new = event_set(54, 60, 2, now_ms() - 5 * 60_000, 3_000);
    produce(&producer(&brokers)?, "clicks", &new.payloads).await?;

    let (new_folded, _) = expected_folded(&new.events, WIDTH, LATENESS);
    // The partitions keep their watermarks across the reset: lateness is judged over both.
    let (_, late) = expected_folded(
        &[old.events.clone(), new.events.clone()].concat(),
        WIDTH,
        LATENESS,
    );
    let s = wait_for_totals(
        app.addr,
        (old_folded.len() + new_folded.len()) as u64,
        old.malformed + new.malformed,
        Duration::from_secs(120),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows"
    );
    let resets = s["offset_resets"].as_array().cloned().unwrap_or_default();
    assert_eq!(resets.len(), 2, "one reset per partition: {s}");
    assert!(resets.iter().all(|r| r["policy"] == "earliest"), "{s}");
    let mut all = old_folded.clone();
    all.extend(new_folded);
    assert_api_matches(app.addr, &all, WIDTH).await?;
    app.stop().await?;

    // The instance with --offset-reset fail stops by itself, non-zero, saying why.
    let (status, stderr) = failing.0.wait_with_stderr(Duration::from_secs(120)).await?;
    assert!(!status.success(), "--offset-reset fail exits non-zero");
    assert!(
        stderr.contains("outside the log") && stderr.contains("--offset-reset"),
        "stderr: {stderr}"
    );
    Ok(())
}

/// Merge the windows of several stores (one per instance) by window start.
fn merged_stores(dirs: &[&std::path::Path]) -> Result<BTreeMap<i64, Aggregate>> {
    let mut out: BTreeMap<i64, Aggregate> = BTreeMap::new();
    for d in dirs {
        let store = Store::open(d, WIDTH).with_context(|| format!("opening {}", d.display()))?;
        for w in store.windows_in(i64::MIN, i64::MAX)? {
            out.entry(w.start).or_default().merge(&w.agg);
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_without_a_state_topic_moves_partitions_without_loss_or_double_count(
) -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let EventSet {
        payloads,
        events,
        malformed,
    } = event_set(61, 12_000, 4, now_ms() - 40 * 60_000, 120_000);
    let (folded, late) = expected_folded(&events, WIDTH, LATENESS);
    // The first third is written while A reads alone; the rest only once B owns
    // partitions, so B has events to read whenever it joins.
    let (first, rest) = payloads.split_at(payloads.len() / 3);
    let writer = paced_writer(
        producer(&brokers)?,
        "clicks",
        first.to_vec(),
        Duration::from_millis(100),
    );
    let (dir_a, dir_b) = (data_dir(), data_dir());
    // Pulseboard's own session timeout (10 s), not the tests' short one: with 3 s, a member
    // starved of CPU by the other tests in this binary can be expelled from the group, and
    // an expelled member's partitions move without a revoke (see the closing note).
    // Without a state topic each store holds the partitions its instance read (the
    // scale-out tests cover the state topic, where every store holds every partition).
    let mut args_a = broker_args_with(&brokers, "clicks", "rebalance", dir_a.path(), &[]);
    let mut args_b = broker_args_with(&brokers, "clicks", "rebalance", dir_b.path(), &[]);
    args_a.push("--no-state-topic".into());
    args_b.push("--no-state-topic".into());
    let a = App::start(&args_a.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    poll_until(Duration::from_secs(60), "A to make progress", || async {
        let s = get_json(a.addr, "/api/v1/status").await?;
        (sum_next_offsets(&s) > 1_000).then_some(())
    })
    .await?;
    // B joins: the partitions are split between A and B.
    let b = App::start(&args_b.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    poll_until(Duration::from_secs(60), "B to own partitions", || async {
        let s = get_json(b.addr, "/api/v1/status").await?;
        let parts = s["partitions"].as_array()?;
        (!parts.is_empty() && parts.len() < 4).then_some(())
    })
    .await?;
    writer.await??;
    let writer = paced_writer(
        producer(&brokers)?,
        "clicks",
        rest.to_vec(),
        Duration::from_millis(100),
    );
    poll_until(Duration::from_secs(60), "B to read", || async {
        let s = get_json(b.addr, "/api/v1/status").await?;
        (s["events_total"].as_u64()? > 300).then_some(())
    })
    .await?;
    poll_until(
        Duration::from_secs(60),
        "A to keep part of the partitions",
        || async {
            let s = get_json(a.addr, "/api/v1/status").await?;
            let n = s["partitions"].as_array()?.len();
            (1..=3).contains(&n).then_some(())
        },
    )
    .await?;
    // B leaves: its partitions go back to A, which continues where B stopped.
    b.stop().await?;
    writer.await??;
    let total = payloads.len() as i64;
    poll_until(Duration::from_secs(120), "A to read everything", || async {
        let s = get_json(a.addr, "/api/v1/status").await?;
        let parts = s["partitions"].as_array()?;
        (parts.len() == 4 && sum_next_offsets(&s) == total).then_some(())
    })
    .await?;
    a.stop().await?;

    // Across the two stores, every event is counted exactly once.
    let merged = merged_stores(&[dir_a.path(), dir_b.path()])?;
    let truth = recompute(&folded, WIDTH);
    let counted: u64 = merged.values().map(|a| a.events).sum();
    assert_eq!(
        counted,
        folded.len() as u64,
        "events across both stores (late: {late}, malformed: {malformed})"
    );
    for (start, t) in &truth {
        let agg = merged
            .get(start)
            .ok_or_else(|| anyhow!("window {start} missing"))?;
        // The merged window's figures, as the API would show them.
        let figures = serde_json::to_value(Figures::from_aggregate(agg, ALL_TOP))?;
        assert_figures_match(&format!("window {start}"), &figures, t, ALL_TOP, WHOLE)?;
    }
    assert_eq!(merged.len(), truth.len());
    Ok(())
}
