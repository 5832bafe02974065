//! A catch-up is not lateness: a prefilled topic of in-order events on uneven partitions,
//! read from the start with a short idle timeout while the machine is busy, and through a
//! SIGKILL mid-catch-up, counts no event late and shows no window revised. (A partition
//! that has not been read to its end is never idle: see server/src/progress/watermark.rs.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use pulseboard_model::event::Event;
use pulseboard_model::gen::{GenConfig, Generator};

use crate::util::*;

const WIDTH: i64 = 10_000;

/// `n` events in event-time order over 20 minutes ending 5 minutes ago, for `partition`.
fn in_order(seed: u64, n: usize, partition: i32, start: i64) -> Vec<(i32, Event)> {
    let mut gen = Generator::new(seed, GenConfig::default());
    (0..n)
        .map(|i| {
            let ts = start + (i as i64) * 20 * 60_000 / n as i64;
            let mut ev = gen.next_event(ts);
            ev.ts = ts;
            (partition, ev)
        })
        .collect()
}

/// A busy thread until dropped: one core of the two taken (the other tests running beside
/// this one are bounded in time too).
struct Load(Arc<AtomicBool>);

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..1 {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            });
        }
        Load(stop)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_of_in_order_events_counts_nothing_late_even_through_a_sigkill() -> Result<()> {
    let kafka = Kafka::start()?;
    let brokers = kafka.bootstrap();
    create_topic(&brokers, "catchup", 2).await?;
    let start = now_ms() - 25 * 60_000;
    // Uneven: partition 0 has three times partition 1's events, over the same 20 minutes.
    let mut events = in_order(3, 9_000, 0, start);
    events.extend(in_order(4, 3_000, 1, start));
    let payloads: Vec<(i32, Vec<u8>)> = events
        .iter()
        .map(|(p, e)| (*p, e.to_json().into_bytes()))
        .collect();
    produce(&producer(&brokers)?, "catchup", &payloads).await?;

    let dir = data_dir();
    let mut args = broker_args(&brokers, "catchup", "catchup-test", dir.path());
    // An idle timeout far below how long the catch-up takes: before the fix, a partition
    // not yet read (or between two fetches) was taken for idle within it.
    args.extend(["--idle-timeout".to_owned(), "100ms".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let load = Load::start();
    let child = spawn_child(&args)?;
    poll_until(
        Duration::from_secs(90),
        "the catch-up under way",
        || async {
            let s = get_json(child.addr, "/api/v1/status").await?;
            let n = s["events_total"].as_u64()?;
            (n > 0 && n < 12_000).then_some(n)
        },
    )
    .await?;
    child.kill9()?;
    let child = spawn_child(&args)?;
    let status = wait_for_totals(child.addr, 12_000, 0, Duration::from_secs(120)).await?;
    drop(load);
    assert_eq!(status["late_events_total"].as_u64(), Some(0), "{status}");
    assert_eq!(status["revised_events_total"].as_u64(), Some(0), "{status}");
    let windows = get_json(child.addr, ALL_WINDOWS)
        .await
        .ok_or_else(|| anyhow::anyhow!("no windows"))?;
    let revised: Vec<i64> = windows["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["state"] == "revised")
        .filter_map(|w| w["start"].as_i64())
        .collect();
    assert!(revised.is_empty(), "windows shown revised: {revised:?}");
    let all: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_api_matches(child.addr, &all, WIDTH).await?;
    let stopped = child.terminate()?;
    assert!(stopped.success(), "graceful stop exits 0: {stopped}");
    Ok(())
}
