//! Where the broker comes from: the pom that pins Apache Kafka, the cache its jars are
//! resolved into (by `cargo xtask setup`), and the `java` that runs them.

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Result};

/// The pom that pins the broker (read at compile time: one source for the version).
pub const KAFKA_POM: &str = include_str!("../../kafka/pom.xml");

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_pom() {
        assert!(kafka_version().starts_with("4."), "{}", kafka_version());
    }
}
