//! Faults users meet: graceful stops, broker outages, offsets outside the log, rebalances,
//! disk trouble. Each test names the guarantee it checks.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard::demo::EmbeddedKafka;
use pulseboard::store::Store;
use pulseboard_model::agg::Aggregate;

use crate::backbone::{event_set, EventSet};
use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_flushes_and_restart_reprocesses_nothing() -> Result<()> {
    let tansu = Tansu::start()?;
    let brokers = tansu.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let set = event_set(31, 3_000, 4, now_ms() - 10 * 60_000, 30_000);
    produce(&producer(&brokers)?, "clicks", &set.payloads).await?;
    let (folded, late) = expected_folded(&set.events, WIDTH, LATENESS);

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "graceful", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = ChildApp::spawn(&args)?;
    let before = wait_for_totals(
        child.addr,
        folded.len() as u64,
        set.malformed + late,
        Duration::from_secs(60),
    )
    .await?;
    let t = Instant::now();
    let status = child.terminate()?;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "stopped within 15 s (took {:?})",
        t.elapsed()
    );

    // The next start reads nothing again: every partition is caught up with nothing read.
    let child = ChildApp::spawn(&args)?;
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
) -> Result<()> {
    let what = format!("status to say broker_reachable = {reachable}");
    poll_until(timeout, &what, || async {
        let s = get_json(addr, "/api/v1/status").await?;
        (s["broker_reachable"] == reachable).then_some(())
    })
    .await
}

/// CPU time (user + system) of a process, from /proc.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|x| x.1).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Duration::from_millis(ticks * 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_is_reported_and_nothing_is_lost() -> Result<()> {
    let kafka = EmbeddedKafka::start(&[("clicks".into(), 2), ("clicks-dlq".into(), 1)])?;
    let brokers = kafka.bootstrap().to_owned();
    let start = now_ms() - 10 * 60_000;
    let set = event_set(41, 2_000, 2, start, 40_000);
    let half = set.payloads.len() / 2;
    let p = producer(&brokers)?;
    produce(&p, "clicks", &set.payloads[..half]).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "outage", dir.path());
    // A child process, so its CPU time is its own and not that of the other tests here.
    let app = ChildApp::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    poll_until(Duration::from_secs(60), "first half consumed", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        (sum_next_offsets(&s) as usize == half && s["broker_reachable"] == true).then_some(())
    })
    .await?;

    kafka.broker_down()?;
    wait_for_reachable(app.addr, false, Duration::from_secs(30)).await?;
    // Serving continues from the store, and the pipeline does not spin while it waits.
    let w = get_json(app.addr, "/api/v1/windows?from=0")
        .await
        .ok_or_else(|| anyhow!("windows during outage"))?;
    assert!(!w["windows"].as_array().map(Vec::is_empty).unwrap_or(true));
    let pid = app.child.id();
    let (cpu0, t0) = (cpu_time(pid)?, Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await; // a measurement window, not a wait
    let busy = (cpu_time(pid)? - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    assert!(
        busy < 0.5,
        "no busy loop during the outage: {busy:.2} cores used"
    );

    kafka.broker_up()?;
    wait_for_reachable(app.addr, true, Duration::from_secs(60)).await?;
    // A fresh producer: the test's own client is not what is under test here.
    produce(&producer(&brokers)?, "clicks", &set.payloads[half..]).await?;
    let (folded, late) = expected_folded(&set.events, WIDTH, LATENESS);
    let s = wait_for_totals(
        app.addr,
        folded.len() as u64,
        set.malformed + late,
        Duration::from_secs(90),
    )
    .await?;
    assert_eq!(s["broker_reachable"], true);
    let windows = get_json(app.addr, "/api/v1/windows?from=0&limit=10000&top=1000")
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&windows, &recompute(&folded, WIDTH))?;
    let status = app.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
    kafka.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_outside_the_log_is_reset_by_policy_and_reported() -> Result<()> {
    // First life of the topic: 200 messages, all read and stored.
    let first = Tansu::start()?;
    create_topic(&first.bootstrap(), "clicks", 1).await?;
    let old = event_set(51, 200, 1, now_ms() - 30 * 60_000, 20_000);
    produce(&producer(&first.bootstrap())?, "clicks", &old.payloads).await?;
    let dir = data_dir();
    let args = broker_args(&first.bootstrap(), "clicks", "reset", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let (old_folded, old_late) = expected_folded(&old.events, WIDTH, LATENESS);
    wait_for_totals(
        app.addr,
        old_folded.len() as u64,
        old.malformed + old_late,
        Duration::from_secs(60),
    )
    .await?;
    app.stop().await?;
    drop(first);

    // The topic is recreated (a new broker): 30 new messages, offsets 0..30, below the stored one.
    let second = Tansu::start()?;
    let brokers = second.bootstrap();
    create_topic(&brokers, "clicks", 1).await?;
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
    let out = run_to_exit(&fail_args, Duration::from_secs(60))?;
    assert!(!out.0.success(), "--offset-reset fail exits non-zero");
    assert!(
        out.1.contains("outside the log") && out.1.contains("--offset-reset"),
        "stderr: {}",
        out.1
    );

    // --offset-reset earliest (default): the new log is read, reported, and nothing doubles.
    let args = broker_args(&brokers, "clicks", "reset", dir.path());
    let app = App::start(&args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let (new_folded, new_late) = expected_folded(&new.events, WIDTH, LATENESS);
    let s = wait_for_totals(
        app.addr,
        (old_folded.len() + new_folded.len()) as u64,
        old.malformed + old_late + new.malformed + new_late,
        Duration::from_secs(60),
    )
    .await?;
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
    let windows = get_json(app.addr, "/api/v1/windows?from=0&limit=10000&top=1000")
        .await
        .ok_or_else(|| anyhow!("windows failed"))?;
    assert_windows_match(&windows, &recompute(&all, WIDTH))?;
    app.stop().await
}

/// Run the binary to its exit (bounded); returns the status and stderr.
fn run_to_exit(args: &[String], timeout: Duration) -> Result<(std::process::ExitStatus, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulseboard"))
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("pulseboard did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok((status, reader.join().unwrap_or_default()))
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
    let (status, stderr) = run_to_exit(&args, Duration::from_secs(30))?;
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
async fn rebalance_moves_partitions_without_loss_or_double_count() -> Result<()> {
    let tansu = Tansu::start()?;
    let brokers = tansu.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let EventSet {
        payloads,
        events,
        malformed,
    } = event_set(61, 12_000, 4, now_ms() - 40 * 60_000, 120_000);
    let (folded, late) = expected_folded(&events, WIDTH, LATENESS);
    let p = producer(&brokers)?;
    let writer = paced_writer(p, "clicks", payloads.clone(), Duration::from_millis(100));
    let (dir_a, dir_b) = (data_dir(), data_dir());
    // Pulseboard's own session timeout (10 s), not the tests' short one: with 3 s, a member
    // starved of CPU by the other tests in this binary can be expelled from the group, and
    // an expelled member's partitions move without a revoke (see the closing note).
    let args_a = broker_args_with(&brokers, "clicks", "rebalance", dir_a.path(), &[]);
    let args_b = broker_args_with(&brokers, "clicks", "rebalance", dir_b.path(), &[]);
    let a = App::start(&args_a.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    poll_until(Duration::from_secs(60), "A to make progress", || async {
        let s = get_json(a.addr, "/api/v1/status").await?;
        (sum_next_offsets(&s) > 1_000).then_some(())
    })
    .await?;
    // B joins: the partitions are split between A and B.
    let b = App::start(&args_b.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    poll_until(
        Duration::from_secs(60),
        "B to own partitions and read",
        || async {
            let s = get_json(b.addr, "/api/v1/status").await?;
            let parts = s["partitions"].as_array()?;
            (!parts.is_empty() && parts.len() < 4 && s["events_total"].as_u64()? > 300)
                .then_some(())
        },
    )
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
        assert_eq!(agg.events, t.events, "window {start}");
        assert_eq!(
            agg.visitors.estimate(),
            hll_of(&t.visitors),
            "window {start} visitors"
        );
    }
    assert_eq!(merged.len(), truth.len());
    Ok(())
}
