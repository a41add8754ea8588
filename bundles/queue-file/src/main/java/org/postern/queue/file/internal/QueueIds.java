package org.postern.queue.file.internal;

import java.time.Clock;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Makes queue ids: 15 upper-case base-36 characters, safe in file names and sortable by time.
 * Nine characters of milliseconds (fixed width until the year 5188, so text order is time order),
 * three of a per-millisecond counter, three random ones so that two stores started in the same
 * millisecond (a restart after a clock step back, two nodes) still differ.
 */
final class QueueIds {

    private static final int COUNTER_LIMIT = 36 * 36 * 36;
    private static final int RANDOM_LIMIT = 36 * 36 * 36;

    private final Clock clock;
    private long lastMillis;
    private int counter;

    QueueIds(Clock clock) {
        this.clock = clock;
    }

    synchronized String next() {
        long now = clock.millis();
        if (now > lastMillis) {
            lastMillis = now;
            counter = 0;
        } else if (++counter >= COUNTER_LIMIT) {
            // Same millisecond (or the clock went back): borrow from the future to stay monotonic.
            lastMillis++;
            counter = 0;
        }
        return pad(lastMillis, 9) + pad(counter, 3) + pad(ThreadLocalRandom.current().nextInt(RANDOM_LIMIT), 3);
    }

    private static String pad(long value, int width) {
        String text = Long.toString(value, 36).toUpperCase(Locale.ROOT);
        return "0".repeat(Math.max(0, width - text.length())) + text;
    }
}
