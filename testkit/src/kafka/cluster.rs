//! A running cluster of one or more nodes: what to start ([`KafkaConfig`]), the nodes'
//! configurations and start-up, readiness, and each node's kill, stop, pause and restart.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::jars::libs_dir;
use super::node::{broker_command, cluster_id, storage_format_command, tail, Jvm, LOG4J2};
use crate::net::free_port;
use crate::process;

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

    /// Start a cluster of `cfg`. Ports are picked free, but another process may take one
    /// before its node binds it: a node that exits during start-up (its log says why) makes
    /// the whole cluster start again on fresh ports, at most [`START_ATTEMPTS`] times.
    pub fn start_with(cfg: KafkaConfig) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(cfg.clone()) {
                Err(e) if attempt < START_ATTEMPTS && e.to_string().contains(EXITED) => {
                    eprintln!("kafka: start attempt {attempt} failed, again on fresh ports: {e}");
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    fn start_once(cfg: KafkaConfig) -> Result<Self> {
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

    /// The JVM argument that points every node's log4j2 at [`LOG4J2`].
    fn log4j_arg(&self) -> String {
        format!(
            "-Dlog4j2.configurationFile={}",
            self.dir.path().join("log4j2.properties").display()
        )
    }

    /// `kafka-storage format` for every node, in parallel (one JVM each).
    fn format_all(&self) -> Result<()> {
        let mut children = Vec::new();
        for i in 0..self.nodes.len() {
            let cmd = storage_format_command(
                &self.libs,
                &self.log4j_arg(),
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
        let cmd = broker_command(
            self.cfg.jvm,
            &self.log4j_arg(),
            &self.libs,
            &dir.join("server.properties"),
            log,
        )?;
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
                // Any node of the start that died fails it at once (not after the timeout).
                for &j in which {
                    if let Some(child) = self.nodes[j].child.as_mut() {
                        if let Some(status) = child.try_wait()? {
                            self.nodes[j].child = None;
                            bail!(
                                "Kafka node {} {EXITED} ({status}); its log ends with:\n{}",
                                j + 1,
                                tail(&self.log_path(j), 4000)
                            );
                        }
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

/// How many times a cluster is started on fresh ports when a node exits during start-up.
const START_ATTEMPTS: u32 = 3;

/// What the error of a node that exited during start-up says.
const EXITED: &str = "exited during start-up";

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
