//! `cargo xtask kafka`: a local Apache Kafka on a free port, for trying Pulseboard against a
//! real broker. Prints the bootstrap address and runs until Ctrl-C (or SIGTERM).
//!
//! Usage: `local-kafka [--nodes N] [--topic NAME] [--partitions P]`.

use anyhow::{bail, Context, Result};
use pulseboard_testkit::kafka::{self, Jvm, Kafka, KafkaConfig};

fn main() -> Result<()> {
    let mut nodes = 1usize;
    let mut topic = String::from("clicks");
    let mut partitions = 4i32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().with_context(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--nodes" => nodes = value("--nodes")?.parse().context("--nodes: a number")?,
            "--topic" => topic = value("--topic")?,
            "--partitions" => {
                partitions = value("--partitions")?
                    .parse()
                    .context("--partitions: a number")?
            }
            "-h" | "--help" => {
                println!("usage: cargo xtask kafka [--nodes N] [--topic NAME] [--partitions P]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    eprintln!(
        "starting Apache Kafka {} ({nodes} node(s))...",
        kafka::kafka_version()
    );
    let cluster = Kafka::start_with(KafkaConfig {
        nodes,
        jvm: Jvm::Bench,
        ..KafkaConfig::default()
    })?;
    let brokers = cluster.bootstrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(kafka::create_topic(
        &brokers,
        &topic,
        partitions,
        cluster.replication(),
    ))?;
    println!("Apache Kafka {} at {brokers}", kafka::kafka_version());
    println!("topic {topic:?} ({partitions} partitions) is ready. In another terminal:");
    println!("  cargo xtask run -- --brokers {brokers} --topics {topic}");
    println!("Ctrl-C stops the broker and deletes its data.");
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        Ok::<_, anyhow::Error>(())
    })?;
    drop(cluster);
    Ok(())
}
