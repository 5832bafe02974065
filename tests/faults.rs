//! Faults users meet: graceful stops, broker outages, disk trouble, and (in [`partitions`])
//! offsets outside the log and partitions that move. Each test names the guarantee it checks.

mod partitions;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard::demo::EmbeddedKafka;
use serde_json::Value;

use crate::backbone::event_set;

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
    assert_api_matches(app.addr, &folded, WIDTH).await?;
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
    assert_api_matches(app.addr, &folded, WIDTH).await?;
    let status = app.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
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
