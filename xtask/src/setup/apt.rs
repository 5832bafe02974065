//! Debian packages: Chromium for the browser tests, a JDK and Maven for the broker and the
//! benchmark's JVM peers; `apt-get update` at most once per run.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{runs, status};

/// `apt-get update` once per run, then install `packages`.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    static UPDATED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut updated = UPDATED.lock().unwrap_or_else(|e| e.into_inner());
    if !*updated {
        let mut update = Command::new("apt-get");
        update
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive");
        status(update, "apt-get update")?;
        *updated = true;
    }
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(c, &format!("apt-get install {}", packages.join(" ")))
}

/// Debian's Chromium for the browser tests.
pub fn ensure_chromium() -> Result<PathBuf, String> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Ok(path);
    }
    eprintln!("xtask: installing Debian's chromium (apt-get)...");
    apt_install(&["chromium"])?;
    Ok(path)
}

/// A JDK (17+) and Maven, from Debian's packages when missing.
pub fn ensure_java_and_maven() -> Result<(), String> {
    let java = runs("java", &["-version"]);
    let mvn = runs("mvn", &["-v"]);
    if java && mvn {
        return Ok(());
    }
    let mut packages = Vec::new();
    if !java {
        packages.push("openjdk-17-jdk-headless");
    }
    if !mvn {
        packages.push("maven");
    }
    eprintln!("xtask: installing {} (apt-get)...", packages.join(" "));
    apt_install(&packages)
}
