package dev.pulseboard.peers.spark;

import static org.apache.spark.sql.functions.approx_count_distinct;
import static org.apache.spark.sql.functions.coalesce;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.from_json;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.not;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.to_json;
import static org.apache.spark.sql.functions.when;
import static org.apache.spark.sql.functions.window;

import java.io.File;
import java.lang.management.ManagementFactory;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryListener;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Benchmark peer: Pulseboard's windowed job in Spark Structured Streaming (Java API).
 *
 * <p>Kafka source (earliest) -> from_json (malformed = not a JSON object, counted with observe())
 * -> event_time = ts (epoch ms or RFC 3339) else the Kafka timestamp -> withWatermark(5 s) ->
 * groupBy(window(10 s)) -> count, counts by type (a typed Aggregator, see {@link TypeCounts}),
 * approx_count_distinct(visitor, 0.01) -> JSON -> Kafka sink, output mode update, key = window
 * start. local[2], spark.sql.shuffle.partitions = 4. See bench/peers/README.md.
 */
public final class SparkPeer {
    private SparkPeer() {}

    public static void main(String[] argv) {
        int rc;
        try {
            rc = run(PeerArgs.parse(argv));
        } catch (PeerArgs.UsageException e) {
            System.err.println("spark peer: " + e.getMessage());
            rc = 2;
        } catch (Throwable t) {
            System.err.println("spark peer: failed: " + t);
            t.printStackTrace();
            rc = 1;
        }
        System.out.flush();
        System.exit(rc);
    }

    /** Progress of the query as reported by the StreamingQueryListener after each micro-batch. */
    static final class Progress extends StreamingQueryListener {
        final long target;
        final CountDownLatch stop;
        final AtomicReference<String> failure = new AtomicReference<>();
        volatile long rows;
        volatile long malformed;
        volatile long firstMs;
        volatile long lastMs;
        volatile long batches;

        Progress(long target, CountDownLatch stop) {
            this.target = target;
            this.stop = stop;
        }

        @Override
        public void onQueryStarted(QueryStartedEvent event) {}

        @Override
        public void onQueryIdle(QueryIdleEvent event) {}

        @Override
        public void onQueryProgress(QueryProgressEvent event) {
            StreamingQueryProgress p = event.progress();
            long n = p.numInputRows();
            if (n == 0) {
                return;
            }
            long start = Instant.parse(p.timestamp()).toEpochMilli();
            Long took = p.durationMs().get("triggerExecution");
            long end = start + (took == null ? 0 : took);
            Map<String, Row> observed = p.observedMetrics();
            Row m = observed == null ? null : observed.get("peer");
            if (m != null && !m.isNullAt(0)) {
                malformed += m.getLong(0);
            }
            batches++;
            if (target > 0) {
                System.err.printf("spark peer: micro-batch %d: %d rows in %d ms %s%n", p.batchId(), n,
                        took == null ? 0 : took, p.durationMs());
            }
            if (firstMs == 0) {
                firstMs = start;
            }
            rows += n;
            if (target > 0 && rows >= target && lastMs == 0) {
                lastMs = end;
                stop.countDown();
            }
        }

        @Override
        public void onQueryTerminated(QueryTerminatedEvent event) {
            if (event.exception().isDefined()) {
                failure.compareAndSet(null, event.exception().get());
            } else {
                failure.compareAndSet(null, "the query stopped");
            }
            stop.countDown();
        }
    }

    static SparkSession session(PeerArgs a) {
        SparkSession.Builder b = SparkSession.builder()
                .appName("pulseboard-peer-spark")
                .master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.local.dir", new File(a.stateDir, "spark-local").getPath());
        // The default of 200 shuffle partitions means 200 tasks and 200 state stores per
        // micro-batch for a handful of windows; 4 suits 2 cores. -Dspark.sql.shuffle.partitions=N
        // (read by SparkConf from system properties) overrides it.
        if (System.getProperty("spark.sql.shuffle.partitions") == null) {
            b.config("spark.sql.shuffle.partitions", "4");
        }
        return b.getOrCreate();
    }

    static Dataset<Row> job(SparkSession spark, PeerArgs a) {
        Dataset<Row> raw = spark.readStream().format("kafka")
                .option("kafka.bootstrap.servers", a.brokers)
                .option("subscribe", a.topic)
                .option("startingOffsets", "earliest")
                .option("groupIdPrefix", "spark-kafka-source-" + a.group)
                .load();

        // Every field as a string: Spark's JSON reader turns a number into its text, so "ts" may be
        // "1795515330123" or "2026-11-24T10:15:30.123Z". A message that is not a JSON object sets
        // the corrupt-record column (PERMISSIVE mode).
        StructType schema = new StructType()
                .add("ts", DataTypes.StringType)
                .add("type", DataTypes.StringType)
                .add("visitor", DataTypes.StringType)
                .add("_corrupt_record", DataTypes.StringType);
        Column parsed = from_json(col("value").cast("string"), schema,
                Map.of("mode", "PERMISSIVE", "columnNameOfCorruptRecord", "_corrupt_record"));
        Dataset<Row> decoded = raw.select(col("timestamp").as("kafka_ts"), parsed.as("e"))
                .withColumn("malformed", col("e").isNull().or(col("e._corrupt_record").isNotNull()))
                .observe("peer", sum(when(col("malformed"), 1L).otherwise(0L)).as("malformed"));

        // Regular expressions first: a failed cast (try_cast of an RFC 3339 string to a number)
        // costs an exception per row in Spark 4.
        Column eventTime = coalesce(
                expr("CASE WHEN e.ts RLIKE '^-?[0-9]{1,15}$' THEN timestamp_millis(CAST(e.ts AS BIGINT))"
                        + " WHEN e.ts RLIKE '^-?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?$'"
                        + " AND abs(CAST(e.ts AS DOUBLE)) < 9.0E15"
                        + " THEN timestamp_millis(CAST(CAST(e.ts AS DOUBLE) AS BIGINT)) END"),
                expr("try_cast(e.ts AS TIMESTAMP)"),
                col("kafka_ts"));
        Dataset<Row> events = decoded.filter(not(col("malformed"))).select(
                eventTime.as("event_time"),
                coalesce(expr("nullif(e.type, '')"), lit("pageview")).as("type"),
                expr("nullif(e.visitor, '')").as("visitor"));

        UserDefinedFunction byType = functions.udaf(new TypeCounts(), Encoders.STRING());
        Dataset<Row> windows = events
                .withWatermark("event_time", "5 seconds")
                .groupBy(window(col("event_time"), "10 seconds"))
                .agg(count(lit(1)).as("events"),
                        byType.apply(col("type")).as("by_type"),
                        // rsd 0.01 -> HLL++ with 2^14 registers, Pulseboard's precision.
                        approx_count_distinct(col("visitor"), 0.01).as("unique_visitors"));

        Column start = expr("unix_millis(window.start)");
        return windows.select(
                start.cast("string").as("key"),
                to_json(struct(start.as("start"), expr("unix_millis(window.end)").as("end"),
                        col("events"), col("by_type.counts").as("by_type"), col("unique_visitors")))
                        .as("value"));
    }

    static int run(PeerArgs a) throws Exception {
        long jvmStartMs = ManagementFactory.getRuntimeMXBean().getStartTime();
        CountDownLatch stop = new CountDownLatch(1);
        AtomicReference<String> signal = new AtomicReference<>();
        Progress progress = new Progress(a.events, stop);

        SparkSession spark = session(a);
        spark.sparkContext().setLogLevel("WARN");
        // Registered after Spark started, so that these handlers (not Spark's) receive the signals.
        Signals.onTermination(name -> {
            signal.compareAndSet(null, name);
            stop.countDown();
        });
        spark.streams().addListener(progress);
        StreamingQuery query = job(spark, a).writeStream()
                .format("kafka")
                .option("kafka.bootstrap.servers", a.brokers)
                .option("topic", a.outputTopic)
                .option("checkpointLocation", new File(a.stateDir, "checkpoint-" + a.group).getPath())
                .outputMode("update")
                .queryName("pulseboard_peer")
                .start();
        stop.await();

        int rc = 0;
        if (a.events > 0 && progress.lastMs != 0) {
            System.out.println(resultLine(a.events, progress.malformed, jvmStartMs, progress.firstMs,
                    progress.lastMs));
            System.out.flush();
        } else if (signal.get() != null) {
            if (a.events > 0) {
                System.err.printf("spark peer: stopped by SIG%s after %d of %d messages%n", signal.get(),
                        progress.rows, a.events);
                rc = 1;
            }
        } else {
            System.err.println("spark peer: failed: " + progress.failure.get());
            rc = 1;
        }
        System.err.printf("spark peer: %d input rows in %d micro-batches with input, %d malformed%n",
                progress.rows, progress.batches, progress.malformed);
        // Stopping interrupts a running micro-batch (in latency mode, or the no-data batch after
        // the last one); Spark then logs the interruptions as errors: silence them.
        spark.sparkContext().setLogLevel("OFF");
        try {
            query.stop();
        } catch (Exception e) {
            System.err.println("spark peer: warning: stopping the query: " + e);
        }
        spark.stop();
        return rc;
    }

    static String resultLine(long n, long malformed, long jvmStart, long first, long last) {
        double seconds = (last - first) / 1000.0;
        return String.format(Locale.ROOT,
                "{\"peer\":\"spark\",\"events\":%d,\"malformed\":%d,\"jvm_start_ms\":%d,\"first_ms\":%d,"
                        + "\"last_ms\":%d,\"seconds\":%.3f,\"eps\":%.1f,\"startup_ms\":%d}",
                n, malformed, jvmStart, first, last, seconds, seconds > 0 ? n / seconds : 0.0, first - jvmStart);
    }
}
