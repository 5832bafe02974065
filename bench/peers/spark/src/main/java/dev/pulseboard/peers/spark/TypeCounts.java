package dev.pulseboard.peers.spark;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.expressions.Aggregator;

/**
 * Counts by event type as one aggregate function: Spark SQL has no built-in "count by key into a
 * map" aggregate, and a second groupBy (window, type) would be a second stateful aggregation,
 * which Structured Streaming allows only in append mode. So: a typed {@link Aggregator}
 * registered with {@code functions.udaf}, used next to count and approx_count_distinct in the
 * same groupBy(window). Its buffer and result are a bean holding a {@code Map<String, Long>}
 * (Spark column type {@code struct<counts: map<string, bigint>>}). The types are free text: no
 * fixed list.
 */
public final class TypeCounts extends Aggregator<String, TypeCounts.Counts, TypeCounts.Counts> {
    private static final long serialVersionUID = 1L;

    /** Java bean (Spark's bean encoder): {@code counts: map<string, bigint>}. */
    public static final class Counts implements Serializable {
        private static final long serialVersionUID = 1L;
        private Map<String, Long> counts = new HashMap<>();

        public Map<String, Long> getCounts() {
            return counts;
        }

        public void setCounts(Map<String, Long> counts) {
            this.counts = counts;
        }
    }

    @Override
    public Counts zero() {
        return new Counts();
    }

    /** A buffer decoded by Spark holds an immutable map; copy it once before updating. */
    private static Counts mutable(Counts b) {
        if (!(b.counts instanceof HashMap)) {
            b.counts = new HashMap<>(b.counts);
        }
        return b;
    }

    @Override
    public Counts reduce(Counts b, String type) {
        mutable(b).counts.merge(type, 1L, Long::sum);
        return b;
    }

    @Override
    public Counts merge(Counts a, Counts b) {
        if (a.counts.size() < b.counts.size()) {
            Counts t = a;
            a = b;
            b = t;
        }
        mutable(a);
        for (Map.Entry<String, Long> e : b.counts.entrySet()) {
            a.counts.merge(e.getKey(), e.getValue(), Long::sum);
        }
        return a;
    }

    @Override
    public Counts finish(Counts b) {
        return b;
    }

    @Override
    public Encoder<Counts> bufferEncoder() {
        return Encoders.bean(Counts.class);
    }

    @Override
    public Encoder<Counts> outputEncoder() {
        return Encoders.bean(Counts.class);
    }
}
