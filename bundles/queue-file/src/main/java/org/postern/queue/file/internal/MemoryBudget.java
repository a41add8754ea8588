package org.postern.queue.file.internal;

import java.util.concurrent.atomic.AtomicLong;

/**
 * How much message content the store keeps in memory at once: messages being received, and entries whose
 * files are not written yet (see {@link FileQueueStore}). Past the limit, new content goes to files at once,
 * as it would without the budget; nothing waits for room.
 */
final class MemoryBudget {

    private final long limit;
    private final AtomicLong used = new AtomicLong();

    MemoryBudget(long limit) {
        this.limit = limit;
    }

    /** {@code megabytes} MiB, but an eighth of the heap at most. */
    static long limit(int megabytes) {
        return Math.min(Math.max(0, megabytes) * (1L << 20), Runtime.getRuntime().maxMemory() / 8);
    }

    /** Takes {@code octets} if they fit under the limit. */
    boolean reserve(long octets) {
        long now = used.get();
        while (now + octets <= limit) {
            if (used.compareAndSet(now, now + octets)) {
                return true;
            }
            now = used.get();
        }
        return false;
    }

    void release(long octets) {
        if (octets > 0) {
            used.addAndGet(-octets);
        }
    }

    long used() {
        return used.get();
    }
}
