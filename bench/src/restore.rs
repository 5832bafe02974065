//! Step 8: an empty instance restores one hour of history from the state topic.
//!
//! Contract: one instance of a group reads `restore_events` events spread over an hour of
//! event time (ending five minutes ago); a second instance of the same group with an empty
//! data dir starts; the time from its start until its API serves every window of that hour
//! with every event is `restore_empty_instance_ms`. Both run with the server's defaults
//! (state topic on, default checkpoint interval).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::net::{get_json, poll_until};

use crate::child::{ingest_timeout, Child, STATUS};
use crate::load;
use crate::report::Report;
use crate::{step, Plan, PARTITIONS};

/// The topic of the restore run: one hour of history.
const TOPIC_HISTORY: &str = "bench_history";

/// Step 8: one hour of history (`restore_events` events over an hour of event time) read
/// by one instance of a group; then a second instance with an empty data dir joins the
/// group: how long until it serves the whole history (every window, every event), restored
/// from the state topic, not from a shared disk: `restore_empty_instance_ms`.
pub fn measure_restore(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    let n = plan.restore_events;
    step(&format!(
        "restore: prefilling `{TOPIC_HISTORY}` with {n} events over one hour"
    ));
    rt.block_on(create_topic(brokers, TOPIC_HISTORY, PARTITIONS, 1))?;
    load::prefill_history(brokers, TOPIC_HISTORY, n, 3_600_000)?;
    let group = format!("bench-restore-{:08x}", fastrand::u32(..));
    let mut first = Child::spawn_in(plan, brokers, TOPIC_HISTORY, &group, &[])?;
    rt.block_on(first.watch_ingest(TOPIC_HISTORY, n as i64, ingest_timeout(n)))
        .with_context(|| first.log_tail())?;
    rt.block_on(first.verify_totals(n))
        .with_context(|| first.log_tail())?;
    // Its status counts an event before its windows API serves it (the checkpoint that
    // publishes it comes up to a --checkpoint-interval later): wait until it serves them all.
    let addr = first.addr();
    let want = rt
        .block_on(poll_until(
            Duration::from_secs(30),
            "the first instance to serve every event it counted",
            || async {
                let counted = get_json(addr, STATUS).await?["events_total"].as_u64()?;
                let served = history(addr).await?;
                (served.1 == counted).then_some(served)
            },
        ))
        .with_context(|| first.log_tail())?;
    step(&format!(
        "restore: an instance with an empty data dir joins ({} windows, {} events of history)",
        want.0, want.1
    ));
    let second = Child::spawn_in(plan, brokers, TOPIC_HISTORY, &group, &[])?;
    let spawned = second.spawned;
    let addr = second.addr();
    let served = rt.block_on(poll_until(
        Duration::from_secs(120),
        "the new instance to serve the whole history",
        || async { (history(addr).await? == want).then(Instant::now) },
    ));
    let served = served.with_context(|| second.log_tail())?;
    report.restore_history_windows = want.0;
    report.restore_history_events = want.1;
    report.restore_empty_instance_ms = (served - spawned).as_secs_f64() * 1000.0;
    second.stop();
    first.stop();
    Ok(())
}

/// The windows an instance serves, all of them: how many, and their events.
async fn history(addr: SocketAddr) -> Option<(u64, u64)> {
    let w = get_json(addr, "/api/v1/windows?from=0&limit=10000&top=1").await?;
    let windows = w["windows"].as_array()?;
    let events = windows.iter().filter_map(|w| w["events"].as_u64()).sum();
    Some((windows.len() as u64, events))
}
