package org.postern.queue.manager.internal;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Concurrency accounting for deliveries: at most {@code total} jobs run at once, and at most
 * {@code perDestination} to one destination; the others wait in arrival order. Destinations take turns,
 * so one busy destination cannot keep a quiet one waiting behind its backlog.
 *
 * <p>It only counts: every method returns the jobs the caller must start now. A started job must be
 * {@link #release released} exactly once when it ends.
 */
final class Limiter<T> {

    private int total;
    private int perDestination;
    private int running;
    private boolean closed;
    private final Map<String, Integer> runningPer = new HashMap<>();
    // Insertion order is the turn order: a destination that was just served moves to the back.
    private final LinkedHashMap<String, ArrayDeque<T>> waiting = new LinkedHashMap<>();

    Limiter(int total, int perDestination) {
        this.total = total;
        this.perDestination = perDestination;
    }

    /**
     * Queues a job for a destination.
     *
     * @return the jobs to start now (which may include this one), or null when closed: the job was not taken
     */
    synchronized List<T> offer(String destination, T job) {
        if (closed) {
            return null;
        }
        waiting.computeIfAbsent(destination, d -> new ArrayDeque<>()).add(job);
        return startable();
    }

    /** A started job for this destination ended. */
    synchronized List<T> release(String destination) {
        running--;
        runningPer.computeIfPresent(destination, (d, n) -> n <= 1 ? null : n - 1);
        return closed ? List.of() : startable();
    }

    /** New limits; jobs already running are not stopped when the limits shrink. */
    synchronized List<T> resize(int newTotal, int newPerDestination) {
        total = newTotal;
        perDestination = newPerDestination;
        return closed ? List.of() : startable();
    }

    /** Takes no more jobs; returns those that were waiting, which will never start. */
    synchronized List<T> close() {
        closed = true;
        List<T> abandoned = new ArrayList<>();
        waiting.values().forEach(abandoned::addAll);
        waiting.clear();
        return abandoned;
    }

    synchronized int running() {
        return running;
    }

    synchronized int running(String destination) {
        return runningPer.getOrDefault(destination, 0);
    }

    synchronized int waiting() {
        return waiting.values().stream().mapToInt(ArrayDeque::size).sum();
    }

    private List<T> startable() {
        List<T> start = new ArrayList<>();
        boolean progress = true;
        while (progress && running < total && !waiting.isEmpty()) {
            progress = false;
            // One job per destination per round.
            List<String> served = new ArrayList<>();
            Iterator<Map.Entry<String, ArrayDeque<T>>> it = waiting.entrySet().iterator();
            while (it.hasNext() && running < total) {
                Map.Entry<String, ArrayDeque<T>> e = it.next();
                String destination = e.getKey();
                if (runningPer.getOrDefault(destination, 0) >= perDestination) {
                    continue;
                }
                start.add(e.getValue().poll());
                running++;
                runningPer.merge(destination, 1, Integer::sum);
                progress = true;
                if (e.getValue().isEmpty()) {
                    it.remove();
                } else {
                    served.add(destination);
                }
            }
            for (String destination : served) {
                waiting.put(destination, waiting.remove(destination));
            }
        }
        return start;
    }
}
