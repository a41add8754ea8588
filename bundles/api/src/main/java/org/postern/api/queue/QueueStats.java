package org.postern.api.queue;

import java.time.Instant;
import java.util.Map;

/**
 * Counts of a queue.
 *
 * @param byState entries per state (states with none may be absent)
 * @param totalSize octets of all stored messages
 * @param oldest the arrival of the oldest entry, or null when empty
 */
public record QueueStats(Map<QueueEntry.State, Long> byState, long totalSize, Instant oldest) {

    public QueueStats {
        byState = Map.copyOf(byState);
    }

    public long total() {
        return byState.values().stream().mapToLong(Long::longValue).sum();
    }
}
