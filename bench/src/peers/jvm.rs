//! The JVM peers of `bench/peers/`: Spark Structured Streaming and Kafka Streams.
//!
//! Contract: `cargo xtask bench` builds each with Maven into `$PULSEBOARD_PEERS_DIR/<dir>/`
//! (`peer.jar`, and `libs/` with its runtime dependencies); a peer runs as
//! `java <flags> -cp '<libs>/*:<peer.jar>' <main class> <contract flags>`, flags and main
//! classes as in bench/peers/README.md. A peer whose jar or libs are missing is skipped with
//! a note, as are both when JVM peers are off (`--quick`, `--no-jvm-peers`).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use pulseboard_testkit::kafka;

use super::{Launch, Peer};
use crate::{workspace_root, Plan};

/// What differs between the two JVM peers.
struct Spec {
    key: &'static str,
    /// Its folder under bench/peers/ and under the peers dir.
    dir: &'static str,
    main_class: &'static str,
    /// `-Xms` and `-Xmx`: the smallest heap at which it keeps its rate (see [`SPARK_HEAP`]).
    heap: [&'static str; 2],
    /// Its other JVM flags (bench/peers/README.md).
    flags: &'static [&'static str],
    /// Environment of the JVM.
    env: &'static [(&'static str, &'static str)],
    /// The pom property that pins the framework, and how to name it.
    version_property: &'static str,
    label: &'static str,
    /// The slowest rate that is still waited for (events/s), for the run's timeout.
    min_eps: u64,
    remark: &'static str,
    job: &'static str,
}

/// The heaps, found by runs on the bench's machine (docs/performance.md, "The JVM peers'
/// heaps"): the smallest at which a peer's throughput run on the default topic (2,000,000
/// events) keeps its rate with the heap it had before (`-Xms1g -Xmx2g`), within ~5 % (the
/// median of interleaved runs), `-Xms` = `-Xmx` (a heap sized once), so that its peak RSS
/// is what the job needs, not what a generous heap lets it take. Spark refuses a heap whose
/// usable size is under 450 MB (1.5 × its 300 MB reserve); 480m keeps its rate.
const SPARK_HEAP: [&str; 2] = ["-Xms480m", "-Xmx480m"];
/// Kafka Streams keeps its rate down to 128m (96m: −5 %, 64m: −15 %); its RocksDB stores
/// live outside the heap.
const KAFKA_STREAMS_HEAP: [&str; 2] = ["-Xms128m", "-Xmx128m"];

/// Spark 4 on Java 17 needs the module options of Spark's own launcher
/// (`JavaModuleOptions`); `-XX:+IgnoreUnrecognizedVMOptions` lets Java 17 skip the two that
/// only newer JVMs know (bench/peers/README.md, "Run").
const SPARK_FLAGS: &[&str] = &[
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-modules=jdk.incubator.vector",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.type=pooled",
    "-Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE",
    "--sun-misc-unsafe-memory-access=allow",
    "--enable-native-access=ALL-UNNAMED",
];

const SPARK: Spec = Spec {
    key: "spark",
    dir: "spark",
    main_class: "dev.pulseboard.peers.spark.SparkPeer",
    heap: SPARK_HEAP,
    flags: SPARK_FLAGS,
    // Silences Spark's warning that the host name resolves to a loopback address.
    env: &[("SPARK_LOCAL_IP", "127.0.0.1")],
    version_property: "spark.version",
    label: "Spark Structured Streaming (Java API, local[2])",
    min_eps: 5_000,
    remark: "its first micro-batch takes the whole topic and includes Spark's warm-up \
             (code generation, JIT); latency is bounded by its micro-batches",
    job: "the same windows (10 s tumbling, 5 s watermark) over all partitions: events, \
          counts by type, distinct visitors (approx_count_distinct, 1 %); lenient JSON \
          decoding, no dead letters; micro-batches on local[2] with 4 shuffle partitions, \
          state and offsets checkpointed to its state dir each batch, updated windows to an \
          output topic",
};

const KAFKA_STREAMS: Spec = Spec {
    key: "kafka_streams",
    dir: "kafka-streams",
    main_class: "dev.pulseboard.peers.kstreams.KafkaStreamsPeer",
    heap: KAFKA_STREAMS_HEAP,
    flags: &[],
    env: &[],
    version_property: "kafka.version",
    label: "Kafka Streams (DSL, 2 stream threads)",
    min_eps: 5_000,
    remark: "window updates leave its record cache at each commit (commit.interval.ms = 1000), \
             which bounds its latency",
    job: "the same windows (10 s tumbling, 5 s grace) over all partitions: events, counts by \
          type, distinct visitors (DataSketches HLL, per input partition's bucket, summed); \
          lenient JSON decoding, no dead letters; a repartition by bucket, a RocksDB window \
          store with its record cache, 2 stream threads, at-least-once commits every 1 s, \
          updated windows to an output topic",
};

pub fn spark(plan: &Plan) -> Peer {
    peer(&SPARK, plan)
}

pub fn kafka_streams(plan: &Plan) -> Peer {
    peer(&KAFKA_STREAMS, plan)
}

fn peer(spec: &Spec, plan: &Plan) -> Peer {
    let pom = workspace_root()
        .join("bench/peers")
        .join(spec.dir)
        .join("pom.xml");
    let version = format!(
        "{} {} on Java {} (bench/peers/{})",
        spec.label,
        pom_property(&pom, spec.version_property).unwrap_or_else(|| "(unknown version)".into()),
        java_version().unwrap_or_else(|| "(unknown)".into()),
        spec.dir
    );
    Peer {
        key: spec.key,
        version,
        launch: launch(spec, plan),
        events: plan.events,
        min_eps: spec.min_eps,
        remark: spec.remark,
        job: spec.job,
        jvm_flags: Some(jvm_flags(spec)),
    }
}

fn launch(spec: &Spec, plan: &Plan) -> Result<Launch, String> {
    if !plan.jvm_peers {
        return Err(format!(
            "JVM peers are off in {} mode (--jvm-peers runs them)",
            plan.mode
        ));
    }
    let home = plan.peers_dir.join(spec.dir);
    let (jar, libs) = (home.join("peer.jar"), home.join("libs"));
    if !jar.is_file() || !libs.is_dir() {
        return Err(format!(
            "not built: {} or {} is missing (`cargo xtask bench` builds it with Maven)",
            jar.display(),
            libs.display()
        ));
    }
    let mut args: Vec<OsString> = jvm_flags(spec).into_iter().map(OsString::from).collect();
    args.push("-cp".into());
    args.push(format!("{}/*:{}", libs.display(), jar.display()).into());
    args.push(spec.main_class.into());
    Ok(Launch {
        program: kafka::java(),
        args,
        env: spec.env.to_vec(),
    })
}

/// Its heap, then its other flags.
fn jvm_flags(spec: &Spec) -> Vec<String> {
    spec.heap
        .iter()
        .chain(spec.flags)
        .map(|f| (*f).to_owned())
        .collect()
}

/// `<name>VALUE</name>` of a pom.
fn pom_property(pom: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(pom).ok()?;
    let (_, rest) = text.split_once(&format!("<{name}>"))?;
    let (value, _) = rest.split_once(&format!("</{name}>"))?;
    Some(value.trim().to_owned())
}

/// The version `java -version` prints, e.g. `17.0.15`.
fn java_version() -> Option<String> {
    let out = Command::new(kafka::java()).arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let first = text.lines().next()?;
    let (_, rest) = first.split_once('"')?;
    Some(rest.split_once('"')?.0.to_owned())
}
