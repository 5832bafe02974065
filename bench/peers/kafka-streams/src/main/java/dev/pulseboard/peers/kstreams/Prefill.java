package dev.pulseboard.peers.kstreams;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Writes realistic clickstream events into a topic, keyed by visitor: test data for the peers.
 *
 * <pre>
 * Prefill --brokers HOST:PORT --topic T --events N [--span-seconds 300] [--seed 1]
 *         [--rate EPS]   (live mode: N events paced at EPS/s with event time = now)
 *         [--partitions P]   (create the topic with P partitions first, unless it exists)
 * </pre>
 *
 * <p>Traffic shape after Pulseboard's generator (model/src/gen.rs): 20,000 visitors, sessions of
 * ~5 events, ~85/13/2 % pageview/click/signup, Zipf page popularity, sticky country/device, 2 %
 * out-of-order events (0.1-4 s behind), 0.2 % late events (20-120 s behind) and 0.3 % odd
 * payloads of Pulseboard's five kinds (not JSON, a JSON array, a missing url, a wrongly typed
 * field, an unparseable ts). 10 % of the events carry {@code ts} as epoch-ms numbers and 0.1 %
 * carry no {@code ts}. Without --rate the event times are spread evenly over the --span-seconds
 * ending now; the Kafka record timestamp is the nominal time (before the out-of-order / late
 * offset). A summary goes to stderr.
 */
public final class Prefill {
    static final String[] FIXED_PAGES = {"/", "/pricing", "/docs/getting-started", "/features", "/blog",
        "/signup", "/login", "/docs", "/about", "/integrations", "/changelog", "/contact", "/careers",
        "/security", "/customers", "/docs/api", "/status", "/legal/privacy", "/legal/terms", "/enterprise"};
    static final String[] DOC_SECTIONS = {"guides", "api", "sdk", "deploy", "reference", "tutorials",
        "concepts", "faq"};
    static final String[] DOC_TOPICS = {"authentication", "webhooks", "rate-limits", "pagination", "errors",
        "dashboards", "alerts", "exports", "kafka", "retention", "sampling", "teams"};
    static final String[] REFERRERS = {null, "https://www.google.com/", "https://news.ycombinator.com/",
        "https://twitter.com/", "https://github.com/", "https://www.reddit.com/", "https://www.bing.com/",
        "https://news.example/"};
    static final int[] REFERRER_WEIGHTS = {40, 28, 8, 6, 6, 4, 4, 4};
    static final String[] COUNTRIES = {"US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "NL", "ES", "AU", "SE",
        "PL", "IT", "KR", "MX"};
    static final int[] COUNTRY_WEIGHTS = {32, 10, 9, 6, 8, 5, 4, 5, 3, 3, 3, 2, 3, 3, 2, 2};
    static final String[] DEVICES = {"desktop", "mobile", "tablet"};
    static final int[] DEVICE_WEIGHTS = {55, 40, 5};
    static final int VISITORS = 20_000;
    static final int PAGES = 300;
    static final int MAX_SESSIONS = 2_000;
    static final double OUT_OF_ORDER = 0.02;
    static final double LATE = 0.002;
    static final double ODD = 0.003;
    static final double NUMERIC_TS = 0.10;
    static final double NO_TS = 0.001;

    private static final DateTimeFormatter RFC3339_MS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.ROOT)
                    .withZone(java.time.ZoneOffset.UTC);

    static final class Session {
        final int visitor;
        final String id;
        int remaining;
        final String referrer;

        Session(int visitor, String id, int remaining, String referrer) {
            this.visitor = visitor;
            this.id = id;
            this.remaining = remaining;
            this.referrer = referrer;
        }
    }

    final SplittableRandom rng;
    final String[] pages = new String[PAGES];
    final double[] zipfCdf = new double[PAGES];
    final List<Session> sessions = new ArrayList<>();
    final long salt;
    long malformedJson;
    long oddButJson;
    final TreeMap<String, Long> types = new TreeMap<>();

    Prefill(long seed) {
        rng = new SplittableRandom(seed);
        salt = mix(seed * 0x9E3779B97F4A7C15L + 1);
        for (int i = 0; i < PAGES; i++) {
            if (i < FIXED_PAGES.length) {
                pages[i] = FIXED_PAGES[i];
            } else if (i % 2 == 0) {
                pages[i] = "/docs/" + DOC_SECTIONS[i % DOC_SECTIONS.length] + "/" + DOC_TOPICS[(i / 8) % DOC_TOPICS.length]
                        + (i > 200 ? "-" + i : "");
            } else {
                pages[i] = "/blog/" + "post-" + i;
            }
        }
        double sum = 0;
        for (int i = 0; i < PAGES; i++) {
            sum += 1.0 / Math.pow(i + 1, 1.1);
            zipfCdf[i] = sum;
        }
        for (int i = 0; i < PAGES; i++) {
            zipfCdf[i] /= sum;
        }
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    static String weighted(String[] items, int[] weights, int r) {
        for (int i = 0; i < items.length; i++) {
            if (r < weights[i]) {
                return items[i];
            }
            r -= weights[i];
        }
        return items[items.length - 1];
    }

    static int total(int[] w) {
        int t = 0;
        for (int x : w) {
            t += x;
        }
        return t;
    }

    String visitorId(int v) {
        return String.format("v-%012x", mix(salt ^ v) & 0xffff_ffff_ffffL);
    }

    String page() {
        double u = rng.nextDouble();
        int lo = 0;
        int hi = PAGES - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (zipfCdf[mid] < u) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return pages[lo];
    }

    Session session() {
        boolean startNew = sessions.size() < MAX_SESSIONS / 2
                || (sessions.size() < MAX_SESSIONS && rng.nextDouble() < 0.15) || sessions.isEmpty();
        if (startNew) {
            int remaining = 1;
            while (remaining < 21 && rng.nextDouble() < 0.8) {
                remaining++;
            }
            Session s = new Session(rng.nextInt(VISITORS), String.format("s-%016x", rng.nextLong()), remaining,
                    weighted(REFERRERS, REFERRER_WEIGHTS, rng.nextInt(total(REFERRER_WEIGHTS))));
            sessions.add(s);
            return s;
        }
        return sessions.get(rng.nextInt(sessions.size()));
    }

    /** One message: key = visitor id, value = JSON (or an odd payload). */
    byte[][] next(long nowMs) {
        Session s = session();
        if (--s.remaining <= 0) {
            sessions.remove(s);
        }
        int roll = rng.nextInt(100);
        String type = roll < 85 ? "pageview" : roll < 98 ? "click" : "signup";
        String url = type.equals("signup") ? "/signup" : page();
        long ts = nowMs;
        if (rng.nextDouble() < LATE) {
            ts -= 20_000 + rng.nextInt(100_000);
        } else if (rng.nextDouble() < OUT_OF_ORDER) {
            ts -= 100 + rng.nextInt(3_900);
        }
        String visitor = visitorId(s.visitor);
        long h = mix(salt + s.visitor);
        String country = weighted(COUNTRIES, COUNTRY_WEIGHTS, (int) Math.floorMod(h, (long) total(COUNTRY_WEIGHTS)));
        String device = weighted(DEVICES, DEVICE_WEIGHTS, (int) Math.floorMod(h >>> 32, (long) total(DEVICE_WEIGHTS)));
        double tsRoll = rng.nextDouble();
        String tsJson = tsRoll < NO_TS ? null
                : tsRoll < NO_TS + NUMERIC_TS ? Long.toString(ts) : "\"" + RFC3339_MS.format(Instant.ofEpochMilli(ts)) + "\"";
        String json = json(tsJson, type, visitor, s.id, url, s.referrer, country, device);
        if (rng.nextDouble() < ODD) {
            String odd;
            switch (rng.nextInt(5)) {
                case 0:
                    malformedJson++;
                    switch (rng.nextInt(3)) {
                        case 0:
                            odd = "GET /index.html HTTP/1.1";
                            break;
                        case 1:
                            odd = json.substring(0, json.length() / 2);
                            break;
                        default:
                            odd = "visitor=" + visitor + "&url=" + url;
                    }
                    break;
                case 1:
                    malformedJson++;
                    odd = "[" + json + "]";
                    break;
                case 2:
                    oddButJson++;
                    odd = json(tsJson, type, visitor, s.id, null, s.referrer, country, device);
                    break;
                case 3:
                    oddButJson++;
                    odd = rng.nextBoolean()
                            ? json(tsJson, type, visitor, s.id, null, s.referrer, country, device)
                                    .replace(",\"session\":", ",\"url\":404,\"session\":")
                            : json.replace("\"visitor\":" + Json.string(new StringBuilder(), visitor),
                                    "\"visitor\":true");
                    break;
                default:
                    oddButJson++;
                    odd = json(rng.nextBoolean() ? "\"yesterday at noon\"" : "\"2026-13-45T99:00:00Z\"", type,
                            visitor, s.id, url, s.referrer, country, device);
            }
            return new byte[][] {visitor.getBytes(StandardCharsets.UTF_8), odd.getBytes(StandardCharsets.UTF_8)};
        }
        types.merge(type, 1L, Long::sum);
        return new byte[][] {visitor.getBytes(StandardCharsets.UTF_8), json.getBytes(StandardCharsets.UTF_8)};
    }

    static String json(String ts, String type, String visitor, String session, String url, String referrer,
            String country, String device) {
        StringBuilder sb = new StringBuilder(220).append('{');
        if (ts != null) {
            sb.append("\"ts\":").append(ts).append(',');
        }
        sb.append("\"type\":");
        Json.string(sb, type).append(",\"visitor\":");
        Json.string(sb, visitor).append(",\"session\":");
        Json.string(sb, session);
        if (url != null) {
            Json.string(sb.append(",\"url\":"), url);
        }
        if (referrer != null) {
            Json.string(sb.append(",\"referrer\":"), referrer);
        }
        Json.string(sb.append(",\"country\":"), country);
        Json.string(sb.append(",\"device\":"), device);
        return sb.append('}').toString();
    }

    public static void main(String[] argv) throws Exception {
        String brokers = null;
        String topic = null;
        long n = -1;
        long spanSeconds = 300;
        long seed = 1;
        double rate = 0;
        int partitions = 0;
        for (int i = 0; i + 1 < argv.length; i += 2) {
            switch (argv[i]) {
                case "--brokers": brokers = argv[i + 1]; break;
                case "--topic": topic = argv[i + 1]; break;
                case "--events": n = Long.parseLong(argv[i + 1]); break;
                case "--span-seconds": spanSeconds = Long.parseLong(argv[i + 1]); break;
                case "--seed": seed = Long.parseLong(argv[i + 1]); break;
                case "--rate": rate = Double.parseDouble(argv[i + 1]); break;
                case "--partitions": partitions = Integer.parseInt(argv[i + 1]); break;
                default:
                    System.err.println("prefill: unknown argument " + argv[i]);
                    System.exit(2);
            }
        }
        if (brokers == null || topic == null || n <= 0 || argv.length % 2 != 0) {
            System.err.println("usage: Prefill --brokers HOST:PORT --topic T --events N [--span-seconds 300]"
                    + " [--seed 1] [--rate EPS] [--partitions P]");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 10);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (partitions > 0) {
            createTopic(brokers, topic, partitions);
        }
        Prefill g = new Prefill(seed);
        AtomicReference<Exception> failed = new AtomicReference<>();
        long t0 = System.currentTimeMillis();
        long end = t0;
        long start = end - spanSeconds * 1000;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (long i = 0; i < n && failed.get() == null; i++) {
                long nominal;
                if (rate > 0) {
                    long due = t0 + (long) (i * 1000 / rate);
                    long now = System.currentTimeMillis();
                    if (due > now) {
                        Thread.sleep(due - now);
                    }
                    nominal = System.currentTimeMillis();
                } else {
                    nominal = start + (long) ((double) i * (end - start) / n);
                }
                byte[][] kv = g.next(nominal);
                producer.send(new ProducerRecord<>(topic, null, nominal, kv[0], kv[1]), (md, e) -> {
                    if (e != null) {
                        failed.compareAndSet(null, e);
                    }
                });
            }
            producer.flush();
        }
        if (failed.get() != null) {
            System.err.println("prefill: send failed: " + failed.get());
            System.exit(1);
        }
        System.err.printf("prefill: %d messages to %s in %.1f s: %d not a JSON object (malformed), %d odd"
                        + " but JSON objects, types of the others %s%n", n, topic,
                (System.currentTimeMillis() - t0) / 1000.0, g.malformedJson, g.oddButJson, g.types);
    }

    static void createTopic(String brokers, String topic, int partitions) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (Admin admin = Admin.create(p)) {
            if (admin.listTopics().names().get().contains(topic)) {
                return;
            }
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
    }
}
