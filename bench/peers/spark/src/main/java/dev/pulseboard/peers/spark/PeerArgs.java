package dev.pulseboard.peers.spark;

import java.util.HashMap;
import java.util.Map;

/**
 * The peers' command line contract:
 * {@code --brokers HOST:PORT[,..] --topic T --output-topic O --group G --state-dir DIR --events N}.
 * Every flag is required; unknown flags are errors.
 */
final class PeerArgs {
    final String brokers;
    final String topic;
    final String outputTopic;
    final String group;
    final String stateDir;
    final long events;

    private PeerArgs(Map<String, String> m) {
        brokers = m.get("--brokers");
        topic = m.get("--topic");
        outputTopic = m.get("--output-topic");
        group = m.get("--group");
        stateDir = m.get("--state-dir");
        try {
            events = Long.parseLong(m.get("--events"));
        } catch (NumberFormatException e) {
            throw new UsageException("--events must be an integer, got " + m.get("--events"));
        }
        if (events < 0) {
            throw new UsageException("--events must be >= 0");
        }
    }

    /** A command line error (exit status 2). */
    static final class UsageException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    static final String USAGE = "usage: --brokers HOST:PORT[,..] --topic T --output-topic O --group G"
            + " --state-dir DIR --events N   (N > 0: throughput mode, N = 0: run until SIGTERM)";

    static PeerArgs parse(String[] argv) {
        String[] known = {"--brokers", "--topic", "--output-topic", "--group", "--state-dir", "--events"};
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            String value = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                value = a.substring(eq + 1);
                a = a.substring(0, eq);
            }
            boolean ok = false;
            for (String k : known) {
                ok |= k.equals(a);
            }
            if (!ok) {
                throw new UsageException("unknown argument " + argv[i] + "\n" + USAGE);
            }
            if (value == null) {
                if (i + 1 >= argv.length) {
                    throw new UsageException(a + " needs a value\n" + USAGE);
                }
                value = argv[++i];
            }
            m.put(a, value);
        }
        for (String k : known) {
            if (m.get(k) == null || m.get(k).isEmpty()) {
                throw new UsageException("missing " + k + "\n" + USAGE);
            }
        }
        return new PeerArgs(m);
    }
}
