//! Faults users meet: graceful stops, broker outages, offsets outside the log, rebalances,
//! disk trouble. Each test names the guarantee it checks.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard::demo::EmbeddedKafka;
use pulseboard::store::Store;
use pulseboard_model::agg::Aggregate;
use pulseboard_model::proto::Figures;

use crate::backbone::{event_set, EventSet};
use serde_json::Value;

use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_flushes_and_restart_reprocesses_nothing() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let set = event_set(31, 3_000, 4, now_ms() - 10 * 60_000, 30_000);
    produce(&producer(&brokers)?, "clicks", &set.payloads).await?;
    let (folded, late) = expected_folded(&set.events, WIDTH, LATENESS);

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "graceful", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_child(&args)?;
    let before = wait_for_totals(
        child.addr,
        folded.len() as u64,
        set.malformed,
        Duration::from_secs(60),
    )
    .await?;
    assert_eq!(
        before["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows"
    );
    let t = Instant::now();
    let status = child.terminate()?;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "stopped within 15 s (took {:?})",
        t.elapsed()
    );

    // The next start reads nothing again: every partition is caught up with nothing read.
    let child = spawn_child(&args)?;
    let after = poll_until(
        Duration::from_secs(60),
        "caught up after restart",
        || async {
            let s = get_json(child.addr, "/api/v1/status").await?;
            let parts = s["partitions"].as_array()?;
            let caught_up = parts.len() == 4 && parts.iter().all(|p| p["lag"].as_i64() == Some(0));
            caught_up.then_some(s)
        },
    )
    .await?;
    for p in after["partitions"].as_array().into_iter().flatten() {
        assert_eq!(p["read_since_start"], 0, "nothing re-read: {p}");
    }
    assert_eq!(after["events_total"], before["events_total"]);
    assert_eq!(sum_next_offsets(&after), sum_next_offsets(&before));
    let status = child.terminate()?;
    assert!(status.success());
    Ok(())
}

/// Poll the status until it says the broker is (or is not) reachable.
async fn wait_for_reachable(
    addr: std::net::SocketAddr,
    reachable: bool,
    timeout: Duration,
) -> Result<Value> {
    let what = format!("status to say broker_reachable = {reachable}");
    poll_until(timeout, &what, || async {
        let s = get_json(addr, "/api/v1/status").await?;
        (s["broker_reachable"] == reachable).then_some(s)
    })
    .await
}

/// The share of a core a process used over `window` (a measurement, not a wait).
async fn cores_used(pid: u32, window: Duration) -> Result<f64> {
    let (cpu0, t0) = (cpu_time(pid)?, Instant::now());
    tokio::time::sleep(window).await;
    Ok((cpu_time(pid)? - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_brokers_down_for_a_minute_is_reported_and_nothing_is_lost() -> Result<()> {
    let mut kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let start = now_ms() - 10 * 60_000;
    let set = event_set(41, 2_000, 2, start, 40_000);
    let half = set.payloads.len() / 2;
    produce(&producer(&brokers)?, "clicks", &set.payloads[..half]).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "outage", dir.path());
    // A child process, so its CPU time is its own and not that of the other tests here.
    let app = spawn_child(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    poll_until(Duration::from_secs(90), "first half consumed", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        (sum_next_offsets(&s) as usize == half && s["broker_reachable"] == true).then_some(())
    })
    .await?;

    // Every broker of the cluster dies at once.
    kafka.kill(0)?;
    let down_at = Instant::now();
    let s = wait_for_reachable(app.addr, false, Duration::from_secs(10)).await?;
    // The probe's contract: unreachable within PROBE_INTERVAL + PROBE_TIMEOUT (3 s); the
    // bound here leaves room for a loaded machine.
    assert!(
        down_at.elapsed() < Duration::from_secs(8),
        "reported after {:?}",
        down_at.elapsed()
    );
    assert!(s["cluster"]["error"].is_string(), "the probe says why: {s}");
    // Serving continues from the store, and the pipeline does not spin while it waits.
    let w = get_json(app.addr, "/api/v1/windows?from=0")
        .await
        .ok_or_else(|| anyhow!("windows during outage"))?;
    assert!(!w["windows"].as_array().map(Vec::is_empty).unwrap_or(true));
    let busy = cores_used(app.pid(), Duration::from_secs(5)).await?;
    assert!(
        busy < 0.5,
        "no busy loop during the outage: {busy:.2} cores used"
    );
    // The rest of the minute, checking that it stays reported down all along.
    while down_at.elapsed() < Duration::from_secs(60) {
        let s = get_json(app.addr, "/api/v1/status")
            .await
            .ok_or_else(|| anyhow!("status during the outage"))?;
        assert_eq!(s["broker_reachable"], false, "{s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    kafka.restart(0)?;
    wait_for_reachable(app.addr, true, Duration::from_secs(60)).await?;
    produce(&producer(&brokers)?, "clicks", &set.payloads[half..]).await?;
    let (folded, late) = expected_folded(&set.events, WIDTH, LATENESS);
    let s = wait_for_totals(
        app.addr,
        folded.len() as u64,
        set.malformed,
        Duration::from_secs(120),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows"
    );
    assert_eq!(s["broker_reachable"], true);
    assert_eq!(sum_next_offsets(&s) as usize, set.payloads.len());
    let windows = get_json(app.addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&windows, &recompute(&folded, WIDTH))?;
    let status = app.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_outage_is_reported_by_the_same_probe() -> Result<()> {
    let kafka = EmbeddedKafka::start(&[("clicks".into(), 1), ("clicks-dlq".into(), 1)])?;
    let brokers = kafka.bootstrap().to_owned();
    let dir = data_dir();
    let mut args = broker_args(&brokers, "clicks", "mock-outage", dir.path());
    // The mock broker has no transactions: run as the embedded mode does, without a state topic.
    args.push("--no-state-topic".into());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    wait_for_reachable(app.addr, true, Duration::from_secs(30)).await?;
    kafka.broker_down()?;
    wait_for_reachable(app.addr, false, Duration::from_secs(10)).await?;
    kafka.broker_up()?;
    wait_for_reachable(app.addr, true, Duration::from_secs(30)).await?;
    app.stop().await?;
    kafka.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_of_three_killed_mid_ingest_loses_nothing_and_status_shows_degraded(
) -> Result<()> {
    let mut kafka = Kafka::start_cluster(3)?;
    let brokers = kafka.bootstrap();
    pulseboard_testkit::kafka::create_topic(&brokers, "clicks", 4, 3).await?;
    let set = event_set(43, 8_000, 4, now_ms() - 20 * 60_000, 80_000);
    // Three parts: the first is written before Pulseboard starts; the second is being
    // written (and read) when the broker dies; the third is written only once the status
    // shows the cluster on two brokers, so "ingest goes on" is measured on events that exist
    // only then.
    let (first, rest) = set.payloads.split_at(1_000);
    let (second, third) = rest.split_at(3_000);
    produce(&producer(&brokers)?, "clicks", first).await?;
    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "one-of-three", dir.path());
    let app = spawn_child(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let s = poll_until(Duration::from_secs(90), "ingest under way", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        (sum_next_offsets(&s) > 0).then_some(s)
    })
    .await?;
    assert_eq!(s["cluster"]["degraded"], false, "{s}");
    assert_eq!(s["cluster"]["brokers"].as_array().map(Vec::len), Some(3));
    let writer = paced_writer(
        producer(&brokers)?,
        "clicks",
        second.to_vec(),
        Duration::from_millis(50),
    );

    // Node 2 dies while the second part is written (30 chunks, one every 50 ms) and read;
    // the writer keeps writing (acks=all, min.insync.replicas=2).
    let victim = 1;
    let victim_id = kafka.node_id(victim) as i64;
    kafka.kill(victim)?;
    let killed = Instant::now();
    let s = poll_until(
        Duration::from_secs(60),
        "status to show the degraded cluster",
        || async {
            let s = get_json(app.addr, "/api/v1/status").await?;
            let missing = s["cluster"]["missing_brokers"].as_array()?;
            (s["broker_reachable"] == true
                && s["cluster"]["degraded"] == true
                && missing.iter().any(|m| m.as_i64() == Some(victim_id)))
            .then_some(s)
        },
    )
    .await;
    let s = app.with_log(s, 40)?;
    let degraded = killed.elapsed();
    assert!(
        s["cluster"]["under_replicated_partitions"].as_u64() > Some(0),
        "{s}"
    );
    // The second part is delivered on two brokers (its writer waits for every ack), then
    // the third is written to the degraded cluster and must be read.
    tokio::time::timeout(Duration::from_secs(150), writer)
        .await
        .context("the second part's writer did not finish within 150 s")???;
    let delivered = killed.elapsed();
    let writer = paced_writer(
        producer(&brokers)?,
        "clicks",
        third.to_vec(),
        Duration::from_millis(50),
    );
    let s = poll_until(
        Duration::from_secs(60),
        "ingest to go on with two brokers",
        || async {
            let s = get_json(app.addr, "/api/v1/status").await?;
            (sum_next_offsets(&s) >= (first.len() + second.len() + 500) as i64).then_some(s)
        },
    )
    .await;
    let s = app.with_log(s, 60)?;
    assert_eq!(s["cluster"]["degraded"], true, "still on two brokers: {s}");
    eprintln!(
        "one broker of three killed: degraded in the status after {degraded:?}, second part \
         delivered after {delivered:?}, 500 of the third read after {:?}",
        killed.elapsed()
    );

    kafka.restart(victim)?;
    poll_until(Duration::from_secs(120), "the cluster to heal", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        (s["cluster"]["degraded"] == false && s["cluster"]["brokers"].as_array()?.len() == 3)
            .then_some(())
    })
    .await?;
    writer.await??;
    let (folded, _) = expected_folded(&set.events, WIDTH, LATENESS);
    wait_for_totals(
        app.addr,
        folded.len() as u64,
        set.malformed,
        Duration::from_secs(120),
    )
    .await?;
    let windows = get_json(app.addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&windows, &recompute(&folded, WIDTH))?;
    let status = app.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
    Ok(())
}

/// Delete the topic and create it again, empty, with `partitions` partitions.
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
    let windows = get_json(app.addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&windows, &recompute(&all, WIDTH))?;
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
    let windows = get_json(app.addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&windows, &recompute(&all, WIDTH))?;
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

/// A child whose stderr is collected, for tests that read what it said before it exited.
pub(crate) struct StderrChild {
    child: std::process::Child,
    stderr: std::thread::JoinHandle<String>,
}

impl StderrChild {
    fn start(args: &[String], log: &str) -> Result<Self> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulseboard"));
        cmd.args(args)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = pulseboard_testkit::process::spawn(cmd)?;
        let mut stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        Ok(StderrChild { child, stderr })
    }

    /// Wait (bounded) for the exit; the status and everything written to stderr.
    pub(crate) async fn wait_with_stderr(
        mut self,
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, String)> {
        let status = tokio::task::spawn_blocking(move || {
            let r = pulseboard_testkit::process::wait_timeout(&mut self.child, timeout);
            if !matches!(r, Ok(Some(_))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            (r, self.stderr)
        })
        .await?;
        let (r, stderr) = status;
        match r? {
            Some(s) => Ok((s, stderr.join().unwrap_or_default())),
            None => bail!("pulseboard did not exit within {timeout:?}"),
        }
    }
}

/// Start the binary with `args` on port 0, collecting stderr; returns it with its address.
pub(crate) fn spawn_child_stderr(args: &[String]) -> Result<(StderrChild, std::net::SocketAddr)> {
    let mut all = vec!["--listen".to_owned(), "127.0.0.1:0".to_owned()];
    all.extend(args.iter().cloned());
    let mut c = StderrChild::start(&all, "warn")?;
    let stdout = c.child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("Pulseboard on http://") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("pulseboard did not print its address within 60 s")?
        .parse()?;
    Ok((c, addr))
}

/// Run the binary to its exit (bounded); returns the status and stderr.
async fn run_to_exit(
    args: &[String],
    timeout: Duration,
) -> Result<(std::process::ExitStatus, String)> {
    StderrChild::start(args, "error")?
        .wait_with_stderr(timeout)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_data_dir_is_a_clear_error_and_nonzero_exit() -> Result<()> {
    let dir = data_dir();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x")?;
    let args: Vec<String> = [
        "--brokers",
        "127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([path_str(&file)])
    .collect();
    let (status, stderr) = run_to_exit(&args, Duration::from_secs(30)).await?;
    assert!(!status.success());
    assert!(
        stderr.contains("cannot open the store") && stderr.contains("not-a-dir"),
        "stderr: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file)?,
        "x",
        "nothing written over it"
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
