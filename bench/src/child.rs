//! Steps 4–5: the release `pulseboard` binary as a child process, watched from outside.
//!
//! Step 4b ([`pipeline_under_load`]) repeats the run of step 4 (same topic, same events,
//! same arguments, same measurement) while a load runs against the child's HTTP address.
//!
//! Contract: a [`Child`] runs with its own consumer group and a temporary data dir, its
//! stdout and stderr in a log file there (shown on failure), and the server's defaults but
//! for what its step passes (no step overrides `--checkpoint-interval`); progress is read from
//! `/api/v1/status` (the sum of the partitions' `next_offset`), memory from /proc. The rate
//! is counted from the first to the last message read, as Pulseboard's status reports them
//! (`first_read_ms`, `last_read_ms`), the way the peers report theirs (see
//! [`IngestRun::eps`]).

use pulseboard_testkit::process::cpu_time;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pulseboard_testkit::kafka::create_topic;
use pulseboard_testkit::net::{get_json, poll_until};
use pulseboard_testkit::{process, PulseboardProcess};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::load::{self, TOPIC};
use crate::report::Report;
use crate::{step, Plan, PARTITIONS};

/// The topic of the high-cardinality run: every URL distinct.
const TOPIC_HC: &str = "bench_hc";
pub const STATUS: &str = "/api/v1/status";
const POLL_EVERY: Duration = Duration::from_millis(50);

/// What every pipeline run on `bench` shares: the runtime, the plan, the broker (and its
/// pid, for its CPU), and the sum of end offsets at which the topic is consumed.
pub struct PipelineRuns<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub plan: &'a Plan,
    pub brokers: &'a str,
    pub broker_pid: Option<u32>,
    pub target: i64,
}

/// A pipeline run: how it went, the CPU µs per event of the child and of the broker, the
/// bytes the child wrote to disk (`/proc/<pid>/io` `write_bytes`, read before it stops) and
/// its state topic (none with `--no-state-topic`).
struct PipelineRun {
    run: IngestRun,
    child_us: f64,
    broker_us: f64,
    disk_write_bytes: u64,
    state_topic: String,
}

impl PipelineRuns<'_> {
    /// Step 4 and 5a: the child consuming `bench` without a state topic (sled alone, as a
    /// single instance ran before the state topic existed), with its memory: `pipeline_eps`.
    pub fn measure_pipeline(&self, report: &mut Report) -> Result<()> {
        let r = self.run("--no-state-topic", &["--no-state-topic"])?;
        report.cpu.pipeline_us_per_event = r.child_us;
        report.cpu.pipeline_broker_us_per_event = r.broker_us;
        let n = self.plan.events as f64;
        report.pipeline_eps = r.run.eps(self.plan.events);
        report.pipeline_eps_wall = n / (r.run.last - r.run.spawned).as_secs_f64();
        report.pipeline_startup_secs = (r.run.first - r.run.spawned).as_secs_f64();
        report.pipeline_vs_raw = report.pipeline_eps / report.raw_consume_eps;
        report.rss_peak_mb = r.run.hwm_mb;
        report.rss_sampled_max_mb = r.run.rss_max_mb;
        Ok(())
    }

    /// Step 4c: the same run with the state topic (Pulseboard's default with a broker):
    /// every checkpoint is one Kafka transaction (state records + the group's offset
    /// commit), and the state topic's reader runs beside: `pipeline_eps_transactional`, and
    /// what it wrote: `bytes_written_per_event` (the child's disk writes plus the bytes of
    /// the records of its state topic, read back).
    pub fn measure_transactional(&self, report: &mut Report) -> Result<()> {
        let r = self.run("state topic, transactions", &[])?;
        report.cpu.transactional_us_per_event = r.child_us;
        report.cpu.transactional_broker_us_per_event = r.broker_us;
        report.pipeline_eps_transactional = r.run.eps(self.plan.events);
        report.rss_peak_mb_transactional = r.run.hwm_mb;
        let topic = crate::state_topic::read(self.brokers, &r.state_topic)?;
        let written = crate::state_topic::Written {
            events: self.plan.events,
            disk_write_bytes: r.disk_write_bytes,
            state_topic_bytes: topic.bytes(|_| true),
            state_topic_records: topic.records.len() as u64,
        };
        report.bytes_written_per_event = Some(written.per_event());
        report.bytes_written = Some(written);
        Ok(())
    }

    /// Step 4d: the same run as step 4 without segment tables (`--segment-dimensions
    /// none`): the job the peers run (counts, uniques, top lists by window), so
    /// `vs_*_same_job` compare like with like: `pipeline_eps_same_job`.
    pub fn measure_same_job(&self, report: &mut Report) -> Result<()> {
        let extra = ["--no-state-topic", "--segment-dimensions", "none"];
        let r = self.run("--no-state-topic --segment-dimensions none", &extra)?;
        report.cpu.same_job_us_per_event = r.child_us;
        report.cpu.same_job_broker_us_per_event = r.broker_us;
        report.pipeline_eps_same_job = r.run.eps(self.plan.events);
        report.rss_peak_mb_same_job = r.run.hwm_mb;
        Ok(())
    }

    /// One child consuming `bench` with the defaults and `extra` (`what` names them).
    fn run(&self, what: &str, extra: &[&str]) -> Result<PipelineRun> {
        step(&format!(
            "pipeline: pulseboard child consuming `{TOPIC}` ({what})"
        ));
        let (rt, plan) = (self.rt, self.plan);
        let mut child = Child::spawn(plan, self.brokers, TOPIC, extra)?;
        let cpu = load::CpuMeter::start(&[Some(child.pid()), self.broker_pid]);
        let run = rt
            .block_on(child.watch_ingest(TOPIC, self.target, ingest_timeout(plan.events)))
            .with_context(|| child.log_tail())?;
        let [child_s, broker_s] = cpu.stop();
        rt.block_on(child.verify_totals(plan.events))
            .with_context(|| child.log_tail())?;
        let disk_write_bytes = disk_write_bytes(child.pid()).unwrap_or(0);
        let state_topic = child.state_topic();
        child.stop();
        let per_event = |s: f64| s * 1e6 / plan.events as f64;
        Ok(PipelineRun {
            run,
            child_us: per_event(child_s),
            broker_us: per_event(broker_s),
            disk_write_bytes,
            state_topic,
        })
    }
}

/// What a pipeline run consumes: a prefilled topic, its events, and the sum of its
/// partitions' end offsets (where the run is done).
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    pub topic: &'a str,
    pub events: u64,
    pub target: i64,
}

/// Step 4b: a fresh child (the defaults and `extra_args`) consumes `work` as step 4
/// consumes `bench`, while `load` (started as soon as the child listens, given its address)
/// runs; `load` is told to stop when the topic is consumed. Returns the run's events/s,
/// measured as `pipeline_eps` is, and what `load` returned.
pub fn pipeline_under_load<T, F>(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    work: Workload<'_>,
    extra_args: &[&str],
    load: impl FnOnce(SocketAddr, CancellationToken) -> F,
) -> Result<(f64, T, CpuSplit)>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut child = Child::spawn(plan, brokers, work.topic, extra_args)?;
    let own_before = cpu_time(std::process::id()).unwrap_or_default();
    let stop = CancellationToken::new();
    let load = rt.spawn(load(child.addr(), stop.clone()));
    let run = rt.block_on(child.watch_ingest(work.topic, work.target, ingest_timeout(work.events)));
    stop.cancel();
    let load = rt
        .block_on(load)
        .context("the load task panicked")
        .and_then(|r| r);
    let cpu = CpuSplit {
        server_s: cpu_time(child.pid()).unwrap_or_default().as_secs_f64(),
        load_s: cpu_time(std::process::id())
            .unwrap_or_default()
            .saturating_sub(own_before)
            .as_secs_f64(),
    };
    let run = run.with_context(|| child.log_tail())?;
    let load = load.with_context(|| child.log_tail())?;
    rt.block_on(child.verify_totals(work.events))
        .with_context(|| child.log_tail())?;
    child.ensure_running()?;
    child.stop();
    Ok((run.eps(work.events), load, cpu))
}

/// Where the CPU of a run under load went: the pulseboard child's (from its start, so its
/// start-up too) and this process's (the load's clients) while it ran.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuSplit {
    pub server_s: f64,
    pub load_s: f64,
}

/// Step 5b: N events where every URL is distinct, a fresh child; memory as it grows.
pub fn measure_high_cardinality(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    report: &mut Report,
) -> Result<()> {
    let n = plan.events;
    prefill_high_cardinality(rt, brokers, n)?;
    step("high cardinality: pulseboard child consuming it");
    let run = high_cardinality_run(rt, plan, brokers, n, &[])?;
    report.pipeline_eps_high_cardinality = run.eps(n);
    report.rss_peak_mb_high_cardinality = run.hwm_mb;
    report.rss_hc_samples = run.rss_at_progress;
    step("high cardinality: pulseboard child consuming it (--segment-dimensions none)");
    let run = high_cardinality_run(rt, plan, brokers, n, &["--segment-dimensions", "none"])?;
    report.rss_peak_mb_high_cardinality_same_job = run.hwm_mb;
    Ok(())
}

/// Topic `TOPIC_HC` with `n` events whose URLs are all distinct.
pub fn prefill_high_cardinality(rt: &tokio::runtime::Runtime, brokers: &str, n: u64) -> Result<()> {
    step(&format!(
        "high cardinality: prefilling `{TOPIC_HC}` with {n} distinct URLs"
    ));
    rt.block_on(create_topic(brokers, TOPIC_HC, PARTITIONS, 1))?;
    load::prefill_high_cardinality(brokers, TOPIC_HC, n)
}

/// A fresh child consuming the `n` events of `TOPIC_HC` with `extra` arguments.
fn high_cardinality_run(
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    brokers: &str,
    n: u64,
    extra: &[&str],
) -> Result<IngestRun> {
    let mut child = Child::spawn(plan, brokers, TOPIC_HC, extra)?;
    let run = rt
        .block_on(child.watch_ingest(TOPIC_HC, n as i64, ingest_timeout(n)))
        .with_context(|| child.log_tail())?;
    rt.block_on(child.verify_totals(n))
        .with_context(|| child.log_tail())?;
    child.stop();
    Ok(run)
}

pub fn ingest_timeout(n: u64) -> Duration {
    Duration::from_secs(120 + n / 5_000)
}

/// The release binary on port 0 with a temporary data dir; its output goes to a log there.
pub struct Child {
    process: PulseboardProcess,
    pub spawned: Instant,
    group: String,
    dir: tempfile::TempDir,
}

/// Bytes a process caused to be written to storage so far (`write_bytes` of
/// `/proc/<pid>/io`: the pages it dirtied, its data dir's files and its log).
pub fn disk_write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

/// What one ingest run looked like from outside.
pub struct IngestRun {
    spawned: Instant,
    first: Instant,
    last: Instant,
    /// When each progress value (messages done) was first seen, in order; the last one is
    /// the whole topic.
    steps: Vec<(Instant, u64)>,
    /// From the first to the last message read, as the pipeline reported them, in seconds.
    read_span_secs: Option<f64>,
    hwm_mb: f64,
    rss_max_mb: f64,
    rss_at_progress: Vec<RssSample>,
}

impl IngestRun {
    /// Messages per second from the first to the last message read, as the pipeline's status
    /// reports them (wall-clock times of the first and last batch read, over all
    /// partitions). Without those (an older binary), an estimate from outside: the rate
    /// between the first progress seen and the last observation short of the topic
    /// (progress becomes visible only at checkpoints).
    fn eps(&self, total: u64) -> f64 {
        if let Some(secs) = self.read_span_secs.filter(|s| *s > 0.0) {
            return total as f64 / secs;
        }
        let busy: Vec<&(Instant, u64)> = self.steps.iter().filter(|(_, d)| *d < total).collect();
        if let [(t0, d0), .., (t1, d1)] = busy[..] {
            let secs = (*t1 - *t0).as_secs_f64();
            if secs >= 0.5 {
                return (d1 - d0) as f64 / secs;
            }
        }
        let done_at_first = self.steps.first().map_or(0, |s| s.1);
        let secs = (self.last - self.first).as_secs_f64().max(1e-3);
        total.saturating_sub(done_at_first) as f64 / secs
    }
}

/// Resident memory at a point of an ingest run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssSample {
    pub progress_pct: u32,
    pub rss_mb: f64,
}

impl Child {
    /// Start `pulseboard --brokers B --topics TOPIC` with a fresh group and data dir, plus
    /// `extra` and the plan's `--child-kafka-option`s; returns once it listens.
    pub fn spawn(plan: &Plan, brokers: &str, topic: &str, extra: &[&str]) -> Result<Child> {
        let group = format!("bench-{:08x}", fastrand::u32(..));
        Self::spawn_in(plan, brokers, topic, &group, extra)
    }

    /// [`Child::spawn`] in consumer group `group`.
    pub fn spawn_in(
        plan: &Plan,
        brokers: &str,
        topic: &str,
        group: &str,
        extra: &[&str],
    ) -> Result<Child> {
        let dir = tempfile::Builder::new()
            .prefix("pulseboard-bench-")
            .tempdir()
            .context("creating a temp dir")?;
        let log = dir.path().join("pulseboard.log");
        let data = dir.path().join("data").display().to_string();
        // The bench reads the API without a credential.
        let mut args = vec![
            "--public-dashboard",
            "--brokers",
            brokers,
            "--topics",
            topic,
            "--group",
            group,
            "--data-dir",
            &data,
        ];
        args.extend_from_slice(extra);
        for option in &plan.child_kafka_options {
            args.extend(["--kafka-option", option.as_str()]);
        }
        let spawned = Instant::now();
        let process = PulseboardProcess::spawn_logged(
            &plan.pulseboard,
            &args,
            &[("RUST_LOG", "warn,librdkafka=warn")],
            &log,
        )?;
        Ok(Child {
            process,
            spawned,
            group: group.to_owned(),
            dir,
        })
    }

    /// Its state topic (the server's default name, `<group>-windows`), unless it runs with
    /// `--no-state-topic`.
    pub fn state_topic(&self) -> String {
        format!("{}-windows", self.group)
    }

    /// Its `--data-dir`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn addr(&self) -> SocketAddr {
        self.process.addr
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.process.child.try_wait()? {
            bail!("pulseboard exited early ({status}){}", self.log_tail());
        }
        Ok(())
    }

    /// Poll the status every 50 ms until the offsets of `topic` add up to `target`.
    ///
    /// Each observation is stamped when its answer arrived: under full load the status
    /// API was seen to answer seconds late, and the answer can show progress made at any
    /// point until then.
    pub async fn watch_ingest(
        &mut self,
        topic: &str,
        target: i64,
        timeout: Duration,
    ) -> Result<IngestRun> {
        let deadline = Instant::now() + timeout;
        let pid = self.pid();
        let mut rss = RssTrack::default();
        let mut steps: Vec<(Instant, u64)> = Vec::new();
        let mut failures = 0u32;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.ensure_running()?;
            let rss_mb = process::rss_mb(pid).ok_or_else(|| anyhow!("no VmRSS of {pid}"))?;
            let status = get_json(self.addr(), STATUS).await;
            let at = Instant::now();
            match status {
                Some(status) => {
                    failures = 0;
                    let done = consumed(&status, topic).max(0) as u64;
                    rss.sample(rss_mb, done as f64 / target as f64);
                    if done > steps.last().map_or(0, |s| s.1) {
                        steps.push((at, done));
                    }
                    if done >= target as u64 {
                        return Ok(IngestRun {
                            spawned: self.spawned,
                            first: steps.first().map_or(at, |s| s.0),
                            last: at,
                            steps,
                            read_span_secs: read_span_secs(&status, topic),
                            hwm_mb: process::peak_rss_mb(pid)
                                .ok_or_else(|| anyhow!("no VmHWM of {pid}"))?,
                            rss_max_mb: rss.max_mb,
                            rss_at_progress: rss.at_progress,
                        });
                    }
                }
                None if failures >= 40 => bail!("{STATUS} unreachable for 40 polls"),
                None => failures += 1,
            }
            if at > deadline {
                bail!("ingest of {target} messages of `{topic}` not done after {timeout:?}");
            }
        }
    }

    /// Every message is either folded into a window or a dead letter.
    pub async fn verify_totals(&self, n: u64) -> Result<()> {
        let addr = self.addr();
        let totals = |s: &Value| {
            let events = s["events_total"].as_u64().unwrap_or(0);
            (events, s["dead_letters_total"].as_u64().unwrap_or(0))
        };
        let what = "events_total + dead_letters_total to reach the messages";
        let reached = poll_until(Duration::from_secs(10), what, || async {
            let (events, dead) = totals(&get_json(addr, STATUS).await?);
            (events + dead == n).then_some(())
        })
        .await;
        if reached.is_err() {
            let (events, dead) = totals(&get_json(addr, STATUS).await.unwrap_or_default());
            bail!("events_total {events} + dead_letters_total {dead} != {n} messages");
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail(20)
    }

    /// SIGTERM, then SIGKILL (on drop) if it has not stopped within 10 s.
    pub fn stop(self) {
        let _ = self.process.terminate_within(Duration::from_secs(10));
    }

    /// [`Child::stop`], keeping its directory (the data dir in `data/`, its log) until the
    /// returned handle is dropped. An error if it did not stop cleanly.
    pub fn stop_keeping_dir(self) -> Result<tempfile::TempDir> {
        let tail = self.log_tail();
        let status = self.process.terminate_within(Duration::from_secs(10))?;
        if !status.success() {
            bail!("pulseboard exited with {status} when stopped{tail}");
        }
        Ok(self.dir)
    }
}

/// From the first to the last message of `topic` read (over its partitions), in seconds.
fn read_span_secs(status: &Value, topic: &str) -> Option<f64> {
    let parts: Vec<&Value> = status["partitions"]
        .as_array()?
        .iter()
        .filter(|p| p["topic"] == topic)
        .collect();
    let first = parts
        .iter()
        .filter_map(|p| p["first_read_ms"].as_i64())
        .min()?;
    let last = parts
        .iter()
        .filter_map(|p| p["last_read_ms"].as_i64())
        .max()?;
    Some((last - first) as f64 / 1000.0)
}

/// Sum of `partitions[].next_offset` of `topic` in a status document.
pub fn consumed(status: &Value, topic: &str) -> i64 {
    status["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["topic"] == topic)
        .filter_map(|p| p["next_offset"].as_i64())
        .sum()
}

/// Max VmRSS, and the first VmRSS at or past 25/50/75/100 % of the messages.
#[derive(Default)]
struct RssTrack {
    max_mb: f64,
    at_progress: Vec<RssSample>,
}

impl RssTrack {
    fn sample(&mut self, rss_mb: f64, progress: f64) {
        self.max_mb = self.max_mb.max(rss_mb);
        for pct in [25u32, 50, 75, 100] {
            let seen = self.at_progress.iter().any(|s| s.progress_pct == pct);
            if !seen && progress * 100.0 >= f64::from(pct) {
                self.at_progress.push(RssSample {
                    progress_pct: pct,
                    rss_mb,
                });
            }
        }
    }
}
