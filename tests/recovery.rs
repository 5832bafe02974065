//! Restarts and crashes: nothing lost, nothing counted twice.

use std::time::Duration;

use anyhow::Result;

use crate::backbone::{event_set, EventSet};
use crate::util::*;

const WIDTH: i64 = 10_000;
const LATENESS: i64 = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_double_counting() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 2).await?;
    let start = now_ms() - 30 * 60_000;
    let EventSet {
        payloads,
        events,
        malformed,
    } = event_set(11, 4_000, 2, start, 60_000);
    // The first half is read by the first run, the second half only after the restart.
    let half = payloads.len() / 2;
    let p = producer(&brokers)?;
    produce(&p, "clicks", &payloads[..half]).await?;

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "restart-test", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = App::start(&args).await?;
    poll_until(Duration::from_secs(90), "first half consumed", || async {
        let s = get_json(app.addr, "/api/v1/status").await?;
        let next = sum_next_offsets(&s);
        (next as usize == half).then_some(())
    })
    .await?;
    app.stop().await?;

    produce(&p, "clicks", &payloads[half..]).await?;
    let app = App::start(&args).await?;
    let (folded, late) = expected_folded(&events, WIDTH, LATENESS);
    let s = wait_for_totals(
        app.addr,
        folded.len() as u64,
        malformed,
        Duration::from_secs(90),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows, exactly once"
    );
    assert_api_matches(app.addr, &folded, WIDTH).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_counts_nothing_twice() -> Result<()> {
    // 20 in the suite; `cargo xtask soak --kills N` sets more.
    let kills: usize = std::env::var("PULSEBOARD_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "clicks", 4).await?;
    let start = now_ms() - 40 * 60_000;
    let EventSet {
        payloads,
        events,
        malformed,
    } = event_set(23, kills * 1_600, 4, start, kills as i64 * 16_000);
    let (folded, late) = expected_folded(&events, WIDTH, LATENESS);

    // A producer writes the known set in paced slices, about 300 messages/s, one slice per
    // kill and the last after them: every kill lands before the stream ends.
    let mut writer = SlicedWriter::new(
        producer(&brokers)?,
        "clicks",
        &payloads,
        kills + 1,
        Duration::from_millis(330),
        0,
    );

    let dir = data_dir();
    let args = broker_args(&brokers, "clicks", "crash-test", dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let total = payloads.len() as i64;
    let t0 = std::time::Instant::now();
    let mut rng = fastrand::Rng::with_seed(5);
    for kill in 0..kills {
        let slice = writer.next_slice().await?;
        let into = slice.start + 500.min(slice.end - slice.start - 1);
        let child = spawn_child(&args)?;
        // Kill once this incarnation has read into the slice being written: progress of its
        // own (the last kill saw at most the slice before), with more of the stream to come.
        let seen = poll_until(
            Duration::from_secs(90),
            "progress into the slice being written",
            || async {
                let s = get_json(child.addr, "/api/v1/status").await?;
                let next = sum_next_offsets(&s);
                (next > into).then_some(next)
            },
        )
        .await?;
        assert!(
            seen < total && writer.slices_left() > 0,
            "kill {} lands mid-stream: offsets {seen} of {total}",
            kill + 1
        );
        // Land the kill at an arbitrary instant relative to the checkpoint interval.
        tokio::time::sleep(Duration::from_millis(rng.u64(0..1_000))).await;
        child.kill9()?;
        eprintln!(
            "kill {} of {kills} after offset sum {seen} (slice {slice:?}) at {:?}",
            kill + 1,
            t0.elapsed()
        );
    }
    writer.finish().await?;
    let child = spawn_child(&args)?;
    let s = wait_for_totals(
        child.addr,
        folded.len() as u64,
        malformed,
        Duration::from_secs(120),
    )
    .await?;
    assert_eq!(
        s["revised_events_total"].as_u64(),
        Some(late),
        "late events revise their windows, exactly once"
    );
    assert_api_matches(child.addr, &folded, WIDTH).await?;
    // Each of the two sites, through the same kills.
    assert_sites_match(child.addr, &folded, WIDTH).await?;
    assert_props_match(child.addr, &folded, WIDTH).await?;
    let status = child.terminate()?;
    assert!(status.success(), "graceful stop exits 0: {status}");
    Ok(())
}
