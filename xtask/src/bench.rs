//! `cargo xtask bench [--quick] [ARGS]`: the benchmark (`bench/`) with the release binary on
//! Apache Kafka against its peers, the JVM ones built with Maven first when it runs them.

use std::path::Path;
use std::process::Command;

use crate::cmd::{cache_dir, cargo, status, target_dir, workspace_root};
use crate::setup::{ensure_peer_venv, kafka_env, Tools};
use crate::timer::Timer;

/// The JVM peers of the benchmark: their folders under `bench/peers/`.
const JVM_PEERS: [&str; 2] = ["spark", "kafka-streams"];

/// Whether the benchmark runs its JVM peers: as `pulseboard-bench` decides it (the last of
/// `--jvm-peers`/`--no-jvm-peers` wins; without either, on except with `--quick`), and
/// never with `--history-only`, which runs no peer.
fn bench_wants_jvm_peers(args: &[String]) -> bool {
    if args.iter().any(|a| a == "--history-only") {
        return false;
    }
    match args
        .iter()
        .rev()
        .find(|a| *a == "--jvm-peers" || *a == "--no-jvm-peers")
    {
        Some(flag) => flag == "--jvm-peers",
        None => !args.iter().any(|a| a == "--quick"),
    }
}

/// A JVM peer (`bench/peers/<name>`) built with Maven: `mvn package` (Maven skips what is up
/// to date) and its jar copied to `<cache>/peers/<name>/peer.jar`; its runtime dependencies
/// copied into `<cache>/peers/<name>/libs`, redone only when the pom changes.
fn ensure_jvm_peer(name: &str, peers_dir: &Path) -> Result<(), String> {
    let project = workspace_root().join("bench/peers").join(name);
    let pom_path = project.join("pom.xml");
    let pom = std::fs::read_to_string(&pom_path)
        .map_err(|e| format!("reading {}: {e}", pom_path.display()))?;
    let home = peers_dir.join(name);
    std::fs::create_dir_all(&home).map_err(|e| format!("creating {}: {e}", home.display()))?;
    let mut c = Command::new("mvn");
    c.args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(&pom_path)
        .arg("package");
    status(c, &format!("mvn package (bench/peers/{name})"))?;
    let target = project.join("target");
    let jar = std::fs::read_dir(&target)
        .map_err(|e| format!("reading {}: {e}", target.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or_else(|| format!("mvn package left no jar in {}", target.display()))?;
    std::fs::copy(&jar, home.join("peer.jar"))
        .map_err(|e| format!("copying {}: {e}", jar.display()))?;
    let libs = home.join("libs");
    let marker = home.join("pom.installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pom.as_str()) && libs.is_dir() {
        return Ok(());
    }
    eprintln!("xtask: resolving the runtime jars of bench/peers/{name} with Maven...");
    let staging = home.join("libs.partial");
    let _ = std::fs::remove_dir_all(&staging);
    let mut c = Command::new("mvn");
    c.args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(&pom_path)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .arg("-DincludeScope=runtime");
    status(
        c,
        &format!("mvn dependency:copy-dependencies (bench/peers/{name})"),
    )?;
    let _ = std::fs::remove_dir_all(&libs);
    std::fs::rename(&staging, &libs)
        .map_err(|e| format!("moving the jars of {name} into place: {e}"))?;
    std::fs::write(&marker, &pom).map_err(|e| format!("writing {}: {e}", marker.display()))
}

/// The benchmark (`bench/`, package `pulseboard-bench`) with the release binary, Apache
/// Kafka, the Quix Streams venv and, when it runs them, the JVM peers.
pub fn bench(timer: &mut Timer, tools: &Tools, args: &[String]) -> Result<(), String> {
    // Two builds: one with both packages would unify their dependencies' features and give
    // a `pulseboard` that differs from (and rebuilds over) the one `cargo build` makes.
    timer.step("build the release binary", || {
        let mut c = cargo();
        c.args([
            "build",
            "--release",
            "-p",
            "pulseboard",
            "--bin",
            "pulseboard",
        ]);
        status(c, "building the release binary")
    })?;
    timer.step("build the benchmark (release)", || {
        let mut c = cargo();
        c.args(["build", "--release", "-p", "pulseboard-bench"]);
        status(c, "building the benchmark")
    })?;
    let python = timer.step("benchmark peer venv (Quix Streams)", ensure_peer_venv)?;
    let jvm_peers = bench_wants_jvm_peers(args);
    let peers_dir = cache_dir().join("peers");
    if jvm_peers {
        for name in JVM_PEERS {
            timer.step(&format!("benchmark peer {name} (Maven)"), || {
                ensure_jvm_peer(name, &peers_dir)
            })?;
        }
    }
    let mut args: Vec<String> = args.to_vec();
    if !args.iter().any(|a| a == "--out") {
        // The bench binary may be shared by several clones through the target directory:
        // name this clone's output path rather than the one it was compiled in.
        args.push("--out".into());
        args.push(
            workspace_root()
                .join("target/bench/results.json")
                .display()
                .to_string(),
        );
    }
    timer.step("benchmark", || {
        let mut c = Command::new(target_dir().join("release/pulseboard-bench"));
        c.current_dir(workspace_root())
            .args(&args)
            .env("PULSEBOARD_BIN", target_dir().join("release/pulseboard"))
            .env("PULSEBOARD_PEER_PYTHON", &python);
        if jvm_peers {
            c.env("PULSEBOARD_PEERS_DIR", &peers_dir);
        }
        kafka_env(&mut c, tools);
        status(c, "benchmark")
    })
}
