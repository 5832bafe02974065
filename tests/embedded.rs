//! The binary on its embedded default: the path `cargo xtask run` takes.

use std::time::Duration;

use anyhow::Result;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_starts_on_embedded_default_and_serves_numbers() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let child = spawn_child(&["--data-dir", &data, "--demo-rate", "400"])?;
    let status = poll_until(
        Duration::from_secs(15),
        "events_total > 0 within 15 s",
        || async {
            let s = get_json(child.addr, "/api/v1/status").await?;
            (s["events_total"].as_u64()? > 0).then_some(s)
        },
    )
    .await?;
    assert_eq!(status["broker"], "embedded");
    assert_eq!(status["demo"], true);
    let parts = status["partitions"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        parts.len(),
        4,
        "the embedded topic has 4 partitions: {status}"
    );
    let windows = poll_until(Duration::from_secs(15), "a window with events", || async {
        let w = get_json(child.addr, "/api/v1/windows").await?;
        let any = w["windows"]
            .as_array()?
            .iter()
            .any(|w| w["events"].as_u64() > Some(0) && w["unique_visitors"].as_u64() > Some(0));
        any.then_some(w)
    })
    .await?;
    // The busiest window has pages (an old window that only a late click revised may not).
    let busiest = windows["windows"]
        .as_array()
        .and_then(|ws| ws.iter().max_by_key(|w| w["events"].as_u64()))
        .cloned()
        .unwrap_or_default();
    assert!(
        busiest["top_urls"]
            .as_array()
            .is_some_and(|u| !u.is_empty()),
        "{busiest}"
    );
    let summary = get_json(child.addr, "/api/v1/summary?range=5m")
        .await
        .unwrap_or_default();
    assert!(summary["events"].as_u64() > Some(0), "{summary}");
    let status = child.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
    Ok(())
}

/// Run the binary with `args` until it exits (at most 60 s): its status and its output.
fn run_to_exit(args: Vec<String>) -> Result<(std::process::ExitStatus, String)> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pulseboard"))
        .args(["--listen", "127.0.0.1:0"])
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("pulseboard {args:?} still ran after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status, text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_store_is_never_served_as_a_clusters() -> Result<()> {
    let dir = data_dir();
    let data = path_str(dir.path());
    let child = spawn_child(&["--data-dir", &data, "--demo-rate", "400"])?;
    poll_until(Duration::from_secs(15), "demo events counted", || async {
        let s = get_json(child.addr, "/api/v1/status").await?;
        (s["events_total"].as_u64()? > 0).then_some(())
    })
    .await?;
    assert!(child.terminate()?.success());
    // The same data dir against a real cluster: refused, saying what to do.
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let args = broker_args(&brokers, "clicks", "source-test", dir.path());
    let (status, out) = tokio::task::spawn_blocking(move || run_to_exit(args)).await??;
    assert!(!status.success(), "refused with a failure: {status}\n{out}");
    assert!(
        out.contains("the embedded demo") && out.contains("--data-dir"),
        "{out}"
    );
    // Its own data dir serves it; that store then refuses the demo in turn.
    let own = data_dir();
    let args = broker_args(&brokers, "clicks", "source-test", own.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_child(&args)?;
    let s = get_json(child.addr, "/api/v1/status")
        .await
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(
        s["events_total"].as_u64(),
        Some(0),
        "nothing of the demo: {s}"
    );
    assert!(child.terminate()?.success());
    let own_data = path_str(own.path());
    let args = ["--data-dir", &own_data, "--demo-rate", "10"].map(str::to_owned);
    let (status, out) = tokio::task::spawn_blocking(move || run_to_exit(args.to_vec())).await??;
    assert!(!status.success(), "{out}");
    assert!(out.contains("Kafka cluster"), "{out}");
    Ok(())
}
