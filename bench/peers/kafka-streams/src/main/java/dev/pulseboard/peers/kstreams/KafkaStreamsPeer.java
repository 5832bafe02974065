package dev.pulseboard.peers.kstreams;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.StreamPartitioner;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Benchmark peer: Pulseboard's windowed job in the Kafka Streams DSL.
 *
 * <p>source (JSON, event-time extractor) -> peek (progress, malformed count) -> filter malformed ->
 * map to key bucket = input partition of the visitor key -> repartition (bucket b -> partition b) ->
 * groupByKey -> 10 s tumbling windows, 5 s grace -> aggregate(count, by type, HLL) -> JSON ->
 * output topic, key = window start. Emits on update (record cache, flushed at every commit,
 * commit.interval.ms = 1000). See bench/peers/README.md.
 */
public final class KafkaStreamsPeer {
    static final Duration WINDOW = Duration.ofSeconds(10);
    static final Duration GRACE = Duration.ofSeconds(5);

    private KafkaStreamsPeer() {}

    /** Progress of a throughput run, updated from both stream threads. */
    static final class Progress {
        final long target;
        final AtomicLong firstMs = new AtomicLong();
        final AtomicLong done = new AtomicLong();
        final AtomicLong malformed = new AtomicLong();
        volatile long lastMs;
        final CountDownLatch stop;

        Progress(long target, CountDownLatch stop) {
            this.target = target;
            this.stop = stop;
        }

        void seen() {
            if (firstMs.get() == 0) {
                firstMs.compareAndSet(0, System.currentTimeMillis());
            }
        }

        void processed() {
            long d = done.incrementAndGet();
            if (target > 0 && d == target) {
                lastMs = System.currentTimeMillis();
                stop.countDown();
            }
        }
    }

    /** Event time: {@code ts} of the decoded event, else the Kafka record timestamp. */
    static final class EventTime implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            Object v = record.value();
            if (v instanceof Event && ((Event) v).ts != Event.NO_TS) {
                return ((Event) v).ts;
            }
            // Negative timestamps would make Kafka Streams skip the record silently.
            return record.timestamp() >= 0 ? record.timestamp() : Math.max(partitionTime, 0);
        }
    }

    /**
     * bucket = Kafka's default partitioner applied to the message key, i.e. the visitor id
     * (murmur2 of the key bytes, mod the number of input partitions); the visitor field when there
     * is no key. So the bucket of a message is its input partition: buckets hold disjoint visitor
     * sets (the input is keyed by visitor), and each window task reads the records of exactly one
     * input partition in their order, i.e. Kafka Streams' per-task stream time follows one input
     * partition, like Pulseboard's per-partition watermarks. (Hashing the visitor field instead
     * lets one odd record, e.g. {"visitor":true}, from another partition push a task's stream time
     * ahead and expire thousands of on-time records.)
     */
    static int bucket(byte[] key, String visitor, int buckets) {
        byte[] k = key != null ? key : visitor != null ? visitor.getBytes(StandardCharsets.UTF_8) : null;
        return k == null ? 0 : Utils.toPositive(Utils.murmur2(k)) % buckets;
    }

    static Topology topology(PeerArgs a, Progress progress, int buckets) {
        StreamsBuilder b = new StreamsBuilder();
        // Malformed messages decode to null (never an exception), so they are counted, not fatal.
        Deserializer<Event> events = (topic, data) -> EventParser.parse(data);
        StreamPartitioner<Integer, BucketedEvent> byBucket =
                (topic, key, value, n) -> Optional.of(Set.of(Math.floorMod(key, n)));
        Serializer<Event> never = (topic, e) -> {
            throw new UnsupportedOperationException("input events are never written");
        };
        b.stream(a.topic, Consumed.with(Serdes.ByteArray(), Serdes.serdeFrom(never, events))
                        .withTimestampExtractor(new EventTime()).withName("input"))
                .peek((k, v) -> {
                    progress.seen();
                    if (v == null) {
                        progress.malformed.incrementAndGet();
                        progress.processed();
                    }
                }, Named.as("progress-input"))
                .filter((k, v) -> v != null, Named.as("drop-malformed"))
                .map((k, v) -> KeyValue.pair(bucket(k, v.visitor, buckets), new BucketedEvent(v.type, v.visitor)),
                        Named.as("to-bucket"))
                .repartition(Repartitioned.<Integer, BucketedEvent>as("by-bucket")
                        .withKeySerde(Serdes.Integer()).withValueSerde(BucketedEvent.serde())
                        .withNumberOfPartitions(buckets).withStreamPartitioner(byBucket))
                .peek((k, v) -> progress.processed(), Named.as("progress-windowed"))
                .groupByKey()
                .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
                .aggregate(WindowAgg::new, (k, v, agg) -> agg.add(v),
                        Named.as("window-agg"),
                        Materialized.<Integer, WindowAgg, WindowStore<Bytes, byte[]>>as("window-agg")
                                .withKeySerde(Serdes.Integer()).withValueSerde(WindowAgg.serde()))
                .toStream(Named.as("updates"))
                .map((wk, agg) -> KeyValue.pair(Long.toString(wk.window().start()),
                        agg.toJson(wk.window().start(), wk.window().end(), wk.key())), Named.as("to-json"))
                .to(a.outputTopic, Produced.with(Serdes.String(), Serdes.String()).withName("output"));
        return b.build();
    }

    static Properties config(PeerArgs a) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.group);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.brokers);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.STATE_DIR_CONFIG, a.stateDir);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        return p;
    }

    public static void main(String[] argv) {
        int rc;
        try {
            rc = run(PeerArgs.parse(argv));
        } catch (PeerArgs.UsageException e) {
            System.err.println("kafka-streams peer: " + e.getMessage());
            rc = 2;
        } catch (Throwable t) {
            System.err.println("kafka-streams peer: failed: " + t);
            t.printStackTrace();
            rc = 1;
        }
        System.out.flush();
        System.exit(rc);
    }

    static int run(PeerArgs a) throws InterruptedException {
        long jvmStartMs = ManagementFactory.getRuntimeMXBean().getStartTime();
        CountDownLatch stop = new CountDownLatch(1);
        Progress progress = new Progress(a.events, stop);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicReference<String> signal = new AtomicReference<>();

        int buckets = inputPartitions(a);
        KafkaStreams streams = new KafkaStreams(topology(a, progress, buckets), config(a));
        streams.setUncaughtExceptionHandler(e -> {
            failure.compareAndSet(null, e);
            stop.countDown();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR) {
                failure.compareAndSet(null, new IllegalStateException("Kafka Streams went to state ERROR"));
                stop.countDown();
            }
        });
        Signals.onTermination(name -> {
            signal.compareAndSet(null, name);
            stop.countDown();
        });
        streams.start();
        stop.await();

        if (failure.get() != null) {
            streams.close(Duration.ofSeconds(10));
            System.err.println("kafka-streams peer: failed: " + failure.get());
            return 1;
        }
        if (a.events > 0 && progress.done.get() < a.events) {
            streams.close(Duration.ofSeconds(10));
            System.err.printf("kafka-streams peer: stopped by SIG%s after %d of %d messages%n",
                    signal.get(), progress.done.get(), a.events);
            return 1;
        }
        if (a.events > 0) {
            long first = progress.firstMs.get();
            long last = progress.lastMs;
            System.out.println(resultLine("kafka_streams", a.events, progress.malformed.get(), jvmStartMs,
                    first, last));
            System.out.flush();
        }
        System.err.printf("kafka-streams peer: %d messages processed, %d malformed, %.0f records dropped"
                + " (late or invalid, task metric dropped-records-total)%n", progress.done.get(),
                progress.malformed.get(), dropped(streams));
        // Flushes the record cache (the last updates) and commits; bounded so that a slow broker
        // cannot keep the process alive.
        if (!streams.close(Duration.ofSeconds(30))) {
            System.err.println("kafka-streams peer: warning: close did not finish within 30 s");
        }
        return 0;
    }

    /** The number of partitions of the input topic (= the number of buckets). */
    static int inputPartitions(PeerArgs a) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, a.brokers);
        try (Admin admin = Admin.create(p)) {
            return admin.describeTopics(List.of(a.topic)).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get(a.topic).partitions().size();
        } catch (Exception e) {
            throw new IllegalStateException("cannot describe input topic " + a.topic + ": " + e, e);
        }
    }

    static double dropped(KafkaStreams streams) {
        double sum = 0;
        for (Metric m : streams.metrics().values()) {
            if (m.metricName().name().equals("dropped-records-total") && m.metricValue() instanceof Number) {
                sum += ((Number) m.metricValue()).doubleValue();
            }
        }
        return sum;
    }

    static String resultLine(String peer, long n, long malformed, long jvmStart, long first, long last) {
        double seconds = (last - first) / 1000.0;
        return String.format(java.util.Locale.ROOT,
                "{\"peer\":\"%s\",\"events\":%d,\"malformed\":%d,\"jvm_start_ms\":%d,\"first_ms\":%d,"
                        + "\"last_ms\":%d,\"seconds\":%.3f,\"eps\":%.1f,\"startup_ms\":%d}",
                peer, n, malformed, jvmStart, first, last, seconds, seconds > 0 ? n / seconds : 0.0,
                first - jvmStart);
    }
}
