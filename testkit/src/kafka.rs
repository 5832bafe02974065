//! Apache Kafka for the tests, the soak and the benchmark.
//!
//! Contract:
//! - The broker is the real one: `kafka.Kafka` from the jars that `cargo xtask setup`
//!   resolves from Maven Central (`testkit/kafka/pom.xml`, one pinned version) into
//!   `~/.cache/pulseboard/kafka-<version>/libs` (or `$PULSEBOARD_KAFKA_LIBS`).
//! - [`Kafka::start`] runs one node in KRaft combined mode (broker + controller), storage
//!   formatted in a temporary directory, on free loopback ports; [`Kafka::start_cluster`]
//!   runs N such nodes, each also a controller voter, with replication factor `min(N, 3)`
//!   and `min.insync.replicas = 2` from three nodes on. Both return once every node answers
//!   a metadata request listing all of them (polled, never slept on).
//! - Nodes can be killed (SIGKILL), stopped (SIGTERM), paused (SIGSTOP) and restarted on
//!   the same ports and log directories. Dropping [`Kafka`] kills every node and deletes
//!   the directories; if this process dies first, its nodes die with it (see
//!   [`crate::process`]).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::net::free_port;
use crate::process;

/// The pom that pins the broker (read at compile time: one source for the version).
pub const KAFKA_POM: &str = include_str!("../kafka/pom.xml");

/// The pinned Apache Kafka version (`<kafka.version>` of the pom).
pub fn kafka_version() -> &'static str {
    KAFKA_POM
        .split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(v, _)| v.trim())
        .unwrap_or("unknown")
}

/// Where Pulseboard's tools and caches live: `$PULSEBOARD_CACHE`, else `~/.cache/pulseboard`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PULSEBOARD_CACHE") {
        return PathBuf::from(d);
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/pulseboard"))
        .unwrap_or_else(|| PathBuf::from(".cache/pulseboard"))
}

/// The broker's jars: `$PULSEBOARD_KAFKA_LIBS`, else the cache folder of the pinned version.
pub fn libs_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("PULSEBOARD_KAFKA_LIBS") {
        Some(d) => PathBuf::from(d),
        None => cache_dir()
            .join(format!("kafka-{}", kafka_version()))
            .join("libs"),
    };
    let has_broker = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-"))
        })
        .unwrap_or(false);
    if !has_broker {
        bail!(
            "the Apache Kafka {} jars are not in {}: run `cargo xtask setup` (or the tests with `cargo xtask test`), which installs them",
            kafka_version(),
            dir.display()
        );
    }
    Ok(dir)
}

/// The `java` to run: `$JAVA_HOME/bin/java`, else the one on PATH.
pub fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// How the broker JVMs are tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jvm {
    /// Fast start and a small heap: tests start many brokers on a 2-core machine.
    Test,
    /// Kafka's own defaults (G1, full JIT) with a 1 GiB heap: the benchmark's broker.
    Bench,
}

impl Jvm {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Jvm::Test => &[
                "-Xms128m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-XX:-UsePerfData",
            ],
            Jvm::Bench => &[
                "-Xms1g",
                "-Xmx1g",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:InitiatingHeapOccupancyPercent=35",
                "-XX:-UsePerfData",
            ],
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Nodes, each a broker and a controller voter.
    pub nodes: usize,
    pub jvm: Jvm,
    /// Extra `server.properties` entries (override the defaults below).
    pub properties: Vec<(String, String)>,
    /// How long to wait for the cluster to be ready.
    pub ready_timeout: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            nodes: 1,
            jvm: Jvm::Test,
            properties: Vec::new(),
            ready_timeout: Duration::from_secs(90),
        }
    }
}

struct Node {
    id: u32,
    port: u16,
    controller_port: u16,
    child: Option<Child>,
    paused: bool,
}

/// A running Apache Kafka cluster of one or more nodes. Killed on drop.
pub struct Kafka {
    dir: tempfile::TempDir,
    cfg: KafkaConfig,
    libs: PathBuf,
    cluster_id: String,
    nodes: Vec<Node>,
}

impl Kafka {
    /// One node (broker + controller) on free loopback ports.
    pub fn start() -> Result<Self> {
        Self::start_with(KafkaConfig::default())
    }

    /// `nodes` nodes, each broker and controller, replication factor `min(nodes, 3)`.
    pub fn start_cluster(nodes: usize) -> Result<Self> {
        Self::start_with(KafkaConfig {
            nodes,
            ..KafkaConfig::default()
        })
    }

    pub fn start_with(cfg: KafkaConfig) -> Result<Self> {
        if cfg.nodes == 0 {
            bail!("a Kafka cluster needs at least one node");
        }
        let libs = libs_dir()?;
        let dir = tempfile::Builder::new().prefix("kafka-").tempdir()?;
        let nodes: Vec<Node> = (0..cfg.nodes)
            .map(|i| Node {
                id: i as u32 + 1,
                port: free_port(),
                controller_port: free_port(),
                child: None,
                paused: false,
            })
            .collect();
        let mut kafka = Kafka {
            dir,
            cfg,
            libs,
            cluster_id: cluster_id(),
            nodes,
        };
        kafka.write_configs()?;
        kafka.format_all()?;
        for i in 0..kafka.nodes.len() {
            kafka.spawn_node(i)?;
        }
        let all: Vec<usize> = (0..kafka.nodes.len()).collect();
        kafka.wait_ready(&all)?;
        Ok(kafka)
    }

    /// The bootstrap list: every node's client address.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client address of node `i` (0-based).
    pub fn node_address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    /// The Kafka node id of node `i` (0-based index; ids start at 1).
    pub fn node_id(&self, i: usize) -> u32 {
        self.nodes[i].id
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The replication factor topics get on this cluster.
    pub fn replication(&self) -> i32 {
        self.nodes.len().min(3) as i32
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Kill node `i` with SIGKILL and reap it.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            process::signal(child.id(), libc::SIGKILL)?;
            child.wait()?;
        }
        self.nodes[i].paused = false;
        Ok(())
    }

    /// Stop node `i` with SIGTERM (a controlled shutdown), waiting at most `timeout`, then
    /// SIGKILL.
    pub fn stop(&mut self, i: usize, timeout: Duration) -> Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            process::signal(child.id(), libc::SIGTERM)?;
            if process::wait_timeout(&mut child, timeout)?.is_none() {
                process::signal(child.id(), libc::SIGKILL)?;
                child.wait()?;
            }
        }
        Ok(())
    }

    /// Freeze node `i` (SIGSTOP): its sockets stay open but nothing answers.
    pub fn pause(&mut self, i: usize) -> Result<()> {
        let pid = self
            .pid(i)
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        process::signal(pid, libc::SIGSTOP)?;
        self.nodes[i].paused = true;
        Ok(())
    }

    /// Thaw node `i` (SIGCONT).
    pub fn resume(&mut self, i: usize) -> Result<()> {
        let pid = self
            .pid(i)
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        process::signal(pid, libc::SIGCONT)?;
        self.nodes[i].paused = false;
        Ok(())
    }

    /// Start node `i` again (same id, ports and log directory) and wait until the cluster
    /// lists it.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].child.is_some() {
            bail!("node {i} is still running; kill or stop it first");
        }
        self.spawn_node(i)?;
        self.wait_ready(&[i])
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{}", self.nodes[i].id))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("broker.log")
    }

    fn write_configs(&self) -> Result<()> {
        let n = self.nodes.len();
        let rf = n.min(3);
        let min_isr = if n >= 3 { 2 } else { 1 };
        let voters = self
            .nodes
            .iter()
            .map(|nd| format!("{}@127.0.0.1:{}", nd.id, nd.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        fs::write(self.dir.path().join("log4j2.properties"), LOG4J2)?;
        for (i, node) in self.nodes.iter().enumerate() {
            let dir = self.node_dir(i);
            fs::create_dir_all(dir.join("data"))?;
            let mut props: Vec<(String, String)> = vec![
                ("process.roles", "broker,controller".to_owned()),
                ("node.id", node.id.to_string()),
                ("controller.quorum.voters", voters.clone()),
                (
                    "listeners",
                    format!(
                        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                        node.port, node.controller_port
                    ),
                ),
                (
                    "advertised.listeners",
                    format!("PLAINTEXT://127.0.0.1:{}", node.port),
                ),
                ("controller.listener.names", "CONTROLLER".to_owned()),
                ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
                (
                    "listener.security.protocol.map",
                    "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
                ),
                ("log.dirs", dir.join("data").display().to_string()),
                ("num.partitions", "1".to_owned()),
                ("default.replication.factor", rf.to_string()),
                ("min.insync.replicas", min_isr.to_string()),
                ("offsets.topic.replication.factor", rf.to_string()),
                // Fewer internal partitions than the defaults (50): starts in seconds.
                ("offsets.topic.num.partitions", "4".to_owned()),
                ("transaction.state.log.replication.factor", rf.to_string()),
                ("transaction.state.log.min.isr", min_isr.to_string()),
                ("transaction.state.log.num.partitions", "4".to_owned()),
                (
                    "share.coordinator.state.topic.replication.factor",
                    rf.to_string(),
                ),
                ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
                // A group forms at once (no 3 s wait for more members), and tests may use
                // short session timeouts.
                ("group.initial.rebalance.delay.ms", "0".to_owned()),
                ("group.min.session.timeout.ms", "1000".to_owned()),
                // A dead broker is fenced (and its partitions get new leaders) within 3 s
                // instead of 9.
                ("broker.heartbeat.interval.ms", "500".to_owned()),
                ("broker.session.timeout.ms", "3000".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            for (k, v) in &self.cfg.properties {
                props.retain(|(pk, _)| pk != k);
                props.push((k.clone(), v.clone()));
            }
            let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            fs::write(dir.join("server.properties"), text)?;
        }
        Ok(())
    }

    fn classpath(&self) -> String {
        format!("{}/*", self.libs.display())
    }

    /// `kafka-storage format` for every node, in parallel (one JVM each).
    fn format_all(&self) -> Result<()> {
        let mut children = Vec::new();
        for i in 0..self.nodes.len() {
            let log4j = format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.path().join("log4j2.properties").display()
            );
            let cmd = storage_format_command(
                &self.libs,
                &log4j,
                &self.cluster_id,
                &self.node_dir(i).join("server.properties"),
            );
            children.push((i, process::spawn(cmd)?));
        }
        for (i, child) in children {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "formatting the storage of Kafka node {} failed ({}): {}{}",
                    i + 1,
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }

    fn spawn_node(&mut self, i: usize) -> Result<()> {
        let dir = self.node_dir(i);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let mut cmd = Command::new(java());
        cmd.args(self.cfg.jvm.flags())
            .args(["-Djava.awt.headless=true", "-Dkafka.logs.dir=/nonexistent"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.path().join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(self.classpath())
            .arg("kafka.Kafka")
            .arg(dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.nodes[i].child =
            Some(process::spawn(cmd).context("starting the Kafka broker (java)")?);
        Ok(())
    }

    /// Poll until each node in `which` answers a metadata request listing every running node.
    fn wait_ready(&mut self, which: &[usize]) -> Result<()> {
        let deadline = Instant::now() + self.cfg.ready_timeout;
        let want = self.nodes.iter().filter(|n| n.child.is_some()).count();
        for &i in which {
            let client: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", self.node_address(i))
                .set("log_level", "0")
                .set("socket.connection.setup.timeout.ms", "1000")
                .set("reconnect.backoff.max.ms", "200")
                .create()?;
            loop {
                if let Some(child) = self.nodes[i].child.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        self.nodes[i].child = None;
                        bail!(
                            "Kafka node {} exited during start-up ({status}); its log ends with:\n{}",
                            i + 1,
                            tail(&self.log_path(i), 4000)
                        );
                    }
                }
                let listed = client
                    .fetch_metadata(None, Duration::from_millis(1000))
                    .map(|m| m.brokers().len())
                    .unwrap_or(0);
                if listed >= want {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "Kafka node {} was not ready within {:?} (metadata lists {listed} of {want} brokers); its log ends with:\n{}",
                        i + 1,
                        self.cfg.ready_timeout,
                        tail(&self.log_path(i), 4000)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The last `bytes` of node `i`'s log (for failure messages).
    pub fn log_tail(&self, i: usize, bytes: u64) -> String {
        tail(&self.log_path(i), bytes)
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `kafka-storage format` for one node's `server.properties`.
fn storage_format_command(libs: &Path, jvm_arg: &str, cluster_id: &str, props: &Path) -> Command {
    let mut cmd = Command::new(java());
    cmd.args(Jvm::Test.flags())
        .arg(jvm_arg)
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        // `=`: a cluster id may start with '-', which argparse would take for an option.
        .args(["kafka.tools.StorageTool", "format"])
        .arg(format!("--cluster-id={cluster_id}"))
        .arg("-c")
        .arg(props)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

const LOG4J2: &str = "\
status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
";

/// A random cluster id: 16 bytes, base64url without padding (what `random-uuid` prints).
fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

fn tail(path: &Path, bytes: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

// ---------------------------------------------------------------------------------------
// Clients

/// Create a topic with `partitions` partitions and replication factor `replication`.
pub async fn create_topic(
    brokers: &str,
    name: &str,
    partitions: i32,
    replication: i32,
) -> Result<()> {
    create_topic_with(brokers, name, partitions, replication, &[]).await
}

/// Create a topic with extra topic configs (e.g. `cleanup.policy=compact`).
pub async fn create_topic_with(
    brokers: &str,
    name: &str,
    partitions: i32,
    replication: i32,
    config: &[(&str, &str)],
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for (k, v) in config {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = admin
        .create_topics([&topic], &opts)
        .await
        .context("create_topics")?;
    for r in res {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    wait_for_leaders(brokers, name, partitions).await
}

/// Create a topic whose partitions live on the given brokers: `replicas[p]` lists the node
/// ids of partition `p`'s replicas (for tests that take one broker's topics away).
pub async fn create_topic_assigned(brokers: &str, name: &str, replicas: &[&[i32]]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let topic = NewTopic::new(
        name,
        replicas.len() as i32,
        TopicReplication::Variable(replicas),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin
        .create_topics([&topic], &opts)
        .await
        .context("create_topics")?
    {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    wait_for_leaders(brokers, name, replicas.len() as i32).await
}

/// Delete a topic (and wait until the cluster no longer lists it).
pub async fn delete_topic(brokers: &str, name: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.delete_topics(&[name], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, e)) => bail!("deleting topic {t}: {e}"),
        }
    }
    let brokers = brokers.to_owned();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("log_level", "0")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let gone = client
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|m| m.topics().iter().all(|t| t.name() != name))
                .unwrap_or(false);
            if gone {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("topic {name} still listed 60 s after its deletion");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await?
}

/// Wait until every partition of `topic` has a leader.
async fn wait_for_leaders(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("log_level", "0")
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map(|m| {
                    m.topics().iter().any(|t| {
                        t.name() == topic
                            && t.error().is_none()
                            && t.partitions().len() == partitions as usize
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
                })
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("topic {topic} has no leader for every partition after 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await?
}

/// An idempotent producer that waits for all in-sync replicas: a broker failing under it
/// neither loses nor duplicates a message.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .set("log_level", "3")
        .create()?)
}

/// Produce `(partition, payload)` pairs and wait for every delivery.
pub async fn produce(p: &FutureProducer, topic: &str, msgs: &[(i32, Vec<u8>)]) -> Result<()> {
    let mut futs = Vec::with_capacity(msgs.len());
    for (part, payload) in msgs {
        let mut rec: FutureRecord<'_, (), [u8]> =
            FutureRecord::to(topic).partition(*part).payload(payload);
        loop {
            match p.send_result(rec) {
                Ok(f) => {
                    futs.push(f);
                    break;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => bail!("enqueue failed: {e}"),
            }
        }
    }
    for f in futs {
        f.await
            .map_err(|_| anyhow!("delivery cancelled"))?
            .map_err(|(e, _)| anyhow!("delivery failed: {e}"))?;
    }
    let p = p.clone();
    tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(30))).await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_id_starting_with_a_dash_formats() -> Result<()> {
        // Base64url ids start with '-' one time in 64; the storage tool must take them.
        let dir = tempfile::tempdir()?;
        let props = dir.path().join("server.properties");
        std::fs::write(
            &props,
            format!(
                "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:1\nlisteners=PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:1\ncontroller.listener.names=CONTROLLER\nlog.dirs={}\n",
                dir.path().join("data").display()
            ),
        )?;
        let out = storage_format_command(
            &libs_dir()?,
            "-Dlog4j2.level=error",
            "-abcdefghijklmnopqrstu",
            &props,
        )
        .output()?;
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    #[test]
    fn cluster_id_is_22_base64url_chars() {
        let id = cluster_id();
        assert_eq!(id.len(), 22, "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn version_comes_from_the_pom() {
        assert!(kafka_version().starts_with("4."), "{}", kafka_version());
    }
}
