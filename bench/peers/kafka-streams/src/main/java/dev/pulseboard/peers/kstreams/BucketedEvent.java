package dev.pulseboard.peers.kstreams;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * What crosses the repartition topic: type and visitor. The event time travels as the Kafka
 * record timestamp (Kafka Streams writes the record's timestamp into the repartition topic and
 * reads it back), so it is not repeated in the value.
 */
final class BucketedEvent {
    final String type;
    final String visitor;

    BucketedEvent(String type, String visitor) {
        this.type = type;
        this.visitor = visitor;
    }

    /** [int type length][type UTF-8][visitor UTF-8, absent when no visitor]; visitor null = length -1. */
    static Serde<BucketedEvent> serde() {
        Serializer<BucketedEvent> ser = (topic, e) -> {
            byte[] t = e.type.getBytes(StandardCharsets.UTF_8);
            byte[] v = e.visitor == null ? null : e.visitor.getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(8 + t.length + (v == null ? 0 : v.length));
            b.putInt(t.length).put(t).putInt(v == null ? -1 : v.length);
            if (v != null) {
                b.put(v);
            }
            return b.array();
        };
        Deserializer<BucketedEvent> de = (topic, data) -> {
            ByteBuffer b = ByteBuffer.wrap(data);
            int tl = b.getInt();
            String t = new String(data, 4, tl, StandardCharsets.UTF_8);
            b.position(4 + tl);
            int vl = b.getInt();
            String v = vl < 0 ? null : new String(data, 8 + tl, vl, StandardCharsets.UTF_8);
            return new BucketedEvent(t, v);
        };
        return Serdes.serdeFrom(ser, de);
    }
}
