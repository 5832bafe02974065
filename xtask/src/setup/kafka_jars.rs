//! The Apache Kafka broker's jars, resolved from Maven Central by the pom that pins them.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{cache_dir, status, workspace_root};

/// The pom that pins the Apache Kafka broker of the tests (also read by the test kit).
const KAFKA_POM: &str = "testkit/kafka/pom.xml";

/// `<kafka.version>` of the broker's pom.
fn kafka_version(pom: &str) -> Result<String, String> {
    pom.split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(v, _)| v.trim().to_owned())
        .ok_or_else(|| format!("{KAFKA_POM} has no <kafka.version>"))
}

/// The Apache Kafka broker's jars, resolved from Maven Central by the pom into
/// `<cache>/kafka-<version>/libs`; redone only when the pom changes.
pub fn ensure_kafka_jars() -> Result<PathBuf, String> {
    let pom_path = workspace_root().join(KAFKA_POM);
    let pom =
        std::fs::read_to_string(&pom_path).map_err(|e| format!("reading {KAFKA_POM}: {e}"))?;
    let home = cache_dir().join(format!("kafka-{}", kafka_version(&pom)?));
    let libs = home.join("libs");
    let marker = home.join("pom.installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pom.as_str()) && libs.is_dir() {
        return Ok(libs);
    }
    eprintln!("xtask: resolving the Apache Kafka broker jars with Maven...");
    let staging = home.join("libs.partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&home).map_err(|e| format!("creating {}: {e}", home.display()))?;
    let mut c = Command::new("mvn");
    c.args(["-q", "-B", "-f"])
        .arg(&pom_path)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .arg("-DincludeScope=runtime");
    status(c, "mvn dependency:copy-dependencies (Kafka broker)")?;
    let _ = std::fs::remove_dir_all(&libs);
    std::fs::rename(&staging, &libs)
        .map_err(|e| format!("moving the Kafka jars into place: {e}"))?;
    std::fs::write(&marker, &pom).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(libs)
}
