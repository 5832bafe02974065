package dev.pulseboard.peers.kstreams;

/** One decoded clickstream event: what the windowed job needs of it. */
final class Event {
    /** {@link #ts} when the message had no usable {@code ts} (the Kafka timestamp is used then). */
    static final long NO_TS = Long.MIN_VALUE;

    /** Event time in epoch ms, or {@link #NO_TS}. */
    final long ts;
    /** Event type; never null ("pageview" when missing or empty, as in Pulseboard's decoder). */
    final String type;
    /** Visitor id, or null when missing / empty. */
    final String visitor;

    Event(long ts, String type, String visitor) {
        this.ts = ts;
        this.type = type;
        this.visitor = visitor;
    }
}
