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
