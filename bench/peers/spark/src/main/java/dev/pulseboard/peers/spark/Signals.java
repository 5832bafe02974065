package dev.pulseboard.peers.spark;

import java.util.function.Consumer;
import sun.misc.Signal;

/**
 * SIGTERM / SIGINT handlers that let the main thread shut down in order and exit 0 (a JVM
 * shutdown hook would leave the exit status at 143 / 130).
 */
final class Signals {
    private Signals() {}

    static void onTermination(Consumer<String> handler) {
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), s -> handler.accept(s.getName()));
        }
    }
}
