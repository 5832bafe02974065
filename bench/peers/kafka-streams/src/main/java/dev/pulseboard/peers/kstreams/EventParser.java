package dev.pulseboard.peers.kstreams;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;

/**
 * Decodes one message value with Jackson's streaming parser (no tree, no data binding).
 *
 * <p>Rules (shared by the peer and by {@link Check}):
 * <ul>
 *   <li>malformed (returns null) = not a single JSON object (invalid JSON, truncated, an array, a
 *       bare scalar, trailing garbage, invalid UTF-8, or a null/empty message);
 *   <li>{@code ts}: an integer = epoch ms; a float = epoch ms truncated; a string = RFC 3339; anything
 *       else, missing or unparseable = {@link Event#NO_TS} (the caller uses the Kafka timestamp);
 *   <li>{@code type}: a string or other scalar (its text); missing, null or empty = "pageview";
 *   <li>{@code visitor}: a string or other scalar (its text); missing, null or empty = null (it then
 *       counts as an event but not as a visitor). Other fields are skipped unread.
 * </ul>
 */
final class EventParser {
    private static final JsonFactory JSON = new JsonFactory();

    private EventParser() {}

    static Event parse(byte[] value) {
        if (value == null || value.length == 0) {
            return null;
        }
        try (JsonParser p = JSON.createParser(value)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            long ts = Event.NO_TS;
            String type = null;
            String visitor = null;
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken v = p.nextToken();
                switch (name) {
                    case "ts":
                        ts = timestamp(p, v);
                        break;
                    case "type":
                        type = scalar(p, v);
                        break;
                    case "visitor":
                        visitor = scalar(p, v);
                        break;
                    default:
                        p.skipChildren();
                }
            }
            if (t != JsonToken.END_OBJECT || p.nextToken() != null) {
                return null;
            }
            if (type == null || type.isEmpty()) {
                type = "pageview";
            }
            if (visitor != null && visitor.isEmpty()) {
                visitor = null;
            }
            return new Event(ts, type, visitor);
        } catch (Exception e) {
            // JsonParseException, CharConversionException (bad UTF-8), ...: malformed.
            return null;
        }
    }

    /** Text of a scalar value; null for null, objects and arrays (skipped). */
    private static String scalar(JsonParser p, JsonToken v) throws java.io.IOException {
        if (v == null) {
            return null;
        }
        if (v.isStructStart()) {
            p.skipChildren();
            return null;
        }
        if (v == JsonToken.VALUE_NULL) {
            return null;
        }
        return p.getText();
    }

    private static long timestamp(JsonParser p, JsonToken v) throws java.io.IOException {
        if (v == JsonToken.VALUE_NUMBER_INT) {
            try {
                return p.getLongValue();
            } catch (Exception overflow) {
                return Event.NO_TS;
            }
        }
        if (v == JsonToken.VALUE_NUMBER_FLOAT) {
            double d = p.getDoubleValue();
            return Double.isFinite(d) && Math.abs(d) < 9.0e15 ? (long) d : Event.NO_TS;
        }
        if (v == JsonToken.VALUE_STRING) {
            return parseRfc3339(p.getText());
        }
        if (v != null && v.isStructStart()) {
            p.skipChildren();
        }
        return Event.NO_TS;
    }

    /**
     * RFC 3339 to epoch ms: a fast path for {@code YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)},
     * java.time for anything else; {@link Event#NO_TS} if unparseable.
     */
    static long parseRfc3339(String s) {
        int n = s.length();
        if (n >= 20 && s.charAt(4) == '-' && s.charAt(7) == '-' && (s.charAt(10) == 'T' || s.charAt(10) == 't'
                || s.charAt(10) == ' ') && s.charAt(13) == ':' && s.charAt(16) == ':') {
            int year = digits(s, 0, 4);
            int month = digits(s, 5, 2);
            int day = digits(s, 8, 2);
            int hour = digits(s, 11, 2);
            int minute = digits(s, 14, 2);
            int second = digits(s, 17, 2);
            int i = 19;
            int millis = 0;
            if (i < n && s.charAt(i) == '.') {
                i++;
                int start = i;
                int scale = 100;
                while (i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
                    millis += (s.charAt(i) - '0') * scale;
                    scale /= 10;
                    i++;
                }
                if (i == start) {
                    return Event.NO_TS;
                }
            }
            int offsetMinutes;
            if (i == n - 1 && (s.charAt(i) == 'Z' || s.charAt(i) == 'z')) {
                offsetMinutes = 0;
            } else if (i == n - 6 && (s.charAt(i) == '+' || s.charAt(i) == '-') && s.charAt(i + 3) == ':') {
                int oh = digits(s, i + 1, 2);
                int om = digits(s, i + 4, 2);
                if (oh < 0 || om < 0 || oh > 23 || om > 59) {
                    return Event.NO_TS;
                }
                offsetMinutes = (oh * 60 + om) * (s.charAt(i) == '-' ? -1 : 1);
            } else {
                return slow(s);
            }
            if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour < 0
                    || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
                return Event.NO_TS;
            }
            if (second == 60) {
                second = 59; // leap second: as Pulseboard and most parsers, clamp
            }
            long days = daysFromCivil(year, month, day);
            return ((days * 24 + hour) * 60 + minute - offsetMinutes) * 60_000L + second * 1000L + millis;
        }
        return slow(s);
    }

    private static long slow(String s) {
        try {
            return OffsetDateTime.parse(s.replace(' ', 'T'), DateTimeFormatter.ISO_OFFSET_DATE_TIME)
                    .toInstant().toEpochMilli();
        } catch (Exception e) {
            return Event.NO_TS;
        }
    }

    private static int digits(String s, int at, int len) {
        int v = 0;
        for (int k = at; k < at + len; k++) {
            char c = s.charAt(k);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        return v;
    }

    private static int daysIn(int y, int m) {
        switch (m) {
            case 2:
                return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28;
            case 4:
            case 6:
            case 9:
            case 11:
                return 30;
            default:
                return 31;
        }
    }

    /** Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
    private static long daysFromCivil(int y, int m, int d) {
        y -= m <= 2 ? 1 : 0;
        long era = Math.floorDiv(y, 400);
        long yoe = y - era * 400;
        long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
    }
}
