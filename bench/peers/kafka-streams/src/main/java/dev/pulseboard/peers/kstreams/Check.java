package dev.pulseboard.peers.kstreams;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Checks a peer's output topic against an exact recomputation of its input topic.
 *
 * <pre>Check --brokers HOST:PORT --topic T --output-topic O [--grace-ms 5000] [--tolerance 0.05]
 *       [--verbose true]</pre>
 *
 * <p>Input: decoded with the peers' rules ({@link EventParser}); event time = {@code ts} or the
 * record timestamp; per 10 s window the exact event count, counts by type and distinct visitors.
 * Output: the last update per (window start, bucket) -- the bucket field is absent for Spark --
 * summed over buckets. An event is "late in its partition" when its window end + grace <= the
 * largest event time before it in its input partition. Each window's events and by_type must
 * equal exactly either all its events (no drops, e.g. Spark reading everything in one
 * micro-batch) or all but those late in their partition (Kafka Streams with partition-aligned
 * buckets: per-partition stream time); anything strictly in between is reported as "in between"
 * (other watermark semantics), anything else is a mismatch. unique_visitors must be within the
 * tolerance of the matching exact distinct count.
 * Exits 0 when everything holds, 1 otherwise; the report goes to stdout.
 */
public final class Check {
    static final long WINDOW_MS = 10_000;

    /** Exact numbers of one window: all its events, and those not late in their own partition. */
    static final class Expected {
        long events;
        long lateCandidates;
        final Map<String, Long> byType = new TreeMap<>();
        final Set<String> visitors = new HashSet<>();
        long onTimeEvents;
        final Map<String, Long> onTimeByType = new TreeMap<>();
        final Set<String> onTimeVisitors = new HashSet<>();
    }

    static final class Got {
        final Map<Integer, JsonNode> byBucket = new TreeMap<>();
    }

    public static void main(String[] argv) {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            a.put(argv[i], argv[i + 1]);
        }
        if (!a.containsKey("--brokers") || !a.containsKey("--topic") || !a.containsKey("--output-topic")) {
            System.err.println("usage: Check --brokers HOST:PORT --topic T --output-topic O [--grace-ms 5000]"
                    + " [--tolerance 0.05]");
            System.exit(2);
        }
        long grace = Long.parseLong(a.getOrDefault("--grace-ms", "5000"));
        double tolerance = Double.parseDouble(a.getOrDefault("--tolerance", "0.05"));
        boolean verbose = Boolean.parseBoolean(a.getOrDefault("--verbose", "false"));
        String brokers = a.get("--brokers");

        TreeMap<Long, Expected> expected = new TreeMap<>();
        Map<Integer, Long> partitionMax = new HashMap<>();
        long[] counts = new long[2]; // messages, malformed
        readAll(brokers, a.get("--topic"), r -> {
            counts[0]++;
            Event e = EventParser.parse(r.value());
            if (e == null) {
                counts[1]++;
                return;
            }
            long ts = e.ts != Event.NO_TS ? e.ts : r.timestamp();
            long start = Math.floorDiv(ts, WINDOW_MS) * WINDOW_MS;
            Expected x = expected.computeIfAbsent(start, k -> new Expected());
            x.events++;
            x.byType.merge(e.type, 1L, Long::sum);
            if (e.visitor != null) {
                x.visitors.add(e.visitor);
            }
            long max = partitionMax.getOrDefault(r.partition(), Long.MIN_VALUE);
            if (start + WINDOW_MS + grace <= max) {
                x.lateCandidates++;
            } else {
                x.onTimeEvents++;
                x.onTimeByType.merge(e.type, 1L, Long::sum);
                if (e.visitor != null) {
                    x.onTimeVisitors.add(e.visitor);
                }
            }
            partitionMax.put(r.partition(), Math.max(max, ts));
        });

        ObjectMapper json = new ObjectMapper();
        TreeMap<Long, Got> got = new TreeMap<>();
        long[] updates = new long[1];
        List<String> badOutput = new ArrayList<>();
        readAll(brokers, a.get("--output-topic"), r -> {
            updates[0]++;
            try {
                JsonNode v = json.readTree(r.value());
                long start = v.get("start").asLong();
                if (r.key() == null || !new String(r.key()).equals(Long.toString(start))
                        || v.get("end").asLong() != start + WINDOW_MS) {
                    badOutput.add("bad key/end: " + new String(r.value()));
                }
                int bucket = v.has("bucket") ? v.get("bucket").asInt() : -1;
                got.computeIfAbsent(start, k -> new Got()).byBucket.put(bucket, v);
            } catch (Exception ex) {
                badOutput.add("unreadable: " + ex);
            }
        });

        System.out.printf("input: %d messages, %d malformed, %d windows; output: %d updates, %d windows%n",
                counts[0], counts[1], expected.size(), updates[0], got.size());
        int exactAll = 0;
        int exactOnTime = 0;
        int bounded = 0;
        int uniqueBad = 0;
        long lostEvents = 0;
        double worstUnique = 0;
        List<String> problems = new ArrayList<>(badOutput);
        for (Map.Entry<Long, Expected> en : expected.entrySet()) {
            long start = en.getKey();
            Expected x = en.getValue();
            long events = 0;
            long unique = 0;
            Map<String, Long> byType = new TreeMap<>();
            Got g = got.get(start);
            if (g != null) {
                for (JsonNode v : g.byBucket.values()) {
                    events += v.get("events").asLong();
                    unique += v.get("unique_visitors").asLong();
                    for (Map.Entry<String, JsonNode> t : v.get("by_type").properties()) {
                        byType.merge(t.getKey(), t.getValue().asLong(), Long::sum);
                    }
                }
            }
            lostEvents += x.events - events;
            String line = String.format("window %d: expected events %d by_type %s unique %d (not late in their"
                            + " partition: %d %s %d); got events %d by_type %s unique %d", start, x.events,
                    x.byType, x.visitors.size(), x.onTimeEvents, x.onTimeByType, x.onTimeVisitors.size(),
                    events, byType, unique);
            int truth;
            if (events == x.events && byType.equals(x.byType)) {
                exactAll++;
                truth = x.visitors.size();
            } else if (events == x.onTimeEvents && byType.equals(x.onTimeByType)) {
                exactOnTime++;
                truth = x.onTimeVisitors.size();
            } else if (events < x.events && events > x.onTimeEvents) {
                bounded++;
                truth = -1;
            } else {
                problems.add("MISMATCH " + line);
                truth = -1;
            }
            if (truth > 0) {
                double err = Math.abs(unique - truth) / (double) truth;
                worstUnique = Math.max(worstUnique, err);
                if (err > tolerance) {
                    uniqueBad++;
                    problems.add(String.format("UNIQUE %.2f %% off: %s", err * 100, line));
                }
            }
            if (verbose) {
                System.out.println(line);
            }
        }
        for (Long start : got.keySet()) {
            if (!expected.containsKey(start)) {
                problems.add("UNEXPECTED window in output: " + start);
            }
        }
        long totalExpected = expected.values().stream().mapToLong(x -> x.events).sum();
        System.out.printf("windows: %d exact (all events), %d exact (all but the events late in their own"
                        + " partition), %d in between, %d mismatched; events expected %d, missing from output %d"
                        + " (%.3f %%); worst unique_visitors error (exact windows) %.2f %%%n", exactAll,
                exactOnTime, bounded, expected.size() - exactAll - exactOnTime - bounded, totalExpected,
                lostEvents, 100.0 * lostEvents / Math.max(1, totalExpected), worstUnique * 100);
        int shown = 0;
        for (String p : problems) {
            if (shown++ < 40) {
                System.out.println(p);
            }
        }
        boolean ok = problems.isEmpty() && uniqueBad == 0;
        System.out.println(ok ? "CHECK OK" : "CHECK FAILED (" + problems.size() + " problems)");
        System.exit(ok ? 0 : 1);
    }

    /** Reads a topic from the beginning to its current end, in partition order. */
    static void readAll(String brokers, String topic, Consumer<ConsumerRecord<byte[], byte[]>> each) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
        try (KafkaConsumer<byte[], byte[]> c =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) {
                parts.add(new TopicPartition(topic, pi.partition()));
            }
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts);
            while (true) {
                boolean done = true;
                for (TopicPartition tp : parts) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    return;
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    each.accept(r);
                }
            }
        }
    }
}
