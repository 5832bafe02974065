//! One Kafka node's processes: the broker JVM's flags and command line, the KRaft storage
//! formatting before its first start, its log4j2 configuration, a random cluster id, and
//! the tail of its log.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};

use super::jars::java;

/// How the broker JVMs are tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jvm {
    /// Fast start and a small heap: tests start many brokers on a 2-core machine.
    Test,
    /// Kafka's own defaults (G1, full JIT) with a 1 GiB heap: the benchmark's broker.
    Bench,
}

impl Jvm {
    pub(super) fn flags(self) -> &'static [&'static str] {
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

/// The JVM's class path: every jar in `libs`.
fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

/// The broker (`kafka.Kafka`) of one node's `server.properties`, its output appended to `log`.
pub(super) fn broker_command(
    jvm: Jvm,
    log4j_arg: &str,
    libs: &Path,
    props: &Path,
    log: fs::File,
) -> std::io::Result<Command> {
    let mut cmd = Command::new(java());
    cmd.args(jvm.flags())
        .args(["-Djava.awt.headless=true", "-Dkafka.logs.dir=/nonexistent"])
        .arg(log4j_arg)
        .arg("-cp")
        .arg(classpath(libs))
        .arg("kafka.Kafka")
        .arg(props)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(cmd)
}

/// `kafka-storage format` for one node's `server.properties`.
pub(super) fn storage_format_command(
    libs: &Path,
    jvm_arg: &str,
    cluster_id: &str,
    props: &Path,
) -> Command {
    let mut cmd = Command::new(java());
    cmd.args(Jvm::Test.flags())
        .arg(jvm_arg)
        .arg("-cp")
        .arg(classpath(libs))
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

/// The log4j2 configuration of every node: warnings, and the line that says it started.
pub(super) const LOG4J2: &str = "\
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
pub(super) fn cluster_id() -> String {
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

/// The last `bytes` of the file at `path` (a node's log), or "(no log)".
pub(super) fn tail(path: &Path, bytes: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::super::jars::libs_dir;
    use super::*;
    use anyhow::Result;

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
}
